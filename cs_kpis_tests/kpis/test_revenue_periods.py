"""kpis.mrr_periods and kpis.revenue_periods: the weekly and quarterly bridge and KPIs, pinned by numbers worked
out by hand, and the month rows equal to the monthly tables."""

import pytest

from cs_kpis.defs.kpis import checks_periods
from cs_kpis.lib.checks import run_rule
from cs_kpis.lib.portable import to_spark_steps
from cs_kpis_tests.kpis.conftest import MOVEMENT_ACCOUNTS, MOVEMENT_CHANGES
from cs_kpis_tests.kpis.periods import (
    MONTHLY_SHARED,
    QUARTER_ACCOUNTS,
    QUARTER_CHANGES,
    WEEK_ACCOUNTS,
    WEEK_CHANGES,
    make_period_warehouse,
    month_rows_mismatch_sql,
    mrr_month_rows_mismatch_sql,
)
from cs_kpis_tests.kpis.warehouse import rows

BRIDGE = ("starting_mrr", "new_mrr", "expansion_mrr", "contraction_mrr", "churned_mrr", "reactivation_mrr",
          "ending_mrr")

@pytest.fixture
def weeks(tmp_path):
    con = make_period_warehouse(tmp_path, WEEK_CHANGES, WEEK_ACCOUNTS, data_as_of="2024-01-31")
    yield con
    con.close()


@pytest.fixture
def quarters(tmp_path):
    con = make_period_warehouse(tmp_path, QUARTER_CHANGES, QUARTER_ACCOUNTS, data_as_of="2024-04-15")
    yield con
    con.close()


@pytest.fixture
def movements(tmp_path):
    con = make_period_warehouse(tmp_path, MOVEMENT_CHANGES, MOVEMENT_ACCOUNTS, data_as_of="2024-06-15")
    yield con
    con.close()


def periods(con, cadence, segment="all") -> dict[str, dict]:
    got = rows(con, "select strftime(period_start, '%Y-%m-%d') as p, * from kpis.revenue_periods "
                    "where cadence = ? and segment = ? order by period_start", [cadence, segment])
    return {r.pop("p"): r for r in got}


def bridge(got: dict[str, dict]) -> dict[str, tuple]:
    return {p: tuple(int(r[c]) for c in BRIDGE) for p, r in got.items()}


# ----------------------------------------------------------------------------------------------- weeks


def test_weekly_bridge(weeks):
    #                                   start  new  exp  contr churn react  end
    assert bridge(periods(weeks, "week")) == {
        "2024-01-01": (0, 600, 0, 0, 0, 0, 600),     # a, b, c new
        "2024-01-08": (600, 80, 50, 0, 0, 0, 730),   # d new, a +50
        "2024-01-15": (730, 0, 0, 0, 200, 0, 530),   # b churned; e's mid-week MRR never shows
        "2024-01-22": (530, 0, 90, 60, 0, 0, 560),   # a +90, c -60
        "2024-01-29": (560, 0, 0, 0, 0, 50, 610),    # b back (active at the W1 and W2 ends): reactivation
    }
    assert bridge(periods(weeks, "week", "smb"))["2024-01-22"] == (150, 0, 90, 0, 0, 0, 240)
    assert bridge(periods(weeks, "week", "enterprise"))["2024-01-22"] == (380, 0, 0, 60, 0, 0, 320)


def test_weekly_retention_churn_and_quick_ratio(weeks):
    got = periods(weeks, "week")
    w2, w3, w4, w5 = (got[d] for d in ("2024-01-08", "2024-01-15", "2024-01-22", "2024-01-29"))
    # W2: cohort a, b, c (600): (600 + 50) / 600; nothing lost, so no quick ratio
    assert (w2["nrr"], w2["grr"], w2["logo_churn_rate"], w2["quick_ratio"]) == pytest.approx((650 / 600, 1.0, 0.0, None))
    # W3: b (200 of 730) churned; 1 of 4 logos; gained 0 / lost 200
    assert (w3["nrr"], w3["grr"], w3["logo_churn_rate"], w3["quick_ratio"]) == pytest.approx(
        (530 / 730, 530 / 730, 0.25, 0.0))
    # W4: (530 + 90 - 60) / 530 = 1.0566; GRR (530 - 60) / 530 = 0.8868; quick ratio 90 / 60 = 1.5
    assert (w4["nrr"], w4["grr"], w4["logo_churn_rate"], w4["quick_ratio"]) == pytest.approx(
        (560 / 530, 470 / 530, 0.0, 1.5))
    assert (w4["accounts_start"], w4["accounts_end"], w4["expanded_accounts"], w4["contracted_accounts"]) == (3, 3, 1, 1)
    # W5 runs Jan 29 - Feb 4 and is read on the as-of day: provisional
    assert (str(w5["period_end"]), str(w5["read_day"]), w5["is_complete"]) == ("2024-02-04", "2024-01-31", False)
    assert (str(w4["period_end"]), str(w4["read_day"]), w4["is_complete"]) == ("2024-01-28", "2024-01-28", True)
    assert (w5["nrr"], w5["grr"], w5["reactivated_accounts"], w5["quick_ratio"]) == pytest.approx((1.0, 1.0, 1, None))
    # ARPA at the end of W4: 560 over a, c, d
    assert w4["arpa"] == pytest.approx(560 / 3)
    # one month of data: no week has a trailing year
    assert all(r["nrr_t12"] is None and r["t12_cohort_accounts"] is None for r in got.values())


def test_weekly_account_movements(weeks):
    got = {(str(r["period_start"]), r["account_id"]): (float(r["prev_mrr"]), float(r["mrr"]), r["movement"])
           for r in rows(weeks, "select * from kpis.mrr_periods where cadence = 'week'")}
    assert got[("2024-01-15", "w_b")] == (200, 0, "churn")
    assert ("2024-01-22", "w_b") not in got  # 0 at both ends: nothing moved, no row
    assert got[("2024-01-29", "w_b")] == (0, 50, "reactivation")
    assert got[("2024-01-08", "w_d")] == (0, 80, "new")
    assert ("2024-01-01", "w_d") not in got  # rows start at the account's first active week end
    assert not any(acc == "w_e" for _, acc in got)


# ----------------------------------------------------------------------------------------------- quarters


def test_quarterly_bridge(quarters):
    #                                   start  new  exp  contr churn react  end
    assert bridge(periods(quarters, "quarter")) == {
        "2023-01-01": (0, 700, 0, 0, 0, 0, 700),
        "2023-04-01": (700, 0, 30, 0, 0, 0, 730),    # a 100 -> 130 end to end (monthly: a churn and a reactivation)
        "2023-07-01": (730, 0, 0, 0, 200, 0, 530),   # b churned
        "2023-10-01": (530, 50, 0, 100, 0, 0, 480),  # d new, c -100
        "2024-01-01": (480, 0, 0, 30, 0, 250, 700),  # b reactivated, a -30
        "2024-04-01": (700, 0, 200, 0, 0, 0, 900),   # c +200 by Apr 15 (quarter to date)
    }
    assert bridge(periods(quarters, "quarter", "enterprise"))["2023-10-01"] == (400, 50, 0, 100, 0, 0, 350)


def test_quarterly_retention_churn_and_quick_ratio(quarters):
    got = periods(quarters, "quarter")
    q2, q3, q4, q1, q2_24 = (got[d] for d in ("2023-04-01", "2023-07-01", "2023-10-01", "2024-01-01", "2024-04-01"))
    assert (q2["nrr"], q2["grr"], q2["logo_churn_rate"], q2["quick_ratio"]) == pytest.approx((730 / 700, 1.0, 0.0, None))
    assert (q3["nrr"], q3["grr"], q3["logo_churn_rate"], q3["quick_ratio"]) == pytest.approx(
        (530 / 730, 530 / 730, 1 / 3, 0.0))
    # Q4: cohort a + c = 530, c lost 100: 430 / 530; gained 50 (d) / lost 100
    assert (q4["nrr"], q4["grr"], q4["logo_churn_rate"], q4["quick_ratio"]) == pytest.approx(
        (430 / 530, 430 / 530, 0.0, 0.5))
    # Q1-24: cohort a, c, d = 480, a lost 30: 450 / 480 = 0.9375; gained 250 (b back) / lost 30 = 8.33
    assert (q1["nrr"], q1["grr"], q1["logo_churn_rate"], q1["quick_ratio"]) == pytest.approx(
        (0.9375, 0.9375, 0.0, 250 / 30))
    assert (q1["customer_retention_rate"], q1["accounts_start"], q1["accounts_end"]) == (pytest.approx(1.0), 3, 4)
    assert (str(q1["period_end"]), q1["is_complete"]) == ("2024-03-31", True)
    assert (str(q2_24["period_end"]), str(q2_24["read_day"]), q2_24["is_complete"]) == ("2024-06-30", "2024-04-15", False)
    assert q2_24["nrr"] == pytest.approx(900 / 700) and q2_24["grr"] == pytest.approx(1.0)


def test_quarterly_trailing_year(quarters):
    got = periods(quarters, "quarter")
    # Q4-23 is the 4th quarter of the data: the quarter a year earlier precedes it
    assert got["2023-10-01"]["nrr_t12"] is None and got["2023-10-01"]["t12_cohort_accounts"] is None
    # Q1-24 vs Q1-23: cohort a 100, b 200, c 400 = 700; now 100 + 250 + 300 = 650; capped 100 + 200 + 300 = 600
    q1 = got["2024-01-01"]
    assert (q1["nrr_t12"], q1["grr_t12"], q1["t12_cohort_accounts"]) == (pytest.approx(650 / 700),
                                                                         pytest.approx(600 / 700), 3)
    # Q2-24 (read Apr 15) vs Q2-23: 130 + 200 + 400 = 730; now 100 + 250 + 500 = 850; capped 100 + 200 + 400 = 700
    q2 = got["2024-04-01"]
    assert (q2["nrr_t12"], q2["grr_t12"]) == (pytest.approx(850 / 730), pytest.approx(700 / 730))


def test_a_quarter_is_one_comparison_of_its_two_ends(quarters):
    # q_a inside Q2-23: churned in April, back in June: one expansion for the quarter, two movements by month
    by_cadence = {(r["cadence"], str(r["period_start"])): r["movement"]
                  for r in rows(quarters, "select * from kpis.mrr_periods where account_id = 'q_a'")}
    assert by_cadence[("quarter", "2023-04-01")] == "expansion"
    assert by_cadence[("month", "2023-04-01")] == "churn" and by_cadence[("month", "2023-06-01")] == "reactivation"
    assert ("month", "2023-05-01") not in by_cadence  # 0 -> 0 in May: no row


def test_quarter_ends_agree_with_month_ends(quarters):
    # every quarter's ending MRR is its last month's (or, for the current quarter, the current month's)
    got = rows(quarters, """
        select q.period_start, q.ending_mrr as q_end, m.ending_mrr as m_end
        from kpis.revenue_periods as q
        join kpis.revenue_periods as m
            on m.cadence = 'month' and m.segment = q.segment and m.read_day = q.read_day
        where q.cadence = 'quarter'
    """)
    assert len(got) == 6 * 3 and all(r["q_end"] == r["m_end"] for r in got)  # 6 quarters x all, smb, enterprise


# ----------------------------------------------------------------------------------------------- month rows


@pytest.mark.parametrize("fixture", ["movements", "weeks", "quarters"])
def test_month_rows_equal_the_monthly_tables(request, fixture):
    con = request.getfixturevalue(fixture)
    assert rows(con, "select count(*) as n from kpis.revenue_periods where cadence = 'month'")[0]["n"] > 0
    assert run_rule(con, month_rows_mismatch_sql()) == (0, "")
    assert run_rule(con, mrr_month_rows_mismatch_sql()) == (0, "")
    # and column by column, exactly (ratios to 1e-12), so a tolerance in the check cannot hide a difference
    shared = [c for c in MONTHLY_SHARED if c != "segment"]
    monthly = {(str(r["month"]), r["segment"]): r for r in rows(con, "select * from kpis.revenue_monthly")}
    period = {(str(r["period_start"]), r["segment"]): r
              for r in rows(con, "select * from kpis.revenue_periods where cadence = 'month'")}
    assert period.keys() == monthly.keys()
    for key, m in monthly.items():
        for c in shared:
            assert period[key][c] == (pytest.approx(m[c], rel=1e-12) if isinstance(m[c], float) else m[c]), (key, c)


def test_every_cadence_chains_and_sums(quarters, tmp_path):
    for sql in (checks_periods.period_bridge_violations_sql(), checks_periods.period_all_segment_violations_sql(),
                checks_periods.period_grr_above_one_sql()):
        assert run_rule(quarters, sql) == (0, "")
    counts = dict(quarters.execute(
        "select cadence, count(distinct period_start) from kpis.revenue_periods group by 1").fetchall())
    # the data start on Sunday 2023-01-01, the last day of the week of Monday 2022-12-26, and end on Monday
    # 2024-04-15: 52 weeks to 2023-12-25, 16 more to 2024-04-15, and the first one: 69
    assert counts == {"month": 16, "quarter": 6, "week": 69}
    first = rows(quarters, "select period_start, period_end, read_day from kpis.revenue_periods "
                           "where cadence = 'week' and segment = 'all' order by period_start limit 1")[0]
    assert [str(v) for v in first.values()] == ["2022-12-26", "2023-01-01", "2023-01-01"]


def test_ratio_columns_are_double(weeks):
    types = dict(weeks.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = 'kpis' and table_name = 'revenue_periods'").fetchall())
    for col in ("nrr", "grr", "nrr_t12", "logo_churn_rate", "quick_ratio", "arpa"):
        assert types[col] == "DOUBLE", col
    assert types["period_start"] == types["period_end"] == types["read_day"] == "DATE"


# kpis.revenue_by_grain's trailing-year join reads only the rows that can pair, straight from kpis.mrr_periods and
# kpis.mrr_monthly_parent (not from account_periods, which DuckDB would store whole: BENCHMARKS.md "revenue_by_grain
# without the stored account periods"), and the segments' first periods come from segment_bridge (BENCHMARKS.md
# "Small steps of the nightly"); the reference joins every account_periods row to every other and reads the first
# periods from the account rows, as the model did before
_TRAILING_YEAR = ("year_base as (", "segment_trailing_year as (")
_EVERY_ROW_PAIRED = """trailing_year_accounts as (
    select
        base.grain,
        base.cadence,
        base.period_index + base.periods_per_year as period_index,
        base.segment,
        base.mrr as base_mrr,
        coalesce(cur.mrr, 0) as cur_mrr
    from account_periods as base
    left join account_periods as cur
        on cur.grain = base.grain
        and cur.cadence = base.cadence
        and cur.account_id = base.account_id
        and cur.period_index = base.period_index + base.periods_per_year
    where base.mrr > 0
),

"""
_FIRST_PERIODS = (
    """        select grain, cadence, segment, min(period_index) as first_period_index
        from segment_bridge
""",
    """        select grain, cadence, segment, min(period_index) as first_period_index
        from account_periods
""",
)
# the CTEs with a row per account and period (12.6 M rows on the large company)
_ACCOUNT_ROWS = ("grain_periods", "account_periods", "year_base", "year_later", "trailing_year_accounts")


def _revenue_by_grain_sql() -> str:
    from cs_kpis.defs.kpis.assets import kpi_models
    from cs_kpis.lib.sql import render_model

    [model] = [m for m in kpi_models() if m.name == "revenue_by_grain"]
    return render_model(model)


def _revenue_by_grain_reference(sql: str) -> str:
    start, end = (sql.index(marker) for marker in _TRAILING_YEAR)
    assert sql.count(_TRAILING_YEAR[0]) == sql.count(_TRAILING_YEAR[1]) == 1 and start < end
    sql = sql[:start] + _EVERY_ROW_PAIRED + sql[end:]
    new, old = _FIRST_PERIODS
    assert sql.count(new) == 1
    return sql.replace(new, old)


def test_revenue_by_grain_reads_each_account_row_cte_at_one_place():
    # DuckDB stores a CTE read at two places or more whole before reading it (on the large company account_periods
    # read three times cost a third of the model's CPU and 2 GB of its peak memory); the steps to_spark_steps
    # makes are the CTEs read at two places or more
    steps, _ = to_spark_steps(_revenue_by_grain_sql(), "t")
    read_twice = {view.removeprefix("t_") for view, _ in steps}
    assert read_twice, "no CTE read twice: the count below would prove nothing"
    assert not read_twice & set(_ACCOUNT_ROWS), sorted(read_twice)


@pytest.mark.parametrize("fixture", ["movements", "weeks", "quarters"])
def test_revenue_by_grain_equals_joining_every_row(request, fixture):
    con = request.getfixturevalue(fixture)
    reference = _revenue_by_grain_reference(_revenue_by_grain_sql())
    table = "select * from kpis.revenue_by_grain"
    assert con.execute(f"select count(*) from ({table}) as t where nrr_t12 is not null").fetchall()[0][0] >= (
        1 if fixture == "quarters" else 0)
    for a, b in ((table, reference), (reference, table)):
        assert con.execute(f"select count(*) from (({a}) except all ({b})) as x").fetchall()[0][0] == 0
