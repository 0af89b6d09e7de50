"""Checks on marts.mrr_monthly and the kpis tables. Each is a query for the rows that break a rule.

Blocking checks guard numbers that the business reads directly (the bridge must add up, MRR is never
negative, no account-month is missing, keys are unique, GRR never exceeds 100%); warnings flag numbers
that are plausible-but-suspicious (retention outside the usual range, MRR drifting from what was
invoiced). Thresholds come from the ``check_thresholds`` resource when a check runs (the company file's
``settings.checks``; each ``CS_KPIS_*`` variable below overrides its key), so they can be tuned without a
code change and the UI shows the values in force. Revenue on billing customers without a CRM account is checked where the
unmatched customers are listed: ``unmatched_mrr_share_below_threshold`` on marts.unmatched_source_records
(cs_kpis/defs/xref/checks.py).
"""

import dagster as dg

from cs_kpis import tuning
from cs_kpis.defs.kpis.assets import key as kpi_key
from cs_kpis.defs.marts import assets as marts
from cs_kpis.defs.staging import assets as staging
from cs_kpis.defs.xref import assets as xref
from cs_kpis.lib.checks import sql_check, unique_key_check

MRR_MONTHLY = marts.key("mrr_monthly")
MRR_MONTHLY_PARENT = kpi_key("mrr_monthly_parent")
REVENUE_MONTHLY = kpi_key("revenue_monthly")
REVENUE_MONTHLY_PARENT = kpi_key("revenue_monthly_parent")
COHORT_RETENTION = kpi_key("cohort_retention")

MRR_BRIDGE_RECONCILES = "mrr_bridge_reconciles"
ALL_SEGMENT_EQUALS_SUM_OF_SEGMENTS = "all_segment_equals_sum_of_segments"
GRR_NEVER_ABOVE_ONE = "grr_never_above_one"
NRR_GRR_WITHIN_PLAUSIBLE_BOUNDS = "nrr_grr_within_plausible_bounds"
MRR_MONTHLY_NO_NEGATIVE_MRR = "mrr_monthly_no_negative_mrr"
MRR_MONTHLY_NO_MISSING_ACCOUNT_MONTHS = "mrr_monthly_no_missing_account_months"
MRR_MATCHES_INVOICED_RECURRING_REVENUE = "mrr_matches_invoiced_recurring_revenue"

# monthly NRR below 0.5 or above 1.5 means half the base churned or grew by half in one month: possible
# for a tiny segment, but far more often a mapping or currency bug; GRR below 0.5 likewise
# (defaults and variables: cs_kpis/tuning.py, the one table of settings)
DEFAULT_NRR_BOUNDS = (tuning.SETTINGS["checks.nrr_low"].default, tuning.SETTINGS["checks.nrr_high"].default)
DEFAULT_GRR_LOW = tuning.SETTINGS["checks.grr_low"].default
# a segment of three accounts can lose half its MRR in a normal month: judge only larger starting cohorts
DEFAULT_MIN_ACCOUNTS = tuning.SETTINGS["checks.retention_bounds_min_accounts"].default
DEFAULT_MAX_INVOICE_GAP = tuning.SETTINGS["checks.mrr_invoice_max_gap"].default
ENV_NRR_LOW, ENV_NRR_HIGH, ENV_GRR_LOW = (tuning.SETTINGS[f"checks.{k}"].env for k in ("nrr_low", "nrr_high", "grr_low"))
ENV_MIN_ACCOUNTS = tuning.SETTINGS["checks.retention_bounds_min_accounts"].env
ENV_MAX_INVOICE_GAP = tuning.SETTINGS["checks.mrr_invoice_max_gap"].env
RETENTION_THRESHOLDS = ("nrr_low", "nrr_high", "grr_low", "retention_bounds_min_accounts")
RETENTION_SETTINGS = ("settings.checks.nrr_low / nrr_high / grr_low / retention_bounds_min_accounts in the company "
                      f"file; {ENV_NRR_LOW}, {ENV_NRR_HIGH}, {ENV_GRR_LOW}, {ENV_MIN_ACCOUNTS} override")


def bridge_violations_sql(table: str) -> str:
    """Months whose bridge does not add up, or whose starting MRR is not the previous month's ending MRR."""
    return f"""
        with r as (
            select *, year(month) * 12 + month(month) as month_index from {table}
        )
        select
            cur.month,
            cur.segment,
            cur.starting_mrr,
            cur.new_mrr + cur.expansion_mrr + cur.reactivation_mrr - cur.contraction_mrr - cur.churned_mrr
                as net_movements,
            cur.ending_mrr,
            prev.ending_mrr as previous_ending_mrr
        from r as cur
        left join r as prev
            on prev.segment = cur.segment
            and prev.month_index = cur.month_index - 1
        where cur.ending_mrr <> cur.starting_mrr + cur.new_mrr + cur.expansion_mrr + cur.reactivation_mrr
                - cur.contraction_mrr - cur.churned_mrr
            or cur.starting_mrr <> coalesce(prev.ending_mrr, 0)
    """


def all_segment_violations_sql(table: str) -> str:
    """Months where segment 'all' differs from the sum of the other segments in any additive column."""
    additive = ("starting_mrr", "new_mrr", "expansion_mrr", "contraction_mrr", "churned_mrr", "reactivation_mrr",
                "ending_mrr", "accounts_start", "accounts_end", "new_accounts", "reactivated_accounts",
                "expanded_accounts", "contracted_accounts", "churned_accounts")
    sums = ", ".join(f"sum({c}) as {c}" for c in additive)
    differs = " or ".join(f"a.{c} <> coalesce(s.{c}, 0)" for c in additive)
    return f"""
        with s as (select month, {sums} from {table} where segment <> 'all' group by month)
        select a.month, a.starting_mrr, s.starting_mrr as sum_starting_mrr, a.ending_mrr, s.ending_mrr as sum_ending_mrr
        from {table} as a
        left join s on s.month = a.month
        where a.segment = 'all' and ({differs})
    """


def grr_above_one_sql(table: str) -> str:
    return f"select month, segment, grr, grr_t12 from {table} where grr > 1 or grr_t12 > 1"


def retention_bounds_sql(table: str, nrr_low: float, nrr_high: float, grr_low: float, min_accounts: int) -> str:
    """Months where NRR or GRR leave the plausible range, judged only with at least ``min_accounts`` at the start."""
    return f"""
        select month, segment, accounts_start, starting_mrr, nrr, grr from {table}
        where accounts_start >= {min_accounts}
            and (nrr < {nrr_low} or nrr > {nrr_high} or grr < {grr_low})
    """


NEGATIVE_MRR_SQL = "select month, account_id, mrr, prev_mrr from marts.mrr_monthly where mrr < 0 or prev_mrr < 0"

MISSING_ACCOUNT_MONTHS_SQL = """
    with present as (
        select account_id, month from marts.mrr_monthly
    ),
    spans as (
        -- each account from its first row to the last month of the data
        select account_id, min(month) as first_month from present group by account_id
    )
    select s.account_id, m.month as missing_month
    from spans as s
    inner join marts.dim_month as m
        on m.month >= s.first_month
    left join present as p
        on p.account_id = s.account_id
        and p.month = m.month
    where p.account_id is null
"""


def invoiced_recurring_sql(read_days: str = "marts.dim_month", by_customer: bool = True) -> str:
    """What the invoices say each CRM-matched customer's subscriptions are worth a month on each month's
    read_day, after the discounts that count for MRR, in USD: the invoice-side figure of
    ``mrr_matches_invoiced_recurring_revenue``.

    A line counts on day d when its service period contains d (period_start <= d < period_end), its invoice
    is not draft, void or uncollectible, its price is licensed and recurring (metered usage and one-off items
    are not MRR), its customer is matched to a CRM account (unmatched revenue has its own check), and its
    subscription has not ended by d. It is normalised to a month by its price's interval (month / n,
    year / 12n, week x 52/12 / n, day x 365/12 / n; by its period's days x 30.4375 when the price is
    unknown). A whole-period line is worth its amount (0 during a trial); a proration line (and a
    pending proration invoice item, which only the next invoice will carry) is worth price x quantity, the
    credit (staging's ``is_proration_credit``: a proration's amount is net of discounts, so 0 says nothing)
    negative, so a mid-period upgrade or downgrade shows from the day it happened, as in MRR (the
    blocking ``revenue_history_matches_paid_invoices`` values prorations the same way). From that the line's own discount
    share (its discount amounts / its amount) is taken off, unless the invoice's discount is a ``once``
    coupon or a repeating one whose ``end`` is on or before d: neither reduces MRR. Converted at the rate of
    the period's start date (the latest rate on or before it; USD = 1).

    One row per month and customer; ``by_customer=False``: one per month, the customers' total (what the
    check compares, without grouping a million and a half line-months by customer first).
    """
    customer_column = "\n            l.customer_id," if by_customer else ""
    customer_key = ", l.customer_id" if by_customer else ""
    return f"""
        with billed as (
            -- invoice lines, and the pending proration items (a change made since the last invoice, which
            -- only the next one will carry: Stripe's /v1/invoiceitems)
            select
                i.customer_id,
                coalesce(l.subscription_id, i.subscription_id) as subscription_id,
                l.price_id,
                l.is_proration,
                l.is_proration_credit,
                l.quantity,
                l.amount_minor,
                l.currency,
                l.minor_units_per_major,
                l.period_start,
                l.period_end,
                cast(coalesce(l.discount_amount_minor, 0) as double)
                    / nullif(abs(cast(l.amount_minor as double)), 0) as discount_share,
                i.discount_duration,
                cast(i.discount_end_at as date) as discount_end_date
            from staging.stg_billing__invoice_lines as l
            inner join staging.stg_billing__invoices as i
                on i.invoice_id = l.invoice_id
            where i.status not in ('draft', 'void', 'uncollectible')
            union all
            select
                customer_id,
                subscription_id,
                price_id,
                is_proration,
                is_proration_credit,
                quantity,
                amount_minor,
                currency,
                minor_units_per_major,
                period_start,
                period_end,
                cast(0 as double) as discount_share,
                cast(null as varchar) as discount_duration,
                cast(null as date) as discount_end_date
            from staging.stg_billing__invoice_items
            where is_pending and is_proration
        ),

        priced as (
            select
                b.customer_id,
                b.subscription_id,
                upper(b.currency) as currency,
                cast(b.period_start as date) as period_start,
                cast(b.period_end as date) as period_end,
                coalesce(cast(b.minor_units_per_major as double), 100.0) as minor_per_major,
                b.discount_share,
                b.discount_duration,
                b.discount_end_date,
                case
                    when p.unit_amount_minor is null or p."interval" is null then
                        cast(b.amount_minor as double)
                        / nullif(cast(date_diff('day', b.period_start, b.period_end) as double) / 30.4375, 0)
                    else
                        -- a whole-period line: its amount (0 in a trial); a proration: price x quantity
                        case
                            when not b.is_proration then cast(b.amount_minor as double)
                            when b.is_proration_credit then -1.0 * cast(p.unit_amount_minor * coalesce(b.quantity, 1) as double)
                            else cast(p.unit_amount_minor * coalesce(b.quantity, 1) as double)
                        end
                        / case p."interval"
                            when 'month' then cast(p.interval_count as double)
                            when 'year' then 12.0 * p.interval_count
                            when 'week' then 12.0 * p.interval_count / 52.0
                            else 12.0 * p.interval_count / 365.0
                        end
                end as monthly_minor
            from billed as b
            left join staging.stg_billing__prices as p
                on p.price_id = b.price_id
            where coalesce(p.usage_type, 'licensed') = 'licensed'
                and coalesce(p.price_type, 'recurring') = 'recurring'
        ),
        matched as (
            select distinct source_id as customer_id
            from marts.account_xref
            where source_system = 'billing' and matched
        ),
        rates as (
            select
                currency,
                rate_date,
                rate,
                min(rate_date) over (
                    partition by currency order by rate_date rows between 1 following and 1 following
                ) as next_rate_date
            from staging.stg_billing__fx_rates
        ),
        line_rates as (
            -- the rate of each (currency, start day) the lines have, looked up once: a handful of thousand
            -- pairs, where joining every line-month to the currency's rates by range cost O(lines x rates)
            -- (the check's top operator on the large company: BENCHMARKS.md "Marts on the nightly")
            select k.currency, k.period_start, r.rate
            from (select distinct currency, period_start from priced) as k
            inner join rates as r
                on r.currency = k.currency
                and r.rate_date <= k.period_start
                and (r.next_rate_date is null or r.next_rate_date > k.period_start)
        ),
        lines as (
            -- each matched line with its subscription's end day and its rate, joined once per line rather
            -- than once per line and month (the joins' keys are the line's own)
            select
                l.customer_id,
                l.currency,
                l.period_start,
                l.period_end,
                l.minor_per_major,
                l.discount_share,
                l.discount_duration,
                l.discount_end_date,
                l.monthly_minor,
                cast(s.ended_at as date) as subscription_end_date,
                r.rate
            from priced as l
            inner join matched as c
                on c.customer_id = l.customer_id
            left join staging.stg_billing__subscriptions as s
                on s.subscription_id = l.subscription_id
            left join line_rates as r
                on r.currency = l.currency
                and r.period_start = l.period_start
        )
        select
            m.month,{customer_column}
            sum(
                l.monthly_minor
                * (1 - case
                        when l.discount_duration = 'once' then 0
                        when l.discount_end_date is not null and l.discount_end_date <= m.read_day then 0
                        else least(coalesce(l.discount_share, 0), 1)
                    end)
                / l.minor_per_major
                * (case when l.currency = 'USD' then 1 else l.rate end)
            ) as invoiced_mrr
        from {read_days} as m
        inner join lines as l
            on l.period_start <= m.read_day
            and l.period_end > m.read_day
        where l.subscription_end_date is null or l.subscription_end_date > m.read_day
        group by m.month{customer_key}
    """


def invoice_gap_sql(max_gap: float) -> str:
    return f"""
        with invoiced as (
            select month, invoiced_mrr from ({invoiced_recurring_sql(by_customer=False)}) as i
        ),
        mrr as (
            select month, sum(mrr) as mrr from marts.mrr_monthly group by month
        ),
        first_invoiced as (
            select min(month) as first_month from invoiced
        )
        select
            m.month,
            m.mrr,
            round(coalesce(i.invoiced_mrr, 0), 2) as invoiced_mrr,
            -- null when MRR is 0: a month the invoices bill and MRR misses entirely always breaks the rule
            cast(abs(coalesce(i.invoiced_mrr, 0) - m.mrr) as double) / cast(nullif(m.mrr, 0) as double) as gap_share
        from mrr as m
        cross join first_invoiced as f
        left join invoiced as i on i.month = m.month
        where m.month >= f.first_month
            and ((m.mrr = 0 and coalesce(i.invoiced_mrr, 0) > 0)
                or (m.mrr > 0
                    and cast(abs(coalesce(i.invoiced_mrr, 0) - m.mrr) as double) / cast(m.mrr as double) > {max_gap}))
    """


BILLING_INPUTS = [
    *(staging.key(name)
      for name in ("stg_billing__invoices", "stg_billing__invoice_lines", "stg_billing__invoice_items",
                   "stg_billing__prices", "stg_billing__fx_rates", "stg_billing__subscriptions")),
    xref.key("account_xref"),
]


def build_kpi_checks() -> list[dg.AssetChecksDefinition]:
    warn = {"blocking": False, "severity": dg.AssetCheckSeverity.WARN}

    checks = [
        unique_key_check(MRR_MONTHLY, "marts.mrr_monthly", ["month", "account_id"]),
        sql_check(MRR_MONTHLY, MRR_MONTHLY_NO_NEGATIVE_MRR,
                  "no account has negative month-end MRR (a credit note or refund leaking into MRR)",
                  NEGATIVE_MRR_SQL),
        sql_check(MRR_MONTHLY, MRR_MONTHLY_NO_MISSING_ACCOUNT_MONTHS,
                  "every account has a row for every month from its first active month to the last month "
                  "(a gap would hide a churn or a reactivation from the bridge)",
                  MISSING_ACCOUNT_MONTHS_SQL, additional_deps=[marts.DIM_MONTH]),
        sql_check(MRR_MONTHLY, MRR_MATCHES_INVOICED_RECURRING_REVENUE,
                  f"total month-end MRR is within the check_thresholds resource's mrr_invoice_max_gap (default "
                  f"{DEFAULT_MAX_INVOICE_GAP:.0%}) of recurring invoiced revenue in force on the same day, normalised "
                  f"to a month (settings.checks.mrr_invoice_max_gap in the company file; {ENV_MAX_INVOICE_GAP} "
                  "overrides)",
                  lambda t: invoice_gap_sql(t.mrr_invoice_max_gap), thresholds=("mrr_invoice_max_gap",),
                  additional_deps=BILLING_INPUTS, **warn),
        unique_key_check(MRR_MONTHLY_PARENT, "kpis.mrr_monthly_parent", ["month", "account_id"]),
        unique_key_check(COHORT_RETENTION, "kpis.cohort_retention", ["cohort_month", "months_since_start"]),
    ]
    for key in (REVENUE_MONTHLY, REVENUE_MONTHLY_PARENT):
        table = f"kpis.{key.path[-1]}"
        checks += [
            unique_key_check(key, table, ["month", "segment"]),
            sql_check(key, MRR_BRIDGE_RECONCILES,
                      "for every month and segment ending = starting + new + expansion + reactivation - "
                      "contraction - churned, and starting = the previous month's ending",
                      bridge_violations_sql(table)),
            sql_check(key, ALL_SEGMENT_EQUALS_SUM_OF_SEGMENTS,
                      "segment 'all' equals the sum of the segments in every money and count column",
                      all_segment_violations_sql(table)),
            sql_check(key, GRR_NEVER_ABOVE_ONE, "GRR (monthly and trailing 12) is never above 1",
                      grr_above_one_sql(table)),
            sql_check(key, NRR_GRR_WITHIN_PLAUSIBLE_BOUNDS,
                      f"monthly NRR within [nrr_low, nrr_high] (default [{DEFAULT_NRR_BOUNDS[0]}, "
                      f"{DEFAULT_NRR_BOUNDS[1]}]) and GRR at least grr_low (default {DEFAULT_GRR_LOW}) for segments "
                      f"with at least retention_bounds_min_accounts (default {DEFAULT_MIN_ACCOUNTS}) accounts at the "
                      f"start; the check_thresholds resource holds the values ({RETENTION_SETTINGS})",
                      lambda t, table=table: retention_bounds_sql(table, t.nrr_low, t.nrr_high, t.grr_low,
                                                                  t.retention_bounds_min_accounts),
                      thresholds=RETENTION_THRESHOLDS, **warn),
        ]
    return checks


@dg.definitions
def kpis_checks() -> dg.Definitions:
    return dg.Definitions(asset_checks=build_kpi_checks())
