-- The monthly MRR bridge and revenue KPIs per segment, at the CRM-account grain, each as defined in
-- docs/KPI_DEFINITIONS.md (and, in plain words with examples, in defs/kpis/README.md): the month cadence of
-- kpis.revenue_periods, i.e. the rows of grain account and cadence month of kpis.revenue_by_grain, where the
-- formulas live once.
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
select
    period_start as month,
    segment,
    -- include: revenue_kpi_columns
    arpa,
    clv,
    mean_logo_churn_6m,
    clv_6m
from kpis.revenue_by_grain
where grain = 'account'
    and cadence = 'month'
