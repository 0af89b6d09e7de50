-- The monthly MRR bridge and revenue KPIs per segment, at the CRM-account grain, each as defined in
-- docs/KPI_DEFINITIONS.md (and, in plain words with examples, in defs/kpis/README.md).
-- Segment is the account's CURRENT segment (marts.accounts; 'unknown' when the account is not in the CRM),
-- so an account stays in one segment for its whole history and each segment's bridge chains exactly:
-- ending_mrr of M = starting_mrr of M+1. Segment 'all' covers every account. Rows run from the segment's
-- first month with MRR to the last month of the data. Ratios are DOUBLE fractions (1.03 = 103%), empty
-- (null) when their denominator is 0. Money columns are exact decimals in USD.
-- @grain month, segment
-- @column month: first day of the calendar month M
-- @column segment: the accounts' current CRM segment, or 'all'
-- @column starting_mrr: start(M) = sum of MRR_a(M-1)
-- @column new_mrr: MRR of accounts that became active in M for the first time
-- @column expansion_mrr: sum of (cur - prev) over accounts with cur > prev > 0
-- @column contraction_mrr: sum of (prev - cur) over accounts with 0 < cur < prev, as a positive number
-- @column churned_mrr: sum of prev over accounts with prev > 0 and cur = 0, as a positive number
-- @column reactivation_mrr: MRR of accounts active again in M after an earlier active month end
-- @column ending_mrr: end(M) = sum of MRR_a(M) = starting + new + expansion + reactivation - contraction - churned
-- @column net_new_mrr: ending_mrr - starting_mrr
-- @column accounts_start: accounts active at end(M-1)
-- @column accounts_end: accounts active at end(M)
-- @column new_accounts: accounts with movement new
-- @column reactivated_accounts: accounts with movement reactivation
-- @column expanded_accounts: accounts with movement expansion
-- @column contracted_accounts: accounts with movement contraction
-- @column churned_accounts: accounts active at end(M-1) and not at end(M)
-- @column nrr: (start + expansion - contraction - churned) / start; monthly net revenue retention
-- @column grr: (start - contraction - churned) / start; monthly gross revenue retention, never above 1
-- @column nrr_t12: cohort = accounts active at end(M-12): their MRR at end(M) / their MRR at end(M-12); null when M-12 precedes the data
-- @column grr_t12: as nrr_t12 with each account capped at its MRR at end(M-12)
-- @column t12_cohort_accounts: accounts active at end(M-12) (the trailing-12 cohort)
-- @column t12_cohort_starting_mrr: the cohort's MRR at end(M-12), the trailing-12 denominator
-- @column t12_cohort_mrr: the cohort's MRR at end(M), churned-and-returned members at their MRR in M
-- @column logo_churn_rate: churned_accounts / accounts_start
-- @column customer_retention_rate: (accounts_end - new_accounts - reactivated_accounts) / accounts_start
-- @column downgrade_rate: contracted_accounts / accounts_start
-- @column gross_revenue_churn: (churned + contraction) / start = 1 - grr
-- @column net_revenue_churn: (churned + contraction - expansion) / start = 1 - nrr (negative when expansion wins)
-- @column expansion_rate: expansion / start
-- @column quick_ratio: (new + expansion + reactivation) / (contraction + churned)
-- @column arpa: ending_mrr / accounts_end, USD per active account
-- @column clv: arpa / logo_churn_rate, USD; null when no account churned in M
-- @column mean_logo_churn_6m: mean of logo_churn_rate over the six months before M (M-6..M-1); null unless all six exist
-- @column clv_6m: arpa / mean_logo_churn_6m, USD
with account_months as (
    select
        m.month,
        year(m.month) * 12 + month(m.month) as month_index,
        m.account_id,
        coalesce(a.segment, 'unknown') as segment,
        m.mrr,
        m.prev_mrr,
        m.movement,
        m.movement_amount
    from marts.mrr_monthly as m
    left join marts.accounts as a
        on a.account_id = m.account_id
),

by_segment as (
    select month, month_index, segment, account_id, mrr, prev_mrr, movement, movement_amount
    from account_months
    union all
    select month, month_index, 'all' as segment, account_id, mrr, prev_mrr, movement, movement_amount
    from account_months
),

bridge as (
    select
        month,
        month_index,
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
    from by_segment
    group by month, month_index, segment
),

trailing_12 as (
    -- point to point: the accounts active at end(M-12) and the same accounts at end(M)
    select
        cur.month_index,
        cur.segment,
        count(*) as t12_cohort_accounts,
        sum(base.mrr) as t12_cohort_starting_mrr,
        sum(cur.mrr) as t12_cohort_mrr,
        sum(least(cur.mrr, base.mrr)) as t12_cohort_capped_mrr
    from by_segment as base
    inner join by_segment as cur
        on cur.account_id = base.account_id
        and cur.segment = base.segment
        and cur.month_index = base.month_index + 12
    where base.mrr > 0
    group by cur.month_index, cur.segment
),

data_start as (
    select min(year(month) * 12 + month(month)) as first_month_index
    from marts.dim_month
),

rates as (
    select
        b.*,
        case when b.accounts_start > 0
            then cast(b.churned_accounts as double) / cast(b.accounts_start as double)
        end as logo_churn_rate,
        case when b.accounts_end > 0
            then cast(b.ending_mrr as double) / cast(b.accounts_end as double)
        end as arpa
    from bridge as b
),

churn_6m as (
    select
        r.month_index,
        r.segment,
        avg(p.logo_churn_rate) as mean_logo_churn_6m,
        count(p.logo_churn_rate) as months_with_rate
    from rates as r
    inner join rates as p
        on p.segment = r.segment
        and p.month_index between r.month_index - 6 and r.month_index - 1
    group by r.month_index, r.segment
)

select
    r.month,
    r.segment,
    r.starting_mrr,
    r.new_mrr,
    r.expansion_mrr,
    r.contraction_mrr,
    r.churned_mrr,
    r.reactivation_mrr,
    r.ending_mrr,
    r.ending_mrr - r.starting_mrr as net_new_mrr,
    r.accounts_start,
    r.accounts_end,
    r.new_accounts,
    r.reactivated_accounts,
    r.expanded_accounts,
    r.contracted_accounts,
    r.churned_accounts,
    case when r.starting_mrr > 0
        then cast(r.starting_mrr + r.expansion_mrr - r.contraction_mrr - r.churned_mrr as double)
            / cast(r.starting_mrr as double)
    end as nrr,
    case when r.starting_mrr > 0
        then cast(r.starting_mrr - r.contraction_mrr - r.churned_mrr as double) / cast(r.starting_mrr as double)
    end as grr,
    case when r.month_index - 12 >= d.first_month_index and t.t12_cohort_starting_mrr > 0
        then cast(t.t12_cohort_mrr as double) / cast(t.t12_cohort_starting_mrr as double)
    end as nrr_t12,
    case when r.month_index - 12 >= d.first_month_index and t.t12_cohort_starting_mrr > 0
        then cast(t.t12_cohort_capped_mrr as double) / cast(t.t12_cohort_starting_mrr as double)
    end as grr_t12,
    case when r.month_index - 12 >= d.first_month_index then coalesce(t.t12_cohort_accounts, 0) end
        as t12_cohort_accounts,
    case when r.month_index - 12 >= d.first_month_index then t.t12_cohort_starting_mrr end
        as t12_cohort_starting_mrr,
    case when r.month_index - 12 >= d.first_month_index then t.t12_cohort_mrr end as t12_cohort_mrr,
    r.logo_churn_rate,
    case when r.accounts_start > 0
        then cast(r.accounts_end - r.new_accounts - r.reactivated_accounts as double)
            / cast(r.accounts_start as double)
    end as customer_retention_rate,
    case when r.accounts_start > 0
        then cast(r.contracted_accounts as double) / cast(r.accounts_start as double)
    end as downgrade_rate,
    case when r.starting_mrr > 0
        then cast(r.churned_mrr + r.contraction_mrr as double) / cast(r.starting_mrr as double)
    end as gross_revenue_churn,
    case when r.starting_mrr > 0
        then cast(r.churned_mrr + r.contraction_mrr - r.expansion_mrr as double) / cast(r.starting_mrr as double)
    end as net_revenue_churn,
    case when r.starting_mrr > 0
        then cast(r.expansion_mrr as double) / cast(r.starting_mrr as double)
    end as expansion_rate,
    case when r.contraction_mrr + r.churned_mrr > 0
        then cast(r.new_mrr + r.expansion_mrr + r.reactivation_mrr as double)
            / cast(r.contraction_mrr + r.churned_mrr as double)
    end as quick_ratio,
    r.arpa,
    case when r.logo_churn_rate > 0 then r.arpa / r.logo_churn_rate end as clv,
    case when c.months_with_rate = 6 then c.mean_logo_churn_6m end as mean_logo_churn_6m,
    case when c.months_with_rate = 6 and c.mean_logo_churn_6m > 0 then r.arpa / c.mean_logo_churn_6m end as clv_6m
from rates as r
cross join data_start as d
left join trailing_12 as t
    on t.month_index = r.month_index
    and t.segment = r.segment
left join churn_6m as c
    on c.month_index = r.month_index
    and c.segment = r.segment
