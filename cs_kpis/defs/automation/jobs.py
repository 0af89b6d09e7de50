"""Jobs: the nightly run of everything, the alerts-only refresh, and the alert digest sender."""

import contextlib

import dagster as dg
from dagster_duckdb import DuckDBResource

from cs_kpis.defs.alerts.assets import CANDIDATES, LOG
from cs_kpis.defs.automation import notify
from cs_kpis.lib.settings_resources import AlertingResource
from cs_kpis.lib.sql import WAREHOUSE_POOL

# every asset and, with them, every asset check: the same scope as `make run`
nightly_job = dg.define_asset_job(
    name="nightly",
    # AssetSelection.all(), not the string "*": the string is parsed into all(include_sources=...), which
    # prints a BetaWarning ("Parameter `include_sources` ... is currently in beta") wherever this module loads
    selection=dg.AssetSelection.all(),
    description="Materialize every asset and run every asset check (landing -> raw -> ... -> alerts).",
)

# the alerts multi-asset (and its checks) on its own. Launched by alerts_after_failed_run_sensor when a run
# that should have built the alerts did not, typically because a blocking check upstream failed: Dagster
# skips every step downstream of a failed blocking check *in that run*; in a run of its own the alerts asset
# reads the failed evaluation from the instance and holds the affected types visibly (status 'held').
alerts_refresh_job = dg.define_asset_job(
    name="alerts_refresh",
    selection=dg.AssetSelection.assets(CANDIDATES, LOG),
    executor_def=dg.in_process_executor,
    description=("Rebuild alerts.alert_candidates / alert_log only (their inputs as they are): after a run in "
                 "which a failed blocking check upstream skipped them, so the hold becomes visible."),
)


@contextlib.contextmanager
def closed_on_error(resource: DuckDBResource):
    """``resource.get_connection()``, closed on an exception too (dagster-duckdb closes it only on success, and
    a connection left open makes the next one to the same file fail with "different configuration")."""
    with resource.get_connection() as con:
        try:
            yield con
        finally:
            con.close()


class DigestConfig(dg.Config):
    upto_seq: int = 0
    """queue the alert_log rows after the last handed-over one up to this log_seq (0: up to the newest)"""


@dg.op(pool=WAREHOUSE_POOL)
def send_alert_digests(context: dg.OpExecutionContext, config: DigestConfig, duckdb: DuckDBResource,
                       alerting: AlertingResource) -> dict:
    """Queue one digest per owner for the alert_log rows not handed over yet (queue and hand-over in one
    transaction), then check the digests in doubt and deliver every pending one."""
    with closed_on_error(duckdb) as con:
        after, upto, queued = notify.queue_new_digests(con, config.upto_seq or None)
        result = notify.deliver_pending(con, alerting.webhook_url, alerting.outbox, alerting.webhook_check_url,
                                        timeout=alerting.webhook_timeout_s)
    for nid, err in result["errors"].items():
        context.log.warning(f"digest {nid} not delivered: {err}")
    if result["in_doubt"]:
        context.log.warning(f"{result['in_doubt']} digest(s) in doubt (a send ended without an answer): not resent "
                            "until checked; see the runbook, 'Digests in doubt'")
    context.add_output_metadata({"handed_over": f"({after}, {upto}]", "queued": queued, "sent": result["sent"],
                                 "failed": result["failed"], "confirmed": result["confirmed"],
                                 "in_doubt": result["in_doubt"]})
    return {"queued": queued, **result}


@dg.job(name="alert_digests", executor_def=dg.in_process_executor,
        description="Send each CSM one digest of their new alerts (webhook or outbox); retries pending ones.")
def alert_digest_job():
    send_alert_digests()
