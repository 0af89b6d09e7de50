-- The Stripe subscription ledger: one row per state a subscription passed through, rebuilt from the
-- customer.subscription.created/updated/deleted events (each event carries the full object after the
-- change). Each state's MRR follows the KPI definitions: licensed items only (metered items excluded),
-- unit amount x quantity normalised to a month, recurring discounts applied (forever, and repeating
-- while attached; once-coupons ignored), 0 while trialing or after the subscription ended.
-- MRR here is in the subscription's currency, minor units, unrounded.
-- @grain subscription_id, changed_at
-- @column subscription_id: Stripe subscription id (sub_...)
-- @column customer_id: Stripe customer id (cus_...)
-- @column changed_at: when the state began (the event's created time, UTC)
-- @column event_id: the event that reported this state
-- @column event_type: customer.subscription.created, .updated or .deleted
-- @column status: Stripe status: trialing, active, past_due, canceled, ...
-- @column currency: ISO currency of the subscription, upper case
-- @column billing_interval: month, year, week or day (of the licensed items)
-- @column interval_count: number of intervals per billing period
-- @column plan: the plan tier of the main licensed item (price metadata plan_tier, else the price nickname)
-- @column seats: quantity of the main licensed item
-- @column list_mrr_minor: undiscounted MRR in minor units of the subscription currency
-- @column mrr_minor: MRR after recurring discounts, minor units of the subscription currency (0 while trialing or ended)
-- @column coupon_id: the discount's coupon, if any
-- @column is_trial: status is trialing
-- @column is_past_due: status is past_due
-- @column cancel_at_period_end: cancellation scheduled at the end of the current period
-- @column cancel_at: scheduled cancellation time, if any
-- @column ended_at: when service ended, if it has
with events as (
    -- every field is read from the object once; the items array is kept apart for the item spine
    select
        event_id,
        event_type,
        created_at as changed_at,
        object_id as subscription_id,
        json_extract_string(object, '$.customer') as customer_id,
        json_extract_string(object, '$.status') as status,
        json_extract_string(object, '$.currency') as currency,
        json_extract_string(object, '$.cancel_at_period_end') as cancel_at_period_end,
        json_extract_string(object, '$.cancel_at') as cancel_at,
        json_extract_string(object, '$.ended_at') as ended_at,
        json_extract(object, '$.discounts[0].coupon') as coupon,
        json_extract(object, '$.items.data') as items_json
    from staging.stg_billing__events
    where object_type = 'subscription'
      and event_type like 'customer.subscription.%'
),

sized as (
    select event_id, items_json, json_array_length(items_json) as n_items
    from events
),

items as (
    -- one row per item of each state; dim_position is a 0..N spine (no generators: see PORTABILITY.md)
    select
        s.event_id,
        p.position,
        json_extract(s.items_json, '$[' || cast(p.position as varchar) || ']') as item
    from sized as s
    inner join marts.dim_position as p
        on p.position < s.n_items
),

item_fields as (
    select
        event_id,
        position,
        json_extract_string(item, '$.price.recurring.usage_type') as usage_type,
        json_extract_string(item, '$.price.recurring.interval') as billing_interval,
        cast(json_extract_string(item, '$.price.recurring.interval_count') as integer) as interval_count,
        cast(json_extract_string(item, '$.price.unit_amount') as bigint) as unit_amount,
        cast(json_extract_string(item, '$.quantity') as bigint) as quantity,
        coalesce(json_extract_string(item, '$.price.metadata.plan_tier'), json_extract_string(item, '$.price.nickname'))
            as plan
    from items
),

licensed as (
    select
        event_id,
        sum(unit_amount * coalesce(quantity, 1)) as amount_per_interval,
        max(billing_interval) as billing_interval,
        max(interval_count) as interval_count,
        max(case when position = 0 then plan end) as plan,
        max(case when position = 0 then quantity end) as seats
    from item_fields
    where coalesce(usage_type, 'licensed') = 'licensed'
    group by event_id
),

states as (
    select
        e.subscription_id,
        e.customer_id,
        e.changed_at,
        e.event_id,
        e.event_type,
        e.status,
        upper(e.currency) as currency,
        l.billing_interval,
        l.interval_count,
        l.plan,
        l.seats,
        -- months per billing period: month -> n, year -> 12n, week -> 12n/52, day -> 12n/365
        cast(coalesce(l.amount_per_interval, 0) as double) / (case l.billing_interval
            when 'month' then l.interval_count
            when 'year' then 12.0 * l.interval_count
            when 'week' then 12.0 * l.interval_count / 52.0
            when 'day' then 12.0 * l.interval_count / 365.0
        end) as list_mrr_minor,
        case l.billing_interval
            when 'month' then cast(l.interval_count as double)
            when 'year' then 12.0 * l.interval_count
            when 'week' then 12.0 * l.interval_count / 52.0
            when 'day' then 12.0 * l.interval_count / 365.0
        end as months_per_period,
        json_extract_string(e.coupon, '$.id') as coupon_id,
        json_extract_string(e.coupon, '$.duration') as coupon_duration,
        cast(json_extract_string(e.coupon, '$.percent_off') as double) as percent_off,
        cast(json_extract_string(e.coupon, '$.amount_off') as double) as amount_off,
        cast(e.cancel_at_period_end as boolean) as cancel_at_period_end,
        to_timestamp(cast(e.cancel_at as bigint)) as cancel_at,
        to_timestamp(cast(e.ended_at as bigint)) as ended_at
    from events as e
    left join licensed as l on l.event_id = e.event_id
)

select
    subscription_id,
    customer_id,
    changed_at,
    event_id,
    event_type,
    status,
    currency,
    billing_interval,
    interval_count,
    plan,
    seats,
    coalesce(list_mrr_minor, 0) as list_mrr_minor,
    case
        when status in ('trialing', 'canceled', 'incomplete', 'incomplete_expired') or ended_at is not null then 0
        when coupon_duration is null or coupon_duration = 'once' then coalesce(list_mrr_minor, 0)
        when percent_off is not null then coalesce(list_mrr_minor, 0) * (1 - percent_off / 100.0)
        when amount_off is not null then greatest(0, coalesce(list_mrr_minor, 0) - amount_off / months_per_period)
        else coalesce(list_mrr_minor, 0)
    end as mrr_minor,
    coupon_id,
    status = 'trialing' as is_trial,
    status = 'past_due' as is_past_due,
    coalesce(cancel_at_period_end, false) as cancel_at_period_end,
    cancel_at,
    ended_at
from states
