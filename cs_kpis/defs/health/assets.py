"""kpis/ health: the wiring of the health layer's assets; the logic lives in the modules they call.

- ``kpis.health_product_config`` (product_config.py): the company configuration's ``product`` section.
- SQL models (``sql/*.sql``): ``account_activity_daily`` -> ``account_indicators_daily`` and the company
  roll-up ``engagement_monthly``.
- ``health_scores_daily`` + ``health_score_changes`` and ``health_scores`` (scoring.py: the SQL scorer
  generated from the versioned config in config/health_score.yaml, health_score.py) and ``health_backtest``
  (backtest.py: AUC and churn rate by band per config version and month, from the same scorer).
"""

import time
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from cs_kpis import config as company_config
from cs_kpis.defs.health.backtest import (
    BACKTEST_HORIZON_DAYS,
    CONTRACTION_SHARE,
    backtest_markdown,
    backtest_summary,
    build_backtest,
)
from cs_kpis.defs.health.fingerprints import CARRIES, FINGERPRINTS
from cs_kpis.defs.health.health_score import (
    ARCHIVE_DIR,
    COMPONENTS,
    CONFIG_PATH,
    config_path,
    load_current_config,
)
from cs_kpis.defs.health.product_config import product_config_rows, write_frame
from cs_kpis.defs.health.scoring import CHANGE_MIN_DELTA, CHANGE_WINDOWS, latest_sql, score_history
from cs_kpis.defs.marts import assets as marts
from cs_kpis.lib import systems
from cs_kpis.lib.sql import (
    NIGHTLY_FRESHNESS,
    WAREHOUSE_POOL,
    IncrementalRunConfig,
    load_models,
    model_key,
    sql_assets,
    table_metadata,
)

__all__ = ["ARCHIVE_DIR", "CONFIG_PATH", "CONTRACTION_SHARE", "backtest_summary", "product_config_rows",
           "write_frame"]  # the names other layers, benchmarks and tests import from here

SQL_DIR = Path(__file__).parent / "sql"
SCHEMA = "kpis"
GROUP = "health"
OWNERS = ["team:cs-analytics"]

PRODUCT_CONFIG = dg.AssetKey([SCHEMA, "health_product_config"])
INDICATORS = model_key(SQL_DIR, SCHEMA, "account_indicators_daily")
SCORES_DAILY = dg.AssetKey([SCHEMA, "health_scores_daily"])
SCORE_CHANGES = dg.AssetKey([SCHEMA, "health_score_changes"])
SCORES = dg.AssetKey([SCHEMA, "health_scores"])
BACKTEST = dg.AssetKey([SCHEMA, "health_backtest"])
MRR_CHANGES = marts.key("mrr_daily_changes")


@dg.asset(
    key=PRODUCT_CONFIG, group_name=GROUP, kinds={"python", "duckdb"}, owners=OWNERS, freshness_policy=NIGHTLY_FRESHNESS,
    pool=WAREHOUSE_POOL,
    description=("The product configuration the leading indicators use, from the company configuration's "
                 "`product` section (CS_KPIS_CONFIG; the demo profile's values without it): one row per key feature, plan (with the number of key features on it), onboarding "
                 "milestone, the value event and the top plan."),
)
def health_product_config(duckdb: DuckDBResource) -> dg.MaterializeResult:
    df = product_config_rows(company_config.load().product.as_dict())
    with duckdb.get_connection() as con:
        write_frame(con, "kpis.health_product_config", df, {"value": "double"})
        meta = table_metadata(con, "kpis", "health_product_config", {
            "setting": "key_feature, plan_features, onboarding_milestone, value_event or top_plan",
            "name": "the event or plan name", "value": "key features on the plan (plan_features only)"})
    meta["product"] = dg.MetadataValue.md(df.fillna("").to_markdown(index=False))
    return dg.MaterializeResult(metadata=meta)


DAILY_DOCS = {
    "day": "the as-of day", "account_id": "CRM account", "score": "health score 0..100",
    "is_active": "MRR > 0 on the day", "arr": "12 x MRR on the day, USD",
    "band": "green (>= bands.green), yellow (>= bands.yellow) or red",
    "components_present": "components with data, comma-separated (missing ones are left out, weights rescaled)",
    "components_present_count": "number of components with data", "config_version": "hash of the config file",
    "delta_7d": "score - score 7 days earlier (null when not scored then)",
    "delta_30d": "score - score 30 days earlier (null when not scored then)",
    **{f"{c}_score": f"{c} component 0..100, null when it has no data" for c in COMPONENTS},
    **{f"contrib_{c}": f"points of the score from {c} (rescaled weight x component score); they add up to score"
       for c in COMPONENTS},
}


@dg.multi_asset(
    specs=[
        dg.AssetSpec(SCORES_DAILY, deps=[INDICATORS], group_name=GROUP, kinds={"python", "duckdb"}, owners=OWNERS, freshness_policy=NIGHTLY_FRESHNESS,
                     description=("One health score per account per day (every row of kpis.account_indicators_daily) "
                                  "with its band, component scores, each component's contribution, which "
                                  "components had data, 7- and 30-day deltas and the config version."),
                     metadata={"grain": "account_id, day"}),
        dg.AssetSpec(SCORE_CHANGES, deps=[INDICATORS], group_name=GROUP, kinds={"python", "duckdb"}, owners=OWNERS, freshness_policy=NIGHTLY_FRESHNESS,
                     description=(f"Explained score changes: every account-day whose score moved >= {CHANGE_MIN_DELTA:g} "
                                  f"points against {' or '.join(map(str, CHANGE_WINDOWS))} days earlier, with "
                                  "each component's contribution change (they add up to the change) and a "
                                  "reason ready to quote in an alert."),
                     metadata={"grain": "account_id, day, window_days"}),
    ],
    pool=WAREHOUSE_POOL,
)
def health_scores_daily(context: dg.AssetExecutionContext, duckdb: DuckDBResource, config: IncrementalRunConfig):
    hcfg = load_current_config()
    t0 = time.perf_counter()
    with duckdb.get_connection() as con:
        stats = score_history(con, hcfg, full_refresh=config.full_refresh)
        t1 = time.perf_counter()
        daily_meta = table_metadata(con, "kpis", "health_scores_daily", DAILY_DOCS)
        change_meta = table_metadata(con, "kpis", "health_score_changes", {
            "window_days": "7 or 30", "score_before": "score window_days earlier", "delta": "score - score_before",
            **{f"{c}_delta": (f"points of the change due to {c}: rescaled weight after x ({c} after - score before) "
                              f"- rescaled weight before x ({c} before - score before); they add up to delta")
               for c in COMPONENTS},
            "reason": "plain-words explanation naming the components that moved"})
        latest = con.execute(
            "select band, count(*) as accounts from kpis.health_scores_daily "
            "where day = (select max(day) from kpis.health_scores_daily) group by band order by band"
        ).df()
    context.log.info(f"{stats['mode']} scoring from {stats['start_day'] or 'the start'} ({stats['reason']}): "
                     f"{stats['rows_scored']} rows in {stats['chunks']} chunks, {t1 - t0:.1f}s")
    common = {"config_version": hcfg.version, "config_label": hcfg.label,
              "config_path": dg.MetadataValue.path(str(config_path()))}
    build = {"build_mode": stats["mode"], "build_reason": stats["reason"],
             "build_start_day": str(stats["start_day"]) if stats["start_day"] else "all days",
             "rows_scored": stats["rows_scored"], "seconds_scoring": round(t1 - t0, 2),
             "accounts_rebuilt": stats["accounts_rebuilt"], "rows_of_rebuilt_accounts": stats["rows_of_rebuilt_accounts"]}
    yield dg.MaterializeResult(asset_key=SCORES_DAILY, metadata={
        **daily_meta, **common, **build, "latest_bands": dg.MetadataValue.md(latest.to_markdown(index=False))})
    yield dg.MaterializeResult(asset_key=SCORE_CHANGES, metadata={**change_meta, **common, **build})


@dg.asset(
    key=SCORES, deps=[SCORES_DAILY, INDICATORS], group_name=GROUP, kinds={"python", "duckdb"}, owners=OWNERS, freshness_policy=NIGHTLY_FRESHNESS,
    pool=WAREHOUSE_POOL, metadata={"grain": "account_id"},
    description=("The latest health score per account (the as-of day) with delta_7d and delta_30d, its ARR "
                 "(12 x MRR) and the roll-up of its hierarchy: the ARR-weighted score of the root account and "
                 "all its descendants (plain mean when none has ARR), with its band."),
)
def health_scores(duckdb: DuckDBResource) -> dg.MaterializeResult:
    config = load_current_config()
    with duckdb.get_connection() as con:
        con.execute(f"create or replace table kpis.health_scores as {latest_sql(config)}")
        meta = table_metadata(con, "kpis", "health_scores", {
            **DAILY_DOCS, "root_account_id": "top of the hierarchy", "arr": "12 x MRR on the day, USD",
            "parent_score": "ARR-weighted score of the hierarchy under root_account_id",
            "parent_band": "band of parent_score", "parent_arr": "ARR of the hierarchy's scored accounts",
            "parent_accounts_scored": "accounts of the hierarchy with a score"})
    return dg.MaterializeResult(metadata={**meta, "config_version": config.version})


@dg.asset(
    key=BACKTEST, deps=[INDICATORS, SCORES_DAILY, MRR_CHANGES], group_name=GROUP, kinds={"python", "duckdb"},
    owners=OWNERS, pool=WAREHOUSE_POOL, freshness_policy=NIGHTLY_FRESHNESS, metadata={"grain": "config_version, scope, as_of_day"},
    description=(f"Evidence for the health score: for every config version (the live one and config/archive/) "
                 f"and every month whose next {BACKTEST_HORIZON_DAYS} days are in the data, the accounts with MRR "
                 f"on the month's first day are scored from that day's indicators and compared with what "
                 f"happened next: churn = logo churn or contraction >= {CONTRACTION_SHARE:.0%} of MRR within "
                 f"{BACKTEST_HORIZON_DAYS} days (marts.mrr_daily_changes). AUC of the score (low score = risk) "
                 "and churn rate per band, per month and pooled."),
)
def health_backtest(duckdb: DuckDBResource) -> dg.MaterializeResult:
    with duckdb.get_connection() as con:
        df = build_backtest(con)
        write_frame(con, "kpis.health_backtest", df, {"as_of_day": "date"})
        meta = table_metadata(con, "kpis", "health_backtest", {
            "scope": "month (one as-of day) or pooled (all months together)",
            "as_of_day": "the scoring day (first day of the month); null when pooled",
            "auc": "area under the ROC curve of -score for churn within 90 days",
            "churn_rate": "churned / accounts", "is_current": "the live config"})
        summary = backtest_summary(con)
    by_version, by_month = backtest_markdown(df)
    return dg.MaterializeResult(metadata={
        **meta, "by_config_version": dg.MetadataValue.md(by_version),
        "by_month_current_config": dg.MetadataValue.md(by_month),
        "auc_pooled": summary["auc_pooled"], "auc_min_month": summary["auc_min"],
        "red_to_green_churn_ratio": summary["red_to_green_ratio"], "config_version": summary["config_version"]})


# -------------------------------------------------------------------------------------------- SQL models

def null_indicators_of_systems_off(con, model) -> dict:
    """A system turned off: the indicators it feeds are null in kpis.account_indicators_daily, not 0 (no
    tickets is not perfect support); the score leaves them out and rescales the other weights
    (lib/systems.py, README "Systems turned off")."""
    if model.key != INDICATORS:
        return {}
    off = systems.off_systems()
    nulled = systems.null_indicators(off)
    if nulled:
        con.execute(f"update {model.table} set " + ", ".join(f"{c} = null" for c in nulled))
    return {"systems_off": ", ".join(off) or "none"}


models = load_models(SQL_DIR, SCHEMA)
health_sql_assets = sql_assets(
    models, group=GROUP, owners=OWNERS, freshness_policy=NIGHTLY_FRESHNESS, extra_metadata=null_indicators_of_systems_off,
    fingerprints=FINGERPRINTS, carries=CARRIES)
