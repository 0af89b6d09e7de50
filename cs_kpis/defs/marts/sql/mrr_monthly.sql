-- Month-end MRR per CRM account and its movement: one row per account per month, from the account's
-- first month active at a month end through the last month of the data, zeros included (so churned
-- and dormant months are present and the bridge can be summed from this table alone).
-- MRR_a(M) is the account's daily MRR on read_day (end(M), or data_as_of for the current month).
-- Movements follow KPI_DEFINITIONS.md: new (prev 0, cur > 0, never active at an earlier month end),
-- reactivation (prev 0, cur > 0, active at an earlier month end), churn (prev > 0, cur 0),
-- expansion (cur > prev > 0), contraction (0 < cur < prev), unchanged (cur = prev, including 0 -> 0).
-- An account whose MRR is positive only inside a month and 0 at every month end never appears.
-- One formula: the month-end MRR and the movements are marts.mrr_period_ends' month rows (kpis.mrr_periods selects the same table) (where they are
-- computed for weeks, months and quarters alike); this table adds the months in which the account stays at
-- 0 (unchanged, 0 -> 0), which marts.mrr_period_ends leaves out, and the account's place in the CRM hierarchy.
-- @grain month, account_id
-- @column month: first day of the calendar month M
-- @column account_id: CRM account (as in marts.mrr_daily_changes)
-- @column parent_account_id: direct parent in the CRM hierarchy (null at the top; null when the account is unknown to marts.accounts)
-- @column root_account_id: top of the hierarchy (the account itself when it has no parent or is unknown to marts.accounts)
-- @column mrr: MRR_a(M), USD, daily MRR on the month's read_day (0 when not active)
-- @column prev_mrr: MRR_a(M-1), USD (0 in the account's first month)
-- @column movement: new, expansion, contraction, churn, reactivation or unchanged
-- @column movement_amount: mrr - prev_mrr, USD: new and reactivation +cur, expansion > 0, contraction < 0, churn -prev, unchanged 0
-- @column is_active: mrr > 0
with month_rows as (
    select
        period_start as month,
        account_id,
        mrr,
        prev_mrr,
        movement,
        movement_amount
    from marts.mrr_period_ends
    where cadence = 'month'
),

first_month as (
    -- the first row is the first month with MRR at its end (marts.mrr_period_ends has no rows before it)
    select
        account_id,
        min(month) as first_month
    from month_rows
    group by account_id
),

account_months as (
    -- the full account x month grid from the first active month on
    select
        f.account_id,
        m.month
    from first_month as f
    inner join marts.dim_month as m
        on m.month >= f.first_month
)

select
    g.month,
    g.account_id,
    a.parent_account_id,
    coalesce(a.root_account_id, g.account_id) as root_account_id,
    coalesce(r.mrr, 0) as mrr,
    coalesce(r.prev_mrr, 0) as prev_mrr,
    -- a month absent from marts.mrr_period_ends is 0 at both ends: unchanged
    coalesce(r.movement, 'unchanged') as movement,
    coalesce(r.movement_amount, 0) as movement_amount,
    coalesce(r.mrr, 0) > 0 as is_active
from account_months as g
left join month_rows as r
    on r.account_id = g.account_id
    and r.month = g.month
left join marts.accounts as a
    on a.account_id = g.account_id
