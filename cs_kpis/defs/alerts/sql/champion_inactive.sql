-- champion_inactive: contacts whose role is one of $roles have had no product event (by their
-- product_user_id) for at least $inactive_days days. With match 'any' one such contact is enough (the
-- literal per-contact reading); with match 'all' every considered champion/admin of the account must be
-- inactive: the account has no engaged champion left. A contact never seen in the product is considered
-- (counting from its creation) only when $include_never_active; by default it is not: a contact who never
-- used the product is not a champion going quiet. One row per account and day, naming the inactive ones.
-- Counted on narrow rows (contact number, account, day) first; names and the ordered list of inactive
-- contacts are built only for the account-days that fire (on the large company about 3% of them: the
-- ordered string_agg over every account-day was most of this query's time, BENCHMARKS.md "Alerts").
with role_contacts as (
    select row_number() over (order by contact_id) as contact_no, contact_id, account_id, role, product_user_id,
        trim(coalesce(first_name, '') || ' ' || coalesce(last_name, '')) as contact_name,
        cast(created_at as date) as created_day
    from staging.stg_crm__contacts
    where role in (select unnest($roles))
        -- $accounts: null, or the accounts a nightly recomputes on every day (engine.py): only their users'
        -- events are listed (a filter on the result cannot reach the events, read by user)
        and (cast($accounts as varchar[]) is null or list_contains(cast($accounts as varchar[]), account_id))
),
user_days as (
    -- each user's active days from $first_day on, and its last active day before it (all an ASOF lookup from
    -- a day >= $first_day can find): a nightly window does not list every active day of the history. The
    -- last active day before $first_day is the engine's temp table _alert_last_active (engine.py LAST_ACTIVE:
    -- on a nightly, from the scan of the same events the input fingerprint makes, so they are read once)
    select distinct e.user_id, cast(e.occurred_at as date) as day
    from staging.stg_product__events as e
    where e.user_id in (select product_user_id from role_contacts)
        -- the timestamp compared with the day (midnight, in the session's time zone: the day the cast gives), not
        -- each event's day with it: DuckDB filters the events as it scans them, instead of casting 60 M
        -- timestamps to a day on the large company (BENCHMARKS.md "Alerts' nightly on the large warehouse")
        and e.occurred_at >= cast($first_day as date)
    union all
    select user_id, day
    from _alert_last_active
    where user_id in (select product_user_id from role_contacts)
),
contact_days as (
    select c.contact_no, c.account_id, c.product_user_id, c.created_day, i.day
    from role_contacts as c
    inner join kpis.account_indicators_daily as i
        on i.account_id = c.account_id and i.is_active
    where i.day between cast($first_day as date) and cast($as_of as date)
),
last_seen as (
    select d.*, u.day as last_active_day
    from contact_days as d
    asof left join user_days as u
        on u.user_id = d.product_user_id and u.day <= d.day
),
considered as (
    select contact_no, account_id, day, last_active_day,
        date_diff('day', coalesce(last_active_day, created_day), day) as days_inactive
    from last_seen
    where last_active_day is not null or $include_never_active
),
per_account as (
    select account_id, day, count(*) as considered,
        count(*) filter (where days_inactive >= $inactive_days) as inactive
    from considered
    group by account_id, day
),
firing as (
    select account_id, day, considered, inactive
    from per_account
    where inactive > 0 and (inactive = considered or $match = 'any')
),
detail as (
    select f.account_id, f.day, f.considered, f.inactive,
        string_agg(c.role || ' ' || c.contact_name || ' inactive for ' || k.days_inactive || ' days ('
            || coalesce('last activity ' || cast(k.last_active_day as varchar), 'never active') || ')', '; '
            order by c.contact_name) as detail
    from firing as f
    inner join considered as k
        on k.account_id = f.account_id and k.day = f.day and k.days_inactive >= $inactive_days
    inner join role_contacts as c on c.contact_no = k.contact_no
    group by f.account_id, f.day, f.considered, f.inactive
)
select account_id, day, $severity as severity,
    case when inactive = considered and considered > 1 then 'no champion/admin active for '
        || $inactive_days || '+ days: ' else '' end || detail as reason
from detail
