-- expansion_opportunity: a product-qualified expansion lead: feature adoption >= $min_feature_adoption, or
-- seat utilisation >= $min_seat_utilisation on a per-seat plan (at least $min_seats licensed seats: a flat
-- plan has quantity 1, so its "utilisation" is just its active-user count and always >= 90%), on a paid
-- plan that is not the top plan, with health in $healthy_bands (an account at risk is not an upsell lead).
select i.account_id, i.day, $severity as severity,
    concat_ws('; ',
        case when i.seats >= $min_seats and i.seat_utilisation >= $min_seat_utilisation then 'seat utilisation '
            || cast(round(100 * i.seat_utilisation) as integer) || '% (' || i.active_users_30d || ' of '
            || i.seats || ' seats active in 30 days)' end,
        case when i.feature_adoption >= $min_feature_adoption then 'feature adoption '
            || cast(round(100 * i.feature_adoption) as integer) || '% of the key features' end)
        || ' on plan ' || i.plan as reason
from kpis.account_indicators_daily as i
inner join kpis.health_scores_daily as s
    on s.account_id = i.account_id and s.day = i.day
where i.is_active and not i.is_trial
    and i.plan <> (select max(name) from kpis.health_product_config where setting = 'top_plan')
    and (i.feature_adoption >= $min_feature_adoption
        or (i.seats >= $min_seats and i.seat_utilisation >= $min_seat_utilisation))
    and s.band in (select unnest($healthy_bands))
    -- $accounts: null, or the accounts a nightly recomputes on every day (engine.py): the engine's filter on the
    -- result reaches the indicators only, so without this the scores of every account are read and joined
    and (cast($accounts as varchar[]) is null or list_contains(cast($accounts as varchar[]), s.account_id))
    and i.day between cast($first_day as date) and cast($as_of as date)
