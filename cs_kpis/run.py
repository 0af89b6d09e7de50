"""`python -m cs_kpis.run` (make run): materialize every asset and run every asset check, headless.

The run executes in this process against the persistent Dagster instance in DAGSTER_HOME, so it shows up
later in `make ui`. It selects the implicit global asset job, which holds every asset and check the code
location defines: assets added later are picked up without touching this file. Afterwards it prints what
the warehouse holds and how the checks went. Exit status 1 when the run fails.
"""

import argparse
import os
import socket
import sys
import time
from pathlib import Path

import duckdb
from tabulate import tabulate

from cs_kpis import settings

# schemas and tables that are bookkeeping rather than data
_HIDDEN_SCHEMAS = {"information_schema", "pg_catalog"}

# run tags: who started a run, so that a later invocation can recognise its abandoned runs
LAUNCHED_BY_TAG, PID_TAG, HOST_TAG = "cs_kpis/launched_by", "cs_kpis/pid", "cs_kpis/host"
LAUNCHED_BY = "cs_kpis.run"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def release_abandoned_runs(instance) -> list[str]:
    """Mark failed the earlier runs of this command whose process is gone, and free their pool slots.

    A process killed hard (SIGKILL, OOM, power loss) leaves its run STARTED forever and keeps its
    concurrency-pool slot, and with a pool limit of 1 every later run then waits for it indefinitely
    (measured: Ctrl-C releases the slot, SIGKILL does not). Only runs started by this command on this
    host are touched: a run that `make ui` launched is never ours to judge.
    """
    import dagster as dg

    released = []
    records = instance.get_run_records(
        filters=dg.RunsFilter(
            statuses=[dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED],
            tags={LAUNCHED_BY_TAG: LAUNCHED_BY, HOST_TAG: socket.gethostname()},
        )
    )
    for record in records:
        run = record.dagster_run
        pid = run.tags.get(PID_TAG, "")
        if not pid.isdigit() or int(pid) == os.getpid() or _process_alive(int(pid)):
            continue
        instance.report_run_failed(run, message=f"abandoned: process {pid} is gone (found by cs_kpis.run)")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        released.append(run.run_id)
    return released


def warehouse_tables(path: Path) -> list[tuple[str, str, int]]:
    """(schema, table, rows) for every table and view in the warehouse, opened read-only.

    Hidden: DuckDB's catalog schemas, dlt's bookkeeping tables (``_dlt_*``) and dlt's merge scratch
    datasets (``<dataset>_staging``; our own ``staging`` layer is shown).
    """
    if not Path(path).exists():
        return []
    with duckdb.connect(str(path), read_only=True) as con:
        names = con.execute(
            "select table_schema, table_name from information_schema.tables"
            " where table_catalog = current_database() order by table_schema, table_name"
        ).fetchall()
        rows = []
        for schema, table in names:
            if schema in _HIDDEN_SCHEMAS or schema.endswith("_staging") or table.startswith("_dlt_"):
                continue
            quoted = '"' + schema.replace('"', '""') + '"."' + table.replace('"', '""') + '"'
            (count,) = con.execute(f"select count(*) from {quoted}").fetchall()[0]
            rows.append((schema, table, count))
        return rows


def check_summary(checks) -> list[tuple[str, int, int]]:
    """(check name, passed, failed) per check name: one line per kind of check, not per asset."""
    counts: dict[str, list[int]] = {}
    for check in checks:
        counts.setdefault(check.check_name, [0, 0])[0 if check.passed else 1] += 1
    return [(name, passed, failed) for name, (passed, failed) in sorted(counts.items())]


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m cs_kpis.run", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--log-level",
        default="WARNING",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="Dagster console log level (default WARNING; the full log is in the run's page in `make ui`)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    # before importing dagster, so that DAGSTER_HOME is in place for the instance
    paths = settings.prepare_state()

    import dagster as dg

    from cs_kpis.definitions import defs as load_defs

    started = time.monotonic()
    defs = load_defs()
    job = defs.resolve_implicit_global_asset_job_def()
    print(f"cs_kpis: materializing every asset ({len(defs.resolve_all_asset_keys())}) and check, in-process")
    with dg.DagsterInstance.get() as instance:
        for run_id in release_abandoned_runs(instance):
            print(f"marked abandoned run {run_id} failed and released its pool slots")
        result = job.execute_in_process(
            instance=instance,
            raise_on_error=False,
            run_config={"loggers": {"console": {"config": {"log_level": args.log_level}}}},
            tags={LAUNCHED_BY_TAG: LAUNCHED_BY, PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()},
        )
    elapsed = time.monotonic() - started

    materialized = {event.asset_key for event in result.get_asset_materialization_events()}
    checks = result.get_asset_check_evaluations()
    print()
    print(f"run {result.run_id} {'succeeded' if result.success else 'FAILED'} in {elapsed:.1f} s")
    print(f"assets materialized: {len(materialized)}")
    print(f"warehouse: {paths['CS_KPIS_WAREHOUSE']}")
    print(f"dagster home: {paths['DAGSTER_HOME']} (browse with `make ui`)")

    tables = warehouse_tables(paths["CS_KPIS_WAREHOUSE"])
    if tables:
        print()
        print(tabulate(tables, headers=["schema", "table", "rows"], intfmt=","))
    else:
        print("the warehouse holds no tables yet")

    if checks:
        print()
        print(tabulate(check_summary(checks), headers=["check", "passed", "failed"]))
        for check in sorted(checks, key=lambda c: (c.asset_key.to_user_string(), c.check_name)):
            if not check.passed:
                print(
                    f"  FAILED ({check.severity.value}) {check.asset_key.to_user_string()}:{check.check_name}"
                )
    passed = sum(1 for check in checks if check.passed)
    print(f"checks: {passed} passed, {len(checks) - passed} failed")

    if not result.success:
        failed_steps = ", ".join(sorted(result.get_failed_step_keys())) or "see the run in `make ui`"
        print(f"run failed: {failed_steps}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
