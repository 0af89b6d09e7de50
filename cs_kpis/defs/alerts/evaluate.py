"""How many alerts the rules raise and whether they mean anything: volume, share of accounts, and lift.

``python -m cs_kpis.defs.alerts.evaluate [--warehouse PATH] [--rules PATH]`` prints, per alert type, the
table in README.md ("Demo company: volume and evidence"). It only reads the warehouse (it opens it
read-only; copy the file first while a run writes to it) and the rules; nothing is logged or notified.

- **open**: alerts firing on the as-of day (status new or open), and their share of active accounts;
- **per week**: notifications (raises and reminders, what a CSM receives) per week over the last
  ``volume_weeks`` weeks, for the company and per CSM (CSMs owning an active account);
- **precision and lift**: every notification on a paying account between ``warmup_days`` after the first
  day (when every trailing window exists) and ``horizon_days`` before the as-of day is followed ``horizon_days``
  forward. Risk types: churned = the account's MRR fell to <= 50% of that day's MRR within 90 days (logo
  churn or contraction >= 50%, the health backtest's outcome, cs_kpis/defs/health/assets.py). Expansion:
  expanded = its MRR rose above that day's MRR within 90 days. Base rate: the same outcome over every
  paying account-day of the same period. Lift = precision / base rate: 1 means the alert knows nothing.

No Dagster here, like engine.py: tests call ``evaluate`` on a hand-built warehouse.
"""

import argparse
import sys
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pandas as pd

from cs_kpis.defs.alerts import engine

# the churn outcome is the health backtest's: its share lives there (the outcome SQL below repeats the
# backtest's shape; it merges with it when health/ becomes an ordinary layer, issue 17 item 1)
from cs_kpis.defs.health.assets import CONTRACTION_SHARE

RISK_TYPES = ("health_drop", "health_red", "usage_drop", "champion_inactive", "ticket_spike",
              "low_nps_high_value", "renewal_risk")
EXPANSION_TYPES = ("expansion_opportunity",)

OUTCOME_SQL = """
    with base as (
        select account_id, day, mrr
        from kpis.account_indicators_daily
        where mrr > 0 and day between ? and ?
    ),
    moves as (
        select b.account_id, b.day, min(c.mrr) as min_mrr, max(c.mrr) as max_mrr
        from base as b
        inner join marts.mrr_daily_changes as c
            on c.account_id = b.account_id
            and c.change_date > b.day
            and c.change_date <= b.day + cast(? as integer)
        group by b.account_id, b.day
    )
    select b.account_id, b.day,
        coalesce(m.min_mrr <= ? * b.mrr, false) as churned,
        coalesce(m.max_mrr > b.mrr, false) as expanded
    from base as b
    left join moves as m on m.account_id = b.account_id and m.day = b.day
"""


def outcomes(con, first: date, last: date, horizon_days: int = 90) -> pd.DataFrame:
    """Per paying account-day in [first, last]: churned / expanded within the next ``horizon_days``."""
    df = con.execute(OUTCOME_SQL, [first, last, horizon_days, 1 - CONTRACTION_SHARE]).df()
    df["day"] = pd.to_datetime(df["day"]).dt.date
    return df


def evaluate(con, rules: dict, horizon_days: int = 90, volume_weeks: int = 12, warmup_days: int = 60) -> dict:
    """Volume and evidence per alert type: {"table": one row per type, "by_severity", and the window, base
    rates and counts the table is relative to} (see the module docstring for the measures)."""
    as_of = engine.as_of_day(con)
    first_day = con.execute("select min(day) from kpis.account_indicators_daily").fetchall()[0][0]
    try:
        cand, _ = engine.compute(con, rules, as_of, {})
        log = engine.log_frame(con)
    finally:
        engine.drop_temp_tables(con)
    active, csms = con.execute(
        "select count(*), count(distinct a.csm_id) from kpis.account_indicators_daily as i "
        "left join marts.accounts as a on a.account_id = i.account_id where i.day = ? and i.is_active",
        [as_of]).fetchall()[0]

    notified = log[log["event"].isin(engine.NOTIFY_EVENTS)].copy()  # log_frame has its columns even when empty
    since = as_of - timedelta(days=7 * volume_weeks)
    recent = notified[notified["event_day"] > since]

    eval_first, eval_last = first_day + timedelta(days=warmup_days), as_of - timedelta(days=horizon_days)
    out = outcomes(con, eval_first, eval_last, horizon_days) if eval_first <= eval_last else \
        pd.DataFrame(columns=["account_id", "day", "churned", "expanded"])
    base = {"churned": float(out["churned"].mean()) if len(out) else float("nan"),
            "expanded": float(out["expanded"].mean()) if len(out) else float("nan")}
    joined = notified.merge(out, left_on=["account_id", "event_day"], right_on=["account_id", "day"], how="inner")

    rows = []
    for t in engine.ALERT_TYPES:
        firing = cand[(cand["alert_type"] == t) & cand["status"].isin(["new", "open"])]
        per_week = (recent["alert_type"] == t).sum() / volume_weeks
        outcome = "expanded" if t in EXPANSION_TYPES else "churned"
        ev = joined[joined["alert_type"] == t]
        precision = float(ev[outcome].mean()) if len(ev) else float("nan")
        rows.append({
            "alert_type": t, "open": len(firing), "new_today": int((firing["status"] == "new").sum()),
            "share_of_active": len(firing) / active if active else float("nan"),
            "per_week": per_week, "per_csm_week": per_week / csms if csms else float("nan"),
            "outcome": outcome, "evaluated": len(ev), "precision": precision,
            "base_rate": base[outcome], "lift": precision / base[outcome] if base[outcome] else float("nan"),
        })
    table = pd.DataFrame(rows)
    # types whose severity tells two arms apart (renewal_risk: critical = cancellation scheduled)
    sev = joined.groupby(["alert_type", "severity"]).agg(
        evaluated=("churned", "size"), churned=("churned", "mean"), expanded=("expanded", "mean")).reset_index()
    sev = sev[sev.groupby("alert_type")["severity"].transform("nunique") > 1].reset_index(drop=True)
    firing = cand[cand["status"].isin(["new", "open"])]
    risk_accounts = firing[firing["alert_type"].isin(RISK_TYPES)]["account_id"].nunique()
    return {"table": table, "by_severity": sev, "accounts_with_risk_alert": int(risk_accounts),
            "as_of": as_of, "active_accounts": int(active), "csms": int(csms),
            "volume_since": since, "eval_first": eval_first, "eval_last": eval_last,
            "account_days": len(out), "base_rate": base}


def thresholds(rules: dict) -> dict[str, str]:
    """A one-line summary of each type's tunable settings (everything but severity, cooldown and inputs)."""
    out = {}
    for t in engine.ALERT_TYPES:
        rule = rules["types"][t]
        parts = [f"{k} {v}" for k, v in rule.items() if k not in ("severity", "inputs", "cooldown_days")]
        out[t] = ", ".join(parts + [f"cooldown {rule['cooldown_days']} d"])
    return out


def markdown(result: dict, rules: dict) -> str:
    t = result["table"].copy()
    summary = thresholds(rules)
    intro = (f"as of {result['as_of']}: {result['active_accounts']} active accounts, {result['csms']} CSMs; "
             f"per week = notifications (raises + reminders) since {result['volume_since']}; precision over "
             f"notifications {result['eval_first']} .. {result['eval_last']} ({result['account_days']:,} paying "
             f"account-days; base rates: churn {result['base_rate']['churned']:.1%}, "
             f"expansion {result['base_rate']['expanded']:.1%} within 90 days)")
    header = ("| type | thresholds | open (new) | % of active | per week | per CSM / week | outcome in 90 d "
              "| notifications evaluated | precision | base rate | lift |")
    lines = [intro, "", header, "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in t.itertuples():
        lines.append(
            f"| {r.alert_type} | {summary[r.alert_type]} | {r.open} ({r.new_today}) | {r.share_of_active:.1%} "
            f"| {r.per_week:.1f} | {r.per_csm_week:.2f} | {r.outcome} | {r.evaluated:,} | {r.precision:.1%} "
            f"| {r.base_rate:.1%} | {r.lift:.1f}x |")
    total_week = t["per_week"].sum()
    lines.append(f"| **all** | | {t['open'].sum()} ({t['new_today'].sum()}) | | {total_week:.1f} "
                 f"| {total_week / result['csms']:.2f} | | | | | |")
    share = result["accounts_with_risk_alert"] / result["active_accounts"] if result["active_accounts"] else 0
    risk_line = (f"accounts with at least one open risk alert (all types but expansion_opportunity): "
                 f"{result['accounts_with_risk_alert']} ({share:.1%} of active)")
    lines += ["", risk_line]
    sev = result["by_severity"]
    if len(sev):
        lines += ["", "| type | severity | notifications evaluated | churned in 90 d | lift |", "|---|---|---|---|---|"]
        for r in sev.itertuples():
            lines.append(f"| {r.alert_type} | {r.severity} | {r.evaluated:,} | {r.churned:.1%} "
                         f"| {r.churned / result['base_rate']['churned']:.1f}x |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from cs_kpis import settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", type=Path, default=None, help="DuckDB file (default: the project's)")
    parser.add_argument("--rules", type=Path, default=None, help="alert rules YAML (default: alert_rules.yaml)")
    args = parser.parse_args(argv)
    rules = engine.load_rules(args.rules)
    with duckdb.connect(str(args.warehouse or settings.warehouse_path()), read_only=True) as con:
        con.execute("set TimeZone = 'UTC'")
        result = evaluate(con, rules)
    print(markdown(result, rules))
    return 0


if __name__ == "__main__":
    sys.exit(main())
