-- The reporting periods of the data, one row per cadence and period: ISO weeks (Monday to Sunday), calendar
-- months and calendar quarters, from the one holding the first day of marts.dim_day to the one holding the
-- data's as-of day. The spine of marts.mrr_period_ends (kpis.mrr_periods) and kpis.revenue_periods (built here in portable SQL from
-- the day spine, as PORTABILITY.md asks: no generators in models).
-- @grain cadence, period_start
-- @column cadence: week, month or quarter
-- @column period_start: first day of the period (a Monday for weeks)
-- @column period_end: last day of the period (a Sunday for weeks), also for the current, unfinished period
-- @column read_day: the day the period's end-of-period figures are read: period_end, or the data's as-of day when that is earlier
-- @column is_complete: read_day = period_end
-- @column period_index: 1 for the cadence's first period, then consecutive (the previous period is period_index - 1)
-- @column periods_per_year: 52, 12 or 4: the period a year earlier is period_index - periods_per_year
with spine as (
    select 'week' as cadence, cast(date_trunc('week', day) as date) as period_start, max(day) as read_day
    from marts.dim_day
    group by cast(date_trunc('week', day) as date)
    union all
    select 'month' as cadence, cast(date_trunc('month', day) as date) as period_start, max(day) as read_day
    from marts.dim_day
    group by cast(date_trunc('month', day) as date)
    union all
    select 'quarter' as cadence, cast(date_trunc('quarter', day) as date) as period_start, max(day) as read_day
    from marts.dim_day
    group by cast(date_trunc('quarter', day) as date)
),

bounds as (
    select
        cadence,
        period_start,
        read_day,
        case cadence
            when 'week' then cast(period_start + interval 6 day as date)
            when 'month' then cast(period_start + interval 1 month - interval 1 day as date)
            else cast(period_start + interval 3 month - interval 1 day as date)
        end as period_end
    from spine
)

select
    cadence,
    period_start,
    period_end,
    read_day,
    read_day = period_end as is_complete,
    row_number() over (partition by cadence order by period_start) as period_index,
    case cadence when 'week' then 52 when 'month' then 12 else 4 end as periods_per_year
from bounds
