"""One renewal: the indicator, the renewal_risk alert and the worklist agree (docs/KPI_DEFINITIONS.md "Renewal").

The hand-built warehouse of fixtures.py: acc_a's plan sub_a is billed monthly (paid period 03-01 .. 04-01) and
its add-on sub_a2 annually (2024-07-01 .. 2025-07-01), set to cancel on 04-20. On 03-15 "the nearest end of any
paid period" (what days_to_renewal used to be) is 04-01, 17 days away; the renewal, the end of the annual
term, is 07-01, 108 days away. All three places must say 07-01.
"""

import datetime as dt
from pathlib import Path

import pandas as pd

from cs_kpis.defs.alerts import engine
from cs_kpis.lib.sql import SqlModel

DAY = dt.date(2025, 3, 15)
TERM_END = dt.date(2025, 7, 1)
WORKLIST = Path(engine.__file__).parents[1] / "reports" / "sql" / "account_worklist.sql"


def indicator(con, day) -> int | None:
    return con.execute("select days_to_renewal from kpis.account_indicators_daily where account_id = 'acc_a' "
                       "and day = ?", [day]).fetchall()[0][0]


def test_the_indicator_the_alert_and_the_worklist_give_the_same_renewal(wh):
    con = wh
    # the case tells the definitions apart: the monthly period in force on 03-15 ends sooner than the term
    any_period_end = con.execute(
        "select min(cast(period_end as date)) from staging.stg_billing__invoice_lines "
        "where cast(period_start as date) <= ? and cast(period_end as date) > ?", [DAY, DAY]).fetchall()[0][0]
    assert (any_period_end - DAY).days == 17
    assert indicator(con, DAY) == (TERM_END - DAY).days == 108

    # the alert, on every day from the first: yellow all along; a rule window of 120 days reaches 03-15
    con.execute("create table kpis.health_scores_daily as select account_id, day, 'yellow' as band, "
                "55.0 as score from kpis.account_indicators_daily")
    rule = {**engine.load_rules()["types"]["renewal_risk"], "renewal_within_days": 120}
    sql, params = engine.condition_sql("renewal_risk", rule, dt.date(2025, 1, 1), dt.date(2025, 4, 30))
    cond = con.execute(sql, params).df()
    cond["day"] = pd.to_datetime(cond["day"]).dt.date
    fired = cond[cond["reason"].str.contains("contract renews")].set_index("day")
    assert fired.index.min() == TERM_END - dt.timedelta(days=120)  # 03-03
    assert fired.index.max() == dt.date(2025, 4, 19)  # from 04-20 the term is set to cancel: no renewal
    for day, reason in fired["reason"].items():
        assert f"contract renews in {(TERM_END - day).days} days" in reason
        assert f"contract renews in {indicator(con, day)} days" in reason
    assert "contract renews in 108 days with health 55 (yellow)" in fired.loc[DAY, "reason"]

    # the worklist on 03-15, with that day's alert open
    con.execute("alter table marts.accounts add column account_name varchar")
    con.execute("alter table marts.accounts add column segment varchar")
    con.execute("alter table marts.accounts add column csm_id varchar")
    con.execute("create table staging.stg_crm__users (user_id varchar, user_name varchar)")
    con.execute("create table kpis.health_scores as select account_id, day, is_active, arr, 55.0 as score, "
                "'yellow' as band, 0.0 as delta_30d, 60.0 as usage_score, 60.0 as adoption_score, "
                "60.0 as support_score, 60.0 as sentiment_score, 60.0 as billing_score "
                "from kpis.account_indicators_daily where day = ?", [DAY])
    con.execute("create schema alerts")
    con.execute("create table alerts.alert_candidates (account_id varchar, alert_type varchar, severity varchar, "
                "reason varchar, first_seen date, status varchar)")
    con.execute("insert into alerts.alert_candidates values ('acc_a', 'renewal_risk', ?, ?, ?, 'open')",
                [fired.loc[DAY, "severity"], fired.loc[DAY, "reason"], DAY])
    worklist = con.execute(SqlModel.from_file(WORKLIST, "reports").sql).df().set_index("account_id")
    a = worklist.loc["acc_a"]
    assert a["days_to_renewal"] == 108
    assert pd.Timestamp(a["renewal_date"]).date() == TERM_END
    assert "contract renews in 108 days" in a["risk_reasons"]
    # acc_b (no billing) has no renewal; nothing falls back to another definition
    assert pd.isna(worklist.loc["acc_b", "renewal_date"])


def test_the_renewal_is_computed_once():
    """The term rule is written in account_indicators_daily.sql only; the alert and the worklist read its column."""
    defs = Path(engine.__file__).parents[1]
    rule = "cast(l.period_end as date)) > 180"
    written = sorted(p.relative_to(defs).as_posix() for p in defs.rglob("*.sql") if rule in p.read_text())
    assert written == ["health/sql/account_indicators_daily.sql"]
    for path in (defs / "alerts" / "sql" / "renewal_risk.sql", WORKLIST):
        code = "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("--"))
        assert "i.days_to_renewal" in code and "period_end" not in code and "invoice_lines" not in code, path
