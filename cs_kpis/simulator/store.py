"""Object versions kept in a scratch DuckDB, then written out as vendor envelopes per extract day.

The simulation emits every state an object passes through, as ``(entity, id, ts, sort_key, body)``.
The writer picks, for the snapshot day, the latest version of every object up to the end of that day,
and for each increment day, the latest version of every object touched during that day. The scratch
database keeps memory bounded however large the company is. The envelopes and parts themselves are
written by cs_kpis/simulator/landing.py, the one writer of the landing format.
"""

import bisect
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
"""versions per batch inserted into the store (and the window in which superseded versions are dropped)"""
CHUNK = 10_000
"""versions per message to the writer process (two processes), a fifth of a batch"""


class VersionBuffer:
    """Object versions as they are added, kept column by column until a batch is full.

    Each body is serialized once (orjson, bytes) and a batch travels as a few flat buffers: the bodies
    and ids concatenated with their offsets, the integers as int64 arrays, the entity as a small code.
    Turning one into an Arrow table (:func:`batch_table`) copies nothing per row; with two processes the
    batch is pickled as these few buffers instead of 50,000 tuples of strings.

    ``cutoffs``: the end (Unix seconds, exclusive) of each extract day, in order. The landing shows, per
    object, only its latest version (largest ts, then the latest added) among those before the first
    cutoff, and among those within each later extract day (:meth:`VersionStore.latest`). A version that a
    later one of the same object supersedes within the same window and the same batch can therefore
    never be written: it is dropped here (a ticket's open, solved and closed states a few days apart,
    most of them). Windows with a lower bound (a retention window) pick the same version: the latest
    before the cutoff is within them or none is. Without cutoffs every version is kept.

    Two more kinds of version are dropped, whatever the batch, because no extract can show them either:

    - ``floors``: entity -> the lower bound (Unix seconds) of its first window, for an entity whose snapshot
      holds only a recent stretch (Stripe's 30 days of events, Salesforce's 18 months of field history);
      every later window starts later still, so a version before the floor is in none (:meth:`keeps`
      lets the simulation skip building it at all);
    - a version added with ``superseded_at``: the caller knows that a later version of the same object
      will be added at that time, if the simulation runs that far (a ticket solved, then closed four days
      later: the agenda holds it), so when that time falls in the same extract window (never beyond the
      last: the run may stop before it), this one can never be the latest.
    """

    def __init__(self, cutoffs: list[int] | None = None, floors: dict[str, int] | None = None):
        self.seq = 0
        self.dropped = 0
        self.cutoffs = list(cutoffs) if cutoffs else None
        self.floors = dict(floors) if floors and self.cutoffs is not None else {}
        self._entities: dict[str, int] = {}
        self._clear()

    def keeps(self, entity: str, ts: int) -> bool:
        """False when a version of ``entity`` at ``ts`` would be dropped as older than the entity's floor."""
        floor = self.floors.get(entity)
        return floor is None or ts >= floor

    def _clear(self) -> None:
        self._ent: list[int] = []
        self._ids: list[str] = []
        self._ts: list[int] = []
        self._seq: list[int] = []
        self._sort: list[int] = []
        self._bodies: list[bytes] = []
        self._at: dict[tuple, int] = {}  # (entity code, id, window) -> position in the batch

    def __len__(self) -> int:
        return len(self._bodies)

    def add(self, entity: str, obj_id: str, ts: int, obj: dict, sort_key: int | None = None,
            superseded_at: int | None = None) -> bool:
        """Buffer one version; True when the batch is full. ``superseded_at``: see the class."""
        code = self._entities.get(entity)
        if code is None:
            code = self._entities[entity] = len(self._entities)
        self.seq += 1
        if superseded_at is not None and superseded_at < ts:
            raise ValueError(f"a version of {entity} {obj_id} at {ts} is said to be superseded before it, "
                             f"at {superseded_at}")
        if self.cutoffs is not None:
            window = bisect.bisect_right(self.cutoffs, ts)
            if (superseded_at is not None and window < len(self.cutoffs)
                    and bisect.bisect_right(self.cutoffs, superseded_at) == window) \
                    or (self.floors and not self.keeps(entity, ts)):
                self.dropped += 1
                return False
            key = (code, obj_id, window)
            at = self._at.get(key)
            if at is not None:
                self.dropped += 1
                if ts >= self._ts[at]:  # this one is the latest of its window so far: it takes the place
                    self._ts[at], self._seq[at] = ts, self.seq
                    self._sort[at] = ts if sort_key is None else sort_key
                    self._bodies[at] = _json(obj)
                return False
            self._at[key] = len(self._bodies)
        self._ent.append(code)
        self._ids.append(obj_id)
        self._ts.append(ts)
        self._seq.append(self.seq)
        self._sort.append(ts if sort_key is None else sort_key)
        self._bodies.append(_json(obj))
        return len(self._bodies) >= BATCH

    def take(self) -> list[tuple]:
        """The buffered versions as picklable chunks of at most :data:`CHUNK` versions (see
        :func:`batch_table`); the buffer is emptied. Chunks, not one batch: a message of 50,000 bodies
        (about 75 MB on the large company) cost several times its size in transient memory to pickle."""
        names = list(self._entities)
        chunks = []
        for lo in range(0, len(self._bodies), CHUNK):
            hi = lo + CHUNK
            ids = [i.encode() for i in self._ids[lo:hi]]
            chunks.append((names, np.array(self._ent[lo:hi], np.int32), _joined(ids),
                           np.array(self._ts[lo:hi], np.int64), np.array(self._seq[lo:hi], np.int64),
                           np.array(self._sort[lo:hi], np.int64), _joined(self._bodies[lo:hi])))
        self._clear()
        return chunks


def _json(obj: dict) -> bytes:
    """The object's JSON text, in a bytes object of its own size: orjson's result keeps the larger
    buffer it was written into (about 8 KB for a 1.4 KB body), which 50,000 buffered bodies multiply."""
    return bytes(memoryview(orjson.dumps(obj)))


def _joined(values: list[bytes]) -> tuple[np.ndarray, bytes]:
    offsets = np.zeros(len(values) + 1, np.int64)
    np.cumsum([len(v) for v in values], out=offsets[1:])
    return offsets, b"".join(values)


def _strings(offsets: np.ndarray, data: bytes) -> pa.Array:
    if len(data) >= 2**31:  # 10,000 bodies of 200 KB each: no simulated object comes near
        raise ValueError(f"a chunk of versions holds {len(data):,} bytes of text, more than an Arrow string array")
    return pa.StringArray.from_buffers(len(offsets) - 1, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data))


def batch_table(batch: tuple) -> pa.Table:
    """The Arrow table ``(entity, id, ts, seq, sort_key, body)`` of a :meth:`VersionBuffer.take` chunk."""
    names, codes, ids, ts, seq, sort, bodies = batch
    entity = pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), pa.array(names, pa.string())).cast(pa.string())
    return pa.table([entity, _strings(*ids), pa.array(ts, pa.int64()), pa.array(seq, pa.int64()),
                     pa.array(sort, pa.int64()), _strings(*bodies)], schema=_SCHEMA)


class VersionStore:
    """The versions, one table per entity: each entity's final queries (the latest version per object, the
    counts) read its own rows only, not every entity's bodies (millions of versions on the large company,
    most of them invoices and tickets)."""

    def __init__(self, path: Path, cutoffs: list[int] | None = None, floors: dict[str, int] | None = None):
        """``cutoffs``, ``floors``: to drop versions no extract can show (:class:`VersionBuffer`)."""
        self.path = Path(path)
        self.con = duckdb.connect(str(path), config={"memory_limit": "6GB", "temp_directory": str(path) + ".tmp"})
        self.con.execute("set preserve_insertion_order = true")
        self.con.execute("set enable_progress_bar = false")  # the large company's final queries drew bars on stderr
        # a checkpoint per 1 GB of appended versions, not per 16 MB (DuckDB's default): the store is written once
        # and read at the end, and each checkpoint recompressed the tables' last row groups (the writer's CPU
        # at 5,000 accounts: 34.5 s against 44.5 s; its peak RSS 1.09-1.11 GB against 0.68 GB, up to 1 GB of
        # versions waiting in memory between checkpoints)
        self.con.execute("set checkpoint_threshold = '1GB'")
        # and the versions stored uncompressed: the store is scratch, read once at the end, and compressing each
        # GB of JSON bodies at its checkpoint took 6.5 CPU s against 0.9 s (a synthetic store of invoice-like
        # bodies, one thread); on the large company the writer stalled 8-17 s at each of a dozen checkpoints.
        # The file is about 2.8x larger (at least 14.8 GB on the large company; deleted at the end)
        self.con.execute("set force_compression = 'uncompressed'")
        self._tables: dict[str, str] = {}  # entity -> its table
        self._buf = VersionBuffer(cutoffs, floors)

    def add(self, entity: str, obj_id: str, ts: int, obj: dict, sort_key: int | None = None,
            superseded_at: int | None = None) -> None:
        if self._buf.add(entity, obj_id, ts, obj, sort_key, superseded_at):
            self.flush()

    def keeps(self, entity: str, ts: int) -> bool:
        return self._buf.keeps(entity, ts)

    def flush(self) -> None:
        if len(self._buf):
            self.insert_chunks(self._buf.take())

    def table(self, entity: str) -> str | None:
        """The table of the entity's versions ``(id, ts, seq, sort_key, body)``; None before its first."""
        return self._tables.get(entity)

    def insert_chunks(self, chunks: list[tuple]) -> None:
        """Insert the chunks of one :meth:`VersionBuffer.take` batch, one statement per entity in it."""
        if not chunks:
            return
        names = chunks[-1][0]  # the buffer's entities so far: the last chunk's list holds every earlier one's
        present = np.unique(np.concatenate([c[1] for c in chunks]))
        self.con.register("batch", pa.concat_tables([batch_table(c) for c in chunks]))
        try:
            for code in present:
                entity = names[int(code)]
                table = self._tables.get(entity)
                if table is None:
                    table = self._tables[entity] = f"versions_{len(self._tables)}"
                    self.con.execute(
                        f"create table {table} (id varchar, ts bigint, seq bigint, sort_key bigint, body varchar)")
                self.con.execute(f"insert into {table} select id, ts, seq, sort_key, body from batch "
                                 "where entity = $entity", {"entity": entity})
        finally:
            self.con.unregister("batch")

    def latest(self, entity: str, lo: int | None, hi: int, descending: bool) -> "duckdb.DuckDBPyConnection":
        """Latest version per id among versions with lo <= ts < hi, ordered for the envelope.

        The latest version is picked on the narrow columns first and only then joined to its body, so
        the large JSON bodies never pass through a window or a grouping (they did, and ran out of memory
        on the large company).
        """
        self.flush()
        table = self.table(entity)
        if table is None:
            return self.con.execute("select null::varchar as body limit 0")
        where = "ts < $hi" + ("" if lo is None else " and ts >= $lo")
        order = "v.sort_key desc, v.id desc" if descending else "v.sort_key, v.id"
        params = {"hi": hi} | ({} if lo is None else {"lo": lo})
        return self.con.execute(
            f"""
            with latest as (
                select id, max(ts) as ts from {table} where {where} group by id
            ), picked as (
                select v.id, max(v.seq) as seq
                from {table} as v
                join latest as l on l.id = v.id and l.ts = v.ts
                group by v.id
            )
            select v.body
            from {table} as v
            join picked as p on p.seq = v.seq
            order by {order}
            """,
            params,
        )

    def count(self, entity: str) -> int:
        """Objects of the entity with any version."""
        self.flush()
        table = self.table(entity)
        return 0 if table is None else self.con.execute(f"select count(distinct id) from {table}").fetchall()[0][0]

    def count_latest(self, entity: str, lo: int | None, hi: int) -> int:
        """Objects of the entity with a version in lo <= ts < hi: the rows :meth:`latest` gives."""
        self.flush()
        table = self.table(entity)
        if table is None:
            return 0
        where = "ts < $hi" + ("" if lo is None else " and ts >= $lo")
        params = {"hi": hi} | ({} if lo is None else {"lo": lo})
        return self.con.execute(f"select count(distinct id) from {table} where {where}", params).fetchall()[0][0]

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
