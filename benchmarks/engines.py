"""DuckDB vs local Spark Connect: the same company built on each engine, seconds per layer.

    python -m benchmarks.engines --landing data/landing --size tiny --engines duckdb spark [--out bench_out]

Each engine builds raw -> staging -> marts -> kpis -> alerts from the same landing folder in its own fresh state
folder (one Dagster run in this process, as ``python -m cs_kpis.run --select`` does). Printed per engine: the
wall-clock seconds of every layer's steps (asset steps and their checks), summed; Spark's session start-up
is measured once, before its run, and reported apart. One JSON line per engine.

    python -m benchmarks.engines --compare <duckdb state folder> <spark state folder>

compares the two builds' revenue tables row for row (Spark's own Parquet files against DuckDB's tables).
"""

import argparse
import json
import os
import time
from collections import defaultdict
from pathlib import Path

LAYERS = ("raw", "staging", "marts", "kpis", "alerts")


def layer_of(step_key: str) -> str:
    head = step_key.split("__", 1)[0]
    return "raw" if head.startswith("raw") else head


def build(engine: str, landing: Path, state: Path, size: str) -> dict:
    import dagster as dg

    env = {"CS_KPIS_STATE_DIR": state, "CS_KPIS_WAREHOUSE": state / "warehouse" / "cs_kpis.duckdb",
           "CS_KPIS_DLT_DIR": state / "dlt", "DAGSTER_HOME": state / "dagster_home", "CS_KPIS_LANDING_DIR": landing,
           "CS_KPIS_LAKE_DIR": state / "lake", "CS_KPIS_GROUND_TRUTH_DIR": state / "ground_truth"}
    for name, value in env.items():
        os.environ[name] = str(value)
    os.environ.update({"CS_KPIS_ENGINE": engine, "CS_KPIS_DEMO_SIZE": size, "RUNTIME__DLTHUB_TELEMETRY": "false"})
    (state / "warehouse").mkdir(parents=True, exist_ok=True)
    startup = None
    if engine == "spark":
        from cs_kpis.lib.engine import ensure_lake, resolve, spark_session

        t0 = time.perf_counter()
        spark_session(resolve().spark_remote, ensure_lake(state / "lake")).sql("select 1").collect()
        startup = round(time.perf_counter() - t0, 1)
    from cs_kpis.definitions import defs as load_defs

    defs = load_defs()
    keys = [k for k in defs.resolve_all_asset_keys() if k.path[0] in LAYERS]
    instance = dg.DagsterInstance.ephemeral()
    t0 = time.perf_counter()
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        asset_selection=keys, instance=instance, raise_on_error=False)
    total = time.perf_counter() - t0
    started, seconds = {}, defaultdict(float)
    for record in instance.all_logs(result.run_id):  # event log entries carry the timestamps
        event = record.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.event_type_value == "STEP_START":
            started[event.step_key] = record.timestamp
        elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE") and event.step_key in started:
            seconds[layer_of(event.step_key)] += record.timestamp - started.pop(event.step_key)
    failed = sorted({e.step_key for e in result.all_events if e.is_step_failure})
    return {"engine": engine, "size": size, "success": result.success, "failed_steps": failed,
            "spark_startup_s": startup, "run_s": round(total, 1),
            "layers_s": {layer: round(seconds.get(layer, 0.0), 1) for layer in LAYERS}}


COMPARED = (("kpis", "revenue_monthly"), ("kpis", "revenue_monthly_parent"), ("marts", "mrr_monthly"),
            ("marts", "subscription_states"))


def compare(duckdb_state: Path, spark_state: Path) -> dict:
    """The Spark build's own Parquet files (``<state>/lake``) against the DuckDB build's tables, row for row
    (the portability tests' normalisation); kpis.health_scores_daily (DuckDB in both modes) mirror to table."""
    import duckdb

    from cs_kpis_tests.portability.compare import differences

    out = {}
    with duckdb.connect(str(duckdb_state / "warehouse" / "cs_kpis.duckdb"), read_only=True) as duck, \
            duckdb.connect(str(spark_state / "warehouse" / "cs_kpis.duckdb"), read_only=True) as mirror:
        for schema, table in COMPARED:
            want = duck.sql(f"select * from {schema}.{table}").to_arrow_table()
            got = duck.sql(f"select * from read_parquet('{spark_state}/lake/{schema}/{table}/*.parquet')").to_arrow_table()
            out[f"{schema}.{table}"] = {"rows": want.num_rows, "differences": differences(want, got)}
        sql = "select * from kpis.health_scores_daily"
        want, got = duck.sql(sql).to_arrow_table(), mirror.sql(sql).to_arrow_table()
        out["kpis.health_scores_daily"] = {"rows": want.num_rows, "differences": differences(want, got)}
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.engines", description=__doc__.splitlines()[0])
    parser.add_argument("--landing", type=Path, help="a generated company (landing folder)")
    parser.add_argument("--size", default="tiny", help="the demo size the landing folder was generated with")
    parser.add_argument("--engines", nargs="+", default=["duckdb", "spark"], choices=["duckdb", "spark"])
    parser.add_argument("--out", type=Path, default=Path("bench_out") / "engines")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("DUCKDB_STATE", "SPARK_STATE"),
                        help="compare two finished builds (their state folders) instead of building")
    args = parser.parse_args(argv)
    if args.compare:
        print(json.dumps(compare(*(p.resolve() for p in args.compare))))
        return 0
    if args.landing is None:
        parser.error("--landing is required to build")
    for engine in args.engines:
        state = (args.out / f"{args.size}-{engine}-{int(time.time())}").resolve()
        print(json.dumps(build(engine, args.landing.resolve(), state, args.size)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
