"""alerts/: alert candidates and the append-only alert log (see README.md and engine.py).

One multi-asset builds both tables in one pass: ``alerts.alert_candidates`` (rebuilt every run: the current
and recently resolved alert per account x type) and ``alerts.alert_log`` (appended: every raise, reminder,
silent reopen and resolution, never rewritten). Before building, the asset asks the Dagster instance about
each alert type's input assets: a latest *blocking* check evaluation that failed, or a last materialization
older than ``max_input_age_hours``, puts the type on hold: its candidates get status 'held' with a
hold_reason, its new log events wait (so nothing is notified), and the metadata lists every hold.
"""

import time

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource

from cs_kpis.defs.alerts import engine
from cs_kpis.lib import systems
from cs_kpis.lib.engine import SQL_ENGINE, SqlEngineResource
from cs_kpis.lib.sql import (
    NIGHTLY_FRESHNESS,
    WAREHOUSE_POOL,
    IncrementalRunConfig,
    asset_key_for_table,
    table_metadata,
)

GROUP = "alerts"
OWNERS = ["team:cs-analytics"]
CANDIDATES = dg.AssetKey(["alerts", "alert_candidates"])
LOG = dg.AssetKey(["alerts", "alert_log"])
EXTRA_DEPS = [asset_key_for_table("marts", "accounts"), asset_key_for_table("marts", "account_states"),
              asset_key_for_table("staging", "stg_crm__users")]
AFTER_RUN_TAG = "cs_kpis/alerts_after_run"
"""run tag of an alerts_refresh run: the failed run whose skipped alerts it rebuilds (automation/sensors.py)"""


def input_keys(rules: dict) -> dict[str, list[dg.AssetKey]]:
    return {t: [dg.AssetKey(k.split("/")) for k in rules["types"][t].get("inputs", [])] for t in engine.ALERT_TYPES}


def all_deps(rules: dict) -> list[dg.AssetKey]:
    keys = {k for ks in input_keys(rules).values() for k in ks} | set(EXTRA_DEPS)
    return sorted(keys, key=lambda k: k.to_user_string())


def input_problems(instance: dg.DagsterInstance, asset_graph, keys, max_age_hours: float,
                   now: float | None = None) -> dict[dg.AssetKey, str]:
    """Why each input is not trustworthy right now (inputs without problems are absent).

    - a blocking check on it whose latest evaluation failed (a planned/skipped evaluation is not a result);
    - its latest materialization in this instance is older than ``max_age_hours``.
    An input never materialized in this instance (warehouse built elsewhere) is not held.
    """
    now = time.time() if now is None else now
    problems: dict[dg.AssetKey, str] = {}
    for key in keys:
        reasons = []
        check_keys = asset_graph.get_check_keys_for_assets({key}) if asset_graph.has(key) else set()
        for ck in sorted(check_keys, key=lambda c: c.name):
            if not asset_graph.get_check_spec(ck).blocking:
                continue
            record = instance.get_latest_asset_check_evaluation_record(ck)
            ev = record.evaluation if record else None
            if isinstance(ev, dg.AssetCheckEvaluation) and not ev.passed:
                reasons.append(f"blocking check {ck.name} failed")
        event = instance.get_latest_materialization_event(key)
        if event is not None and now - event.timestamp > max_age_hours * 3600:
            reasons.append(f"last materialized {(now - event.timestamp) / 3600:.0f} h ago (> {max_age_hours:g} h)")
        if reasons:
            problems[key] = "; ".join(reasons)
    return problems


def holds_for(rules: dict, problems: dict[dg.AssetKey, str]) -> dict[str, str]:
    """alert type -> hold reason naming each broken input."""
    out = {}
    for t, keys in input_keys(rules).items():
        bad = [f"{k.to_user_string()}: {problems[k]}" for k in keys if k in problems]
        if bad:
            out[t] = "input not trustworthy: " + " | ".join(bad)
    return out


def _asset_graph(context: dg.AssetExecutionContext):
    """The code location's full asset graph (checks included), so unselected input checks are seen too.

    Under a code location (dagster dev, the nightly job, cs_kpis.run) the step has the repository; a job
    executed on its own (tests) only has its job-scoped graph, whose source graph is the full one.
    """
    try:
        return context.repository_def.asset_graph
    except Exception:  # noqa: BLE001 (dagster raises its internal CheckError when no repository is set)
        graph = context.job_def.asset_layer.asset_graph
        return getattr(graph, "source_asset_graph", graph)


CANDIDATE_DOCS = {
    "dedup_key": "account_id:alert_type; one alert per key at a time", "alert_type": "see alert_rules.yaml",
    "severity": "critical, high, medium or info", "status": "new, open, resolved or held (inputs broken)",
    "hold_reason": "why the alert is held: the input asset and its failed check or age",
    "owner_id": "the account's CSM in charge on the as-of day (marts.account_states)", "owner_name": "the CSM's name",
    "arr": "12 x MRR on the as-of day, USD", "reason": "plain words with the numbers, as of last_seen",
    "first_seen": "first firing day of this alert", "last_seen": "last firing day",
    "last_raised": "last day it was raised or reminded (the cooldown counts from it)",
    "as_of_day": "latest day of kpis.account_indicators_daily",
}


def _md(df: pd.DataFrame) -> dg.MetadataValue:
    return dg.MetadataValue.md(df.to_markdown(index=False) if len(df) else "(none)")


@dg.multi_asset(
    specs=[
        dg.AssetSpec(CANDIDATES, deps=all_deps(engine.load_rules()), group_name=GROUP, kinds={"python", "duckdb"},
                     owners=OWNERS, metadata={"grain": "dedup_key"}, freshness_policy=NIGHTLY_FRESHNESS,
                     description=("One row per account x alert type currently firing or resolved in the last "
                                  "recent_resolved_days: severity, status (new/open/resolved/held), owner (CSM), "
                                  "ARR, a reason with the numbers, first/last seen. Rules in alert_rules.yaml.")),
        dg.AssetSpec(LOG, deps=[CANDIDATES], group_name=GROUP, kinds={"python", "duckdb"}, owners=OWNERS,
                     metadata={"grain": "event_id"}, freshness_policy=NIGHTLY_FRESHNESS,
                     description=("Append-only history of every raise, reminder, silent reopen (within the "
                                  "cooldown) and resolution; log_seq increases with every insert and is the "
                                  "notification sensor's cursor.")),
    ],
    pool=WAREHOUSE_POOL,
    resource_defs={"sql_engine": SQL_ENGINE},
)
def alerts(context: dg.AssetExecutionContext, duckdb: DuckDBResource, sql_engine: SqlEngineResource,
           config: IncrementalRunConfig):
    rules = engine.load_rules()
    keys = {k for ks in input_keys(rules).values() for k in ks}
    problems = input_problems(context.instance, _asset_graph(context), keys,
                              float(rules.get("max_input_age_hours", 36)))
    holds = holds_for(rules, problems)
    for t, why in holds.items():
        context.log.warning(f"alerts of type {t} held: {why}")
    # a system turned off in the company configuration: its alert types are not evaluated (lib/systems.py)
    skipped = systems.skipped_alert_types(systems.off_systems())
    for t, why in skipped.items():
        context.log.info(f"alerts of type {t} skipped: {why}")
    after_run = context.run.tags.get(AFTER_RUN_TAG)
    t0 = time.perf_counter()
    with duckdb.get_connection() as con:
        out = engine.run_engine(con, rules, holds, run_id=context.run_id, skipped=skipped, sql_engine=sql_engine,
                                full_refresh=config.full_refresh)
        cand_meta = table_metadata(con, "alerts", "alert_candidates", CANDIDATE_DOCS)
        log_meta = table_metadata(con, "alerts", "alert_log")
    seconds = round(time.perf_counter() - t0, 2)
    build = out["build"]
    context.log.info(f"{build['mode']} alerts build from {build['start_day'] or 'the first day'} "
                     f"({build['reason']}): {build['conditions_recomputed']} condition rows computed, {seconds}s")
    cand = out["candidates"]
    summary = (cand.groupby(["alert_type", "status"]).size().unstack(fill_value=0).reset_index()
               if len(cand) else pd.DataFrame())
    hold_df = pd.DataFrame(sorted(holds.items()), columns=["alert_type", "hold_reason"])
    yield dg.MaterializeResult(asset_key=CANDIDATES, metadata={
        **cand_meta, "as_of_day": str(out["as_of"]), "by_type_and_status": _md(summary),
        "held_types": _md(hold_df), "held_count": int((cand["status"] == "held").sum()) if len(cand) else 0,
        "skipped_types": _md(pd.DataFrame(sorted(skipped.items()), columns=["alert_type", "skip_reason"])),
        "rules_path": dg.MetadataValue.path(str(engine.rules_path())), "rules_version": str(rules.get("version")),
        **({"rebuilt_after_failed_run": after_run} if after_run else {}),
        # like the health tables' builds (cs_kpis/lib/incremental.py): full or the nightly window, and why
        "build_mode": build["mode"], "build_reason": build["reason"],
        "build_start_day": str(build["start_day"]) if build["start_day"] else "all days",
        "conditions_computed": build["conditions_recomputed"], "state_checkpoint_day": str(build["checkpoint"]),
        # the accounts a health table rebuilt on every day: their keys recomputed over every kept day (the
        # reason names the first ones)
        "accounts_rebuilt": build["accounts_rebuilt"],
        "conditions_of_rebuilt_accounts": build["conditions_of_rebuilt_accounts"],
        "state_keys_kept": build["state_keys"], "seconds": seconds,
    })
    yield dg.MaterializeResult(asset_key=LOG, metadata={
        **log_meta, "appended": out["appended"], "held_types": _md(hold_df)})
