-- MRR per CRM account at the end of every week, month and quarter, and its movement over the period: the
-- account grain behind kpis.revenue_by_grain (kpis.revenue_periods, kpis.revenue_monthly). The formula is
-- marts.mrr_period_ends (written once there, where marts.mrr_monthly also reads its month rows); this
-- view selects it for the kpis layer (a view: a copy of its 9.9 M rows on the large company took 1.9 s of each
-- nightly, issue 18). One row per cadence, period and
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
-- @materialized view
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
select
    cadence,
    period_start,
    period_end,
    read_day,
    period_index,
    account_id,
    mrr,
    prev_mrr,
    movement,
    movement_amount,
    is_active
from marts.mrr_period_ends
