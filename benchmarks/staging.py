"""Staging on the nightly (issue 18): seconds per staging model when a new extract day arrives, and proof that
the incremental staging tables equal a full rebuild.

    .venv/bin/python -m benchmarks.staging --landing <a company with increments> --work <dir> [--days 3]

The landing must have several extract days (``python -m cs_kpis.simulator --size demo --increments 2``). Day
by day, a view of it (``benchmarks.full.landing_view``: hard links, nothing copied) gains the next extract day
and one Dagster run, in a fresh process, materializes the groups landing, raw, staging, marts and kpis with
their checks, as the nightly does (no full refresh). Each run's staging steps are timed from its STEP_START and
STEP_SUCCESS events. With ``--compare``, after the last day the warehouse is copied, its staging, marts and kpis
schemas dropped (so everything builds in full, as on a first run), rebuilt, and every staging, marts and kpis
table compared with the nightly-built one (``except all`` both ways). Work folder: ``--work``; nothing else is
written, the landing is only read.
"""

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.full import landing_view, run_env

ROOT = Path(__file__).resolve().parents[1]
GROUPS = ("landing", "raw", "staging", "marts", "kpis")
COMPARED = ("staging", "marts", "kpis")

_CHILD = """
import json, sys, time
import dagster as dg
from benchmarks.full import run_step_spans
from cs_kpis.definitions import defs as load_defs
groups = sys.argv[1].split(",")
defs = load_defs()
graph = defs.resolve_asset_graph()
keys = [k for k in graph.get_all_asset_keys() if graph.get(k).group_name in groups]
started = time.perf_counter()
with dg.DagsterInstance.get() as instance:
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        asset_selection=keys, instance=instance, raise_on_error=False)
    wall = time.perf_counter() - started
    steps = {k: round(end - start, 2) for k, (start, end, _) in run_step_spans(instance, result.run_id).items()}
    modes = {}
    for ev in result.all_events:
        if ev.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
            meta = ev.event_specific_data.materialization.metadata
            if "build_mode" in meta:
                modes[ev.step_key] = meta["build_mode"].value + ": " + meta["build_reason"].value
failed = [e.message for e in result.all_events if e.is_step_failure]
print(json.dumps({"success": result.success, "failed": failed, "wall_seconds": round(wall, 1),
                  "steps": steps, "modes": modes}))
"""


def run(env: dict[str, str], groups=GROUPS) -> dict:
    Path(env["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    res = subprocess.run([sys.executable, "-c", _CHILD, ",".join(groups)], env=env, cwd=ROOT, check=False,
                         capture_output=True, text=True)
    if res.returncode:
        raise SystemExit(f"the run failed:\n{res.stderr[-4000:]}")
    out = json.loads(res.stdout.strip().splitlines()[-1])
    if not out["success"]:
        raise SystemExit(f"steps failed: {out['failed']}")
    return out


def staging_summary(out: dict) -> dict:
    steps = {k: v for k, v in out["steps"].items() if k.startswith("staging__")}
    checks = {k: v for k, v in steps.items() if "_check" in k or "unique" in k or "not_null" in k}
    models = {k: v for k, v in steps.items() if k not in checks}
    return {"staging_seconds": round(sum(steps.values()), 2),
            "staging_model_seconds": round(sum(models.values()), 2),
            "top_models": sorted(models.items(), key=lambda kv: -kv[1])[:6],
            "modes": out["modes"], "wall_seconds": out["wall_seconds"]}


def tables(con, schema: str) -> list[str]:
    return [t for (t,) in con.execute(
        "select table_name from information_schema.tables where table_schema = ? and table_type = 'BASE TABLE' "
        "and table_name not like '\\_%' escape '\\' order by 1", [schema]).fetchall()]


def _significant(column: str, digits: int = 12) -> str:
    """A DOUBLE rounded to ``digits`` significant digits: the last bits of a sum or mean depend on the order
    DuckDB's parallel aggregation adds the values in (measured: clv_6m 951694.023799395 vs ...394)."""
    c = f'"{column}"'
    return (f"case when {c} is null or {c} = 0 or isnan({c}) or isinf({c}) then {c} "
            f"else round({c}, {digits} - 1 - cast(floor(log10(abs({c}))) as integer)) end")


def compare(nightly: Path, full: Path, exact: bool = False) -> dict:
    """{table: (rows, rows only in the nightly build, rows only in the full build)} (``except all``; doubles
    to 12 significant digits unless ``exact``)."""
    import duckdb

    out = {}
    with duckdb.connect(str(nightly), read_only=True) as con:
        con.execute("set enable_progress_bar = false")
        con.execute(f"attach '{full}' as full_build (read_only)")
        for schema in COMPARED:
            for table in tables(con, schema):
                cols = con.execute(
                    "select column_name, data_type from information_schema.columns where table_catalog = "
                    "current_database() and table_schema = ? and table_name = ? order by ordinal_position",
                    [schema, table]).fetchall()
                select = ", ".join(_significant(c) if d == "DOUBLE" and not exact else f'"{c}"' for c, d in cols)
                a, b = f"{schema}.{table}", f"full_build.{schema}.{table}"
                only_a = con.execute(f"select count(*) from (select {select} from {a} except all "
                                     f"select {select} from {b})").fetchone()[0]
                only_b = con.execute(f"select count(*) from (select {select} from {b} except all "
                                     f"select {select} from {a})").fetchone()[0]
                rows = con.execute(f"select count(*) from {a}").fetchone()[0]
                out[f"{schema}.{table}"] = (rows, only_a, only_b)
    return out


_SYNTHETIC = """
import json, resource, sys, time, duckdb
from cs_kpis.defs.staging.assets import STAGING_MODELS
from cs_kpis.lib import sql as sqllib
source, target, copies, nightly_rows, memory = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
model = next(m for m in STAGING_MODELS if m.name == "stg_product__events")
con = duckdb.connect(target, config={"memory_limit": memory})
con.execute("set TimeZone = 'UTC'")
con.execute("set enable_progress_bar = false")
con.execute(f"attach '{source}' as demo (read_only)")
con.execute("create schema raw")
t = time.perf_counter()
# the demo's events `copies` times, each copy a load of its own with its own messageIds
con.execute(f"create table raw.product__events as select * exclude (k) replace (message_id || '-' || k as message_id, "
            f"lpad(k::varchar, 4, '0') || '.synthetic' as _dlt_load_id) "
            f"from demo.raw.product__events, (select range as k from range({copies}))")
out = {"raw_rows": con.execute("select count(*) from raw.product__events").fetchall()[0][0],
       "prepare_seconds": round(time.perf_counter() - t, 1)}
def timed(label, f):
    t = time.perf_counter()
    result = f()
    out[label] = round(time.perf_counter() - t, 2)
    print(label, out[label], file=sys.stderr, flush=True)
    return result
plan, rows = timed("full_build_seconds", lambda: sqllib.build_by_load(con, model, full_refresh=True))
out["full_build_rows"] = rows
from cs_kpis.lib import incremental_loads
from cs_kpis.lib.checks import run_rule
def grain_check():
    # what the blocking unique check of staging/stg_product__events runs (lib/checks.py, unique_key_check_by_load)
    sql, params, loads = incremental_loads.unique_violations(con, model.table, "raw.product__events", model.grain)
    count, _ = run_rule(con, sql, params)
    if count == 0:
        incremental_loads.mark_checked(con, model.table, loads)
    return count, "every key" if not params else f"the keys of {len(loads)} new load(s)"
out["unique_check_after_full_build"] = timed("unique_check_after_full_build_seconds", grain_check)
plan, _ = timed("nightly_nothing_new_seconds", lambda: sqllib.build_by_load(con, model))
out["nightly_nothing_new"] = plan.mode + ": " + plan.reason
con.execute(f"insert into raw.product__events select * replace (message_id || '-nightly' as message_id, "
            f"'9999.nightly' as _dlt_load_id) from demo.raw.product__events limit {nightly_rows}")
plan, rows = timed("nightly_one_load_seconds", lambda: sqllib.build_by_load(con, model))
out["nightly_one_load"] = plan.mode + ": " + plan.reason + f" ({sum(plan.loads.values())} rows)"
out["unique_check_nightly"] = timed("unique_check_nightly_seconds", grain_check)
timed("plan_group_by_seconds", lambda: con.execute(
    "select _dlt_load_id, count(*) from raw.product__events group by 1").fetchall())
timed("unique_check_every_row_seconds", lambda: con.execute(
    "select count(*) from (select message_id from staging.stg_product__events group by message_id "
    "having count(*) > 1)").fetchall())
# equal as multisets of rows: the count and the sum of every row's hash (an `except all` of 61 M rows spilled
# more than 17 GB to disk here and was stopped)
cols = [c for (c,) in con.execute("select column_name from information_schema.columns where table_schema = "
                                  "'staging' and table_name = 'stg_product__events' order by ordinal_position").fetchall()]
checksum = (f"select count(*), sum(hash({', '.join(chr(34) + c + chr(34) for c in cols)})::hugeint)::varchar "
            "from staging.stg_product__events")
out["checksum_nightly"] = list(timed("checksum_seconds", lambda: con.execute(checksum).fetchall()[0]))
timed("full_rebuild_after_nightly_seconds", lambda: sqllib.build_by_load(con, model, full_refresh=True))
out["checksum_full_rebuild"] = list(con.execute(checksum).fetchall()[0])
out["equal"] = out["checksum_nightly"] == out["checksum_full_rebuild"]
out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
print(json.dumps(out))
"""
"""stg_product__events at the large company's volume: the demo's raw events repeated ``copies`` times (each a
load with its own messageIds), built in full, then a nightly load of ``nightly_rows`` events appended"""


def synthetic(source: Path, work: Path, copies: int, nightly_rows: int, memory: str) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    target = work / "synthetic.duckdb"
    target.unlink(missing_ok=True)
    try:
        res = subprocess.run([sys.executable, "-c", _SYNTHETIC, str(source), str(target), str(copies),
                              str(nightly_rows), memory], cwd=ROOT, check=False, capture_output=True, text=True)
        if res.returncode:
            raise SystemExit(f"the synthetic run failed:\n{res.stderr[-4000:]}")
        return json.loads(res.stdout.strip().splitlines()[-1])
    finally:
        target.unlink(missing_ok=True)
        Path(str(target) + ".wal").unlink(missing_ok=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--landing", type=Path, required=True)
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--days", type=int, default=0, help="extract days to run, one run each (default: all)")
    p.add_argument("--compare", action="store_true", help="after the last day, compare with a full rebuild")
    p.add_argument("--memory-limit", default=None)
    p.add_argument("--synthetic-from", type=Path, default=None,
                   help="a built warehouse: time stg_product__events over its raw events repeated --copies times "
                        "instead of the runs above (the large company's volume without loading it)")
    p.add_argument("--copies", type=int, default=30)
    p.add_argument("--nightly-rows", type=int, default=33_000)
    args = p.parse_args()
    if args.synthetic_from is not None:
        print(json.dumps(synthetic(args.synthetic_from.resolve(), args.work.resolve(), args.copies,
                                   args.nightly_rows, args.memory_limit or "8GB")), flush=True)
        return
    landing, work = args.landing.resolve(), args.work.resolve()
    if work.exists():
        shutil.rmtree(work)
    view = work / "landing"
    every = sorted(json.loads((landing / "_manifest.json").read_text())["extract_days"])
    days = args.days or len(every)
    env = run_env(work, view, work / "ground_truth", "demo", 42, args.memory_limit)
    results = []
    for n in range(1, days + 1):
        kept = landing_view(landing, view, n)
        out = run(env)
        results.append({"extract_day": kept[-1], **staging_summary(out)})
        print(json.dumps(results[-1]), flush=True)
    if args.compare:
        warehouse = Path(env["CS_KPIS_WAREHOUSE"])
        full = work / "full_build"
        full.mkdir()
        copy = full / "cs_kpis.duckdb"
        shutil.copy(warehouse, copy)
        import duckdb

        with duckdb.connect(str(copy)) as con:
            for schema in COMPARED:
                con.execute(f"drop schema if exists {schema} cascade")
        env_full = {**env, "CS_KPIS_WAREHOUSE": str(copy), "DAGSTER_HOME": str(full / "dagster_home")}
        t = time.perf_counter()
        out = run(env_full, ("staging", "marts", "kpis"))
        diffs = compare(warehouse, copy)
        differing = {k: v for k, v in diffs.items() if v[1] or v[2]}
        exact = {k: v for k, v in compare(warehouse, copy, exact=True).items() if v[1] or v[2]}
        print(json.dumps({"full_rebuild": staging_summary(out), "seconds": round(time.perf_counter() - t, 1),
                          "tables_compared": len(diffs), "differing": differing,
                          "differing_in_the_last_bits_of_doubles_only": exact,
                          "rows": {k: v[0] for k, v in diffs.items() if k.startswith("staging.")}}), flush=True)


if __name__ == "__main__":
    main()
