"""The evidence for the health score (kpis.health_backtest): for every config version (the live one and
config/archive/) and every month whose next BACKTEST_HORIZON_DAYS days are in the data, the accounts with MRR
on the month's first day, their score that day and whether they churned within the horizon.

The scores come from the one scorer (scoring.py): the live config's from kpis.health_scores_daily itself,
an archived config's from the same score_sql over that day's indicator rows. The statistics (AUC, churn
rate by band) are computed here.
"""

import numpy as np
import pandas as pd

from cs_kpis.defs.health.health_score import BANDS, HealthConfig, load_all_configs
from cs_kpis.defs.health.scoring import score_sql

BACKTEST_HORIZON_DAYS = 90
CONTRACTION_SHARE = 0.5
"""churn in the backtest: MRR at or below (1 - 0.5) x the MRR at the scoring day within the horizon"""

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



def auc(scores, churned) -> float:
    """Area under the ROC curve of the health score as a churn predictor: the probability that a random
    account that churned scored lower than a random one that did not (ties count half). NaN when either
    class is empty. Mann-Whitney U with average ranks, O(n log n)."""
    s = np.asarray(scores, dtype="float64")
    y = np.asarray(churned, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = pd.Series(-s).rank(method="average").to_numpy()  # low score = high risk = high rank
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def backtest_table(observations: pd.DataFrame, config: HealthConfig) -> pd.DataFrame:
    """Per as-of day (and pooled): accounts, churned, churn rate, AUC, and per band accounts, churned and
    churn rate. ``observations`` needs as_of_day, score, band and churned (bool), one row per account."""
    rows = []
    groups = [(d, g) for d, g in observations.groupby("as_of_day", sort=True)] + [(None, observations)]
    for as_of, g in groups:
        row = {"scope": "month" if as_of is not None else "pooled", "as_of_day": as_of,
               "config_version": config.version, "config_label": config.label,
               "accounts": len(g), "churned": int(g["churned"].sum()),
               "churn_rate": float(g["churned"].mean()) if len(g) else float("nan"),
               "auc": auc(g["score"], g["churned"])}
        for b in BANDS:
            gb = g[g["band"] == b]
            row[f"accounts_{b}"] = len(gb)
            row[f"churned_{b}"] = int(gb["churned"].sum())
            row[f"churn_rate_{b}"] = float(gb["churned"].mean()) if len(gb) else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)


def scores_sql(con, config: HealthConfig, outcome: str | None = None) -> str:
    """The (day, account_id, score, band) of ``config`` on the backtest's as-of days: the stored rows of
    kpis.health_scores_daily when they are of this config version, else score_sql over those days'
    indicator rows. ``outcome``: a table holding OUTCOME_SQL's rows (None: OUTCOME_SQL itself)."""
    days = f"(select distinct as_of_day from {outcome or f'({OUTCOME_SQL}) as o'})"
    stored = con.execute("select count(*) from kpis.health_scores_daily where config_version = ?",
                         [config.version]).fetchall()[0][0]
    if stored:
        return (f"select s.day, s.account_id, s.score, s.band from kpis.health_scores_daily as s "
                f"where s.config_version = '{config.version}' and s.day in {days}")
    source = f"(select i.* from kpis.account_indicators_daily as i where i.day in {days})"
    return f"select day, account_id, score, band from ({score_sql(config, source)}) as s"


def backtest_observations(con, config: HealthConfig, outcome: str | None = None) -> pd.DataFrame:
    """Accounts with MRR > 0 on each month's first day (whose 90 days are in the data), their score with
    ``config`` that day, and whether they churned (logo churn or contraction >= 50%) within the next 90 days.
    ``outcome``: a table holding OUTCOME_SQL's rows, the same for every config (None: OUTCOME_SQL itself)."""
    o = f"select * from {outcome}" if outcome else OUTCOME_SQL
    df = con.execute(f"""
        with o as ({o}), s as ({scores_sql(con, config, outcome)})
        select o.as_of_day, o.account_id, o.mrr, o.churned, s.score, s.band
        from o inner join s on s.day = o.as_of_day and s.account_id = o.account_id
        order by o.as_of_day, o.account_id""").df()
    df["as_of_day"] = pd.to_datetime(df["as_of_day"])
    return df


OUTCOME_TABLE = "_health_backtest_outcome"
"""the temporary table build_backtest holds OUTCOME_SQL's rows in while it scores every config version"""


def build_backtest(con) -> pd.DataFrame:
    # the outcomes do not depend on the config: computed once for all versions, where each version's query
    # computed them twice (its rows and its as-of days; BENCHMARKS.md "Small steps of the nightly")
    con.execute(f"create or replace temp table {OUTCOME_TABLE} as {OUTCOME_SQL}")
    try:
        frames = []
        for config, is_current in load_all_configs():
            table = backtest_table(backtest_observations(con, config, OUTCOME_TABLE), config)
            table["is_current"] = is_current
            frames.append(table)
    finally:
        con.execute(f"drop table if exists {OUTCOME_TABLE}")
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
    rates = {b: float(pooled[f"churn_rate_{b}"]) for b in BANDS}
    by_version = {}
    for _, row in df[df["scope"] == "pooled"].iterrows():
        by_version[row["config_version"]] = {
            "label": row["config_label"], "auc_pooled": float(row["auc"]),
            "churn_rate_by_band": {b: float(row[f"churn_rate_{b}"]) for b in BANDS}}
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
