-- ticket_spike: at least $min_open_urgent_high open urgent/high tickets, or tickets created in the last
-- 7 days >= $spike_ratio x the account's weekly average over the 12 weeks before (and >= $min_tickets_7d).
with daily as (
    select i.account_id, i.day, i.open_urgent_high, coalesce(a.tickets_created, 0) as created
    from kpis.account_indicators_daily as i
    left join kpis.account_activity_daily as a
        on a.account_id = i.account_id and a.day = i.day
    where i.day between cast(cast($first_day as date) - interval 90 day as date) and cast($as_of as date)
),
windows as (
    select account_id, day, open_urgent_high,
        sum(created) over (partition by account_id order by day
            range between interval 6 day preceding and current row) as tickets_7d,
        coalesce(sum(created) over (partition by account_id order by day
            range between interval 90 day preceding and interval 7 day preceding), 0) / 12.0 as weekly_avg
    from daily
),
firing as (
    select *,
        open_urgent_high >= $min_open_urgent_high as urgent,
        tickets_7d >= $min_tickets_7d and tickets_7d >= $spike_ratio * weekly_avg as spike
    from windows
    where day >= cast($first_day as date)
)
select account_id, day, $severity as severity,
    concat_ws('; ',
        case when urgent then open_urgent_high || ' open urgent/high tickets' end,
        case when spike then tickets_7d || ' tickets in 7 days vs a weekly average of '
            || cast(round(weekly_avg, 1) as varchar) end) as reason
from firing
where urgent or spike
