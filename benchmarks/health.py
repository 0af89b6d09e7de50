"""Benchmark of the daily health history at scale: a year of daily indicators and scores, then one night.

    CS_KPIS_HEALTH_HISTORY_DAYS=365 .venv/bin/python -m benchmarks.health \\
        --warehouse bench_out/large/ingest_work/warehouse.duckdb --landing bench_out/large/landing

The warehouse must hold the raw tables (``python -m benchmarks.run ingest --sizes large --keep`` leaves them
there). Each phase runs in its own process, so its peak RSS is its own:

1. ``upstream``: every staging, xref and marts asset the health models read, materialized by Dagster
   exactly as the nightly job does (not part of the health figures; timed per asset for the record).
2. ``history``: ``kpis.account_activity_daily`` (every day, it is sparse), then a full build of
   ``kpis.account_indicators_daily`` and ``kpis.health_scores_daily`` (+ ``health_score_changes``) over the
   configured history: the "year of daily scores" figure.
3. ``nightly``: the state of the previous night is recreated by deleting the last day from the three
   daily outputs; then the nightly work runs as the assets do it: the activity table is rebuilt, the
   indicators are rebuilt from the last built day minus the lookback, and the scores of those days are
   replaced (deltas and explanations read the stored scores before them).
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTPUTS = ("kpis.account_indicators_daily", "kpis.health_scores_daily", "kpis.health_score_changes")


def _rss() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def _upstream(warehouse: Path) -> dict:
    import dagster as dg

    from cs_kpis.definitions import defs

    d = defs()
    wanted = {dg.AssetKey(["kpis", "account_indicators_daily"]), dg.AssetKey(["kpis", "account_activity_daily"])}
    # the calendar is one multi-asset: take all of it
    sel = ((dg.AssetSelection.assets(*wanted).upstream() | dg.AssetSelection.assets(dg.AssetKey(["marts", "dim_month"])))
           - dg.AssetSelection.assets(*wanted)
           - dg.AssetSelection.key_prefixes(["raw"]) - dg.AssetSelection.key_prefixes(["landing"]))
    job = dg.define_asset_job("bench_upstream", selection=sel.without_checks())
    defs2 = dg.Definitions.merge(d, dg.Definitions(jobs=[job]))
    t = time.perf_counter()
    with dg.DagsterInstance.ephemeral() as instance:
        result = defs2.resolve_job_def("bench_upstream").execute_in_process(instance=instance)
        steps = {}
        for rec in instance.all_logs(result.run_id):
            ev = rec.dagster_event
            if ev is None or not ev.step_key:
                continue
            if ev.event_type_value == "STEP_START":
                steps[ev.step_key] = [rec.timestamp, None]
            elif ev.event_type_value == "STEP_SUCCESS" and ev.step_key in steps:
                steps[ev.step_key][1] = rec.timestamp
    per_step = {k: round(b - a, 2) for k, (a, b) in steps.items() if b is not None}
    return {"seconds": round(time.perf_counter() - t, 1), "success": result.success, "assets": len(per_step),
            "steps": dict(sorted(per_step.items(), key=lambda kv: -kv[1])), "peak_rss_mb": _rss()}


def _counts(con) -> dict:
    return {t: con.execute(f"select count(*) from {t}").fetchall()[0][0] for t in OUTPUTS}


def _history(warehouse: Path, memory_limit: str) -> dict:
    import duckdb

    from cs_kpis.defs.health import assets as ha
    from cs_kpis.defs.health import history
    from cs_kpis.lib.sql import build

    activity = next(m for m in ha.models if m.name == "account_activity_daily")
    config = ha.load_current_config()
    out = {"history_days": history.history_days()}
    with duckdb.connect(str(warehouse), config={"memory_limit": memory_limit}) as con:
        t = time.perf_counter()
        build(con, activity)
        out["activity_seconds"] = round(time.perf_counter() - t, 2)
        out["activity_rows"] = con.execute("select count(*) from kpis.account_activity_daily").fetchall()[0][0]
        t = time.perf_counter()
        window = history.plan_window(con, ha.INDICATOR_MODEL.table, ha.INDICATOR_MODEL.code_version, full_refresh=True)
        history.build_indicators(con, ha.INDICATOR_MODEL, window)
        out["indicators_seconds"] = round(time.perf_counter() - t, 2)
        t = time.perf_counter()
        stats = ha.score_history(con, config, full_refresh=True)
        out["scores_seconds"] = round(time.perf_counter() - t, 2)
        out["score_chunks"] = stats["chunks"]
        out["history_start"] = str(window.history_start)
        out["as_of"] = str(window.as_of)
        out["rows"] = _counts(con)
    out["history_seconds"] = round(out["indicators_seconds"] + out["scores_seconds"], 2)
    out["history_seconds_with_activity"] = round(out["history_seconds"] + out["activity_seconds"], 2)
    out["peak_rss_mb"] = _rss()
    return out


def _nightly(warehouse: Path, memory_limit: str) -> dict:
    import duckdb

    from cs_kpis.defs.health import assets as ha
    from cs_kpis.defs.health import history
    from cs_kpis.lib.sql import build

    activity = next(m for m in ha.models if m.name == "account_activity_daily")
    config = ha.load_current_config()
    out = {"lookback_days": history.lookback_days()}
    with duckdb.connect(str(warehouse), config={"memory_limit": memory_limit}) as con:
        as_of = con.execute("select max(day) from marts.dim_day").fetchall()[0][0]
        for table in OUTPUTS:  # the previous night had not seen the as-of day
            con.execute(f"delete from {table} where day >= ?", [as_of])
        con.execute("checkpoint")
        t = time.perf_counter()
        build(con, activity)
        out["activity_seconds"] = round(time.perf_counter() - t, 2)
        t = time.perf_counter()
        window = history.plan_window(con, ha.INDICATOR_MODEL.table, ha.INDICATOR_MODEL.code_version)
        stats = history.build_indicators(con, ha.INDICATOR_MODEL, window)
        out["indicators_seconds"] = round(time.perf_counter() - t, 2)
        out["indicators"] = {k: str(v) for k, v in stats.items()}
        t = time.perf_counter()
        scored = ha.score_history(con, config)
        out["scores_seconds"] = round(time.perf_counter() - t, 2)
        out["scores"] = {k: str(v) for k, v in scored.items()}
        out["rows"] = _counts(con)
    out["nightly_seconds"] = round(out["indicators_seconds"] + out["scores_seconds"], 2)
    out["nightly_seconds_with_activity"] = round(out["nightly_seconds"] + out["activity_seconds"], 2)
    out["peak_rss_mb"] = _rss()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.health")
    p.add_argument("--warehouse", type=Path, required=True)
    p.add_argument("--landing", type=Path, required=True, help="the landing folder (product configuration)")
    p.add_argument("--memory-limit", default="12GB", help="DuckDB memory_limit for the health phases")
    p.add_argument("--phase", choices=["all", "upstream", "history", "nightly"], default="all")
    p.add_argument("--skip-upstream", action="store_true", help="the staging and marts tables are already built")
    args = p.parse_args(argv)
    os.environ["CS_KPIS_WAREHOUSE"] = str(args.warehouse.resolve())
    os.environ["CS_KPIS_LANDING_DIR"] = str(args.landing.resolve())
    if args.phase != "all":
        fn = {"upstream": lambda: _upstream(args.warehouse),
              "history": lambda: _history(args.warehouse, args.memory_limit),
              "nightly": lambda: _nightly(args.warehouse, args.memory_limit)}[args.phase]
        print(json.dumps(fn()))
        return 0
    out = {"history_days": os.environ.get("CS_KPIS_HEALTH_HISTORY_DAYS", "all"), "load_average": os.getloadavg()}
    phases = ["history", "nightly"] if args.skip_upstream else ["upstream", "history", "nightly"]
    for phase in phases:
        res = subprocess.run([sys.executable, "-m", "benchmarks.health", "--warehouse", str(args.warehouse),
                              "--landing", str(args.landing), "--memory-limit", args.memory_limit, "--phase", phase],
                             check=False, capture_output=True, text=True, cwd=ROOT)
        if res.returncode:
            raise SystemExit(f"{phase} failed:\n{res.stderr[-4000:]}")
        out[phase] = json.loads(res.stdout.strip().splitlines()[-1])
        print(phase, json.dumps(out[phase]), flush=True)
    h, n = out["history"], out["nightly"]
    out["nightly_share"] = round(n["nightly_seconds"] / h["history_seconds"], 3)
    out["nightly_share_with_activity"] = round(n["nightly_seconds_with_activity"] / h["history_seconds_with_activity"], 3)
    out["load_average_after"] = os.getloadavg()
    (args.warehouse.parent / "health_bench.json").write_text(json.dumps(out, indent=1, default=str))
    print(json.dumps({k: out[k] for k in ("nightly_share", "nightly_share_with_activity")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
