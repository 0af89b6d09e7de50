-- The MRR bridge and revenue KPIs per week, month and quarter and per segment, at the CRM-account grain:
-- kpis.revenue_monthly's definitions (docs/KPI_DEFINITIONS.md, defs/kpis/README.md) applied to a period P of
-- any cadence, from kpis.mrr_periods. These are the rows of grain account of kpis.revenue_by_grain, where the
-- formulas live once; kpis.revenue_monthly is this table's month cadence. start(P) = sum of MRR at the end of
-- the previous period of the same cadence, end(P) = sum of MRR at P's read day; NRR = MRR at the end of P of
-- the accounts active at its start / their MRR at its start; GRR the same with each account capped at its
-- starting MRR; logo churn = accounts active at the start and not at the end / accounts active at the start.
-- Weeks are ISO weeks (Monday to Sunday). Segment is the account's current CRM segment ('unknown' when not
-- in the CRM, 'all' for every account), so each cadence's bridge chains: ending of P = starting of the next
-- period. The current period is read on the data's as-of day (is_complete false): provisional, and not
-- comparable with a whole previous period. Ratios are DOUBLE fractions (1.03 = 103%), null when their
-- denominator is 0.
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
select
    cadence,
    period_start,
    period_end,
    read_day,
    is_complete,
    segment,
    -- include: revenue_kpi_columns
    arpa
from kpis.revenue_by_grain
where grain = 'account'
