-- Stripe subscription items: one row per item (seat price) of each subscription's latest snapshot, with
-- its expanded price. A new subscription version replaces its whole item set, so removed items are gone.
-- @grain subscription_item_id
-- @incremental by=load merge=subscription_item_id,subscription_id
-- @column subscription_item_id: Stripe subscription item id (si_)
-- @column subscription_id: the subscription (staging.stg_billing__subscriptions.subscription_id)
-- @column price_id: the item's price (staging.stg_billing__prices.price_id)
-- @column product_id: the price's product (staging.stg_billing__products.product_id)
-- @column plan_tier: price metadata.plan_tier
-- @column price_name: price nickname
-- @column currency: price currency, upper case
-- @column minor_units_per_major: 100, or 1 for Stripe's zero-decimal currencies
-- @column unit_amount_minor: price per unit per interval in minor units of currency
-- @column unit_amount: unit_amount_minor in major units
-- @column quantity: number of units (seats); null for metered items
-- @column interval: price recurring.interval: day, week, month or year
-- @column interval_count: price recurring.interval_count
-- @column usage_type: licensed (per seat, counts toward list MRR) or metered
-- @column billing_scheme: per_unit or tiered
-- @column created_at: when the item was added to the subscription
-- @column current_period_start: start of the item's current billing period
-- @column current_period_end: end of the item's current billing period
-- @column discounts: the item's own discounts as JSON: expanded discount objects (id, coupon{...}, start, end) when listed with expand[]=data.items.data.discounts (API mode and the simulator's files), else ids; marts.subscription_item_discounts values the expanded ones (an id alone says nothing of the coupon)
-- @column extract_day: the landing extract day of the subscription version the item came with

with source as (
    select * from raw.billing__subscription_items
    -- the raw loads this build reads: every load in a full build, the loads not built yet in a nightly one
    -- (a row without a load id, never written by dlt, counts as the load '')
    where coalesce(_dlt_load_id, '') in (
        select _dlt_load_id from staging._build_loads
        where model = 'staging.stg_billing__subscription_items' and is_current
    )
),

renamed as (
    select
        id as subscription_item_id,
        subscription as subscription_id,
        price__id as price_id,
        price__product as product_id,
        price__metadata__plan_tier as plan_tier,
        price__nickname as price_name,
        upper(price__currency) as currency,
        case when upper(price__currency) in (
            -- include: zero_decimal_currencies
        ) then 1 else 100 end as minor_units_per_major,
        price__unit_amount as unit_amount_minor,
        quantity,
        price__recurring__interval as interval,
        cast(price__recurring__interval_count as integer) as interval_count,
        price__recurring__usage_type as usage_type,
        price__billing_scheme as billing_scheme,
        created as created_at,
        current_period_start,
        current_period_end,
        discounts,
        _extract_day as extract_day
    from source
)

select
    subscription_item_id,
    subscription_id,
    price_id,
    product_id,
    plan_tier,
    price_name,
    currency,
    minor_units_per_major,
    unit_amount_minor,
    cast(cast(unit_amount_minor as double) / minor_units_per_major as decimal(18, 2)) as unit_amount,
    quantity,
    interval,
    interval_count,
    usage_type,
    billing_scheme,
    created_at,
    current_period_start,
    current_period_end,
    discounts,
    extract_day
from renamed
