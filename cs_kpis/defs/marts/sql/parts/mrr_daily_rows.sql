-- The rows of the view marts.mrr_daily, counted without running it (its rows are one per account and day, 51 M
-- on the large company: counting them took 2.4 s of the nightly's marts.mrr_daily step, BENCHMARKS.md issue 18).
-- The view joins each change [change_date, next_change_date) to the days of marts.dim_day it covers (all of
-- them while MRR is positive, else only the change day); marts.dim_day is one row per day from its first to
-- its last, so the days a change covers are a difference of dates. Null when marts.dim_day is not such a run
-- of days (then the view is counted row by row).
with days as (
    select
        min(day) as first_day,
        max(day) as last_day,
        count(*) as day_rows,
        count(distinct day) as distinct_days
    from marts.dim_day
),

covered as (
    select
        case
            when c.mrr > 0 then greatest(0,
                case when c.next_change_date is null or c.next_change_date > d.last_day
                     then date_diff('day', greatest(c.change_date, d.first_day), d.last_day) + 1
                     else date_diff('day', greatest(c.change_date, d.first_day), c.next_change_date) end)
            when c.change_date >= d.first_day and c.change_date <= d.last_day
                 and (c.next_change_date is null or c.change_date < c.next_change_date) then 1
            else 0
        end as day_rows
    from marts.mrr_daily_changes as c
    cross join days as d
)

select case when d.day_rows = d.distinct_days and d.day_rows = date_diff('day', d.first_day, d.last_day) + 1
            then cast(coalesce((select sum(day_rows) from covered), 0) as bigint) end as row_count
from days as d
