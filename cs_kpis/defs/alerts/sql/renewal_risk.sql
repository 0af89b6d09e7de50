-- renewal_risk: the renewal is within $renewal_within_days days and the health band is in $risky_bands
-- (high), or a cancellation is scheduled (critical).
-- The renewal is kpis.account_indicators_daily.days_to_renewal, its one definition (docs/KPI_DEFINITIONS.md
-- "Renewal"): the end of the current paid term (a licensed billing period longer than 180 days, an annual
-- contract) of a subscription that is active and not set to cancel. Monthly and quarterly plans have no
-- term: for them "renewal within 90 days" would always be true and the rule would degenerate into "health
-- yellow or red"; they are covered by health_red, health_drop and the scheduled-cancellation arm instead.
select i.account_id, i.day,
    case when i.cancellation_scheduled = 1 then 'critical' else $severity end as severity,
    concat_ws('; ',
        case when i.cancellation_scheduled = 1 then 'cancellation scheduled' end,
        case when i.days_to_renewal <= $renewal_within_days and s.band in (select unnest($risky_bands))
            then 'contract renews in ' || i.days_to_renewal || ' days with health '
                || cast(round(s.score) as integer) || ' (' || s.band || ')' end) as reason
from kpis.account_indicators_daily as i
left join kpis.health_scores_daily as s
    on s.account_id = i.account_id and s.day = i.day
where i.is_active
    and (i.cancellation_scheduled = 1
        or (i.days_to_renewal <= $renewal_within_days and s.band in (select unnest($risky_bands))))
    and i.day between cast($first_day as date) and cast($as_of as date)
