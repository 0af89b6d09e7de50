-- The MRR bridge and revenue KPIs per week, month and quarter and per segment, at the CRM-account grain:
-- kpis.revenue_monthly's definitions (docs/KPI_DEFINITIONS.md, defs/kpis/README.md) applied to a
-- period P of any cadence, from kpis.mrr_periods. start(P) = sum of MRR at the end of the previous period of
-- the same cadence, end(P) = sum of MRR at P's read day; NRR = MRR at the end of P of the accounts active at
-- its start / their MRR at its start; GRR the same with each account capped at its starting MRR; logo churn
-- = accounts active at the start and not at the end / accounts active at the start. Weeks are ISO weeks
-- (Monday to Sunday). The month rows equal kpis.revenue_monthly in every column both have (a blocking check
-- and a test keep them equal). Segment is the account's current CRM segment ('unknown' when not in the CRM,
-- 'all' for every account), so each cadence's bridge chains: ending of P = starting of the next period.
-- The current period is read on the data's as-of day (is_complete false): provisional, and not comparable
-- with a whole previous period. Ratios are DOUBLE fractions (1.03 = 103%), null when their denominator is 0.
-- @grain cadence, period_start, segment
-- @column cadence: week, month or quarter
-- @column period_start: first day of the period P (a Monday for weeks)
-- @column period_end: last day of P (a Sunday for weeks)
-- @column read_day: the day end(P) is read: period_end, or the data's as-of day for the current period
-- @column is_complete: read_day = period_end (false for the current, unfinished period)
-- @column segment: the accounts' current CRM segment, or 'all'
-- @column starting_mrr: start(P) = sum of MRR at the end of the previous period of the same cadence
-- @column new_mrr: MRR of accounts active at the end of P and never at an earlier period end of this cadence
-- @column expansion_mrr: sum of (cur - prev) over accounts with cur > prev > 0
-- @column contraction_mrr: sum of (prev - cur) over accounts with 0 < cur < prev, as a positive number
-- @column churned_mrr: sum of prev over accounts with prev > 0 and cur = 0, as a positive number
-- @column reactivation_mrr: MRR of accounts active again at the end of P after an earlier active period end
-- @column ending_mrr: end(P) = starting + new + expansion + reactivation - contraction - churned
-- @column net_new_mrr: ending_mrr - starting_mrr
-- @column accounts_start: accounts active at the start of P (the end of the previous period)
-- @column accounts_end: accounts active at the end of P
-- @column new_accounts: accounts with movement new
-- @column reactivated_accounts: accounts with movement reactivation
-- @column expanded_accounts: accounts with movement expansion
-- @column contracted_accounts: accounts with movement contraction
-- @column churned_accounts: accounts active at the start of P and not at its end
-- @column nrr: (start + expansion - contraction - churned) / start; net revenue retention over P
-- @column grr: (start - contraction - churned) / start; gross revenue retention over P, never above 1
-- @column nrr_t12: cohort = accounts active at the end of the same-cadence period one year earlier (52 weeks, 12 months, 4 quarters): their MRR at end(P) / their MRR then; null when that period precedes the data
-- @column grr_t12: as nrr_t12 with each account capped at its MRR a year earlier
-- @column t12_cohort_accounts: accounts in the trailing-year cohort
-- @column t12_cohort_starting_mrr: the cohort's MRR a year earlier, the trailing-year denominator
-- @column t12_cohort_mrr: the cohort's MRR at end(P), churned-and-returned members at their MRR now
-- @column logo_churn_rate: churned_accounts / accounts_start
-- @column customer_retention_rate: (accounts_end - new_accounts - reactivated_accounts) / accounts_start
-- @column downgrade_rate: contracted_accounts / accounts_start
-- @column gross_revenue_churn: (churned + contraction) / start = 1 - grr
-- @column net_revenue_churn: (churned + contraction - expansion) / start = 1 - nrr
-- @column expansion_rate: expansion / start
-- @column quick_ratio: (new + expansion + reactivation) / (contraction + churned); null when nothing was lost
-- @column arpa: ending_mrr / accounts_end, USD per active account
with account_periods as (
    select
        m.cadence,
        m.period_index,
        -- as kpis.dim_period.periods_per_year
        case m.cadence when 'week' then 52 when 'month' then 12 else 4 end as periods_per_year,
        m.account_id,
        coalesce(a.segment, 'unknown') as segment,
        m.mrr,
        m.prev_mrr,
        m.movement,
        m.movement_amount
    from kpis.mrr_periods as m
    left join marts.accounts as a
        on a.account_id = m.account_id
),

segment_bridge as (
    select
        cadence,
        period_index,
        segment,
        sum(prev_mrr) as starting_mrr,
        sum(case when movement = 'new' then movement_amount else 0 end) as new_mrr,
        sum(case when movement = 'expansion' then movement_amount else 0 end) as expansion_mrr,
        sum(case when movement = 'contraction' then -movement_amount else 0 end) as contraction_mrr,
        sum(case when movement = 'churn' then prev_mrr else 0 end) as churned_mrr,
        sum(case when movement = 'reactivation' then movement_amount else 0 end) as reactivation_mrr,
        sum(mrr) as ending_mrr,
        sum(case when prev_mrr > 0 then 1 else 0 end) as accounts_start,
        sum(case when mrr > 0 then 1 else 0 end) as accounts_end,
        sum(case when movement = 'new' then 1 else 0 end) as new_accounts,
        sum(case when movement = 'reactivation' then 1 else 0 end) as reactivated_accounts,
        sum(case when movement = 'expansion' then 1 else 0 end) as expanded_accounts,
        sum(case when movement = 'contraction' then 1 else 0 end) as contracted_accounts,
        sum(case when movement = 'churn' then 1 else 0 end) as churned_accounts
    from account_periods
    group by cadence, period_index, segment
),

trailing_year_accounts as (
    -- point to point: each account active at the end of a period, and the same account one year of periods
    -- later (absent from kpis.mrr_periods there: MRR 0)
    select
        base.cadence,
        base.period_index + base.periods_per_year as period_index,
        base.segment,
        base.mrr as base_mrr,
        coalesce(cur.mrr, 0) as cur_mrr
    from account_periods as base
    left join account_periods as cur
        on cur.cadence = base.cadence
        and cur.account_id = base.account_id
        and cur.period_index = base.period_index + base.periods_per_year
    where base.mrr > 0
),

segment_trailing_year as (
    select
        cadence,
        period_index,
        segment,
        count(*) as t12_cohort_accounts,
        sum(base_mrr) as t12_cohort_starting_mrr,
        sum(cur_mrr) as t12_cohort_mrr,
        sum(least(cur_mrr, base_mrr)) as t12_cohort_capped_mrr
    from trailing_year_accounts
    group by cadence, period_index, segment
),

periods as (
    select cadence, period_start, period_end, read_day, is_complete, period_index, periods_per_year
    from kpis.dim_period
),

segment_periods as (
    -- every period of each segment from its first one with MRR, also periods in which nothing moved
    select
        p.cadence,
        p.period_index,
        s.segment
    from (
        select cadence, segment, min(period_index) as first_period_index
        from account_periods
        group by cadence, segment
    ) as s
    inner join periods as p
        on p.cadence = s.cadence
        and p.period_index >= s.first_period_index
),

by_segment as (
    select
        sp.cadence,
        sp.period_index,
        sp.segment,
        coalesce(b.starting_mrr, 0) as starting_mrr,
        coalesce(b.new_mrr, 0) as new_mrr,
        coalesce(b.expansion_mrr, 0) as expansion_mrr,
        coalesce(b.contraction_mrr, 0) as contraction_mrr,
        coalesce(b.churned_mrr, 0) as churned_mrr,
        coalesce(b.reactivation_mrr, 0) as reactivation_mrr,
        coalesce(b.ending_mrr, 0) as ending_mrr,
        coalesce(b.accounts_start, 0) as accounts_start,
        coalesce(b.accounts_end, 0) as accounts_end,
        coalesce(b.new_accounts, 0) as new_accounts,
        coalesce(b.reactivated_accounts, 0) as reactivated_accounts,
        coalesce(b.expanded_accounts, 0) as expanded_accounts,
        coalesce(b.contracted_accounts, 0) as contracted_accounts,
        coalesce(b.churned_accounts, 0) as churned_accounts,
        t.t12_cohort_accounts,
        t.t12_cohort_starting_mrr,
        t.t12_cohort_mrr,
        t.t12_cohort_capped_mrr
    from segment_periods as sp
    left join segment_bridge as b
        on b.cadence = sp.cadence
        and b.period_index = sp.period_index
        and b.segment = sp.segment
    left join segment_trailing_year as t
        on t.cadence = sp.cadence
        and t.period_index = sp.period_index
        and t.segment = sp.segment
),

with_all as (
    select * from by_segment
    union all
    -- 'all': every column is a sum over the accounts, so it is the sum over the segments
    select
        cadence,
        period_index,
        'all' as segment,
        sum(starting_mrr), sum(new_mrr), sum(expansion_mrr), sum(contraction_mrr), sum(churned_mrr),
        sum(reactivation_mrr), sum(ending_mrr), sum(accounts_start), sum(accounts_end), sum(new_accounts),
        sum(reactivated_accounts), sum(expanded_accounts), sum(contracted_accounts), sum(churned_accounts),
        sum(t12_cohort_accounts), sum(t12_cohort_starting_mrr), sum(t12_cohort_mrr), sum(t12_cohort_capped_mrr)
    from by_segment
    group by cadence, period_index
),

bridge as (
    select
        w.*,
        p.period_start,
        p.period_end,
        p.read_day,
        p.is_complete,
        p.periods_per_year
    from with_all as w
    inner join periods as p
        on p.cadence = w.cadence
        and p.period_index = w.period_index
)

select
    b.cadence,
    b.period_start,
    b.period_end,
    b.read_day,
    b.is_complete,
    b.segment,
    b.starting_mrr,
    b.new_mrr,
    b.expansion_mrr,
    b.contraction_mrr,
    b.churned_mrr,
    b.reactivation_mrr,
    b.ending_mrr,
    b.ending_mrr - b.starting_mrr as net_new_mrr,
    b.accounts_start,
    b.accounts_end,
    b.new_accounts,
    b.reactivated_accounts,
    b.expanded_accounts,
    b.contracted_accounts,
    b.churned_accounts,
    case when b.starting_mrr > 0
        then cast(b.starting_mrr + b.expansion_mrr - b.contraction_mrr - b.churned_mrr as double)
            / cast(b.starting_mrr as double)
    end as nrr,
    case when b.starting_mrr > 0
        then cast(b.starting_mrr - b.contraction_mrr - b.churned_mrr as double) / cast(b.starting_mrr as double)
    end as grr,
    -- the period a year earlier is in the data when its index is at least 1
    case when b.period_index > b.periods_per_year and b.t12_cohort_starting_mrr > 0
        then cast(b.t12_cohort_mrr as double) / cast(b.t12_cohort_starting_mrr as double)
    end as nrr_t12,
    case when b.period_index > b.periods_per_year and b.t12_cohort_starting_mrr > 0
        then cast(b.t12_cohort_capped_mrr as double) / cast(b.t12_cohort_starting_mrr as double)
    end as grr_t12,
    case when b.period_index > b.periods_per_year then coalesce(b.t12_cohort_accounts, 0) end
        as t12_cohort_accounts,
    case when b.period_index > b.periods_per_year then b.t12_cohort_starting_mrr end as t12_cohort_starting_mrr,
    case when b.period_index > b.periods_per_year then b.t12_cohort_mrr end as t12_cohort_mrr,
    case when b.accounts_start > 0
        then cast(b.churned_accounts as double) / cast(b.accounts_start as double)
    end as logo_churn_rate,
    case when b.accounts_start > 0
        then cast(b.accounts_end - b.new_accounts - b.reactivated_accounts as double)
            / cast(b.accounts_start as double)
    end as customer_retention_rate,
    case when b.accounts_start > 0
        then cast(b.contracted_accounts as double) / cast(b.accounts_start as double)
    end as downgrade_rate,
    case when b.starting_mrr > 0
        then cast(b.churned_mrr + b.contraction_mrr as double) / cast(b.starting_mrr as double)
    end as gross_revenue_churn,
    case when b.starting_mrr > 0
        then cast(b.churned_mrr + b.contraction_mrr - b.expansion_mrr as double) / cast(b.starting_mrr as double)
    end as net_revenue_churn,
    case when b.starting_mrr > 0
        then cast(b.expansion_mrr as double) / cast(b.starting_mrr as double)
    end as expansion_rate,
    case when b.contraction_mrr + b.churned_mrr > 0
        then cast(b.new_mrr + b.expansion_mrr + b.reactivation_mrr as double)
            / cast(b.contraction_mrr + b.churned_mrr as double)
    end as quick_ratio,
    case when b.accounts_end > 0
        then cast(b.ending_mrr as double) / cast(b.accounts_end as double)
    end as arpa
from bridge as b
