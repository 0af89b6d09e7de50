-- usage_drop: product usage trend (events in the last 30 days / the 30 days before - 1) at or below
-- $max_trend, for active accounts with at least $min_prior_events events in the earlier window.
select i.account_id, i.day, '$severity' as severity,
    'product usage down ' || cast(round(-100 * i.usage_trend) as integer) || '%: '
        || i.events_prior_30d || ' → ' || i.events_30d || ' events in 30 days' as reason
from kpis.account_indicators_daily as i
where i.is_active
    and i.usage_trend <= $max_trend
    and i.events_prior_30d >= $min_prior_events
    and i.day between date '$first_day' and date '$as_of'
