"""kpis/ health: leading indicators, the customer health score, its explanations and its backtest.

- ``kpis.health_product_config``: the product configuration the indicators need (key features, features
  per plan, onboarding milestones, value event, top plan), from the company configuration's ``product``
  section (cs_kpis/config.py; the demo profile's values in the demo).
- SQL models (``sql/*.sql``): ``account_activity_daily`` -> ``account_indicators_daily`` and the company
  roll-up ``engagement_monthly``.
- Python: ``health_scores_daily`` + ``health_score_changes`` (scored in DuckDB by the SQL health_score.py
  generates from the versioned config in config/health_score.yaml), ``health_scores`` (latest per account,
  deltas, ARR-weighted parent roll-up) and ``health_backtest`` (AUC and churn rate by band per config
  version and month).
"""

import datetime as dt
import time
from pathlib import Path

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource

from cs_kpis import config as company_config
from cs_kpis import tuning
from cs_kpis.defs.health import health_score as hs
from cs_kpis.defs.health import history
from cs_kpis.lib import systems
from cs_kpis.lib.sql import NIGHTLY_FRESHNESS, WAREHOUSE_POOL, load_models, sql_assets, table_metadata

HERE = Path(__file__).parent
SQL_DIR = HERE / "sql"
CONFIG_PATH = HERE / "config" / "health_score.yaml"
ARCHIVE_DIR = HERE / "config" / "archive"
ENV_CONFIG = tuning.SETTINGS["health.config_file"].env
SCHEMA = "kpis"
GROUP = "health"
OWNERS = ["team:cs-analytics"]

CHANGE_WINDOWS = (7, 30)
CHANGE_MIN_DELTA = 10.0
"""health_score_changes keeps account-days whose score moved at least this much over a window"""
BACKTEST_HORIZON_DAYS = 90
CONTRACTION_SHARE = 0.5
"""churn in the backtest: MRR at or below (1 - 0.5) x the MRR at the scoring day within the horizon"""

PRODUCT_CONFIG = dg.AssetKey([SCHEMA, "health_product_config"])
INDICATORS = dg.AssetKey([SCHEMA, "account_indicators_daily"])
SCORES_DAILY = dg.AssetKey([SCHEMA, "health_scores_daily"])
SCORE_CHANGES = dg.AssetKey([SCHEMA, "health_score_changes"])
SCORES = dg.AssetKey([SCHEMA, "health_scores"])
BACKTEST = dg.AssetKey([SCHEMA, "health_backtest"])
MRR_CHANGES = dg.AssetKey(["marts", "mrr_daily_changes"])


def config_path() -> Path:
    """The live config: settings.health.config_file in the company file (CS_KPIS_HEALTH_CONFIG overrides),
    or config/health_score.yaml."""
    return tuning.get_path("health.config_file") or CONFIG_PATH


def load_current_config() -> hs.HealthConfig:
    return hs.load_config(config_path())


def load_all_configs() -> list[tuple[hs.HealthConfig, bool]]:
    """The live config and every archived one, (config, is_current), live first, versions unique."""
    current = load_current_config()
    out, seen = [(current, True)], {current.version}
    for path in sorted(ARCHIVE_DIR.glob("*.y*ml")):
        cfg = hs.load_config(path)
        if cfg.version not in seen:
            out.append((cfg, False))
            seen.add(cfg.version)
    return out


# ------------------------------------------------------------------------------------------- product config

PRODUCT_SETTINGS = ("key_features", "plan_features", "onboarding_milestones", "value_event", "top_plan")


def product_config_rows(product: dict) -> pd.DataFrame:
    """The configuration's product section as (setting, name, value) rows; every setting must be present."""
    missing = [k for k in PRODUCT_SETTINGS if not product.get(k)]
    if missing:
        raise ValueError(f"product configuration: missing {', '.join(missing)} in the company configuration's "
                         "product section")
    rows = [("key_feature", str(f), None) for f in product["key_features"]]
    rows += [("plan_features", str(p), float(n)) for p, n in product["plan_features"].items()]
    rows += [("onboarding_milestone", str(m), None) for m in product["onboarding_milestones"]]
    rows += [("value_event", str(product["value_event"]), None), ("top_plan", str(product["top_plan"]), None)]
    return pd.DataFrame(rows, columns=["setting", "name", "value"])


def write_frame(con, table: str, df: pd.DataFrame, casts: dict[str, str] | None = None) -> None:
    """Replace ``table`` with the frame's rows; ``casts`` maps columns to SQL types."""
    casts = casts or {}
    cols = ", ".join(f"cast(\"{c}\" as {casts[c]}) as \"{c}\"" if c in casts else f"\"{c}\"" for c in df.columns)
    schema = table.split(".")[0]
    con.execute(f"create schema if not exists {schema}")
    con.register("_health_frame", df)
    try:
        con.execute(f"create or replace table {table} as select {cols} from _health_frame")
    finally:
        con.unregister("_health_frame")


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


# ------------------------------------------------------------------------------------------------- scores

def indicator_columns(config: hs.HealthConfig) -> list[str]:
    return sorted({i.name for c in config.components for i in c.indicators})


class HealthRunConfig(dg.Config):
    full_refresh: bool = False
    """rebuild the whole history instead of the nightly window (the last built day minus the lookback)"""


SCORE_CHUNK_ROWS = 12_000_000
"""indicator rows scored per statement (accounts are split into ranges of about this many rows): bounds the
memory of the scoring joins; DuckDB spills beyond memory_limit, so this is about speed, not correctness"""


def _chunks(con, start_day, chunk_rows: int = SCORE_CHUNK_ROWS) -> list[tuple[str, str]]:
    """Inclusive account_id ranges of about ``chunk_rows`` indicator rows from ``start_day`` on."""
    counts = con.execute(
        "select account_id, count(*) from kpis.account_indicators_daily where day >= ? "
        "group by account_id order by account_id", [start_day or dt.date(1900, 1, 1)]).fetchall()
    return history.split_ranges(counts, chunk_rows)


def plan_scoring(con, config: hs.HealthConfig, full_refresh: bool = False) -> tuple[str, dt.date | None, str]:
    """(mode, first day to score, reason): incremental from the earliest indicator build not scored yet
    when every build since was incremental and the stored scores are all of the current config, else a
    full rescore of the kept history."""
    current = history.previous_window(con) or {}
    hist = current.get("history_start")
    if full_refresh:
        return "full", hist, "full_refresh requested"
    if not history._exists(con, "kpis.health_scores_daily") or not history._exists(con, "kpis.health_score_changes"):
        return "full", hist, "no scores yet"
    pending = history.unscored_builds(con)
    if any(b.get("mode") != "incremental" or b.get("start_day") is None for b in pending):
        return "full", hist, "the indicators were fully rebuilt"
    last, other = con.execute("select max(day), count(*) filter (where config_version <> ?) "
                              "from kpis.health_scores_daily", [config.version]).fetchall()[0]
    if other:
        return "full", hist, f"config changed to {config.version}"
    if last is None:
        return "full", hist, "no scores yet"
    start = min([b["start_day"] for b in pending] + [last + dt.timedelta(days=1)])
    return "incremental", start, (f"indicators rebuilt from {start} ({len(pending)} build(s) not scored yet), "
                                  f"last scored day {last}")


def _sql_date(day: dt.date) -> str:
    return f"date '{day.isoformat()}'"


Accounts = tuple[str, str] | None
"""an inclusive range of account ids, or None for every account"""


def _range_filter(alias: str, accounts: Accounts, since: dt.date | None) -> str:
    """SQL filter on ``alias``: the account range and the days from ``since`` (a comparison of account ids
    on every row is not free: no range, no filter)."""
    where = ["true"]
    if accounts is not None:
        where.append(f"{alias}.account_id between {hs.sql_text(accounts[0])} and {hs.sql_text(accounts[1])}")
    if since is not None:
        where.append(f"{alias}.day >= {_sql_date(since)}")
    return " and ".join(where)


def scores_sql(config: hs.HealthConfig, accounts: Accounts, start: dt.date | None, incremental: bool = False) -> str:
    """The rows of kpis.health_scores_daily for the ``accounts`` from day ``start`` on (None:
    every day): score_sql over the indicator rows, with delta_<w>d for every change window from a self-join
    on (account_id, day - w) over the new rows and, when ``incremental``, the stored scores of the w days
    before ``start`` (null when that day was not scored)."""
    windows = CHANGE_WINDOWS
    source = f"(select * from kpis.account_indicators_daily as i where {_range_filter('i', accounts, start)})"
    pool = "select account_id, day, score from _hs_new"
    if incremental:
        stored = _range_filter("s", accounts, start - dt.timedelta(days=max(windows)))
        pool += (f" union all select account_id, day, score from kpis.health_scores_daily as s "
                 f"where {stored} and s.day < {_sql_date(start)}")
    joins = "\n".join(f"left join _hs_pool as p{w} on p{w}.account_id = n.account_id and p{w}.day = n.day - {int(w)}"
                      for w in windows)
    deltas = ", ".join(f"n.score - p{w}.score as delta_{w}d" for w in windows)
    joined = f"(select n.*, {deltas} from _hs_new as n\n{joins})"
    # only the numeric core is materialized and joined; band, rounding and labels come after the joins
    return f"""
with _hs_new as materialized ({hs.score_core_sql(config, source)}),
_hs_pool as ({pool})
{hs.score_finish_sql(config, joined, tuple(f"delta_{w}d" for w in windows))}"""


MOVED = "_health_moved"
"""temp table: the account-days of one range whose score moved >= CHANGE_MIN_DELTA over a change window"""


def moved_sql(accounts: Accounts, start: dt.date | None) -> str:
    """The stored rows of the ``accounts`` from ``start`` on with |delta_<w>d| >= CHANGE_MIN_DELTA
    for some window: the 'after' side of health_score_changes (about a fifth of the rows)."""
    moved = " or ".join(f"abs(n.delta_{w}d) >= {hs.sql_double(CHANGE_MIN_DELTA)}" for w in CHANGE_WINDOWS)
    cols = ", ".join(["day", "account_id", "band", "config_version", "score", *[f"{c}_score" for c in hs.COMPONENTS],
                      *[f"delta_{w}d" for w in CHANGE_WINDOWS]])
    return (f"select {cols} from kpis.health_scores_daily as n "
            f"where {_range_filter('n', accounts, start)} and ({moved})")


def changes_sql(config: hs.HealthConfig, start: dt.date | None, moved: str = MOVED) -> str:
    """The rows of kpis.health_score_changes for the rows of ``moved`` (moved_sql): each, once per change
    window it moved in, joined with the stored score w days earlier and explained by hs.explain_sql. The
    moved rows are a table so that the join builds its hash table on them (a fifth of the rows, exact
    cardinality) and probes the stored scores once for all windows."""
    after = " union all ".join(
        f"select *, {int(w)} as window_days from {moved} where abs(delta_{w}d) >= {hs.sql_double(CHANGE_MIN_DELTA)}"
        for w in CHANGE_WINDOWS)
    cols = ", ".join(["n.day", "n.account_id", "n.window_days", "n.band", "n.config_version", "n.score",
                      *[f"n.{c}_score" for c in hs.COMPONENTS], "p.score as score_before",
                      *[f"p.{c}_score as {c}_score_before" for c in hs.COMPONENTS]])
    since = f" where p.day >= {_sql_date(start - dt.timedelta(days=max(CHANGE_WINDOWS)))}" if start is not None else ""
    pairs = (f"(select {cols} from ({after}) as n join kpis.health_scores_daily as p "
             f"on p.account_id = n.account_id and p.day = n.day - n.window_days{since})")
    return hs.explain_sql(config, pairs, None)


def _write(con, table: str, sql: str, create: bool) -> int:
    """Insert the rows of ``sql`` into ``table`` (by name), or replace the table with them; the row count."""
    if create:
        con.execute(f"create schema if not exists {table.split('.')[0]}")
        return con.execute(f"create or replace table {table} as {sql}").fetchall()[0][0]
    return con.execute(f"insert into {table} by name {sql}").fetchall()[0][0]


def score_history(con, config: hs.HealthConfig, full_refresh: bool = False,
                  chunk_rows: int = SCORE_CHUNK_ROWS) -> dict:
    """Score kpis.account_indicators_daily into kpis.health_scores_daily and kpis.health_score_changes.

    Set-based in DuckDB: hs.score_sql and hs.explain_sql are score_frame and explain_changes as SQL (same
    values, same text). A full build scores every indicator row; an incremental one deletes and rescores
    the days from the window's start, reading the stored scores of the 30 days before it for the deltas and
    explanations. Accounts are scored in ranges of about ``chunk_rows`` rows, one insert per range and
    table, so the joins' memory stays bounded at any history size. One transaction: readers see the old or
    the new history, never half of it."""
    mode, start, reason = plan_scoring(con, config, full_refresh)
    ranges = _chunks(con, start, chunk_rows)
    rows, seconds = 0, {"scores": 0.0, "changes": 0.0}
    con.execute("begin transaction")
    try:
        if mode == "incremental":
            for table in ("kpis.health_scores_daily", "kpis.health_score_changes"):
                con.execute(f"delete from {table} where day >= ?", [start])
            hist = (history.previous_window(con) or {}).get("history_start")
            if hist is not None:
                for table in ("kpis.health_scores_daily", "kpis.health_score_changes"):
                    con.execute(f"delete from {table} where day < ?", [hist])
        create = mode == "full"
        for accounts in ranges if len(ranges) > 1 else [None]:
            t0 = time.perf_counter()
            rows += _write(con, "kpis.health_scores_daily", scores_sql(config, accounts, start, mode == "incremental"),
                           create)
            t1 = time.perf_counter()
            con.execute(f"create or replace temp table {MOVED} as {moved_sql(accounts, start)}")
            _write(con, "kpis.health_score_changes", changes_sql(config, start), create)
            seconds["scores"] += t1 - t0
            seconds["changes"] += time.perf_counter() - t1
            create = False
        con.execute(f"drop table if exists {MOVED}")
        if history._exists(con, history.WINDOW_TABLE):
            history.mark_scored(con)
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    return {"mode": mode, "start_day": start, "reason": reason, "rows_scored": rows, "chunks": len(ranges),
            **{f"seconds_{k}": round(v, 2) for k, v in seconds.items()}}


DAILY_DOCS = {
    "day": "the as-of day", "account_id": "CRM account", "score": "health score 0..100",
    "is_active": "MRR > 0 on the day", "arr": "12 x MRR on the day, USD",
    "band": "green (>= bands.green), yellow (>= bands.yellow) or red",
    "components_present": "components with data, comma-separated (missing ones are left out, weights rescaled)",
    "components_present_count": "number of components with data", "config_version": "hash of the config file",
    "delta_7d": "score - score 7 days earlier (null when not scored then)",
    "delta_30d": "score - score 30 days earlier (null when not scored then)",
    **{f"{c}_score": f"{c} component 0..100, null when it has no data" for c in hs.COMPONENTS},
    **{f"contrib_{c}": f"points of the score from {c} (rescaled weight x component score); they add up to score"
       for c in hs.COMPONENTS},
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
def health_scores_daily(context: dg.AssetExecutionContext, duckdb: DuckDBResource, config: HealthRunConfig):
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
               for c in hs.COMPONENTS},
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
             "rows_scored": stats["rows_scored"], "seconds_scoring": round(t1 - t0, 2)}
    yield dg.MaterializeResult(asset_key=SCORES_DAILY, metadata={
        **daily_meta, **common, **build, "latest_bands": dg.MetadataValue.md(latest.to_markdown(index=False))})
    yield dg.MaterializeResult(asset_key=SCORE_CHANGES, metadata={**change_meta, **common, **build})


LATEST_SQL = """
    select s.*, i.root_account_id, i.mrr
    from kpis.health_scores_daily as s
    inner join kpis.account_indicators_daily as i
        on i.account_id = s.account_id and i.day = s.day
    where s.day = (select max(day) from kpis.health_scores_daily)
"""


def latest_scores(con, config: hs.HealthConfig) -> pd.DataFrame:
    """Each account's score on the latest day with its ARR and the ARR-weighted roll-up of its hierarchy."""
    latest = con.execute(LATEST_SQL).df()
    parents = hs.rollup_parent(latest, config)
    return latest.merge(parents, on="root_account_id", how="left")


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
        df = latest_scores(con, config)
        write_frame(con, "kpis.health_scores", df, {"day": "date", "components_present_count": "integer"})
        meta = table_metadata(con, "kpis", "health_scores", {
            **DAILY_DOCS, "root_account_id": "top of the hierarchy", "arr": "12 x MRR on the day, USD",
            "parent_score": "ARR-weighted score of the hierarchy under root_account_id",
            "parent_band": "band of parent_score", "parent_arr": "ARR of the hierarchy's scored accounts",
            "parent_accounts_scored": "accounts of the hierarchy with a score"})
    return dg.MaterializeResult(metadata={**meta, "config_version": config.version})


# ----------------------------------------------------------------------------------------------- backtest

OUTCOME_SQL = f"""
    with days as (
        select month as as_of_day
        from marts.dim_month
        where month >= (select min(day) from marts.dim_day)
            and cast(month + interval {BACKTEST_HORIZON_DAYS} day as date) <= (select max(day) from marts.dim_day)
    ),
    base as (
        select d.as_of_day, i.account_id, i.mrr
        from days as d
        inner join kpis.account_indicators_daily as i on i.day = d.as_of_day
        where i.mrr > 0
    ),
    low as (
        select b.as_of_day, b.account_id, min(c.mrr) as min_mrr
        from base as b
        inner join marts.mrr_daily_changes as c
            on c.account_id = b.account_id
            and c.change_date > b.as_of_day
            and c.change_date <= cast(b.as_of_day + interval {BACKTEST_HORIZON_DAYS} day as date)
        group by b.as_of_day, b.account_id
    )
    select
        b.as_of_day,
        b.account_id,
        b.mrr,
        coalesce(l.min_mrr <= {1 - CONTRACTION_SHARE} * b.mrr, false) as churned
    from base as b
    left join low as l on l.as_of_day = b.as_of_day and l.account_id = b.account_id
"""


def backtest_observations(con, config: hs.HealthConfig) -> pd.DataFrame:
    """Accounts with MRR > 0 on each month's first day (whose 90 days are in the data), scored with
    ``config`` from that day's indicators, and whether they churned (logo churn or contraction >= 50%)
    within the next 90 days."""
    outcomes = con.execute(OUTCOME_SQL).df()
    cols = ", ".join(indicator_columns(config))
    ind = con.execute(
        f"select i.account_id, i.day, {cols} from kpis.account_indicators_daily as i "
        f"inner join (select distinct as_of_day from ({OUTCOME_SQL}) as o) as d on d.as_of_day = i.day"
    ).df()
    scores = hs.score_frame(ind, config)[["day", "account_id", "score", "band"]]
    scores = scores.rename(columns={"day": "as_of_day"})
    outcomes["as_of_day"] = pd.to_datetime(outcomes["as_of_day"])
    scores["as_of_day"] = pd.to_datetime(scores["as_of_day"])
    return outcomes.merge(scores, on=["as_of_day", "account_id"], how="inner")


def build_backtest(con) -> pd.DataFrame:
    frames = []
    for config, is_current in load_all_configs():
        table = hs.backtest_table(backtest_observations(con, config), config)
        table["is_current"] = is_current
        frames.append(table)
    return pd.concat(frames, ignore_index=True)


def backtest_summary(con) -> dict:
    """The live config's backtest from kpis.health_backtest, for tests and reports::

        {"config_version", "config_label", "auc_pooled", "auc_by_month": {"2025-01-01": 0.8, ...},
         "auc_min", "auc_mean", "churn_rate_by_band": {"green", "yellow", "red"}, "red_to_green_ratio",
         "accounts", "churned", "by_version": {version: {"label", "auc_pooled", "churn_rate_by_band"}}}
    """
    df = con.execute("select * from kpis.health_backtest order by config_version, scope, as_of_day").df()
    cur = df[df["is_current"]]
    pooled = cur[cur["scope"] == "pooled"].iloc[0]
    months = cur[cur["scope"] == "month"]
    rates = {b: float(pooled[f"churn_rate_{b}"]) for b in hs.BANDS}
    by_version = {}
    for _, row in df[df["scope"] == "pooled"].iterrows():
        by_version[row["config_version"]] = {
            "label": row["config_label"], "auc_pooled": float(row["auc"]),
            "churn_rate_by_band": {b: float(row[f"churn_rate_{b}"]) for b in hs.BANDS}}
    return {
        "config_version": pooled["config_version"], "config_label": pooled["config_label"],
        "auc_pooled": float(pooled["auc"]),
        "auc_by_month": {str(pd.Timestamp(d).date()): float(a) for d, a in zip(months["as_of_day"], months["auc"])},
        "auc_min": float(months["auc"].min()), "auc_mean": float(months["auc"].mean()),
        "churn_rate_by_band": rates,
        "red_to_green_ratio": rates["red"] / rates["green"] if rates["green"] > 0 else float("inf"),
        "accounts": int(pooled["accounts"]), "churned": int(pooled["churned"]),
        "by_version": by_version,
    }


def backtest_markdown(df: pd.DataFrame) -> tuple[str, str]:
    """(summary per config version, per-month table of the live config) as markdown."""
    pooled = df[df["scope"] == "pooled"].copy()
    pooled["ratio red/green"] = pooled["churn_rate_red"] / pooled["churn_rate_green"]
    cols = ["config_label", "config_version", "is_current", "accounts", "churned", "auc", "churn_rate_green",
            "churn_rate_yellow", "churn_rate_red", "ratio red/green"]
    summary = pooled[cols].to_markdown(index=False, floatfmt=".3f")
    months = df[(df["scope"] == "month") & df["is_current"]].copy()
    months["as_of_day"] = months["as_of_day"].astype(str).str[:10]
    mcols = ["as_of_day", "accounts", "churned", "auc", "accounts_green", "churn_rate_green", "accounts_yellow",
             "churn_rate_yellow", "accounts_red", "churn_rate_red"]
    return summary, months[mcols].to_markdown(index=False, floatfmt=".3f")


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


# ------------------------------------------------------------------------------------------------ wiring

models = load_models(SQL_DIR, SCHEMA)
INDICATOR_MODEL = next(m for m in models if m.key == INDICATORS)
ACTIVITY_MODEL = next(m for m in models if m.table == history.ACTIVITY_TABLE)
health_sql_assets = sql_assets([m for m in models if m not in (INDICATOR_MODEL, ACTIVITY_MODEL)], group=GROUP,
                               owners=OWNERS, freshness_policy=NIGHTLY_FRESHNESS)


def _build_metadata(stats: dict, seconds: float) -> dict:
    return {"build_mode": stats["mode"], "build_reason": stats["reason"],
            "build_start_day": str(stats["start_day"]) if stats["start_day"] else "all days",
            "rows_written": stats["rows_written"], "rows_deleted": stats["rows_deleted"],
            "account_ranges": stats["account_ranges"], "seconds": seconds}


@dg.asset(
    # the calendar (as-of day) and the subscription periods (account ranges) plan the build
    key=ACTIVITY_MODEL.key, deps=[*ACTIVITY_MODEL.deps, dg.AssetKey(["marts", "dim_day"]),
                                  dg.AssetKey(["marts", "subscription_periods"])], group_name=GROUP, kinds={"duckdb", "sql"}, owners=OWNERS,
    freshness_policy=NIGHTLY_FRESHNESS, pool=WAREHOUSE_POOL, code_version=ACTIVITY_MODEL.code_version,
    metadata={"grain": ", ".join(ACTIVITY_MODEL.grain)},
    description=(ACTIVITY_MODEL.description + f"\n\nUnique key: `{', '.join(ACTIVITY_MODEL.grain)}`. "
                 "Built incrementally: a nightly run rebuilds the days from the last build's as-of day minus "
                 f"the lookback (`{history.ENV_LOOKBACK_DAYS}`, default {history.DEFAULT_LOOKBACK_DAYS}); a "
                 "change in older inputs (a late event, a restated ticket or rating, a remapped account) or "
                 "`full_refresh` in the run config rebuilds every day."),
)
def account_activity_daily(context: dg.AssetExecutionContext, duckdb: DuckDBResource,
                           config: HealthRunConfig) -> dg.MaterializeResult:
    t0 = time.perf_counter()
    with duckdb.get_connection() as con:
        window = history.plan_activity_window(con, ACTIVITY_MODEL.code_version, full_refresh=config.full_refresh)
        stats = history.build_activity(con, ACTIVITY_MODEL, window)
        meta = table_metadata(con, SCHEMA, ACTIVITY_MODEL.name, ACTIVITY_MODEL.columns)
    seconds = round(time.perf_counter() - t0, 2)
    context.log.info(f"{stats['mode']} build from {stats['start_day'] or 'the start'} ({stats['reason']}): "
                     f"{stats['rows_written']} rows in {seconds}s")
    return dg.MaterializeResult(metadata={**meta, **_build_metadata(stats, seconds)})


@dg.asset(
    key=INDICATORS, deps=INDICATOR_MODEL.deps, group_name=GROUP, kinds={"duckdb", "sql"}, owners=OWNERS,
    freshness_policy=NIGHTLY_FRESHNESS, pool=WAREHOUSE_POOL, code_version=INDICATOR_MODEL.code_version,
    metadata={"grain": ", ".join(INDICATOR_MODEL.grain)},
    description=(INDICATOR_MODEL.description + f"\n\nUnique key: `{', '.join(INDICATOR_MODEL.grain)}`. "
                 "Built incrementally: a nightly run rebuilds the days from the last built day minus "
                 f"the lookback (`{history.ENV_LOOKBACK_DAYS}`, default {history.DEFAULT_LOOKBACK_DAYS}); "
                 f"history kept: `{history.ENV_HISTORY_DAYS}` days (default all); `full_refresh` in the run "
                 "config rebuilds everything."),
)
def account_indicators_daily(context: dg.AssetExecutionContext, duckdb: DuckDBResource,
                             config: HealthRunConfig) -> dg.MaterializeResult:
    t0 = time.perf_counter()
    with duckdb.get_connection() as con:
        window = history.plan_window(con, INDICATOR_MODEL.table, INDICATOR_MODEL.code_version,
                                     full_refresh=config.full_refresh)
        stats = history.build_indicators(con, INDICATOR_MODEL, window)
        # a system turned off: its indicators are null, not 0 (no tickets is not perfect support); the score
        # leaves them out and rescales the other weights (lib/systems.py, README "Systems turned off")
        off = systems.off_systems()
        nulled = systems.null_indicators(off)
        if nulled:
            con.execute(f"update {INDICATOR_MODEL.table} set " + ", ".join(f"{c} = null" for c in nulled))
            context.log.info(f"{', '.join(off)} off: indicators {', '.join(nulled)} set to null")
        meta = table_metadata(con, SCHEMA, INDICATOR_MODEL.name, INDICATOR_MODEL.columns)
    seconds = round(time.perf_counter() - t0, 2)
    context.log.info(f"{stats['mode']} build from {stats['start_day'] or 'the start'} ({stats['reason']}): "
                     f"{stats['rows_written']} rows in {seconds}s")
    return dg.MaterializeResult(metadata={
        **meta, **_build_metadata(stats, seconds), "systems_off": ", ".join(off) or "none",
        "history_start": str(stats["history_start"]) if stats["history_start"] else "all days"})

