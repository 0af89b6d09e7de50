"""`python -m cs_kpis.run` (make run): materialize assets and run their checks, headless.

The run executes in this process against the persistent Dagster instance in DAGSTER_HOME, so it shows up
later in `make ui`. It selects from the implicit global asset job, which holds every asset and check the
code location defines: assets added later are picked up without touching this file. By default it builds
everything; `--select` takes Dagster's asset selection syntax, and `--full-refresh`, `--period` and
`--cadences` set the same run config as the UI's Launchpad. Afterwards it prints one line per failed step
or check (reason and runbook section), then the reports written, what the warehouse holds and how the
checks went.

Exit status: 0 when every step succeeded and no ERROR-severity check failed (WARN checks may fail);
1 when a step failed or an ERROR check failed, blocking or not; 2 for arguments that cannot be applied.
"""

import argparse
import logging
import os
import socket
import sys
import time
import warnings
from collections.abc import Mapping
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


def release_slots_of_finished_runs(instance) -> list[str]:
    """Free the pool slots (and pending steps) still held by runs that have finished, or that the run storage
    does not know, whoever launched them.

    A finished run never uses a slot again, so one it still holds is a leftover, and with a pool limit of 1 it
    would make every later run wait forever. With the event log (which holds the slots) set to SQLite's
    ``synchronous: NORMAL`` (cs_kpis/lib/event_log.py; the default is FULL), a power loss can lose a step's release
    of its slot while the run storage (``runs.db``, synced at every commit) kept the run's success. Dagster's daemon frees
    such slots only when ``run_monitoring.free_slots_after_run_end_seconds`` is set; this command runs without it.
    """
    storage = instance.event_log_storage
    holders = set(storage.get_concurrency_run_ids())
    for key in storage.get_concurrency_keys():
        holders.update(slot.run_id for slot in storage.get_concurrency_info(key).claimed_slots)
    freed = []
    for run_id in sorted(holders):
        run = instance.get_run_by_id(run_id)
        if run is None or run.is_finished:
            storage.free_concurrency_slots_for_run(run_id)
            freed.append(run_id)
    return freed


def warehouse_tables(path: Path, view_rows: Mapping[tuple[str, str], int] | None = None
                     ) -> list[tuple[str, str, int]]:
    """(schema, table, rows) for every table and view in the warehouse, opened read-only.

    Hidden: DuckDB's catalog schemas and dlt's merge scratch datasets (``<dataset>_staging``; our own
    ``staging`` layer is shown). Internal tables (``_dlt_*``, ``_quarantine``, ...) are listed too:
    ``is_internal`` tells them apart for the summary's footnote.

    A view in ``view_rows`` (its rows as this run's materialization counted them, see
    :func:`materialized_row_counts`) is not counted again: counting a view runs its query
    (``marts.mrr_daily``, one row per account and day, took 2.8 s on the large company). Tables are
    always counted (cheap, and exact whatever wrote them).
    """
    if not Path(path).exists():
        return []
    view_rows = view_rows or {}
    with duckdb.connect(str(path), read_only=True) as con:
        names = con.execute(
            "select table_schema, table_name, table_type from information_schema.tables"
            " where table_catalog = current_database() order by table_schema, table_name"
        ).fetchall()
        rows = []
        for schema, table, kind in names:
            if schema in _HIDDEN_SCHEMAS or schema.endswith("_staging"):
                continue
            if kind == "VIEW" and (schema, table) in view_rows:
                rows.append((schema, table, view_rows[(schema, table)]))
                continue
            quoted = '"' + schema.replace('"', '""') + '"."' + table.replace('"', '""') + '"'
            (count,) = con.execute(f"select count(*) from {quoted}").fetchall()[0]
            rows.append((schema, table, count))
        return rows


def materialized_row_counts(events) -> dict[tuple[str, str], int]:
    """(schema, table) -> rows of the tables this run materialized, from their materializations'
    ``dagster/table_name`` and ``dagster/row_count`` (those whose metadata carries both: the SQL models, raw and
    the alerts do; a landing asset has no table name)."""
    counts = {}
    for event in events:
        metadata = event.materialization.metadata
        name, rows = metadata.get("dagster/table_name"), metadata.get("dagster/row_count")
        if name is None or rows is None:
            continue
        parts = str(name.value).split(".")
        if len(parts) >= 2:
            counts[(parts[-2], parts[-1])] = int(rows.value)
    return counts


def is_internal(table: str) -> bool:
    """Bookkeeping rather than data: dlt's ``_dlt_*`` tables and the project's ``_``-prefixed tables
    (``raw._quarantine``, ``raw._row_accounting``, ``kpis._build_window``, ...)."""
    return table.startswith("_")


def check_summary(checks) -> list[tuple[str, int, int]]:
    """(check name, passed, failed) per check name: one line per kind of check, not per asset."""
    counts: dict[str, list[int]] = {}
    for check in checks:
        counts.setdefault(check.check_name, [0, 0])[0 if check.passed else 1] += 1
    return [(name, passed, failed) for name, (passed, failed) in sorted(counts.items())]


# ------------------------------------------------------------------------------------------ arguments

CADENCES = ("week", "month", "quarter")
"""the report's cadences (cs_kpis.defs.reports.render.CADENCES; a test keeps the two equal)"""


def _cadences(text: str) -> list[str]:
    chosen = [c.strip() for c in text.split(",") if c.strip()]
    unknown = [c for c in chosen if c not in CADENCES]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give one or more of {', '.join(CADENCES)}, separated by commas")
    return list(dict.fromkeys(chosen))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m cs_kpis.run", formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__.replace("`python -m cs_kpis.run` (make run): ", "").strip(),
        epilog="examples:\n"
               "  python -m cs_kpis.run --select 'key:kpis/*'\n"
               "  python -m cs_kpis.run --select 'group:marts+'\n"
               "  python -m cs_kpis.run --select '+key:kpis/health_scores_daily' --full-refresh\n"
               "  python -m cs_kpis.run --select 'key:reports/kpi_report' --period 2026-Q3 --cadences quarter\n"
               "See README.md, 'The run command'.")
    parser.add_argument(
        "--select", default="*", metavar="SELECTION",
        help="assets to materialize, in Dagster's asset selection syntax, as in the UI's search box: "
             "'key:kpis/*', 'group:marts+' (the group and everything downstream), '+key:marts/mrr_monthly' "
             "(it and everything upstream), 'kind:dlt', 'tag:x', combined with and/or/not. The checks of "
             "the selected assets run with them. Default '*': everything")
    parser.add_argument(
        "--full-refresh", action="store_true",
        help="rebuild the health layer's whole daily history and the alerts instead of the nightly window, "
             "and the product events' staging table from every raw load: sets full_refresh: true in the run "
             "config of every selected asset that has it (kpis/account_activity_daily, "
             "kpis/account_indicators_daily, kpis/health_scores_daily, the alerts step, "
             "staging/stg_product__events)")
    parser.add_argument(
        "--period", default=None, metavar="PERIOD",
        help="the period reports/kpi_report covers (its run config `period`): '' = the latest complete "
             "period of each cadence (default), 'current' = the period holding the data's as-of day, a day "
             "YYYY-MM-DD = the period containing it, or a label of the one cadence chosen (2026-W42, 2026-10, "
             "2026-Q3). A chosen period is written to its own file (kpi_report_quarterly_2026-Q3.html)")
    parser.add_argument(
        "--cadences", default=None, type=_cadences, metavar="LIST",
        help=f"which reports reports/kpi_report writes (its run config `cadences`): one or more of "
             f"{','.join(CADENCES)}, comma-separated (default: all three)")
    parser.add_argument(
        "--log-level",
        default="WARNING",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="Dagster console log level (default WARNING; the full log is in the run's page in `make ui`). "
             "At WARNING and ERROR the messages this command summarises itself (step failures, steps not "
             "executed because an upstream step failed) are left out of the console log",
    )
    return parser.parse_args(argv)


def _op_config_fields(job) -> dict[str, set[str]]:
    """op name -> the names of its run-config fields, for every op (asset step) of ``job``."""
    fields = {}
    for node in job.nodes:
        config_field = node.definition.config_field
        if config_field is not None:
            fields[node.name] = set(getattr(config_field.config_type, "fields", {}) or {})
    return fields


class UsageError(ValueError):
    """An argument that cannot be applied to this selection: printed, exit status 2."""


def run_config_for(job, args: argparse.Namespace) -> dict:
    """The run config the options ask for, on the ops of ``job`` (already narrowed to the selection).

    The same keys as the UI's Launchpad: ``ops: {<op>: {config: {full_refresh: true}}}`` for every op
    that has ``full_refresh``, ``ops: {reports__kpi_report: {config: {period: ..., cadences: [...]}}}``.
    An option that no selected asset takes is an error, not silently ignored.
    """
    fields = _op_config_fields(job)
    ops: dict[str, dict] = {}

    def put(option: str, name: str, value) -> None:
        targets = [op for op, names in fields.items() if name in names]
        if not targets:
            raise UsageError(f"{option}: none of the selected assets takes `{name}` in its run config; "
                             "select the assets it applies to (see --help)")
        for op in targets:
            ops.setdefault(op, {"config": {}})["config"][name] = value

    if args.full_refresh:
        put("--full-refresh", "full_refresh", True)
    if args.period is not None:
        put("--period", "period", args.period)
    if args.cadences is not None:
        put("--cadences", "cadences", args.cadences)
    config: dict = {"loggers": {"console": {"config": {"log_level": args.log_level}}}}
    if ops:
        config["ops"] = ops
    return config


def select_assets(defs, selection: str) -> list:
    """The asset keys ``selection`` (Dagster's selection syntax) names, sorted; UsageError when none."""
    import dagster as dg

    if selection.strip() in ("", "*"):
        return sorted(defs.resolve_implicit_global_asset_job_def().asset_layer.executable_asset_keys)
    try:
        with warnings.catch_warnings():
            # dagster's own parser calls AssetSelection.groups (beta) for `group:`; the syntax is not beta
            warnings.simplefilter("ignore", dg.BetaWarning)
            keys = dg.AssetSelection.from_string(selection).resolve(defs.resolve_asset_graph())
    except Exception as e:  # noqa: BLE001 - dagster raises several kinds; all mean "bad selection"
        raise UsageError(f"--select {selection!r}: {e}") from None
    if not keys:
        raise UsageError(f"--select {selection!r} matches no asset. Asset keys look like kpis/revenue_monthly "
                         "(try 'key:kpis/*'); groups are landing, raw, staging, marts, kpis, alerts, reports")
    # a step that builds several tables at once (kpis/health_scores_daily with kpis/health_score_changes)
    # cannot build only some of them: take the whole step, as the UI's "materialize selected" would need to
    graph = defs.resolve_asset_graph()
    whole = set(keys)
    for key in keys:
        assets_def = graph.assets_def_for_key(key)
        if not assets_def.can_subset:
            whole |= set(assets_def.keys)
    return sorted(whole)


# ------------------------------------------------------------------------------------------ console log

class _SummarisedElsewhere(logging.Filter):
    """Drops the console messages that the summary replaces with one line each: a step's failure (its
    stack trace), the run's failure, and "Dependencies for step X failed ... Not executing." for every
    step downstream of a failure. Everything else (asset warnings, for example) still prints."""

    def filter(self, record: logging.LogRecord) -> bool:
        import dagster as dg

        event = getattr(record, "dagster_event", None)
        if event is not None and event.event_type in (dg.DagsterEventType.STEP_FAILURE,
                                                      dg.DagsterEventType.RUN_FAILURE):
            return False
        return "Not executing." not in record.getMessage()


def _console_logger():
    """Dagster's colored console logger, quiet about what the summary says itself (at WARNING/ERROR)."""
    import dagster as dg
    from dagster import colored_console_logger

    @dg.logger(colored_console_logger.config_schema, description="cs_kpis.run's console logger")
    def console(init_context):
        log = colored_console_logger.logger_fn(init_context)
        if log.level >= logging.WARNING:
            log.addFilter(_SummarisedElsewhere())
        return log

    return console


# ---------------------------------------------------------------------------------------------- outcome

RUNBOOK = "cs_kpis/defs/automation/README.md"


def runbook_section(asset_key) -> str:
    """The RUNBOOK section for an asset: its layer (the first part of its key) when the runbook has one."""
    from cs_kpis.defs.automation.notify import RUNBOOK_HINTS

    layer = asset_key.path[0] if asset_key is not None else ""
    return f"runbook §{layer}, {RUNBOOK}" if layer in RUNBOOK_HINTS else f"runbook: {RUNBOOK}"


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def error_reason(error) -> str:
    """The innermost cause of a step's error (the user's exception, not Dagster's wrapper), one line."""
    while getattr(error, "cause", None) is not None:
        error = error.cause
    return _one_line(error.message if error is not None else "no error recorded")


def check_reason(check) -> str:
    """Why a check failed: its description, else its violation count, else its metadata keys."""
    if check.description:
        return _one_line(check.description)
    metadata = check.metadata or {}
    if "violations" in metadata:
        return f"{metadata['violations'].value} violations"
    return _one_line(", ".join(f"{k}: {getattr(v, 'value', v)}" for k, v in list(metadata.items())[:4])
                     or "no details recorded; see the check in `make ui`")


def failure_lines(result, defs) -> list[str]:
    """One line per failed step and per failed check, with its reason and runbook section; then one line
    for the steps that did not run because something upstream failed."""
    import dagster as dg

    # a blocking check that fails also fails its step: its check line says it all. A step of several checks
    # (cs_kpis.lib.checks.batch_checks) that failed otherwise, e.g. one check's SQL error, keeps its line
    check_steps = {e.step_key for e in result.all_events
                   if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION and not e.event_specific_data.passed}
    lines = []
    for event in result.get_step_failure_events():
        error = event.step_failure_data.error
        if event.step_key in check_steps and error is not None and error.cls_name == "DagsterAssetCheckFailedError":
            continue
        keys = _step_asset_keys(result, event)
        what = ", ".join(k.to_user_string() for k in keys) or event.step_key
        reason = error_reason(event.step_failure_data.error)
        lines.append(f"FAILED step {event.step_key} ({what}): {reason} [{runbook_section(keys[0] if keys else None)}]")
    for check in sorted(result.get_asset_check_evaluations(), key=lambda c: (c.asset_key.to_user_string(),
                                                                          c.check_name)):
        if check.passed:
            continue
        blocking = _check_is_blocking(defs, check)
        kind = f"{check.severity.value}{', blocking' if blocking else ''}"
        lines.append(f"FAILED check {check.asset_key.to_user_string()}:{check.check_name} ({kind}): "
                     f"{check_reason(check)} [{runbook_section(check.asset_key)}]")
    not_run = not_executed_steps(result)
    if not_run:
        lines.append(f"NOT RUN {len(not_run)} step{'' if len(not_run) == 1 else 's'} downstream of a failure (blocked): "
                     + _one_line(", ".join(not_run), 200))
    return lines


def _step_asset_keys(result, event) -> list:
    """The assets a failed step materializes (a multi-asset step has several)."""
    import dagster as dg

    try:
        keys = result.job_def.asset_layer.get_selected_entity_keys_for_node(event.node_handle)
    except Exception:  # noqa: BLE001 - best effort: the step key is printed anyway
        return []
    return sorted(k for k in keys if isinstance(k, dg.AssetKey))


def _check_is_blocking(defs, check) -> bool:
    try:
        spec = defs.resolve_asset_graph().get_check_spec(check.asset_check_key)
        return bool(spec.blocking)
    except Exception:  # noqa: BLE001 - only decorates the line
        return False


def not_executed_steps(result) -> list[str]:
    """Steps of the run that never started: blocked by a failed upstream step or a failed blocking check."""
    import dagster as dg

    started = {e.step_key for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_START}
    return sorted(node.name for node in result.job_def.nodes if node.name not in started)


def failed_error_checks(checks) -> list:
    """Failed checks of ERROR severity, blocking or not: each one makes the command exit non-zero."""
    import dagster as dg

    return [c for c in checks if not c.passed and c.severity == dg.AssetCheckSeverity.ERROR]


def written_reports(result) -> list[tuple[str, str]]:
    """(cadence, path) of every HTML report this run wrote, from reports/kpi_report's metadata."""
    from cs_kpis.defs.reports.assets import REPORT_KEY

    out = []
    for event in result.get_asset_materialization_events():
        if event.asset_key != REPORT_KEY:
            continue
        metadata = event.materialization.metadata
        for cadence, suffix in (("monthly", ""), ("weekly", "_weekly"), ("quarterly", "_quarterly")):
            if f"path{suffix}" in metadata:
                out.append((cadence, str(metadata[f"path{suffix}"].value)))
    return out


def earlier_reports() -> list[tuple[str, str]]:
    """(cadence, path) of the latest reports on disk, for a run that did not build reports/kpi_report."""
    from cs_kpis.defs.reports.assets import report_path

    return [(name, str(report_path(cadence))) for cadence, name in
            (("month", "monthly"), ("week", "weekly"), ("quarter", "quarterly")) if report_path(cadence).exists()]


def print_tables(tables: list[tuple[str, str, int]]) -> None:
    data = [t for t in tables if not is_internal(t[1])]
    internal = [t for t in tables if is_internal(t[1])]
    if not data:
        print("the warehouse holds no tables yet")
        return
    print(tabulate(data, headers=["schema", "table", "rows"], intfmt=","))
    if internal:
        dlt = [f"{s}.{t}" for s, t, _ in internal if t.startswith("_dlt_")]
        own = [f"{s}.{t} ({n:,} row{'' if n == 1 else 's'})" for s, t, n in internal if not t.startswith("_dlt_")]
        note = "internal tables, not listed above: "
        note += "; ".join(([", ".join(own)] if own else [])
                          + ([f"{len(dlt)} dlt bookkeeping tables ({', '.join(sorted({n.split('.')[1] for n in dlt}))})"]
                             if dlt else []))
        print("* " + _one_line(note, 2000))


def _load_definitions():
    from cs_kpis.definitions import defs as load_defs

    return load_defs()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # before importing dagster, so that DAGSTER_HOME is in place for the instance
    paths = settings.prepare_state()

    import dagster as dg

    started = time.monotonic()
    defs = _load_definitions()
    job = defs.resolve_implicit_global_asset_job_def()
    try:
        keys = select_assets(defs, args.select)
        everything = len(keys) == len(job.asset_layer.executable_asset_keys)
        selected_job = job if everything else job.get_subset(asset_selection=set(keys))
        run_config = run_config_for(selected_job, args)
    except UsageError as e:
        print(f"python -m cs_kpis.run: {e}", file=sys.stderr)
        return 2
    what = (f"every asset ({len(keys)})" if everything
            else f"{len(keys)} asset{'' if len(keys) == 1 else 's'} ({args.select})")
    print(f"cs_kpis: materializing {what} and their checks, in-process")
    from cs_kpis.lib.engine import redacted, resolve

    try:
        engine = resolve()
    except ValueError as e:  # CS_KPIS_ENGINE / CS_KPIS_SPARK_REMOTE not valid: say so before any step runs
        print(f"python -m cs_kpis.run: {e}", file=sys.stderr)
        return 2
    if engine.engine != "duckdb":  # the default prints nothing new
        print(f"SQL models on {engine.engine} ({redacted(engine.spark_remote)}), Parquet tables in {engine.lake_dir}")
    from cs_kpis.defs.raw.prefetch import extracting_ahead

    # this run executes in-process, one step at a time: extract the file systems ahead of their raw steps
    # in one background process (defs/raw/prefetch.py); CS_KPIS_RAW_PREFETCH=0 keeps them serial
    from cs_kpis.lib.event_log import event_batches

    # the run's planned events stored as one batch (cs_kpis/lib/event_log.py)
    with dg.DagsterInstance.get() as instance, extracting_ahead(), event_batches():
        for run_id in release_abandoned_runs(instance):
            print(f"marked abandoned run {run_id} failed and released its pool slots")
        for run_id in release_slots_of_finished_runs(instance):
            print(f"released the pool slots still held by finished run {run_id}")
        result = job.with_logger_defs({"console": _console_logger()}).execute_in_process(
            instance=instance,
            raise_on_error=False,
            run_config=run_config,
            asset_selection=None if everything else keys,
            tags={LAUNCHED_BY_TAG: LAUNCHED_BY, PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()},
        )
    elapsed = time.monotonic() - started

    materializations = result.get_asset_materialization_events()
    materialized = {event.asset_key for event in materializations}
    checks = result.get_asset_check_evaluations()
    error_checks = failed_error_checks(checks)
    failures = failure_lines(result, defs)
    if failures:
        print()
        print("\n".join(failures))
    print()
    status = "succeeded" if result.success else "FAILED"
    if result.success and error_checks:
        status = f"succeeded, but {len(error_checks)} ERROR check{'s' if len(error_checks) > 1 else ''} failed"
    print(f"run {result.run_id} {status} in {elapsed:.1f} s")
    print(f"assets materialized: {len(materialized)}")
    print(f"warehouse: {paths['CS_KPIS_WAREHOUSE']}")
    print(f"dagster home: {paths['DAGSTER_HOME']} (browse with `make ui`)")

    reports = written_reports(result)
    earlier = not reports
    reports = reports or earlier_reports()
    if reports:
        print()
        print("reports" + (" (from an earlier run; this run did not build reports/kpi_report)" if earlier else "")
              + ":")
        for cadence, path in reports:
            print(f"  {cadence:<9} {path}")

    print()
    try:
        print_tables(warehouse_tables(paths["CS_KPIS_WAREHOUSE"],
                                      materialized_row_counts(materializations)))
    except duckdb.Error as e:  # the summary must not hide the run's outcome
        print(f"could not read the warehouse for the summary: {_one_line(e)}")

    if checks:
        print()
        print(tabulate(check_summary(checks), headers=["check", "passed", "failed"]))
    passed = sum(1 for check in checks if check.passed)
    print(f"checks: {passed} passed, {len(checks) - passed} failed ({len(error_checks)} of severity ERROR)")

    problems = []
    if not result.success:
        problems.append(", ".join(sorted(result.get_failed_step_keys())) or "see the run in `make ui`")
    if error_checks:
        problems.append("ERROR checks failed: "
                        + ", ".join(f"{c.asset_key.to_user_string()}:{c.check_name}" for c in error_checks))
    if problems:
        print(f"run failed: {'; '.join(problems)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
