-- low_nps_high_value: an NPS response <= $max_score from an account whose ARR on the response day was above
-- $min_arr; the condition holds $active_days days from the response (the latest low response is quoted).
with low as (
    select r.crm_account_id as account_id, cast(r.responded_at as date) as response_day, r.score,
        r.respondent_email, r.comment, i.arr
    from staging.stg_nps__survey_responses as r
    inner join kpis.account_indicators_daily as i
        on i.account_id = r.crm_account_id and i.day = cast(r.responded_at as date)
    where r.score <= $max_score and i.arr > $min_arr
)
select d.account_id, d.day, $severity as severity,
    arg_max('NPS ' || l.score || ' from ' || coalesce(l.respondent_email, 'a respondent') || ' on '
        || cast(l.response_day as varchar) || ' (ARR ' || cast(round(l.arr) as bigint) || ' USD)'
        || coalesce(': "' || left(l.comment, 120) || '"', ''), l.response_day) as reason
from kpis.account_indicators_daily as d
inner join low as l
    on l.account_id = d.account_id
    and d.day between l.response_day and cast(l.response_day + interval ($active_days - 1) day as date)
where d.day between cast($first_day as date) and cast($as_of as date)
group by d.account_id, d.day
