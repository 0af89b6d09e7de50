-- usage_drop: product usage trend (events in the last 30 days / the 30 days before - 1) at or below
-- $max_trend on each of the last $min_days days (a sustained drop, not a trend flickering across the
-- line), for active accounts with at least $min_prior_events events in the earlier window.
-- Only the days below the line are windowed (with $min_days >= 1 a firing day is one of them, and the others
-- count nothing): the same rows as windowing every account-day, a fraction of the work.
with below as (
    select i.account_id, i.day, i.is_active, i.usage_trend, i.events_30d, i.events_prior_30d,
        i.usage_trend <= $max_trend and i.events_prior_30d >= $min_prior_events as is_below
    from kpis.account_indicators_daily as i
    where i.day between cast(cast($first_day as date) - interval ($min_days - 1) day as date) and cast($as_of as date)
        and ((i.usage_trend <= $max_trend and i.events_prior_30d >= $min_prior_events) or $min_days <= 0)
),
sustained as (
    select *,
        count(*) filter (where is_below)
            over (partition by account_id order by day
                  range between interval ($min_days - 1) day preceding and current row) as days_below
    from below
)
select account_id, day, $severity as severity,
    'product usage down ' || cast(round(-100 * usage_trend) as integer) || '%: '
        || events_prior_30d || ' → ' || events_30d || ' events in 30 days' as reason
from sustained
where is_active
    and days_below >= $min_days
    and day between cast($first_day as date) and cast($as_of as date)
