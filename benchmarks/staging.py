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
    starts, steps = {}, {}
    for rec in instance.all_logs(result.run_id):
        ev = rec.dagster_event
        if ev is None or not ev.step_key:
            continue
        if ev.event_type == dg.DagsterEventType.STEP_START:
            starts[ev.step_key] = rec.timestamp
        elif ev.event_type in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
            steps[ev.step_key] = round(rec.timestamp - starts.get(ev.step_key, rec.timestamp), 2)
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


def compare(nightly: Path, full: Path) -> dict:
    """{table: (rows, rows only in the nightly build, rows only in the full build)} (``except all``)."""
    import duckdb

    out = {}
    with duckdb.connect(str(nightly), read_only=True) as con:
        con.execute(f"attach '{full}' as full_build (read_only)")
        for schema in COMPARED:
            for table in tables(con, schema):
                cols = [c for (c,) in con.execute(
                    "select column_name from information_schema.columns where table_catalog = current_database() "
                    "and table_schema = ? and table_name = ? order by ordinal_position", [schema, table]).fetchall()]
                select = ", ".join(f'"{c}"' for c in cols)
                a, b = f"{schema}.{table}", f"full_build.{schema}.{table}"
                only_a = con.execute(f"select count(*) from (select {select} from {a} except all "
                                     f"select {select} from {b})").fetchone()[0]
                only_b = con.execute(f"select count(*) from (select {select} from {b} except all "
                                     f"select {select} from {a})").fetchone()[0]
                rows = con.execute(f"select count(*) from {a}").fetchone()[0]
                out[f"{schema}.{table}"] = (rows, only_a, only_b)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--landing", type=Path, required=True)
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--days", type=int, default=0, help="extract days to run, one run each (default: all)")
    p.add_argument("--compare", action="store_true", help="after the last day, compare with a full rebuild")
    p.add_argument("--memory-limit", default=None)
    args = p.parse_args()
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
        print(json.dumps({"full_rebuild": staging_summary(out), "seconds": round(time.perf_counter() - t, 1),
                          "tables_compared": len(diffs), "differing": differing,
                          "rows": {k: v[0] for k, v in diffs.items() if k.startswith("staging.")}}), flush=True)


if __name__ == "__main__":
    main()
