"""Object versions kept in a scratch DuckDB, then written out as vendor envelopes per extract day.

The simulation emits every state an object passes through, as ``(entity, id, ts, sort_key, body)``.
The writer picks, for the snapshot day, the latest version of every object up to the end of that day,
and for each increment day, the latest version of every object touched during that day. The scratch
database keeps memory bounded however large the company is. The envelopes and parts themselves are
written by cs_kpis/simulator/landing.py, the one writer of the landing format.
"""

from pathlib import Path

import duckdb
import numpy as np
import orjson
import pyarrow as pa

_SCHEMA = pa.schema([
    ("entity", pa.string()), ("id", pa.string()), ("ts", pa.int64()), ("seq", pa.int64()),
    ("sort_key", pa.int64()), ("body", pa.string()),
])


BATCH = 50_000
"""versions per batch inserted into the store (and, with two processes, per message to the writer)"""


class VersionBuffer:
    """Object versions as they are added, kept column by column until a batch is full.

    Each body is serialized once (orjson, bytes) and a batch travels as a few flat buffers: the bodies
    and ids concatenated with their offsets, the integers as int64 arrays, the entity as a small code.
    Turning one into an Arrow table (:func:`batch_table`) copies nothing per row; with two processes the
    batch is pickled as these few buffers instead of 50,000 tuples of strings.
    """

    def __init__(self):
        self.seq = 0
        self._entities: dict[str, int] = {}
        self._clear()

    def _clear(self) -> None:
        self._ent: list[int] = []
        self._ids: list[str] = []
        self._ts: list[int] = []
        self._sort: list[int] = []
        self._bodies: list[bytes] = []

    def __len__(self) -> int:
        return len(self._bodies)

    def add(self, entity: str, obj_id: str, ts: int, obj: dict, sort_key: int | None = None) -> bool:
        """Buffer one version; True when the batch is full."""
        code = self._entities.get(entity)
        if code is None:
            code = self._entities[entity] = len(self._entities)
        self._ent.append(code)
        self._ids.append(obj_id)
        self._ts.append(ts)
        self._sort.append(ts if sort_key is None else sort_key)
        self._bodies.append(orjson.dumps(obj))
        return len(self._bodies) >= BATCH

    def take(self) -> tuple:
        """The buffered versions as a picklable batch (see :func:`batch_table`); the buffer is emptied."""
        n = len(self._bodies)
        first_seq = self.seq + 1
        self.seq += n
        ids = [i.encode() for i in self._ids]
        batch = (n, list(self._entities), np.array(self._ent, np.int32), _joined(ids), np.array(self._ts, np.int64),
                 first_seq, np.array(self._sort, np.int64), _joined(self._bodies))
        self._clear()
        return batch


def _joined(values: list[bytes]) -> tuple[np.ndarray, bytes]:
    offsets = np.zeros(len(values) + 1, np.int64)
    np.cumsum([len(v) for v in values], out=offsets[1:])
    return offsets, b"".join(values)


def _strings(offsets: np.ndarray, data: bytes) -> pa.Array:
    if len(data) < 2**31:
        return pa.StringArray.from_buffers(len(offsets) - 1, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data))
    return pa.LargeStringArray.from_buffers(len(offsets) - 1, pa.py_buffer(offsets), pa.py_buffer(data)).cast(pa.string())


def batch_table(batch: tuple) -> pa.Table:
    """The Arrow table ``(entity, id, ts, seq, sort_key, body)`` of a :meth:`VersionBuffer.take` batch."""
    n, names, codes, ids, ts, first_seq, sort, bodies = batch
    entity = pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), pa.array(names, pa.string())).cast(pa.string())
    return pa.table([entity, _strings(*ids), pa.array(ts, pa.int64()),
                     pa.array(np.arange(first_seq, first_seq + n, dtype=np.int64), pa.int64()),
                     pa.array(sort, pa.int64()), _strings(*bodies)], schema=_SCHEMA)


class VersionStore:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.con = duckdb.connect(str(path), config={"memory_limit": "6GB", "temp_directory": str(path) + ".tmp"})
        self.con.execute("set preserve_insertion_order = true")
        self.con.execute("set enable_progress_bar = false")  # the large company's final queries drew bars on stderr
        self.con.execute(
            "create table versions (entity varchar, id varchar, ts bigint, seq bigint, sort_key bigint, body varchar)"
        )
        self._buf = VersionBuffer()

    def add(self, entity: str, obj_id: str, ts: int, obj: dict, sort_key: int | None = None) -> None:
        if self._buf.add(entity, obj_id, ts, obj, sort_key):
            self.flush()

    def flush(self) -> None:
        if len(self._buf):
            self.insert_batch(self._buf.take())

    def insert_batch(self, batch: tuple) -> None:
        """Insert a :meth:`VersionBuffer.take` batch."""
        self.con.register("batch", batch_table(batch))
        self.con.execute("insert into versions select * from batch")
        self.con.unregister("batch")

    def latest(self, entity: str, lo: int | None, hi: int, descending: bool) -> "duckdb.DuckDBPyConnection":
        """Latest version per id among versions with lo <= ts < hi, ordered for the envelope.

        The latest version is picked on the narrow columns first and only then joined to its body, so
        the large JSON bodies never pass through a window or a grouping (they did, and ran out of memory
        on the large company).
        """
        self.flush()
        where = "entity = $entity and ts < $hi" + ("" if lo is None else " and ts >= $lo")
        order = "v.sort_key desc, v.id desc" if descending else "v.sort_key, v.id"
        params = {"entity": entity, "hi": hi} | ({} if lo is None else {"lo": lo})
        return self.con.execute(
            f"""
            with latest as (
                select id, max(ts) as ts from versions where {where} group by id
            ), picked as (
                select v.id, max(v.seq) as seq
                from versions as v
                join latest as l on l.id = v.id and l.ts = v.ts
                where v.entity = $entity
                group by v.id
            )
            select v.body
            from versions as v
            join picked as p on p.seq = v.seq
            order by {order}
            """,
            params,
        )

    def count(self, entity: str) -> int:
        self.flush()
        return self.con.execute("select count(distinct id) from versions where entity = ?", [entity]).fetchall()[0][0]

    def close(self) -> None:
        self.con.close()


def iter_bodies(cursor, batch: int = 5000):
    """The JSON bodies of a :meth:`VersionStore.latest` cursor, fetched in batches."""
    while True:
        rows = cursor.fetchmany(batch)
        if not rows:
            return
        for (body,) in rows:
            yield body
