"""Jobs: the nightly run of everything, the alerts-only refresh, and the alert digest sender."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from cs_kpis.defs.alerts.assets import CANDIDATES, LOG
from cs_kpis.defs.automation import notify
from cs_kpis.lib.sql import WAREHOUSE_POOL

# every asset and, with them, every asset check: the same scope as `make run`
nightly_job = dg.define_asset_job(
    name="nightly",
    selection="*",
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


class DigestConfig(dg.Config):
    after_seq: int = 0
    """alert_log rows with log_seq > after_seq ..."""
    upto_seq: int = 0
    """... and <= upto_seq are digested (after == upto: only retry pending digests)"""


@dg.op(pool=WAREHOUSE_POOL)
def send_alert_digests(context: dg.OpExecutionContext, config: DigestConfig, duckdb: DuckDBResource) -> dict:
    """Queue one digest per owner for the new alert_log rows, then deliver every pending digest."""
    with duckdb.get_connection() as con:
        queued = notify.enqueue_digests(con, config.after_seq, config.upto_seq) \
            if config.upto_seq > config.after_seq else 0
        result = notify.deliver_pending(con, notify.webhook_url(), notify.outbox_dir())
    for nid, err in result["errors"].items():
        context.log.warning(f"digest {nid} not delivered, stays pending: {err}")
    context.add_output_metadata({"queued": queued, "sent": result["sent"], "failed": result["failed"]})
    return {"queued": queued, **result}


@dg.job(name="alert_digests", executor_def=dg.in_process_executor,
        description="Send each CSM one digest of their new alerts (webhook or outbox); retries pending ones.")
def alert_digest_job():
    send_alert_digests()
