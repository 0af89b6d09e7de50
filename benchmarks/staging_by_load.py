"""The staging models built by load (cs_kpis/lib/incremental_loads.py) on a big warehouse, read-only: the old
nightly (a full rebuild) against the new one (the by-load build of one synthetic load), and the equality of the
nightly table with a full rebuild (BENCHMARKS.md, issue 18, session 18).

    python -m benchmarks.staging_by_load --warehouse <warehouse> --scratch <work>/scratch.duckdb [--rounds 3] [models]

For each model: its raw table is copied from ``<warehouse>`` (attached read-only) into the scratch file; a first
(full) by-load build is compared with the warehouse's own staging table; a synthetic nightly load ``L3`` is merged
into raw as dlt does (every row of the last real load re-delivered plus 1 key in 400 of the others,
``_extract_day`` + 1; for invoice lines, those invoices' line sets with 1 line in 3 dropped; billing events,
insert-only, get new ids); then ``--rounds`` times, alternating, a full rebuild and the by-load build (the table
and its records put back before each); last, the nightly table against a full rebuild, ``except all`` both
ways. One thread, 3 GB. The scratch file is deleted at the end.
"""

import argparse
import os
import time
from pathlib import Path

import duckdb

from cs_kpis.defs.staging.assets import STAGING_MODELS
from cs_kpis.lib import incremental_loads as load_builds
from cs_kpis.lib import sql as sqllib

CHILD_KEYS = {"stg_billing__invoice_lines": "invoice", "stg_billing__subscription_items": "subscription"}
"""a merged child model: the raw column of its parent key (a new parent version replaces its line set)"""


def except_all(con, a: str, b: str) -> tuple[int, int]:
    count = "select count(*) from (select * from {} except all select * from {})"
    return con.execute(count.format(a, b)).fetchone()[0], con.execute(count.format(b, a)).fetchone()[0]


def _timed(build) -> str:
    t0, c0 = time.perf_counter(), time.process_time()
    plan, _ = build()
    return (f"{plan.mode} {time.perf_counter() - t0:.2f}s cpu {time.process_time() - c0:.2f} "
            f"load {os.getloadavg()[0]:.1f}")


def _night(con, model, raw: str) -> int:
    """Merge the synthetic load L3 into ``raw``; returns its rows."""
    last = con.execute(f"select max(_dlt_load_id) from {raw}").fetchone()[0]
    changed = "'L3' as _dlt_load_id, _extract_day + 1 as _extract_day"
    parent = CHILD_KEYS.get(model.name)
    if parent:
        con.execute(f"create or replace temp table l3 as select * replace ({changed}) from {raw} where {parent} in "
                    f"(select {parent} from {raw} where _dlt_load_id = '{last}' or hash({parent}) % 400 = 0) "
                    "and hash(id) % 3 <> 0")
        con.execute(f"delete from {raw} where {parent} in (select {parent} from l3) or id in (select id from l3)")
    elif model.merge:
        con.execute(f"create or replace temp table l3 as select * replace ({changed}) from {raw} "
                    f"where _dlt_load_id = '{last}' or hash(id) % 400 = 0")
        con.execute(f"delete from {raw} where id in (select id from l3)")
    else:
        con.execute(f"create or replace temp table l3 as select * replace ({changed}, id || '_L3' as id) from {raw} "
                    f"where _dlt_load_id = '{last}' or hash(id) % 400 = 0")
    con.execute(f"insert into {raw} select * from l3")
    return con.execute("select count(*) from l3").fetchone()[0]


def run(model, warehouse: Path, scratch: Path, rounds: int) -> None:
    scratch.unlink(missing_ok=True)
    con = duckdb.connect(str(scratch))
    con.execute("set memory_limit = '3GB'; set threads = 1; set TimeZone = 'UTC'")
    con.execute(f"attach '{warehouse}' as big (read_only)")
    raw = load_builds.raw_table(model.sql, model.table)
    con.execute("create schema raw; create schema staging")
    load_builds.ensure_control_tables(con)  # before any plan: the attached warehouse has its own
    con.execute(f"create table {raw} as select * from big.{raw}")
    _, rows = sqllib.build_by_load(con, model)
    print(f"{model.name}: {rows} rows; the first build vs the warehouse's table, except all "
          f"{except_all(con, model.table, f'big.{model.table}')}", flush=True)
    saved = {t: f"main.{t.replace('.', '__')}_saved" for t in (model.table, load_builds.CONTROL_TABLE,
                                                               load_builds.LOG_TABLE)}
    for table, copy in saved.items():
        con.execute(f"create table {copy} as select * from {table}")
    print(f"  L3: {_night(con, model, raw)} rows", flush=True)
    for r in range(rounds):
        old = _timed(lambda: sqllib.build_by_load(con, model, full_refresh=True))
        for table, copy in saved.items():
            con.execute(f"delete from {table}")
            con.execute(f"insert into {table} select * from {copy}")
        con.execute("checkpoint")
        new = _timed(lambda: sqllib.build_by_load(con, model))
        print(f"  round {r + 1}: old nightly (full rebuild) {old} | new nightly (by load) {new}", flush=True)
    con.execute("create table main.nightly as select * from " + model.table)
    _, rows = sqllib.build_by_load(con, model, full_refresh=True)
    raw_rows = con.execute(f"select count(*) from {raw}").fetchone()[0]
    print(f"  nightly vs a full rebuild: {rows} rows (raw {raw_rows}), except all "
          f"{except_all(con, 'main.nightly', model.table)}", flush=True)
    con.close()
    scratch.unlink(missing_ok=True)
    Path(f"{scratch}.wal").unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--warehouse", type=Path, required=True, help="the warehouse to read (attached read-only)")
    p.add_argument("--scratch", type=Path, required=True, help="a scratch DuckDB file (deleted at the end)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("models", nargs="*", help="staging model names (default: every by-load model but product events)")
    args = p.parse_args(argv)
    models = {m.name: m for m in STAGING_MODELS if m.by_load and m.name != "stg_product__events"}
    for name in args.models or sorted(models):
        run(models[name], args.warehouse, args.scratch, args.rounds)


if __name__ == "__main__":
    main()
