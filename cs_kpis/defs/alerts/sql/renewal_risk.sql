-- renewal_risk: renewal within $renewal_within_days days and health band in $risky_bands, or a scheduled
-- cancellation (critical).
select i.account_id, i.day,
    case when i.cancellation_scheduled = 1 then 'critical' else '$severity' end as severity,
    concat_ws('; ',
        case when i.cancellation_scheduled = 1 then 'cancellation scheduled' end,
        case when i.days_to_renewal between 0 and $renewal_within_days and s.band in ($risky_bands)
            then 'renewal in ' || i.days_to_renewal || ' days with health ' || cast(round(s.score) as integer)
                || ' (' || s.band || ')' end) as reason
from kpis.account_indicators_daily as i
left join kpis.health_scores_daily as s
    on s.account_id = i.account_id and s.day = i.day
where i.is_active
    and (i.cancellation_scheduled = 1
        or (i.days_to_renewal between 0 and $renewal_within_days and s.band in ($risky_bands)))
    and i.day between date '$first_day' and date '$as_of'
