-- health_drop: the health score fell at least $min_drop_points points within $window_days days.
-- One row per account and day the condition holds; the reason is kpis.health_score_changes' own
-- explanation, which names the components that moved. With ignore_coverage_changes, the points due to
-- components that started or stopped having data within the window (e.g. a CRM sentiment that only exists
-- from the latest extract) are taken out first: a coverage change is not a customer getting less healthy.
-- The scores joined are bounded to the days evaluated (and the window before them), so a nightly window
-- does not hash every day of the scores twice; so are their accounts to $accounts (null: every account), the
-- accounts a nightly recomputes on every day (engine.py), as a filter on the result does not reach them.
with changes as (
    select c.account_id, c.day, c.delta, c.reason,
        coalesce(b.components_present, '') as before_present, coalesce(s.components_present, '') as now_present,
        c.usage_delta, c.adoption_delta, c.support_delta, c.sentiment_delta, c.billing_delta
    from kpis.health_score_changes as c
    left join kpis.health_scores_daily as s
        on s.account_id = c.account_id and s.day = c.day
        and s.day between cast($first_day as date) and cast($as_of as date)
        and (cast($accounts as varchar[]) is null or list_contains(cast($accounts as varchar[]), s.account_id))
    left join kpis.health_scores_daily as b
        on b.account_id = c.account_id and b.day = cast(c.day - interval ($window_days) day as date)
        and b.day <= cast($as_of as date) and date_diff('day', b.day, cast($first_day as date)) <= $window_days
        and (cast($accounts as varchar[]) is null or list_contains(cast($accounts as varchar[]), b.account_id))
    where c.window_days = $window_days
        and c.delta <= -$min_drop_points
        and c.day between cast($first_day as date) and cast($as_of as date)
),
adjusted as (
    select *,
        delta - case when $ignore_coverage_changes then
            case when contains(before_present, 'usage') <> contains(now_present, 'usage')
                then coalesce(usage_delta, 0) else 0 end
            + case when contains(before_present, 'adoption') <> contains(now_present, 'adoption')
                then coalesce(adoption_delta, 0) else 0 end
            + case when contains(before_present, 'support') <> contains(now_present, 'support')
                then coalesce(support_delta, 0) else 0 end
            + case when contains(before_present, 'sentiment') <> contains(now_present, 'sentiment')
                then coalesce(sentiment_delta, 0) else 0 end
            + case when contains(before_present, 'billing') <> contains(now_present, 'billing')
                then coalesce(billing_delta, 0) else 0 end
        else 0 end as comparable_delta
    from changes
)
select account_id, day, $severity as severity, reason
from adjusted
where comparable_delta <= -$min_drop_points
