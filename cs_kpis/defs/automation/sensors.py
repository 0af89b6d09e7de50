"""Sensors: the alert threshold sensor (digests to CSMs) and the on-call sensor (failed asset checks).

alert_digest_sensor: what has been handed over lives in the warehouse, not in the sensor's cursor:
alerts.digest_handover.handed_upto is advanced by the digest run in the same transaction that queues the
digests (notify.queue_new_digests). The sensor asks for an `alert_digests` run whenever alert_log has rows beyond
it, or digests are pending (or in doubt with a check URL set), and no digest run is queued or running. A run that
fails before its commit changes nothing, so the next tick asks again (run_key digest-<state>-<n>: the state
seen, and how many runs were already asked for that same state): nothing is lost. It reads the warehouse
read-only; when a run holds the write lock it skips the tick and tries again next time.

failed_check_sensor: a failed asset check does not fail its run (dagster#29896), so run-failure sensors never
see it. This sensor reads the latest evaluation record of every check in the code location and posts each new
failure (asset, check, severity, metadata, runbook hint) to CS_KPIS_ONCALL_WEBHOOK_URL or the outbox.
Cursor = the highest check-evaluation record id seen.

alerts_after_failed_run_sensor: a failed *blocking* check makes Dagster skip every step downstream of it in the
same run, the alerts asset included, so the hold would never show. When a run that planned
alerts.alert_candidates fails without materializing it, this sensor launches the `alerts_refresh` job (run_key
alerts-after-<run id>: once per failed run). In that run of its own, the alerts asset sees the failed
evaluation in the instance and marks the affected types 'held' (status, hold_reason, metadata).
"""

import json
import time

import dagster as dg
import duckdb as duckdb_lib
from dagster_duckdb import DuckDBResource

from cs_kpis.defs.alerts.assets import AFTER_RUN_TAG, CANDIDATES
from cs_kpis.defs.automation import notify, switch
from cs_kpis.defs.automation.jobs import alert_digest_job, alerts_refresh_job
from cs_kpis.lib.settings_resources import AlertingResource


def _scalar(con, sql: str, default=0):
    try:
        return con.execute(sql).fetchall()[0][0] or default
    except duckdb_lib.CatalogException:  # the table does not exist yet
        return default


def warehouse_state(database: str) -> tuple[int, int, int, int, int]:
    """(max log_seq, handed-over log_seq, pending digests, their attempts, digests in doubt), read-only."""
    with duckdb_lib.connect(database, read_only=True) as con:
        handed = _scalar(con, "select max(handed_upto) from alerts.digest_handover", None)
        if handed is None:  # a warehouse from before the hand-over table: notify.handed_upto's fallback
            handed = _scalar(con, "select max(upto_seq) from alerts.notifications")
        return (int(_scalar(con, "select max(log_seq) from alerts.alert_log")), int(handed),
                int(_scalar(con, "select count(*) from alerts.notifications where status = 'pending'")),
                int(_scalar(con, "select sum(attempts) from alerts.notifications where status = 'pending'")),
                int(_scalar(con, "select count(*) from alerts.notifications "
                                 "where status in ('sending', 'in_doubt')")))


def digest_run_config(upto: int) -> dict:
    return {"ops": {"send_alert_digests": {"config": {"upto_seq": upto}}}}


def _digest_run_active(instance: dg.DagsterInstance) -> bool:
    runs = instance.get_runs(filters=dg.RunsFilter(job_name=alert_digest_job.name, statuses=[
        dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
        dg.DagsterRunStatus.STARTED]), limit=1)
    return bool(runs)


# The job is named, not passed: passed, Dagster rebinds it with the duckdb resource through
# SensorDefinition.with_attributes, which hands owners=[] on and printed a BetaWarning ("Parameter `owners`
# ... is currently in beta") on every run although no sensor sets owners.
@dg.sensor(job_name=alert_digest_job.name, minimum_interval_seconds=60, default_status=switch.sensor_status(),
           description=("New rows in alerts.alert_log -> one digest per CSM; retries digests whose send failed. "
                        "What was handed over is kept in the warehouse (alerts.digest_handover), so a failed "
                        "run is asked for again."))
def alert_digest_sensor(context: dg.SensorEvaluationContext, duckdb: DuckDBResource, alerting: AlertingResource):
    try:
        max_seq, handed, pending, attempts, doubt = warehouse_state(duckdb.database)
    except duckdb_lib.Error as exc:  # missing file, or a run holds the write lock
        return dg.SkipReason(f"warehouse not readable now, next tick retries: {type(exc).__name__}")
    checkable = doubt if alerting.webhook_check_url or not alerting.webhook_url else 0
    if max_seq <= handed and not pending and not checkable:
        extra = f"; {doubt} digest(s) in doubt wait for a person (runbook)" if doubt else ""
        return dg.SkipReason(f"alert_log handed over up to log_seq {handed}, nothing pending{extra}")
    if _digest_run_active(context.instance):
        return dg.SkipReason("an alert_digests run is queued or running: next tick looks again")
    state = f"{handed}-{max_seq}-{pending}-{attempts}-{checkable}"
    previous = json.loads(context.cursor) if context.cursor else {}
    n = previous.get("n", 0) + 1 if previous.get("state") == state else 0
    context.update_cursor(json.dumps({"state": state, "n": n}))
    return dg.RunRequest(run_key=f"digest-{state}-{n}", run_config=digest_run_config(max_seq),
                         tags={"cs_kpis/alert_log_seq": f"{handed}-{max_seq}"})


def _plain(value):
    inner = getattr(value, "value", value)
    return inner if isinstance(inner, (str, int, float, bool, type(None))) else str(inner)


@dg.sensor(minimum_interval_seconds=60, default_status=switch.sensor_status(),
           description="Posts every newly failed asset check (latest evaluation) with its metadata and runbook hint.")
def failed_check_sensor(context: dg.SensorEvaluationContext, alerting: AlertingResource):
    cursor = int(context.cursor or 0)
    graph = context.repository_def.asset_graph
    new_failures = []
    highest = cursor
    for key in sorted(graph.asset_check_keys, key=lambda k: (k.asset_key.to_user_string(), k.name)):
        record = context.instance.get_latest_asset_check_evaluation_record(key)
        if record is None or record.id <= cursor:
            continue
        ev = record.evaluation  # AssetCheckEvaluationPlanned (skipped) has no outcome: not a failure
        if not isinstance(ev, dg.AssetCheckEvaluation):
            continue
        highest = max(highest, record.id)
        if not ev.passed:
            new_failures.append((record, ev))
    url, outbox = alerting.oncall_webhook_url, alerting.outbox / "oncall"
    failed_ids = []
    for record, ev in sorted(new_failures, key=lambda p: p[0].id):
        payload = notify.oncall_payload(
            ev.asset_key.to_user_string(), ev.check_name, ev.severity.value, ev.description,
            {k: _plain(v) for k, v in (ev.metadata or {}).items()}, record.run_id)
        try:
            notify.deliver(f"check-{record.id}-{ev.check_name}", payload, url, outbox, alerting.webhook_timeout_s)
        except Exception as exc:  # noqa: BLE001 (any failure: cursor held, retried next tick)
            context.log.warning(f"on-call post for {ev.check_name} failed, retried next tick: {exc}")
            failed_ids.append(record.id)
    # a failed post holds the cursor just below it: it (and later ones) are posted again next tick
    new_cursor = min(failed_ids) - 1 if failed_ids else highest
    context.update_cursor(str(new_cursor))
    posted = len(new_failures) - len(failed_ids)
    return dg.SkipReason(f"{posted} failed check(s) posted, {len(failed_ids)} to retry "
                         f"({time.strftime('%H:%M:%S')})")


def _asset_keys_of(instance: dg.DagsterInstance, run_id: str, event_type: dg.DagsterEventType) -> set[dg.AssetKey]:
    records = instance.get_records_for_run(run_id=run_id, of_type=event_type).records
    return {r.event_log_entry.dagster_event.asset_key for r in records if r.event_log_entry.dagster_event}


def alerts_left_unbuilt(instance: dg.DagsterInstance, run_id: str) -> bool:
    """The run planned alerts.alert_candidates and ended without materializing it (skipped or failed)."""
    planned = _asset_keys_of(instance, run_id, dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED)
    if CANDIDATES not in planned:
        return False
    return CANDIDATES not in _asset_keys_of(instance, run_id, dg.DagsterEventType.ASSET_MATERIALIZATION)


def alerts_refresh_request(instance: dg.DagsterInstance, run: dg.DagsterRun) -> dg.RunRequest | dg.SkipReason:
    """What to do about a failed run: an alerts_refresh run when it left the alerts unbuilt."""
    if run.job_name == alerts_refresh_job.name:
        return dg.SkipReason(f"run {run.run_id} was itself an alerts refresh: not retried in a loop")
    if not alerts_left_unbuilt(instance, run.run_id):
        return dg.SkipReason(f"run {run.run_id} did not leave alerts.alert_candidates unbuilt")
    return dg.RunRequest(run_key=f"alerts-after-{run.run_id}", tags={AFTER_RUN_TAG: run.run_id})


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.FAILURE, request_job=alerts_refresh_job, minimum_interval_seconds=30,
    default_status=switch.sensor_status(), name="alerts_after_failed_run_sensor",
    description=("A failed run that skipped the alerts (e.g. a blocking check upstream failed) -> rebuild the "
                 "alerts in a run of their own, so the affected types show as held instead of silently stale."))
def alerts_after_failed_run_sensor(context: dg.RunStatusSensorContext):
    return alerts_refresh_request(context.instance, context.dagster_run)
