-- ticket_spike: at least $min_open_urgent_high open urgent/high tickets, or tickets created in the last
-- 7 days >= $spike_ratio x the account's weekly average over the 12 weeks before (and >= $min_tickets_7d).
-- The trailing windows are computed only for the accounts with at least $min_tickets_7d tickets created on the
-- days from 6 days before $first_day (with $min_tickets_7d > 0, no other account's 7-day count, a part of that
-- sum, can reach it on a day evaluated); the other accounts can only fire on urgent tickets. The same rows as
-- windowing every account, a fraction of the work on a nightly window (BENCHMARKS.md "Alerts and the KPI report
-- on the large nightly"; "Alerts' nightly: the events cut at the fingerprint days": 15,402 accounts with a
-- ticket, 1,607 with three).
with spiking as (
    select account_id
    from kpis.account_activity_daily
    where day between cast(cast($first_day as date) - interval 6 day as date) and cast($as_of as date)
        and tickets_created > 0 and account_id is not null
    group by account_id
    having sum(tickets_created) >= $min_tickets_7d
),
daily as (
    select i.account_id, i.day, i.open_urgent_high, coalesce(a.tickets_created, 0) as created
    from kpis.account_indicators_daily as i
    left join kpis.account_activity_daily as a
        on a.account_id = i.account_id and a.day = i.day
    where i.day between cast(cast($first_day as date) - interval 90 day as date) and cast($as_of as date)
        and ($min_tickets_7d <= 0 or i.account_id in (select account_id from spiking))
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
    select account_id, day, open_urgent_high, tickets_7d, weekly_avg,
        open_urgent_high >= $min_open_urgent_high as urgent,
        tickets_7d >= $min_tickets_7d and tickets_7d >= $spike_ratio * weekly_avg as spike
    from windows
    where day >= cast($first_day as date)
    union all
    -- every other account: no ticket created in the 7 days up to any day evaluated, so no spike
    select i.account_id, i.day, i.open_urgent_high, 0, 0.0, true, false
    from kpis.account_indicators_daily as i
    where i.day between cast($first_day as date) and cast($as_of as date)
        and i.open_urgent_high >= $min_open_urgent_high
        and $min_tickets_7d > 0 and i.account_id not in (select account_id from spiking)
)
select account_id, day, $severity as severity,
    concat_ws('; ',
        case when urgent then open_urgent_high || ' open urgent/high tickets' end,
        case when spike then tickets_7d || ' tickets in 7 days vs a weekly average of '
            || cast(round(weekly_avg, 1) as varchar) end) as reason
from firing
where urgent or spike
