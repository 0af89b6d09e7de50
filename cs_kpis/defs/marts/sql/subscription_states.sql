-- The Stripe subscription ledger: one row per state a subscription passed through. From the first loaded
-- event on, the states are the customer.subscription.created/updated/deleted events (each carries the
-- full object after the change); before it (Stripe keeps ~30 days of events) they come from the invoices
-- and the subscriptions list (marts.subscription_history_states; rules in marts/README.md).
-- Each state's MRR follows the KPI definitions: licensed items only (metered items excluded),
-- unit amount x quantity normalised to a month, recurring discounts applied (forever, and repeating
-- while attached; once-coupons ignored), 0 while trialing, unpaid or paused, or after the subscription ended.
-- MRR here is in the subscription's currency, minor units, unrounded.
-- @grain subscription_id, changed_at
-- @column subscription_id: Stripe subscription id (sub_...)
-- @column customer_id: Stripe customer id (cus_...)
-- @column changed_at: when the state began (the event's created time, UTC; ended_at when the event reporting the end came later)
-- @column source: events (the event ledger), invoices (rebuilt from invoice lines) or subscriptions (the current state from the subscriptions list)
-- @column event_id: the event that reported this state (null for a state rebuilt from invoices)
-- @column event_type: customer.subscription.created, .updated or .deleted; discount.end where a repeating discount ended with no event saying so (null for a rebuilt state)
-- @column status: Stripe status: trialing, active, past_due, canceled, ...
-- @column currency: ISO currency of the subscription, upper case
-- @column billing_interval: month, year, week or day (of the licensed items)
-- @column interval_count: number of intervals per billing period
-- @column plan: the plan tier of the main licensed item (price metadata plan_tier, else the price nickname)
-- @column seats: quantity of the main licensed item
-- @column list_mrr_minor: undiscounted MRR in minor units of the subscription currency
-- @column mrr_minor: MRR after recurring discounts, minor units of the subscription currency (0 while trialing, unpaid, paused or ended)
-- @column coupon_id: the discount's coupon, if any
-- @column is_trial: status is trialing
-- @column is_past_due: status is past_due
-- @column cancel_at_period_end: cancellation scheduled at the end of the current period
-- @column cancel_at: scheduled cancellation time, if any
-- @column ended_at: when service ended, if it has
with parsed as (
    -- the object is parsed once, into just the fields used here (re-extracting paths from the JSON text
    -- parsed every ~3 KB object ten times over; on the large company that was most of the revenue build).
    -- json_transform is DuckDB's; on Spark the same is from_json with this schema (see marts/README.md)
    select
        event_id,
        event_type,
        created_at as changed_at,
        object_id as subscription_id,
        -- events of one subscription in the same second (Stripe timestamps have one-second resolution and
        -- event ids are random) are ordered by type: created, then updated, then deleted
        case event_type
            when 'customer.subscription.created' then 1
            when 'customer.subscription.deleted' then 3
            else 2
        end as type_rank,
        json_transform(object, '{
            "customer": "VARCHAR", "status": "VARCHAR", "currency": "VARCHAR",
            "cancel_at_period_end": "BOOLEAN", "cancel_at": "BIGINT", "ended_at": "BIGINT",
            "discounts": ["VARCHAR"],
            "items": {"data": [{"quantity": "BIGINT", "price": {"id": "VARCHAR", "unit_amount": "BIGINT",
                "unit_amount_decimal": "VARCHAR", "billing_scheme": "VARCHAR", "nickname": "VARCHAR",
                "transform_quantity": {"divide_by": "BIGINT", "round": "VARCHAR"},
                "metadata": {"plan_tier": "VARCHAR"},
                "recurring": {"interval": "VARCHAR", "interval_count": "INTEGER", "usage_type": "VARCHAR"}},
                "discounts": ["VARCHAR"]}]}
        }') as o
    from staging.stg_billing__events
    where object_type = 'subscription'
      and event_type like 'customer.subscription.%'
),

events as (
    -- one state per subscription and second: the last by type (two updates in one second cannot be told
    -- apart by anything Stripe sends; the event id, random, decides between them)
    select event_id, event_type, changed_at, subscription_id, type_rank, o
    from (
        select
            pa.*,
            row_number() over (
                partition by pa.subscription_id, pa.changed_at order by pa.type_rank desc, pa.event_id desc
            ) as rn
        from parsed as pa
    ) as ranked
    where rn = 1
),

item_fields as (
    -- one row per item of each state; dim_position is a 0..N spine (no generators: see PORTABILITY.md)
    select
        e.event_id,
        p.position,
        e.o.items.data[p.position + 1].price.recurring.usage_type as usage_type,
        e.o.items.data[p.position + 1].price.recurring.interval as billing_interval,
        e.o.items.data[p.position + 1].price.recurring.interval_count as interval_count,
        e.o.items.data[p.position + 1].price.id as price_id,
        e.o.items.data[p.position + 1].price.billing_scheme as billing_scheme,
        coalesce(cast(e.o.items.data[p.position + 1].price.unit_amount_decimal as double),
                 cast(e.o.items.data[p.position + 1].price.unit_amount as double)) as unit_amount,
        e.o.items.data[p.position + 1].price.transform_quantity.divide_by as divide_by,
        e.o.items.data[p.position + 1].price.transform_quantity."round" as round_mode,
        e.o.items.data[p.position + 1].quantity as quantity,
        coalesce(e.o.items.data[p.position + 1].price.metadata.plan_tier,
                 e.o.items.data[p.position + 1].price.nickname) as plan
    from events as e
    inner join marts.dim_position as p
        on p.position < array_length(e.o.items.data)
),

quantities as (
    -- the items on tiered prices: their tiers come from the prices list (an event's price carries none:
    -- Stripe includes them only with expand[]=tiers)
    select event_id || '#' || cast(position as varchar) as row_id, price_id, quantity
    from item_fields
    where billing_scheme = 'tiered'
),

tiered_amounts as (
    -- a tiered price's amount for the item's quantity: the shared pricing rule (marts.price_tiers)
    -- include: priced_quantities
),

licensed_items as (
    -- each licensed item's list MRR: what its quantity costs over the months of its billing period; per
    -- unit, unit_amount_decimal (fractions of a cent) or unit_amount times the quantity, in packs of
    -- transform_quantity.divide_by rounded up or down; tiered, by its tiers
    select
        f.*,
        case
            when f.billing_scheme = 'tiered' then ta.amount_per_interval
            when f.divide_by is null or f.divide_by = 1 then f.unit_amount * coalesce(f.quantity, 1)
            when f.round_mode = 'down' then f.unit_amount * floor(cast(coalesce(f.quantity, 1) as double) / f.divide_by)
            else f.unit_amount * ceil(cast(coalesce(f.quantity, 1) as double) / f.divide_by)
        end as amount_per_interval,
        case f.billing_interval
            when 'month' then cast(f.interval_count as double)
            when 'year' then 12.0 * f.interval_count
            when 'week' then 12.0 * f.interval_count / 52.0
            when 'day' then 12.0 * f.interval_count / 365.0
        end as months_per_period
    from item_fields as f
    left join tiered_amounts as ta on ta.row_id = f.event_id || '#' || cast(f.position as varchar)
    where coalesce(f.usage_type, 'licensed') = 'licensed'
),

licensed as (
    select
        event_id,
        sum(cast(amount_per_interval as double) / months_per_period) as list_mrr_minor,
        max(billing_interval) as billing_interval,
        max(interval_count) as interval_count,
        max(months_per_period) as months_per_period,
        max(case when position = 0 then plan end) as plan,
        max(case when position = 0 then quantity end) as seats
    from licensed_items
    group by event_id
),

states as (
    select
        e.subscription_id,
        e.o.customer as customer_id,
        e.changed_at,
        e.event_id,
        e.event_type,
        e.type_rank,
        e.o.status as status,
        upper(e.o.currency) as currency,
        l.billing_interval,
        l.interval_count,
        l.plan,
        l.seats,
        l.list_mrr_minor,
        l.months_per_period,
        e.o.cancel_at_period_end as cancel_at_period_end,
        to_timestamp(e.o.cancel_at) as cancel_at,
        to_timestamp(e.o.ended_at) as ended_at
    from events as e
    left join licensed as l on l.event_id = e.event_id
),

reported as (
    -- service ends at ended_at: when the event that first reports an end came later (Stripe may send the
    -- deletion after the fact), the state begins at ended_at, provided that is after the previous state
    select
        s.subscription_id, s.customer_id,
        case when s.ended_at is not null and s.ended_at < s.changed_at and s.prev_ended_at is null
                  and (s.prev_changed_at is null or s.ended_at > s.prev_changed_at)
             then s.ended_at else s.changed_at end as changed_at,
        s.event_id, s.event_type, s.status, s.currency, s.billing_interval, s.interval_count, s.plan, s.seats,
        s.list_mrr_minor, s.months_per_period, s.cancel_at_period_end, s.cancel_at, s.ended_at
    from (
        select
            st.*,
            lag(st.changed_at) over (partition by st.subscription_id order by st.changed_at, st.type_rank, st.event_id)
                as prev_changed_at,
            lag(st.ended_at) over (partition by st.subscription_id order by st.changed_at, st.type_rank, st.event_id)
                as prev_ended_at
        from states as st
    ) as s
),

ledger as (
    select
        s.*,
        lead(s.changed_at) over (partition by s.subscription_id order by s.changed_at, s.event_id) as next_changed_at
    from reported as s
),

discount_entries as (
    -- every discount of each state, in Stripe's order: the items' own discounts (item_position >= 0)
    -- apply to their item first, then the subscription's discounts (item_position -1) to the sum, each
    -- in the order of its list. An entry is a discount id, as Stripe sends every event (an event's object is
    -- never expanded), or, in older exports, the expanded discount as JSON text (the parse keeps each
    -- entry as text: a list mixing ids and objects parses alike on both engines)
    select
        e.event_id,
        -1 as item_position,
        d.position as discount_position,
        e.o.discounts[d.position + 1] as entry
    from events as e
    inner join marts.dim_position as d on d.position < array_length(e.o.discounts)
    union all
    select
        e.event_id,
        i.position as item_position,
        d.position as discount_position,
        e.o.items.data[i.position + 1].discounts[d.position + 1] as entry
    from events as e
    inner join licensed_items as i on i.event_id = e.event_id
    inner join marts.dim_position as d on d.position < array_length(e.o.items.data[i.position + 1].discounts)
),

discount_list as (
    -- an expanded entry is read as it is; an id is looked up among the discounts the subscriptions list and
    -- the invoices show expanded (marts.discount_objects); an id found nowhere counts for nothing (the
    -- check subscription_states_event_discounts_known names it)
    select
        r.event_id,
        r.item_position,
        r.discount_position,
        case when r.is_object then json_extract_string(r.entry, '$.coupon.id') else x.coupon_id end as coupon_id,
        case when r.is_object then json_extract_string(r.entry, '$.coupon.duration') else x.coupon_duration end
            as coupon_duration,
        case when r.is_object then cast(json_extract_string(r.entry, '$.coupon.percent_off') as double)
             else x.percent_off end as percent_off,
        case when r.is_object then cast(json_extract_string(r.entry, '$.coupon.amount_off') as double)
             else x.amount_off end as amount_off,
        case when r.is_object then upper(json_extract_string(r.entry, '$.coupon.currency'))
             else x.coupon_currency end as coupon_currency,
        case when r.is_object then to_timestamp(cast(json_extract_string(r.entry, '$.end') as bigint))
             else x.discount_end end as discount_end
    from (select *, entry like '{%' as is_object from discount_entries) as r
    left join marts.discount_objects as x on not r.is_object and x.discount_id = r.entry
),

eval_points as (
    -- a state is valued when it is reported, and again where one of its repeating discounts reaches its
    -- `end` before the next state (Stripe removes the discount then, with or without an event; only up to
    -- the last event loaded)
    select l.event_id, l.changed_at as eval_at, 0 as is_expiry
    from ledger as l
    union all
    select distinct l.event_id, d.discount_end as eval_at, 1 as is_expiry
    from ledger as l
    inner join discount_list as d on d.event_id = l.event_id
    cross join (select max(created_at) as last_event from staging.stg_billing__events) as le
    where d.coupon_duration = 'repeating'
      and d.discount_end > l.changed_at
      and d.discount_end <= le.last_event
      and (l.next_changed_at is null or l.next_changed_at > d.discount_end)
      and l.ended_at is null
),

discount_inputs as (
    -- the discounts that count for MRR at each point (forever, or repeating before its end; a once coupon
    -- never; an amount_off only in the subscription's currency, its own or from its currency_options, as
    -- Stripe applies it): each list is a point's subscription discounts (item_position -1) or an item's
    select
        p.event_id as owner_id,
        p.eval_at as at_time,
        d.item_position,
        d.discount_position as discount_order,
        d.coupon_id,
        d.percent_off,
        case when d.coupon_currency = l.currency then d.amount_off else ca.amount_off_minor end as amount_off_minor,
        coalesce(i.months_per_period, l.months_per_period) as months_per_period
    from eval_points as p
    inner join ledger as l on l.event_id = p.event_id
    inner join discount_list as d on d.event_id = p.event_id
    left join licensed_items as i on i.event_id = d.event_id and i.position = d.item_position
    -- an amount_off coupon of another currency: the amount its currency_options give for this one
    left join marts.coupon_amounts as ca on ca.coupon_id = d.coupon_id and ca.currency = l.currency
    where d.coupon_duration in ('forever', 'repeating')
      and (d.coupon_duration = 'forever' or d.discount_end is null or d.discount_end > p.eval_at)
      and (d.amount_off is null or d.percent_off is not null or d.coupon_currency = l.currency
           or ca.amount_off_minor is not null)
      and (d.item_position = -1 or i.event_id is not null)
),

discount_maps as (
    -- each list's discounts composed: the shared discount rule
    -- include: composed_discounts
),

first_coupon as (
    -- the first discount that counts: the subscription's own list first, then the items' in their order
    select owner_id as event_id, at_time as eval_at, coupon_id
    from (
        select
            owner_id, at_time, coupon_id,
            row_number() over (partition by owner_id, at_time order by case when item_position = -1 then 0 else 1 end,
                                                                      item_position, discount_order) as rn
        from discount_inputs
    ) as r
    where rn = 1
),

valued as (
    -- the MRR of each point: items after their own discounts, summed, then the subscription's discounts
    select
        p.event_id,
        p.eval_at,
        p.is_expiry,
        sum(case when im.owner_id is null then cast(i.amount_per_interval as double) / i.months_per_period
                 else greatest(0.0, cast(i.amount_per_interval as double) / i.months_per_period * im.factor - im.offset_minor)
            end) as items_mrr_minor
    from eval_points as p
    inner join licensed_items as i on i.event_id = p.event_id
    left join discount_maps as im
        on im.owner_id = p.event_id and im.at_time = p.eval_at and im.item_position = i.position
    group by p.event_id, p.eval_at, p.is_expiry
),

event_states as (
    select
        'events' as source, l.subscription_id, l.customer_id, p.eval_at as changed_at,
        case when p.is_expiry = 1 then cast(null as varchar) else l.event_id end as event_id,
        case when p.is_expiry = 1 then 'discount.end' else l.event_type end as event_type,
        l.status, l.currency, l.billing_interval, l.interval_count, l.plan, l.seats, l.list_mrr_minor,
        case when sm.owner_id is null then v.items_mrr_minor
             else greatest(0.0, v.items_mrr_minor * sm.factor - sm.offset_minor) end as discounted_mrr_minor,
        fc.coupon_id, l.cancel_at_period_end, l.cancel_at, l.ended_at
    from eval_points as p
    inner join ledger as l on l.event_id = p.event_id
    left join valued as v on v.event_id = p.event_id and v.eval_at = p.eval_at
    left join discount_maps as sm on sm.owner_id = p.event_id and sm.at_time = p.eval_at and sm.item_position = -1
    left join first_coupon as fc on fc.event_id = p.event_id and fc.eval_at = p.eval_at
),

all_states as (
    select * from event_states
    union all
    select
        h.source,
        h.subscription_id,
        h.customer_id,
        h.changed_at,
        cast(null as varchar) as event_id,
        cast(null as varchar) as event_type,
        h.status,
        h.currency,
        h.billing_interval,
        h.interval_count,
        h.plan,
        h.seats,
        h.list_mrr_minor,
        h.discounted_mrr_minor,
        h.coupon_id,
        h.cancel_at_period_end,
        h.cancel_at,
        h.ended_at
    from marts.subscription_history_states as h
)

select
    subscription_id,
    customer_id,
    changed_at,
    source,
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
        -- no revenue while trialing, never started, ended, unpaid (retries exhausted, invoices left open)
        -- or paused (Stripe bills nothing while a subscription is paused)
        when status in ('trialing', 'canceled', 'incomplete', 'incomplete_expired', 'unpaid', 'paused')
             or ended_at is not null then 0
        else coalesce(discounted_mrr_minor, list_mrr_minor, 0)
    end as mrr_minor,
    coupon_id,
    status = 'trialing' as is_trial,
    status = 'past_due' as is_past_due,
    coalesce(cancel_at_period_end, false) as cancel_at_period_end,
    cancel_at,
    ended_at
from all_states
