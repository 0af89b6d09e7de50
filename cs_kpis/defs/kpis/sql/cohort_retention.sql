-- Cohort retention at the CRM-account grain: one row per cohort (the month an account was first active
-- at a month end) and month since that start, through the last month of the data. Point to point:
-- an account that churned and came back counts at its MRR in that month. Ratios are DOUBLE fractions.
-- @grain cohort_month, months_since_start
-- @column cohort_month: first month in which the cohort's accounts were active at the month end
-- @column months_since_start: 0 for the cohort month, 1 for the month after, ...
-- @column month: the calendar month measured (cohort_month + months_since_start)
-- @column cohort_accounts: accounts in the cohort
-- @column cohort_starting_mrr: the cohort's MRR at the end of the cohort month, USD
-- @column active_accounts: cohort accounts active at the end of month
-- @column cohort_mrr: the cohort's MRR at the end of month, USD
-- @column cohort_capped_mrr: the cohort's MRR at the end of month with each account capped at its starting MRR, USD
-- @column logo_retention: active_accounts / cohort_accounts
-- @column net_mrr_retention: cohort_mrr / cohort_starting_mrr (expansion can take it above 1)
-- @column gross_mrr_retention: cohort_capped_mrr / cohort_starting_mrr (never above 1)
with account_months as (
    select
        account_id,
        month,
        year(month) * 12 + month(month) as month_index,
        mrr
    from marts.mrr_monthly
),

starts as (
    -- an account's rows begin at its first active month
    select
        a.account_id,
        a.month as cohort_month,
        a.month_index as cohort_month_index,
        a.mrr as starting_mrr
    from account_months as a
    inner join (
        select account_id, min(month_index) as first_month_index
        from account_months
        where mrr > 0
        group by account_id
    ) as f
        on f.account_id = a.account_id
        and f.first_month_index = a.month_index
),

cohort_months as (
    select
        s.cohort_month,
        m.month_index - s.cohort_month_index as months_since_start,
        m.month,
        count(*) as cohort_accounts,
        sum(s.starting_mrr) as cohort_starting_mrr,
        sum(case when m.mrr > 0 then 1 else 0 end) as active_accounts,
        sum(m.mrr) as cohort_mrr,
        sum(least(m.mrr, s.starting_mrr)) as cohort_capped_mrr
    from starts as s
    inner join account_months as m
        on m.account_id = s.account_id
        and m.month_index >= s.cohort_month_index
    group by s.cohort_month, m.month_index - s.cohort_month_index, m.month
)

select
    cohort_month,
    months_since_start,
    month,
    cohort_accounts,
    cohort_starting_mrr,
    active_accounts,
    cohort_mrr,
    cohort_capped_mrr,
    cast(active_accounts as double) / cast(cohort_accounts as double) as logo_retention,
    case when cohort_starting_mrr > 0
        then cast(cohort_mrr as double) / cast(cohort_starting_mrr as double)
    end as net_mrr_retention,
    case when cohort_starting_mrr > 0
        then cast(cohort_capped_mrr as double) / cast(cohort_starting_mrr as double)
    end as gross_mrr_retention
from cohort_months
