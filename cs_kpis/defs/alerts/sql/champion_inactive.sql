-- champion_inactive: a contact whose role is one of $roles has had no product event (by its
-- product_user_id) for at least $inactive_days days; never-active contacts count from their creation.
-- One row per account and day, naming every inactive champion/admin of the account.
with user_days as (
    select distinct e.user_id, cast(e.occurred_at as date) as day
    from staging.stg_product__events as e
    where e.user_id in (select product_user_id from staging.stg_crm__contacts where role in ($roles))
),
contact_days as (
    select c.contact_id, c.account_id, c.role, c.product_user_id,
        trim(coalesce(c.first_name, '') || ' ' || coalesce(c.last_name, '')) as contact_name,
        cast(c.created_at as date) as created_day, i.day
    from staging.stg_crm__contacts as c
    inner join kpis.account_indicators_daily as i
        on i.account_id = c.account_id and i.is_active
    where c.role in ($roles)
        and i.day between date '$first_day' and date '$as_of'
),
last_seen as (
    select d.*, u.day as last_active_day
    from contact_days as d
    asof left join user_days as u
        on u.user_id = d.product_user_id and u.day <= d.day
),
inactive as (
    select *, date_diff('day', coalesce(last_active_day, created_day), day) as days_inactive
    from last_seen
    where date_diff('day', coalesce(last_active_day, created_day), day) >= $inactive_days
)
select account_id, day, '$severity' as severity,
    string_agg(role || ' ' || contact_name || ' inactive for ' || days_inactive || ' days ('
        || coalesce('last activity ' || cast(last_active_day as varchar), 'never active') || ')', '; '
        order by contact_name) as reason
from inactive
group by account_id, day
