"""Checks on kpis.mrr_periods and kpis.revenue_periods (week, month and quarter). Each is a query for the rows
that break a rule; see cs_kpis.lib.checks.

Blocking: unique keys, no nulls where a number is always defined, no negative MRR, the bridge adds up and chains within each
cadence, segment 'all' is the sum of the segments, GRR never above 1. No check compares the month rows with
the monthly tables: kpis.revenue_monthly is the month cadence of the same model (kpis.revenue_by_grain) and
marts.mrr_monthly and kpis.mrr_periods both read marts.mrr_period_ends, so there is nothing left to keep equal. Warning: NRR and GRR within a plausible range for segments with enough
accounts, with the bounds of kpis.checks (the same check_thresholds fields), per period of any cadence.
"""

import dagster as dg

from cs_kpis.defs.kpis import checks as kpi_checks
from cs_kpis.defs.kpis.assets import key as kpi_key
from cs_kpis.defs.marts import assets as marts
from cs_kpis.lib.checks import not_null_check, sql_check, unique_key_check

DIM_PERIOD = marts.key("dim_period")
MRR_PERIODS = kpi_key("mrr_periods")
REVENUE_PERIODS = kpi_key("revenue_periods")
MRR_PERIODS_TABLE = "kpis.mrr_periods"
REVENUE_PERIODS_TABLE = "kpis.revenue_periods"

PERIOD_BRIDGE_RECONCILES = "period_bridge_reconciles"
PERIOD_ALL_SEGMENT_EQUALS_SUM_OF_SEGMENTS = "period_all_segment_equals_sum_of_segments"
PERIOD_GRR_NEVER_ABOVE_ONE = "period_grr_never_above_one"
PERIOD_NRR_GRR_WITHIN_PLAUSIBLE_BOUNDS = "period_nrr_grr_within_plausible_bounds"
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


def build_period_checks() -> list[dg.AssetChecksDefinition]:
    return [
        unique_key_check(DIM_PERIOD, "marts.dim_period", ["cadence", "period_start"]),
        unique_key_check(MRR_PERIODS, MRR_PERIODS_TABLE, ["cadence", "period_start", "account_id"]),
        not_null_check(MRR_PERIODS, MRR_PERIODS_TABLE, MRR_NOT_NULL),
        # the period tables read marts.mrr_daily_changes, not marts.mrr_monthly: they need their own guard
        sql_check(MRR_PERIODS, MRR_PERIODS_NO_NEGATIVE_MRR,
                  "no account has negative MRR at a period end (a credit note or refund leaking into MRR)",
                  NEGATIVE_MRR_SQL),
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
        sql_check(REVENUE_PERIODS, PERIOD_NRR_GRR_WITHIN_PLAUSIBLE_BOUNDS,
                  "NRR within [nrr_low, nrr_high] and GRR at least grr_low over every week, month and quarter, "
                  "for segments with at least retention_bounds_min_accounts accounts at the start; the "
                  f"check_thresholds resource holds the values ({kpi_checks.RETENTION_SETTINGS})",
                  lambda t: period_retention_bounds_sql(t.nrr_low, t.nrr_high, t.grr_low,
                                                        t.retention_bounds_min_accounts),
                  thresholds=kpi_checks.RETENTION_THRESHOLDS, blocking=False, severity=dg.AssetCheckSeverity.WARN),
    ]


@dg.definitions
def kpis_period_checks() -> dg.Definitions:
    return dg.Definitions(asset_checks=build_period_checks())
