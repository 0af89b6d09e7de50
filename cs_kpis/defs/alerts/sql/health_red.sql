-- health_red: the account's health score is in the red band (an active account; the alert is raised on
-- the day it entered the band). One row per account and red day.
select s.account_id, s.day, $severity as severity,
    'health ' || cast(round(s.score) as integer) || ' is red'
        || coalesce(' (was ' || cast(round(s.score - s.delta_30d) as integer) || ' 30 days ago)', '')
        || '; components present: ' || s.components_present as reason
from kpis.health_scores_daily as s
where s.band = 'red' and s.is_active
    and s.day between cast($first_day as date) and cast($as_of as date)
