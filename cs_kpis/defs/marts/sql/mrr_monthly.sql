-- Month-end MRR per CRM account and its movement: one row per account per month, from the account's
-- first month active at a month end through the last month of the data, zeros included (so churned
-- and dormant months are present and the bridge can be summed from this table alone).
-- MRR_a(M) is the account's daily MRR on read_day (end(M), or data_as_of for the current month).
-- Movements follow KPI_DEFINITIONS.md: new (prev 0, cur > 0, never active at an earlier month end),
-- reactivation (prev 0, cur > 0, active at an earlier month end), churn (prev > 0, cur 0),
-- expansion (cur > prev > 0), contraction (0 < cur < prev), unchanged (cur = prev, including 0 -> 0).
-- An account whose MRR is positive only inside a month and 0 at every month end never appears.
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
with months as (
    select
        month,
        read_day,
        year(month) * 12 + month(month) as month_index
    from marts.dim_month
),

changes as (
    -- each change holds until the next one: [change_date, next_change_date)
    select
        account_id,
        change_date,
        mrr,
        -- the next row's date; an aggregate over a one-row frame instead of lead() (see PORTABILITY.md)
        min(change_date) over (
            partition by account_id order by change_date
            rows between 1 following and 1 following
        ) as next_change_date
    from marts.mrr_daily_changes
),

month_end_mrr as (
    -- only account-months with a change in force on read_day; the gaps before the first change are 0
    select
        c.account_id,
        m.month,
        m.month_index,
        c.mrr
    from changes as c
    inner join months as m
        on c.change_date <= m.read_day
        and (c.next_change_date is null or c.next_change_date > m.read_day)
),

first_active as (
    -- <> 0 rather than > 0: a negative month-end MRR must surface (mrr_monthly_no_negative_mrr), not vanish
    select
        account_id,
        min(month_index) as first_month_index
    from month_end_mrr
    where mrr <> 0
    group by account_id
),

account_months as (
    -- the full account x month grid from the first active month on, zeros filled in
    select
        f.account_id,
        m.month,
        m.month_index,
        coalesce(e.mrr, 0) as mrr
    from first_active as f
    inner join months as m
        on m.month_index >= f.first_month_index
    left join month_end_mrr as e
        on e.account_id = f.account_id
        and e.month_index = m.month_index
),

with_prev as (
    select
        cur.account_id,
        cur.month,
        cur.month_index,
        cur.mrr,
        coalesce(prev.mrr, 0) as prev_mrr,
        -- active at any earlier month end (the grid has no gaps, so rows are months)
        coalesce(max(case when cur.mrr > 0 then 1 else 0 end) over (
            partition by cur.account_id order by cur.month_index
            rows between unbounded preceding and 1 preceding
        ), 0) = 1 as was_active_before
    from account_months as cur
    left join account_months as prev
        on prev.account_id = cur.account_id
        and prev.month_index = cur.month_index - 1
)

select
    w.month,
    w.account_id,
    a.parent_account_id,
    coalesce(a.root_account_id, w.account_id) as root_account_id,
    w.mrr,
    w.prev_mrr,
    case
        when w.prev_mrr = 0 and w.mrr > 0 and not w.was_active_before then 'new'
        when w.prev_mrr = 0 and w.mrr > 0 then 'reactivation'
        when w.prev_mrr > 0 and w.mrr = 0 then 'churn'
        when w.mrr > w.prev_mrr then 'expansion'
        when w.mrr < w.prev_mrr then 'contraction'
        else 'unchanged'
    end as movement,
    w.mrr - w.prev_mrr as movement_amount,
    w.mrr > 0 as is_active
from with_prev as w
left join marts.accounts as a
    on a.account_id = w.account_id
