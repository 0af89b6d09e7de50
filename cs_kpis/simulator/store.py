"""Object versions kept in a scratch DuckDB, then written out as vendor envelopes per extract day.

The simulation emits every state an object passes through, as ``(entity, id, ts, sort_key, body)``.
The writer picks, for the snapshot day, the latest version of every object up to the end of that day,
and for each increment day, the latest version of every object touched during that day. The scratch
database keeps memory bounded however large the company is. The envelopes and parts themselves are
written by cs_kpis/simulator/landing.py, the one writer of the landing format.
"""

from pathlib import Path

import duckdb
import orjson
import pyarrow as pa

_SCHEMA = pa.schema([
    ("entity", pa.string()), ("id", pa.string()), ("ts", pa.int64()), ("seq", pa.int64()),
    ("sort_key", pa.int64()), ("body", pa.string()),
])


class VersionStore:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.con = duckdb.connect(str(path), config={"memory_limit": "6GB", "temp_directory": str(path) + ".tmp"})
        self.con.execute("set preserve_insertion_order = true")
        self.con.execute("set enable_progress_bar = false")  # the large company's final queries drew bars on stderr
        self.con.execute(
            "create table versions (entity varchar, id varchar, ts bigint, seq bigint, sort_key bigint, body varchar)"
        )
        self._buf: list[tuple] = []
        self._seq = 0

    def add(self, entity: str, obj_id: str, ts: int, obj: dict, sort_key: int | None = None) -> None:
        self._seq += 1
        self._buf.append((entity, obj_id, ts, self._seq, ts if sort_key is None else sort_key,
                          orjson.dumps(obj).decode()))
        if len(self._buf) >= 50_000:
            self.flush()

    def flush(self) -> None:
        if not self._buf:
            return
        self.insert_rows(self._buf)
        self._buf.clear()

    def insert_rows(self, rows: list[tuple]) -> None:
        """Insert ``(entity, id, ts, seq, sort_key, body)`` rows (what :meth:`add` buffers)."""
        cols = list(zip(*rows))
        batch = pa.table([pa.array(c, type=f.type) for c, f in zip(cols, _SCHEMA)], schema=_SCHEMA)
        self.con.register("batch", batch)
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
