-- MRR per CRM account at the end of every week, month and quarter, and its movement over the period: the
-- one place movements are classified. kpis.mrr_periods selects it (the account grain behind
-- kpis.revenue_by_grain) and marts.mrr_monthly is its month rows, so the marts layer never reads kpis. One row per cadence, period and
-- account that had MRR at the period's start or end: periods in which a churned account stays at 0 move
-- nothing and are left out (marts.mrr_monthly fills them in as unchanged 0 -> 0).
-- Weeks are ISO weeks (Monday to Sunday), quarters calendar quarters.
-- MRR_a(P) is the account's daily MRR on the period's read_day: its last day, or the data's as-of day for
-- the current, unfinished period (read_day < period_end: provisional). Movements compare the end of the
-- previous period of the same cadence (prev) with the end of this one (cur), as KPI_DEFINITIONS.md defines
-- them: new (prev 0, cur > 0, never active at an earlier period end of this cadence), reactivation (prev 0,
-- cur > 0, active at an earlier one), churn (prev > 0, cur 0), expansion (cur > prev > 0), contraction
-- (0 < cur < prev), unchanged. A quarter's movement is one comparison of its two ends: an account that
-- churned in the quarter's first month and came back by its end is not a churn.
-- @grain cadence, period_start, account_id
-- @column cadence: week, month or quarter
-- @column period_start: first day of the period (a Monday for weeks)
-- @column period_end: last day of the period (a Sunday for weeks), also for the current, unfinished period
-- @column read_day: the day the period-end MRR is read: period_end, or the data's as-of day when earlier
-- @column period_index: 1 for the cadence's first period of the data, then consecutive
-- @column account_id: CRM account (as in marts.mrr_daily_changes)
-- @column mrr: MRR_a(P), USD, daily MRR on read_day (0 when not active)
-- @column prev_mrr: MRR_a at the end of the previous period of the same cadence, USD (0 for new and reactivated accounts)
-- @column movement: new, expansion, contraction, churn, reactivation or unchanged
-- @column movement_amount: mrr - prev_mrr, USD
-- @column is_active: mrr > 0
with periods as (
    select cadence, period_start, period_end, read_day, period_index
    from marts.dim_period
),

read_days as (
    select distinct read_day from periods
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

point_mrr as (
    -- the non-zero MRR in force on each read day; 0 (before the first change, after a churn) is no row
    select
        c.account_id,
        r.read_day,
        c.mrr
    from changes as c
    inner join read_days as r
        on c.change_date <= r.read_day
        and (c.next_change_date is null or c.next_change_date > r.read_day)
    where c.mrr <> 0
),

period_end_mrr as (
    select
        p.cadence,
        p.period_index,
        x.account_id,
        x.mrr
    from periods as p
    inner join point_mrr as x
        on x.read_day = p.read_day
),

first_positive as (
    select
        cadence,
        account_id,
        min(period_index) as first_period_index
    from period_end_mrr
    where mrr > 0
    group by cadence, account_id
),

pairs as (
    -- each period end with MRR, and each period right after one (where a churn shows): cur and prev
    select
        coalesce(cur.cadence, prev.cadence) as cadence,
        coalesce(cur.period_index, prev.period_index + 1) as period_index,
        coalesce(cur.account_id, prev.account_id) as account_id,
        coalesce(cur.mrr, 0) as mrr,
        coalesce(prev.mrr, 0) as prev_mrr
    from period_end_mrr as cur
    full outer join period_end_mrr as prev
        on prev.cadence = cur.cadence
        and prev.account_id = cur.account_id
        and prev.period_index = cur.period_index - 1
)

select
    p.cadence,
    p.period_start,
    p.period_end,
    p.read_day,
    p.period_index,
    x.account_id,
    x.mrr,
    x.prev_mrr,
    case
        -- active at an earlier period end of this cadence: its first positive period end is earlier
        when x.prev_mrr = 0 and x.mrr > 0 and coalesce(f.first_period_index, p.period_index) >= p.period_index
            then 'new'
        when x.prev_mrr = 0 and x.mrr > 0 then 'reactivation'
        when x.prev_mrr > 0 and x.mrr = 0 then 'churn'
        when x.mrr > x.prev_mrr then 'expansion'
        when x.mrr < x.prev_mrr then 'contraction'
        else 'unchanged'
    end as movement,
    x.mrr - x.prev_mrr as movement_amount,
    x.mrr > 0 as is_active
from pairs as x
inner join periods as p
    on p.cadence = x.cadence
    and p.period_index = x.period_index
left join first_positive as f
    on f.cadence = x.cadence
    and f.account_id = x.account_id
