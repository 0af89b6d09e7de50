-- champion_inactive: contacts whose role is one of $roles have had no product event (by their
-- product_user_id) for at least $inactive_days days. With match 'any' one such contact is enough (the
-- literal per-contact reading); with match 'all' every considered champion/admin of the account must be
-- inactive: the account has no engaged champion left. A contact never seen in the product is considered
-- (counting from its creation) only when $include_never_active; by default it is not: a contact who never
-- used the product is not a champion going quiet. One row per account and day, naming the inactive ones.
with user_days as (
    select distinct e.user_id, cast(e.occurred_at as date) as day
    from staging.stg_product__events as e
    where e.user_id in (select product_user_id from staging.stg_crm__contacts where role in (select unnest($roles)))
),
contact_days as (
    select c.contact_id, c.account_id, c.role, c.product_user_id,
        trim(coalesce(c.first_name, '') || ' ' || coalesce(c.last_name, '')) as contact_name,
        cast(c.created_at as date) as created_day, i.day
    from staging.stg_crm__contacts as c
    inner join kpis.account_indicators_daily as i
        on i.account_id = c.account_id and i.is_active
    where c.role in (select unnest($roles))
        and i.day between cast($first_day as date) and cast($as_of as date)
),
last_seen as (
    select d.*, u.day as last_active_day
    from contact_days as d
    asof left join user_days as u
        on u.user_id = d.product_user_id and u.day <= d.day
),
considered as (
    select *, date_diff('day', coalesce(last_active_day, created_day), day) as days_inactive
    from last_seen
    where last_active_day is not null or $include_never_active
),
per_account as (
    select account_id, day, count(*) as considered,
        count(*) filter (where days_inactive >= $inactive_days) as inactive,
        string_agg(case when days_inactive >= $inactive_days then role || ' ' || contact_name || ' inactive for '
            || days_inactive || ' days ('
            || coalesce('last activity ' || cast(last_active_day as varchar), 'never active') || ')' end, '; '
            order by contact_name) as detail
    from considered
    group by account_id, day
)
select account_id, day, $severity as severity,
    case when inactive = considered and considered > 1 then 'no champion/admin active for '
        || $inactive_days || '+ days: ' else '' end || detail as reason
from per_account
where inactive > 0 and (inactive = considered or $match = 'any')
