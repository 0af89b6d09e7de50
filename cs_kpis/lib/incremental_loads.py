"""Incremental staging over an insert-only raw table: a nightly build reads only the raw loads it has not built.

A staging model becomes incremental by load with a header tag (cs_kpis/lib/sql.py)::

    -- @incremental by=load

and a source that reads only the raw loads of the current build from :data:`CONTROL_TABLE`::

    with source as (
        select * from raw.product__events
        where coalesce(_dlt_load_id, '') in (
            select _dlt_load_id from staging._build_loads
            where model = 'staging.stg_product__events' and is_current
        )
    ),

Every raw row carries the dlt load that wrote it (``_dlt_load_id``). This is right only for a raw table whose
loads never change the rows of an earlier load: product events (the loader inserts a new day's events and
deletes, in the same transaction, those whose messageId an earlier row holds: a duplicate delivered in a
later load is dropped from the later load, so the earlier load's rows stay as they are). Billing events
are insert-only too (a Stripe event never changes; the loader skips an id already loaded).

A model over a **merged** raw table (dlt's delete-insert: a load first deletes the rows holding any of its
primary keys, or of its merge key for a child table, then inserts its rows) says so with the columns a load
replaces on, as the model names them::

    -- @incremental by=load merge=line_id,invoice_id

Its nightly build runs the SQL over the new loads into a temporary table, deletes the table's rows that hold
any of those rows' values of a ``merge`` column, and inserts them: what dlt did to raw. Such a model is one
row per raw row (renames and casts, no filter), so after the build the table holds as many rows as raw; when
it does not (rows deleted from raw by anything else than a load's merge: a discarded incomplete load, a
reloaded table), the build is rolled back and made full; so is a nightly with no new load whose table holds
another count than raw. Loads already built lose rows to later loads (their
row counts in the control table follow raw's after each build); one that gains rows makes the build full.

Each build is planned from the raw table's rows per load (one ``group by _dlt_load_id``):

- **full** (``create or replace``, every load) when asked (``full_refresh`` in the run config), when the table
  or its record is missing, when its *version* changed (a hash of the model's SQL as rendered for the company
  configuration, the raw table's columns and types, and the engine), when the table does not hold the rows its
  last build left, when the last build did not finish, or when a load already built has a different row count
  in raw now (rows of an incomplete load discarded before it was loaded again,
  cs_kpis.sources.common.runner.discard_incomplete_loads; a raw table dropped and reloaded).
- **incremental** otherwise: the loads raw holds that no build has read yet are appended (``insert``), in the
  same transaction as their record; none, nothing is written.

So a rerun never appends a load twice, and an incremental table holds the rows a full build would
(``cs_kpis_tests/staging/test_incremental_loads.py`` compares them). On Spark (cs_kpis/lib/engine.py) a full
build rewrites the table's Parquet folder and an incremental one appends the new rows as new files.

:data:`CONTROL_TABLE` has one row per model and load built (its raw rows, the build that read it, whether that
is the current build: what the SQL reads); :data:`LOG_TABLE` one row per finished build (mode, reason,
version, rows read, rows in the table after it).
"""

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field

CONTROL_TABLE = "staging._build_loads"
LOG_TABLE = "staging._builds"
LOAD_COLUMN = "_dlt_load_id"
CONTROL_COLUMNS = ("model varchar, _dlt_load_id varchar, raw_rows bigint, build_seq bigint, is_current boolean, "
                   "grain_checked boolean")
LOG_COLUMNS = ("model varchar, build_seq bigint, mode varchar, reason varchar, version varchar, loads_read bigint, "
               "raw_rows_read bigint, table_rows bigint, engine varchar, built_at timestamptz")
_RAW = re.compile(r"\braw\.([a-z_][a-z0-9_]*)\b")


@dataclass(frozen=True)
class LoadPlan:
    mode: str                                   # "full" or "incremental"
    reason: str
    version: str
    loads: dict[str, int] = field(default_factory=dict)
    """load id -> raw rows of the loads this build reads (every load in a full build)"""
    built: dict[str, int] = field(default_factory=dict)
    """load id -> raw rows now of the loads already built (a nightly build of a merged model: later loads
    replaced some of their rows)"""

    @property
    def raw_rows(self) -> int:
        """the raw table's rows when planned"""
        return sum(self.loads.values()) + sum(self.built.values())


class NotMerged(Exception):
    """A merged model's nightly build left another row count than raw's: raw changed otherwise than by the
    merges of its new loads. The build is rolled back and made full."""


def raw_table(sql: str, where: str) -> str:
    """The one raw table a model reads (``raw.<system>__<entity>``); anything else fails naming ``where``."""
    from cs_kpis.lib.sql import strip_comments

    found = sorted(set(_RAW.findall(strip_comments(sql))))
    if len(found) != 1:
        raise ValueError(f"{where}: an @incremental by=load model reads exactly one raw table, found {found}")
    return f"raw.{found[0]}"


def check_model_sql(sql: str, table: str, where: str) -> None:
    """The model reads one raw table and its current loads from the control table (else a nightly build would
    append every row again)."""
    from cs_kpis.lib.sql import strip_comments

    raw_table(sql, where)
    body = " ".join(strip_comments(sql).split())
    if CONTROL_TABLE not in body or f"model = '{table}'" not in body or LOAD_COLUMN not in body:
        raise ValueError(f"{where}: an @incremental by=load model reads only the current build's loads: "
                         f"`where coalesce({LOAD_COLUMN}, '') in (select {LOAD_COLUMN} from {CONTROL_TABLE} where model = '{table}' "
                         "and is_current)` (cs_kpis/lib/incremental_loads.py)")


def _exists(con, table: str) -> bool:
    from cs_kpis.lib.incremental import table_exists

    return table_exists(con, table)


def ensure_control_tables(con) -> None:
    con.execute(f"create schema if not exists {CONTROL_TABLE.split('.')[0]}")
    con.execute(f"create table if not exists {CONTROL_TABLE} ({CONTROL_COLUMNS})")
    con.execute(f"create table if not exists {LOG_TABLE} ({LOG_COLUMNS})")


def raw_loads(con, raw: str) -> dict[str, int]:
    """load id -> rows of ``raw`` (one scan of its load id column); rows without one (dlt writes none such) are
    the load '', as the model's SQL reads them, so that no row is left out."""
    return {load: int(n) for load, n in con.execute(
        f"select coalesce({LOAD_COLUMN}, '') as load_id, count(*) from {raw} group by 1").fetchall()}


def version(con, sql: str, raw: str, engine: str) -> str:
    """16 hex digits over the rendered SQL, the raw table's columns and types, and the engine."""
    from cs_kpis.lib.sql import columns_of  # sql imports this module

    # duckdb_columns(): what information_schema.columns reads, the same names and types (so the same version)
    cols = columns_of(con, *raw.split("."))
    return hashlib.sha256(repr((sql, cols, engine)).encode()).hexdigest()[:16]


def last_build(con, table: str) -> dict | None:
    """The last finished build of ``table`` (a row of LOG_TABLE), or None."""
    if not _exists(con, LOG_TABLE):
        return None
    cur = con.execute(f"select * from {LOG_TABLE} where model = ? order by build_seq desc limit 1", [table])
    rows = cur.fetchall()  # fetchall: a half-read result would block the connection's next relation query
    return dict(zip([d[0] for d in cur.description], rows[0])) if rows else None


def built_loads(con, table: str) -> dict[str, tuple[int, int]]:
    """load id -> (raw rows when built, build) of every load a build of ``table`` read."""
    if not _exists(con, CONTROL_TABLE):
        return {}
    return {load: (int(n), int(seq)) for load, n, seq in con.execute(
        f"select {LOAD_COLUMN}, raw_rows, build_seq from {CONTROL_TABLE} where model = ?", [table]).fetchall()}


def plan(con, table: str, raw: str, ver: str, *, full_refresh: bool = False,
         stored_rows=None, merged: bool = False, rebuild: str = "") -> LoadPlan:
    """What the next build of ``table`` reads (the rules are in the module's docstring). ``stored_rows()``, if
    given, counts the rows the engine holds (Spark: its Parquet files) when they may differ from the warehouse.
    ``merged``: the model is over a merged raw table (a later load may take rows from a load already built).
    ``rebuild``: a reason to build in full (the engine cannot build the model otherwise)."""
    loads = raw_loads(con, raw)

    def full(reason: str) -> LoadPlan:
        return LoadPlan("full", reason, ver, loads)

    if full_refresh:
        return full("full_refresh requested")
    if rebuild:
        return full(rebuild)
    prev = last_build(con, table)
    if prev is None or not _exists(con, table):
        return full(f"{table} not built yet")
    if prev["version"] != ver:
        return full(f"the SQL of {table}, the columns of {raw} or the engine changed")
    rows = con.execute(f"select count(*) from {table}").fetchall()[0][0]
    if rows != prev["table_rows"]:
        return full(f"{table} holds {rows} rows, its last build left {prev['table_rows']}")
    if stored_rows is not None and stored_rows() != rows:
        return full(f"the engine's copy of {table} does not hold the warehouse's {rows} rows")
    built = built_loads(con, table)
    if any(seq > prev["build_seq"] for _, seq in built.values()):
        return full(f"a build of {table} after build {prev['build_seq']} did not finish")
    changed = sorted(load for load, (n, _) in built.items()
                     if (loads.get(load, 0) > n if merged else loads.get(load, 0) != n))
    if changed and merged:
        first = changed[0]
        return full(f"{len(changed)} load(s) already built have more rows in {raw} now (load {first}: "
                    f"{built[first][0]} rows after the last build, {loads.get(first, 0)} now)")
    if changed:
        first = changed[0]
        return full(f"{len(changed)} load(s) already built have other rows in {raw} now (load {first}: "
                    f"{built[first][0]} rows built, {loads.get(first, 0)} now): a discarded incomplete load or "
                    "a reloaded raw table")
    new = {load: n for load, n in sorted(loads.items()) if load not in built}
    if merged and not new and rows != sum(loads.values()):  # with new loads, merge_new_rows checks it after
        return full(f"{table} holds {rows} rows for {sum(loads.values())} in {raw}: raw changed otherwise than by "
                    "a load's merge")
    kept = {load: loads.get(load, 0) for load in sorted(built)} if merged else {}
    return LoadPlan("incremental", f"{len(new)} new raw load(s) since build {prev['build_seq']}", ver, new, kept)


def record(con, table: str, p: LoadPlan) -> int:
    """Make the plan's loads the current build's (what the SQL reads); returns the build's number. A full build
    forgets every earlier load of ``table``."""
    ensure_control_tables(con)
    seq = con.execute(f"select coalesce(max(build_seq), 0) + 1 from (select build_seq from {LOG_TABLE} union all "
                      f"select build_seq from {CONTROL_TABLE})").fetchall()[0][0]
    if p.mode == "full":
        con.execute(f"delete from {CONTROL_TABLE} where model = ?", [table])
    else:
        con.execute(f"update {CONTROL_TABLE} set is_current = false where model = ? and is_current", [table])
    gone = [[table, load] for load, n in p.built.items() if n == 0]  # a merged model: every row replaced
    if gone:
        con.executemany(f"delete from {CONTROL_TABLE} where model = ? and {LOAD_COLUMN} = ?", gone)
    fewer = [[n, table, load] for load, n in p.built.items() if n]
    if fewer:
        con.executemany(f"update {CONTROL_TABLE} set raw_rows = ? where model = ? and {LOAD_COLUMN} = ? "
                        "and raw_rows <> ?", [[*row, row[0]] for row in fewer])
    if p.loads:
        con.executemany(f"insert into {CONTROL_TABLE} values (?, ?, ?, ?, true, false)",
                        [[table, load, n, seq] for load, n in p.loads.items()])
    return seq


def merge_new_rows(con, table: str, sql: str, columns: tuple[str, ...], raw_rows: int) -> None:
    """A merged model's nightly build (the module's docstring): the new loads' rows replace the table's rows
    that hold any of their values of ``columns``; raises :class:`NotMerged` unless the table then holds
    ``raw_rows`` rows."""
    new = "_by_load_new_rows"
    con.execute(f"create or replace temp table {new} as\n{sql}")
    hold = " or ".join(f"{c} in (select {c} from {new})" for c in columns)
    con.execute(f"delete from {table} where {hold}")
    con.execute(f"insert into {table} by name select * from {new}")
    con.execute(f"drop table {new}")
    rows = con.execute(f"select count(*) from {table}").fetchall()[0][0]
    if rows != raw_rows:
        raise NotMerged(f"the nightly merge left {rows} rows in {table} for {raw_rows} raw rows: raw changed "
                        "otherwise than by its new loads' merges")


def finish(con, table: str, p: LoadPlan, seq: int, engine: str) -> int:
    """Log the build as finished; returns the table's rows."""
    rows = con.execute(f"select count(*) from {table}").fetchall()[0][0]
    con.execute(f"insert into {LOG_TABLE} values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [table, seq, p.mode, p.reason, p.version, len(p.loads), sum(p.loads.values()), rows, engine,
                 dt.datetime.now(dt.UTC)])
    return int(rows)


def unique_violations(con, table: str, raw: str, columns: tuple[str, ...]) -> tuple[str, list, list[str]]:
    """(violations SQL, its parameters, the loads it covers) of the grain check of an incremental-by-load
    table: the keys of the loads no passing check has covered yet (taken from raw, whose key columns have the
    same names), found anywhere in the table more than once. Every key when the table is not what its last
    build left (then rows may have changed behind the builds' back) or every load is unchecked (a full
    build): then the plain ``group by`` over the table. A failed check marks nothing, so its loads stay
    covered until a check passes: a duplicate is reported every night until it is gone."""
    cols = ", ".join(columns)
    everything = duplicate_keys_sql(table, cols)
    prev = last_build(con, table)
    loads = {load: checked for load, checked in con.execute(
        f"select {LOAD_COLUMN}, coalesce(grain_checked, false) from {CONTROL_TABLE} where model = ?",
        [table]).fetchall()} if _exists(con, CONTROL_TABLE) else {}
    unchecked = sorted(load for load, checked in loads.items() if not checked)
    rows = con.execute(f"select count(*) from {table}").fetchall()[0][0]
    if prev is None or rows != prev["table_rows"] or len(unchecked) == len(loads):
        return everything, [], unchecked
    if not unchecked:
        return f"{everything} limit 0", [], []
    keys = f"({cols})" if len(columns) > 1 else cols
    marks = ", ".join("?" for _ in unchecked)
    sql = (f"select {cols}, count(*) as copies from {table} where {keys} in (select {cols} from {raw} "
           f"where coalesce({LOAD_COLUMN}, '') in ({marks})) group by {cols} having count(*) > 1")
    return sql, unchecked, unchecked


def duplicate_keys_sql(table: str, cols: str) -> str:
    """The keys (``cols``, comma-separated) found in ``table`` more than once, with their ``copies``: the same rows
    as ``group by {cols} having count(*) > 1``, found by grouping the keys' ``hash`` first and the keys themselves
    only where two rows share a hash. Grouping a 64-bit hash is cheaper than grouping the text keys: on the large
    company's 59.7 M staging events 6.7-6.9 s against 9.8-11.6 s, and the full build's blocking checks of those
    events 8.3 s against 13.1 s (BENCHMARKS.md, session 33). Two keys that share a hash are still told apart by the
    second ``group by``; null keys share one hash, and group together as before. Spark's ``hash`` is 32 bits: more
    shared hashes there, the same rows."""
    return (f"select {cols}, count(*) as copies from {table} "
            f"where hash({cols}) in (select hash({cols}) as h from {table} group by hash({cols}) having count(*) > 1) "
            f"group by {cols} having count(*) > 1")


def mark_checked(con, table: str, loads: list[str]) -> None:
    """The grain check passed for ``loads``: later checks leave their keys out."""
    if loads:
        con.execute(f"update {CONTROL_TABLE} set grain_checked = true where model = ? and {LOAD_COLUMN} in "
                    f"({', '.join('?' for _ in loads)})", [table, *loads])


def metadata(p: LoadPlan, table_rows: int, seconds: float) -> dict:
    """A build's plan and counts as Dagster metadata."""
    return {"build_mode": p.mode, "build_reason": p.reason, "raw_loads_read": len(p.loads),
            "raw_rows_read": sum(p.loads.values()), "rows_in_table": table_rows, "seconds": seconds}
