"""Checks on kpis.mrr_periods and kpis.revenue_periods (week, month and quarter). Each is a query for the rows
that break a rule; see cs_kpis.lib.checks.

Blocking: unique keys, no nulls where a number is always defined, no negative MRR, the bridge adds up and chains within each
cadence, segment 'all' is the sum of the segments, GRR never above 1, and the month rows equal the monthly
tables (marts.mrr_monthly, kpis.revenue_monthly), so the weekly and quarterly figures come from the same
arithmetic leadership already reads. Warning: NRR and GRR within a plausible range for segments with enough
accounts, with the bounds of kpis.checks (the same environment variables), per period of any cadence.
"""

import os

import dagster as dg

from cs_kpis.defs.kpis import checks as kpi_checks
from cs_kpis.lib.checks import not_null_check, sql_check, unique_key_check

DIM_PERIOD = dg.AssetKey(["kpis", "dim_period"])
MRR_PERIODS = dg.AssetKey(["kpis", "mrr_periods"])
REVENUE_PERIODS = dg.AssetKey(["kpis", "revenue_periods"])
MRR_PERIODS_TABLE = "kpis.mrr_periods"
REVENUE_PERIODS_TABLE = "kpis.revenue_periods"

PERIOD_BRIDGE_RECONCILES = "period_bridge_reconciles"
PERIOD_ALL_SEGMENT_EQUALS_SUM_OF_SEGMENTS = "period_all_segment_equals_sum_of_segments"
PERIOD_GRR_NEVER_ABOVE_ONE = "period_grr_never_above_one"
PERIOD_NRR_GRR_WITHIN_PLAUSIBLE_BOUNDS = "period_nrr_grr_within_plausible_bounds"
MONTH_ROWS_MATCH_REVENUE_MONTHLY = "month_rows_match_revenue_monthly"
MONTH_ROWS_MATCH_MRR_MONTHLY = "month_rows_match_mrr_monthly"
MRR_PERIODS_NO_NEGATIVE_MRR = "mrr_periods_no_negative_mrr"

CADENCES = ("week", "month", "quarter")
REVENUE_NOT_NULL = (
    "cadence", "period_start", "period_end", "read_day", "is_complete", "segment", "starting_mrr", "new_mrr",
    "expansion_mrr", "contraction_mrr", "churned_mrr", "reactivation_mrr", "ending_mrr", "accounts_start",
    "accounts_end",
)
MRR_NOT_NULL = ("cadence", "period_start", "period_end", "read_day", "account_id", "mrr", "prev_mrr", "movement")
ADDITIVE = (
    "starting_mrr", "new_mrr", "expansion_mrr", "contraction_mrr", "churned_mrr", "reactivation_mrr", "ending_mrr",
    "accounts_start", "accounts_end", "new_accounts", "reactivated_accounts", "expanded_accounts",
    "contracted_accounts", "churned_accounts",
)
# the columns kpis.revenue_monthly and kpis.revenue_periods share (revenue_monthly's month = period_start)
MONTHLY_SHARED = (
    "segment", "starting_mrr", "new_mrr", "expansion_mrr", "contraction_mrr", "churned_mrr", "reactivation_mrr",
    "ending_mrr", "net_new_mrr", "accounts_start", "accounts_end", "new_accounts", "reactivated_accounts",
    "expanded_accounts", "contracted_accounts", "churned_accounts", "nrr", "grr", "nrr_t12", "grr_t12",
    "t12_cohort_accounts", "t12_cohort_starting_mrr", "t12_cohort_mrr", "logo_churn_rate",
    "customer_retention_rate", "downgrade_rate", "gross_revenue_churn", "net_revenue_churn", "expansion_rate",
    "quick_ratio", "arpa",
)
RATIOS = {"nrr", "grr", "nrr_t12", "grr_t12", "logo_churn_rate", "customer_retention_rate", "downgrade_rate",
          "gross_revenue_churn", "net_revenue_churn", "expansion_rate", "quick_ratio", "arpa"}
RATIO_TOLERANCE = 1e-9


NEGATIVE_MRR_SQL = (f"select cadence, period_start, account_id, mrr, prev_mrr from {MRR_PERIODS_TABLE} "
                    "where mrr < 0 or prev_mrr < 0")


def period_bridge_violations_sql(table: str = REVENUE_PERIODS_TABLE) -> str:
    """Periods whose bridge does not add up, or whose start is not the previous period's end (same cadence)."""
    return f"""
        with r as (
            select *, row_number() over (partition by cadence, segment order by period_start) as n from {table}
        )
        select
            cur.cadence,
            cur.period_start,
            cur.segment,
            cur.starting_mrr,
            cur.new_mrr + cur.expansion_mrr + cur.reactivation_mrr - cur.contraction_mrr - cur.churned_mrr
                as net_movements,
            cur.ending_mrr,
            prev.period_end as previous_period_end,
            prev.ending_mrr as previous_ending_mrr
        from r as cur
        left join r as prev
            on prev.cadence = cur.cadence
            and prev.segment = cur.segment
            and prev.n = cur.n - 1
        where cur.ending_mrr <> cur.starting_mrr + cur.new_mrr + cur.expansion_mrr + cur.reactivation_mrr
                - cur.contraction_mrr - cur.churned_mrr
            or cur.starting_mrr <> coalesce(prev.ending_mrr, 0)
            or (prev.period_end is not null and cast(prev.period_end + interval 1 day as date) <> cur.period_start)
    """


def period_all_segment_violations_sql(table: str = REVENUE_PERIODS_TABLE) -> str:
    """Periods where segment 'all' differs from the sum of the other segments in any additive column."""
    sums = ", ".join(f"sum({c}) as {c}" for c in ADDITIVE)
    differs = " or ".join(f"a.{c} <> coalesce(s.{c}, 0)" for c in ADDITIVE)
    return f"""
        with s as (select cadence, period_start, {sums} from {table} where segment <> 'all'
                   group by cadence, period_start)
        select a.cadence, a.period_start, a.starting_mrr, s.starting_mrr as sum_starting_mrr, a.ending_mrr,
               s.ending_mrr as sum_ending_mrr
        from {table} as a
        left join s on s.cadence = a.cadence and s.period_start = a.period_start
        where a.segment = 'all' and ({differs})
    """


def period_grr_above_one_sql(table: str = REVENUE_PERIODS_TABLE) -> str:
    return f"select cadence, period_start, segment, grr, grr_t12 from {table} where grr > 1 or grr_t12 > 1"


def period_retention_bounds_sql(nrr_low: float, nrr_high: float, grr_low: float, min_accounts: int,
                                table: str = REVENUE_PERIODS_TABLE) -> str:
    return f"""
        select cadence, period_start, segment, accounts_start, starting_mrr, nrr, grr from {table}
        where accounts_start >= {min_accounts}
            and (nrr < {nrr_low} or nrr > {nrr_high} or grr < {grr_low})
    """


def _differs(col: str) -> str:
    if col in RATIOS:  # DOUBLE: equal up to rounding, and null exactly where the other is null
        return (f"(p.{col} is null) <> (m.{col} is null) "
                f"or abs(p.{col} - m.{col}) > {RATIO_TOLERANCE} * greatest(1, abs(m.{col}))")
    return f"p.{col} is distinct from m.{col}"


def month_rows_mismatch_sql(table: str = REVENUE_PERIODS_TABLE, monthly: str = "kpis.revenue_monthly") -> str:
    """Months (and segments) where the month rows of ``table`` and ``monthly`` differ, or one side is missing."""
    differs = " or ".join(_differs(c) for c in MONTHLY_SHARED if c != "segment")
    return f"""
        with p as (select * from {table} where cadence = 'month')
        select coalesce(p.period_start, m.month) as month, coalesce(p.segment, m.segment) as segment,
               p.ending_mrr as period_ending_mrr, m.ending_mrr as monthly_ending_mrr, p.nrr as period_nrr,
               m.nrr as monthly_nrr
        from p
        full outer join {monthly} as m
            on m.month = p.period_start
            and m.segment = p.segment
        where p.period_start is null or m.month is null or {differs}
    """


def mrr_month_rows_mismatch_sql(table: str = MRR_PERIODS_TABLE, monthly: str = "marts.mrr_monthly") -> str:
    """Account-months where the month rows of kpis.mrr_periods and marts.mrr_monthly differ (mrr_monthly's
    account-months at 0 from start to end are not in kpis.mrr_periods)."""
    cols = ("mrr", "prev_mrr", "movement", "movement_amount")
    differs = " or ".join(f"p.{c} is distinct from m.{c}" for c in cols)
    return f"""
        with p as (select * from {table} where cadence = 'month'),
        m as (select * from {monthly} where mrr <> 0 or prev_mrr <> 0)
        select coalesce(p.period_start, m.month) as month, coalesce(p.account_id, m.account_id) as account_id,
               p.mrr as period_mrr, m.mrr as monthly_mrr, p.movement as period_movement,
               m.movement as monthly_movement
        from p
        full outer join m
            on m.month = p.period_start
            and m.account_id = p.account_id
        where p.period_start is null or m.month is null or {differs}
    """


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name, "").strip()
    return float(value) if value else default


def build_period_checks() -> list[dg.AssetChecksDefinition]:
    nrr_low = _env_float(kpi_checks.ENV_NRR_LOW, kpi_checks.DEFAULT_NRR_BOUNDS[0])
    nrr_high = _env_float(kpi_checks.ENV_NRR_HIGH, kpi_checks.DEFAULT_NRR_BOUNDS[1])
    grr_low = _env_float(kpi_checks.ENV_GRR_LOW, kpi_checks.DEFAULT_GRR_LOW)
    min_accounts = int(_env_float(kpi_checks.ENV_MIN_ACCOUNTS, kpi_checks.DEFAULT_MIN_ACCOUNTS))
    return [
        unique_key_check(DIM_PERIOD, "kpis.dim_period", ["cadence", "period_start"]),
        unique_key_check(MRR_PERIODS, MRR_PERIODS_TABLE, ["cadence", "period_start", "account_id"]),
        not_null_check(MRR_PERIODS, MRR_PERIODS_TABLE, MRR_NOT_NULL),
        # the period tables read marts.mrr_daily_changes, not marts.mrr_monthly: they need their own guard
        sql_check(MRR_PERIODS, MRR_PERIODS_NO_NEGATIVE_MRR,
                  "no account has negative MRR at a period end (a credit note or refund leaking into MRR)",
                  NEGATIVE_MRR_SQL),
        sql_check(MRR_PERIODS, MONTH_ROWS_MATCH_MRR_MONTHLY,
                  "the month rows of kpis.mrr_periods equal marts.mrr_monthly's account-months with MRR at "
                  "either end (same accounts, MRR, previous MRR and movement)",
                  mrr_month_rows_mismatch_sql(), additional_deps=[kpi_checks.MRR_MONTHLY]),
        unique_key_check(REVENUE_PERIODS, REVENUE_PERIODS_TABLE, ["cadence", "period_start", "segment"]),
        not_null_check(REVENUE_PERIODS, REVENUE_PERIODS_TABLE, REVENUE_NOT_NULL),
        sql_check(REVENUE_PERIODS, PERIOD_BRIDGE_RECONCILES,
                  "for every cadence, period and segment ending = starting + new + expansion + reactivation - "
                  "contraction - churned, starting = the previous period's ending, and periods follow each "
                  "other without gaps",
                  period_bridge_violations_sql()),
        sql_check(REVENUE_PERIODS, PERIOD_ALL_SEGMENT_EQUALS_SUM_OF_SEGMENTS,
                  "segment 'all' equals the sum of the segments in every money and count column, every period",
                  period_all_segment_violations_sql()),
        sql_check(REVENUE_PERIODS, PERIOD_GRR_NEVER_ABOVE_ONE,
                  "GRR (over the period and trailing year) is never above 1", period_grr_above_one_sql()),
        sql_check(REVENUE_PERIODS, MONTH_ROWS_MATCH_REVENUE_MONTHLY,
                  "the month rows equal kpis.revenue_monthly in every column both tables have (money and "
                  "counts exactly, ratios to 1e-9)",
                  month_rows_mismatch_sql(), additional_deps=[kpi_checks.REVENUE_MONTHLY]),
        sql_check(REVENUE_PERIODS, PERIOD_NRR_GRR_WITHIN_PLAUSIBLE_BOUNDS,
                  f"NRR within [{nrr_low}, {nrr_high}] and GRR at least {grr_low} over every week, month and "
                  f"quarter, for segments with at least {min_accounts} accounts at the start (set "
                  f"{kpi_checks.ENV_NRR_LOW}, {kpi_checks.ENV_NRR_HIGH}, {kpi_checks.ENV_GRR_LOW}, "
                  f"{kpi_checks.ENV_MIN_ACCOUNTS} to change)",
                  period_retention_bounds_sql(nrr_low, nrr_high, grr_low, min_accounts),
                  blocking=False, severity=dg.AssetCheckSeverity.WARN),
    ]


@dg.definitions
def kpis_period_checks() -> dg.Definitions:
    return dg.Definitions(asset_checks=build_period_checks())
