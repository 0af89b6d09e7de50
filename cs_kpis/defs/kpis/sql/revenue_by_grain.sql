-- The one place the revenue KPIs are computed: the MRR bridge and every revenue KPI per grain, cadence,
-- period and segment, each as defined in docs/KPI_DEFINITIONS.md (in plain words, with examples, in
-- defs/kpis/README.md). kpis.revenue_periods (grain account), kpis.revenue_monthly (grain account, month
-- cadence) and kpis.revenue_monthly_parent (grain parent, month cadence) are rows of this table, so their
-- figures cannot drift apart. Grain account reads kpis.mrr_periods (every CRM account, week, month and
-- quarter); grain parent reads kpis.mrr_monthly_parent (children summed up to the top of their hierarchy,
-- months only). start(P) = sum of MRR at the end of the previous period of the same cadence, end(P) = sum of
-- MRR at P's read day; NRR = MRR at the end of P of the accounts active at its start / their MRR at its
-- start; GRR the same with each account capped at its starting MRR; logo churn = accounts active at the
-- start and not at the end / accounts active at the start. Weeks are ISO weeks (Monday to Sunday). Segment
-- is the account's (at the parent grain: the root account's) current CRM segment ('unknown' when not in the
-- CRM, 'all' for every account), so each cadence's bridge chains: ending of P = starting of the next period.
-- Rows run from the segment's first period with MRR to the period holding the data's as-of day, which is
-- read on that day (is_complete false: provisional). Ratios are DOUBLE fractions (1.03 = 103%), null when
-- their denominator is 0. Money columns are exact decimals in USD.
-- @grain grain, cadence, period_start, segment
-- @column grain: account (each CRM account) or parent (each hierarchy, rolled up to its root account)
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
-- @column clv: arpa / logo_churn_rate, USD; null when no account churned in P
-- @column mean_logo_churn_6m: mean of logo_churn_rate over the six periods before P of the same cadence; null unless all six have a rate
-- @column clv_6m: arpa / mean_logo_churn_6m, USD
with periods as (
    select cadence, period_start, period_end, read_day, is_complete, period_index, periods_per_year
    from marts.dim_period
),

grain_periods as (
    -- the two grains' account-period rows, in one shape
    select 'account' as grain, cadence, period_index, account_id, mrr, prev_mrr, movement, movement_amount
    from kpis.mrr_periods
    union all
    select 'parent' as grain, p.cadence, p.period_index, m.account_id, m.mrr, m.prev_mrr, m.movement,
        m.movement_amount
    from kpis.mrr_monthly_parent as m
    inner join periods as p
        on p.cadence = 'month'
        and p.period_start = m.month
),

account_periods as (
    select
        m.grain,
        m.cadence,
        m.period_index,
        -- as marts.dim_period.periods_per_year
        case m.cadence when 'week' then 52 when 'month' then 12 else 4 end as periods_per_year,
        m.account_id,
        -- at the parent grain account_id is the root account: its segment
        coalesce(a.segment, 'unknown') as segment,
        m.mrr,
        m.prev_mrr,
        m.movement,
        m.movement_amount
    from grain_periods as m
    left join marts.accounts as a
        on a.account_id = m.account_id
),

segment_bridge as (
    select
        grain,
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
    group by grain, cadence, period_index, segment
),

-- The trailing-year join reads kpis.mrr_periods and kpis.mrr_monthly_parent again rather than account_periods:
-- DuckDB stores a CTE read at two places or more before its first reading (on the large company 12.6 M
-- account-period rows of ten columns, a third of the model's time), where two more scans of the tables read
-- only the columns and rows the join needs (BENCHMARKS.md "revenue_by_grain without the stored account periods")
year_base as (
    -- each account-period with MRR, of both grains (the join below keeps those whose year-later period is in
    -- the data)
    select 'account' as grain, cadence, period_index, account_id, mrr
    from kpis.mrr_periods
    where mrr > 0
    union all
    select 'parent' as grain, p.cadence, p.period_index, m.account_id, m.mrr
    from kpis.mrr_monthly_parent as m
    inner join periods as p
        on p.cadence = 'month'
        and p.period_start = m.month
    where m.mrr > 0
),

year_later as (
    -- the rows a base row can pair with: MRR, from the second year on (a row at 0 adds 0 either way)
    select 'account' as grain, cadence, period_index, account_id, mrr
    from kpis.mrr_periods
    where mrr <> 0
        and period_index > case cadence when 'week' then 52 when 'month' then 12 else 4 end
    union all
    select 'parent' as grain, p.cadence, p.period_index, m.account_id, m.mrr
    from kpis.mrr_monthly_parent as m
    inner join periods as p
        on p.cadence = 'month'
        and p.period_start = m.month
    where m.mrr <> 0
        and p.period_index > 12
),

trailing_year_accounts as (
    -- point to point: each account active at the end of a period, and the same account one year of periods
    -- later (absent from kpis.mrr_periods there: MRR 0). Only rows that can pair are joined: a base period
    -- whose year-later period is in the data, a later row with MRR from the second year on (a row at 0 adds
    -- 0 either way): on the large company 8.5 M base rows of 11.4 M and 10.3 M later rows of 12.6 M
    -- (BENCHMARKS.md "Small steps of the nightly"). The segment is the base account's, as in account_periods.
    select
        base.grain,
        base.cadence,
        base.period_index + l.periods_per_year as period_index,
        coalesce(a.segment, 'unknown') as segment,
        base.mrr as base_mrr,
        coalesce(cur.mrr, 0) as cur_mrr
    from year_base as base
    inner join (
        -- as marts.dim_period.periods_per_year
        select
            cadence,
            max(period_index) as last_index,
            max(case cadence when 'week' then 52 when 'month' then 12 else 4 end) as periods_per_year
        from periods
        group by cadence
    ) as l
        on l.cadence = base.cadence
        and base.period_index + l.periods_per_year <= l.last_index
    left join year_later as cur
        on cur.grain = base.grain
        and cur.cadence = base.cadence
        and cur.account_id = base.account_id
        and cur.period_index = base.period_index + l.periods_per_year
    left join marts.accounts as a
        on a.account_id = base.account_id
),

segment_trailing_year as (
    select
        grain,
        cadence,
        period_index,
        segment,
        count(*) as t12_cohort_accounts,
        sum(base_mrr) as t12_cohort_starting_mrr,
        sum(cur_mrr) as t12_cohort_mrr,
        sum(least(cur_mrr, base_mrr)) as t12_cohort_capped_mrr
    from trailing_year_accounts
    group by grain, cadence, period_index, segment
),

segment_periods as (
    -- every period of each segment from its first one with MRR, also periods in which nothing moved
    select
        s.grain,
        p.cadence,
        p.period_index,
        s.segment
    from (
        -- segment_bridge has a row for every period in which the segment has an account row
        select grain, cadence, segment, min(period_index) as first_period_index
        from segment_bridge
        group by grain, cadence, segment
    ) as s
    inner join periods as p
        on p.cadence = s.cadence
        and p.period_index >= s.first_period_index
),

by_segment as (
    select
        sp.grain,
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
        on b.grain = sp.grain
        and b.cadence = sp.cadence
        and b.period_index = sp.period_index
        and b.segment = sp.segment
    left join segment_trailing_year as t
        on t.grain = sp.grain
        and t.cadence = sp.cadence
        and t.period_index = sp.period_index
        and t.segment = sp.segment
),

with_all as (
    select * from by_segment
    union all
    -- 'all': every column is a sum over the accounts, so it is the sum over the segments
    select
        grain,
        cadence,
        period_index,
        'all' as segment,
        sum(starting_mrr), sum(new_mrr), sum(expansion_mrr), sum(contraction_mrr), sum(churned_mrr),
        sum(reactivation_mrr), sum(ending_mrr), sum(accounts_start), sum(accounts_end), sum(new_accounts),
        sum(reactivated_accounts), sum(expanded_accounts), sum(contracted_accounts), sum(churned_accounts),
        sum(t12_cohort_accounts), sum(t12_cohort_starting_mrr), sum(t12_cohort_mrr), sum(t12_cohort_capped_mrr)
    from by_segment
    group by grain, cadence, period_index
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
),

measures as (
    select
        b.grain,
        b.cadence,
        b.period_index,
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
),


churn_6m as (
    -- the logo churn rates of the six periods before P (same grain, cadence and segment)
    select
        m.grain,
        m.cadence,
        m.period_index,
        m.segment,
        avg(p.logo_churn_rate) as mean_logo_churn_6m,
        count(p.logo_churn_rate) as periods_with_rate
    from measures as m
    inner join measures as p
        on p.grain = m.grain
        and p.cadence = m.cadence
        and p.segment = m.segment
        and p.period_index between m.period_index - 6 and m.period_index - 1
    group by m.grain, m.cadence, m.period_index, m.segment
)

select
    m.grain,
    m.cadence,
    m.period_start,
    m.period_end,
    m.read_day,
    m.is_complete,
    m.segment,
    m.starting_mrr,
    m.new_mrr,
    m.expansion_mrr,
    m.contraction_mrr,
    m.churned_mrr,
    m.reactivation_mrr,
    m.ending_mrr,
    m.net_new_mrr,
    m.accounts_start,
    m.accounts_end,
    m.new_accounts,
    m.reactivated_accounts,
    m.expanded_accounts,
    m.contracted_accounts,
    m.churned_accounts,
    m.nrr,
    m.grr,
    m.nrr_t12,
    m.grr_t12,
    m.t12_cohort_accounts,
    m.t12_cohort_starting_mrr,
    m.t12_cohort_mrr,
    m.logo_churn_rate,
    m.customer_retention_rate,
    m.downgrade_rate,
    m.gross_revenue_churn,
    m.net_revenue_churn,
    m.expansion_rate,
    m.quick_ratio,
    m.arpa,
    -- arpa and the rates are DOUBLE already; the casts say so to the portability lint
    case when m.logo_churn_rate > 0 then cast(m.arpa as double) / cast(m.logo_churn_rate as double) end as clv,
    case when c.periods_with_rate = 6 then c.mean_logo_churn_6m end as mean_logo_churn_6m,
    case when c.periods_with_rate = 6 and c.mean_logo_churn_6m > 0
        then cast(m.arpa as double) / cast(c.mean_logo_churn_6m as double)
    end as clv_6m
from measures as m
left join churn_6m as c
    on c.grain = m.grain
    and c.cadence = m.cadence
    and c.period_index = m.period_index
    and c.segment = m.segment
