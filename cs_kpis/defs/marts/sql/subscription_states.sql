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
with events as (
    -- the object is parsed once, into just the fields used here (re-extracting paths from the JSON text
    -- parsed every ~3 KB object ten times over; on the large company that was most of the revenue build).
    -- json_transform is DuckDB's; on Spark the same is from_json with this schema (see marts/README.md)
    select
        event_id,
        event_type,
        created_at as changed_at,
        object_id as subscription_id,
        json_transform(object, '{
            "customer": "VARCHAR", "status": "VARCHAR", "currency": "VARCHAR",
            "cancel_at_period_end": "BOOLEAN", "cancel_at": "BIGINT", "ended_at": "BIGINT",
            "discounts": [{"coupon": {"id": "VARCHAR", "duration": "VARCHAR", "percent_off": "DOUBLE",
                                      "amount_off": "DOUBLE"}, "end": "BIGINT"}],
            "items": {"data": [{"quantity": "BIGINT", "price": {"unit_amount": "BIGINT", "nickname": "VARCHAR",
                "metadata": {"plan_tier": "VARCHAR"},
                "recurring": {"interval": "VARCHAR", "interval_count": "INTEGER", "usage_type": "VARCHAR"}}}]}
        }') as o
    from staging.stg_billing__events
    where object_type = 'subscription'
      and event_type like 'customer.subscription.%'
),

item_fields as (
    -- one row per item of each state; dim_position is a 0..N spine (no generators: see PORTABILITY.md)
    select
        e.event_id,
        p.position,
        e.o.items.data[p.position + 1].price.recurring.usage_type as usage_type,
        e.o.items.data[p.position + 1].price.recurring.interval as billing_interval,
        e.o.items.data[p.position + 1].price.recurring.interval_count as interval_count,
        e.o.items.data[p.position + 1].price.unit_amount as unit_amount,
        e.o.items.data[p.position + 1].quantity as quantity,
        coalesce(e.o.items.data[p.position + 1].price.metadata.plan_tier,
                 e.o.items.data[p.position + 1].price.nickname) as plan
    from events as e
    inner join marts.dim_position as p
        on p.position < array_length(e.o.items.data)
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
        e.o.customer as customer_id,
        e.changed_at,
        e.event_id,
        e.event_type,
        e.o.status as status,
        upper(e.o.currency) as currency,
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
        e.o.discounts[1].coupon.id as coupon_id,
        e.o.discounts[1].coupon.duration as coupon_duration,
        e.o.discounts[1].coupon.percent_off as percent_off,
        e.o.discounts[1].coupon.amount_off as amount_off,
        to_timestamp(e.o.discounts[1]."end") as discount_end,
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
        s.list_mrr_minor, s.months_per_period, s.coupon_id, s.coupon_duration, s.percent_off, s.amount_off,
        s.discount_end, s.cancel_at_period_end, s.cancel_at, s.ended_at
    from (
        select
            st.*,
            lag(st.changed_at) over (partition by st.subscription_id order by st.changed_at, st.event_id)
                as prev_changed_at,
            lag(st.ended_at) over (partition by st.subscription_id order by st.changed_at, st.event_id)
                as prev_ended_at
        from states as st
    ) as s
),

ledger as (
    -- a repeating discount stops at its `end`; the coupon of a state reported after that is void
    select
        s.*,
        s.coupon_duration = 'repeating' and s.discount_end is not null and s.discount_end <= s.changed_at
            as discount_over,
        lead(s.changed_at) over (partition by s.subscription_id order by s.changed_at, s.event_id) as next_changed_at
    from reported as s
),

expiries as (
    -- Stripe removes a repeating discount at its `end`; where no event reports that moment, the state
    -- changes there all the same (up to the last event loaded)
    select
        l.subscription_id, l.customer_id, l.discount_end as changed_at, cast(null as varchar) as event_id,
        'discount.end' as event_type, l.status, l.currency, l.billing_interval, l.interval_count, l.plan,
        l.seats, l.list_mrr_minor, l.months_per_period, cast(null as varchar) as coupon_id,
        cast(null as varchar) as coupon_duration, cast(null as double) as percent_off,
        cast(null as double) as amount_off, l.cancel_at_period_end, l.cancel_at, l.ended_at
    from ledger as l
    cross join (select max(created_at) as last_event from staging.stg_billing__events) as le
    where l.coupon_duration = 'repeating'
      and l.discount_end > l.changed_at
      and l.discount_end <= le.last_event
      and (l.next_changed_at is null or l.next_changed_at > l.discount_end)
      and l.ended_at is null
),

all_states as (
    select
        'events' as source, subscription_id, customer_id, changed_at, event_id, event_type, status, currency,
        billing_interval, interval_count, plan, seats, list_mrr_minor, months_per_period,
        case when discount_over then null else coupon_id end as coupon_id,
        case when discount_over then null else coupon_duration end as coupon_duration,
        case when discount_over then null else percent_off end as percent_off,
        case when discount_over then null else amount_off end as amount_off,
        cancel_at_period_end, cancel_at, ended_at
    from ledger
    union all
    select 'events' as source, e.* from expiries as e
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
        h.months_per_period,
        h.coupon_id,
        h.coupon_duration,
        h.percent_off,
        h.amount_off,
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
from all_states
