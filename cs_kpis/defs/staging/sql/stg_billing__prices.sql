-- Stripe prices: what a product costs per interval in one currency.
-- @grain price_id
-- @column price_id: Stripe price id (price_)
-- @column product_id: the product priced (staging.stg_billing__products.product_id)
-- @column price_name: price nickname, e.g. Growth monthly USD
-- @column lookup_key: Stripe lookup key, e.g. growth_month_usd
-- @column plan_tier: metadata.plan_tier
-- @column currency: price currency, upper case
-- @column minor_units_per_major: 100, or 1 for Stripe's zero-decimal currencies (JPY, KRW, ...)
-- @column unit_amount_minor: price per unit per interval in minor units of currency
-- @column unit_amount: unit_amount_minor in major units (unit_amount_minor / minor_units_per_major)
-- @column interval: recurring.interval: day, week, month or year
-- @column interval_count: recurring.interval_count: number of intervals between billings
-- @column usage_type: recurring.usage_type: licensed (per seat) or metered
-- @column billing_scheme: per_unit or tiered
-- @column unit_amount_decimal: unit_amount_decimal as a number: price per unit in minor units, fractions of a cent allowed (per_unit prices; null for tiered)
-- @column tiers_mode: graduated or volume for a tiered price, else null
-- @column tiers: the tiers of a tiered price as JSON (up_to, unit_amount(_decimal), flat_amount(_decimal)), as listed with expand[]=data.tiers
-- @column transform_divide_by: transform_quantity.divide_by: units are billed in packs of this many (per_unit prices), or null
-- @column transform_round: transform_quantity.round: up or down (a part pack counts as a whole one, or not at all)
-- @column price_type: recurring or one_time
-- @column is_active: whether the price can be used for new subscriptions
-- @column created_at: when the price was created
-- @column extract_day: the landing extract day of the loaded version

with source as (
    select * from raw.billing__prices
),

renamed as (
    select
        id as price_id,
        product as product_id,
        nickname as price_name,
        lookup_key,
        metadata__plan_tier as plan_tier,
        upper(currency) as currency,
        case when upper(currency) in (
            -- include: zero_decimal_currencies
        ) then 1 else 100 end as minor_units_per_major,
        unit_amount as unit_amount_minor,
        recurring__interval as interval,
        cast(recurring__interval_count as integer) as interval_count,
        recurring__usage_type as usage_type,
        billing_scheme,
        cast(unit_amount_decimal as double) as unit_amount_decimal,
        tiers_mode,
        tiers,
        cast(transform_quantity__divide_by as bigint) as transform_divide_by,
        transform_quantity__round as transform_round,
        type as price_type,
        active as is_active,
        created as created_at,
        _extract_day as extract_day
    from source
)

select
    price_id,
    product_id,
    price_name,
    lookup_key,
    plan_tier,
    currency,
    minor_units_per_major,
    unit_amount_minor,
    cast(cast(unit_amount_minor as double) / minor_units_per_major as decimal(18, 2)) as unit_amount,
    interval,
    interval_count,
    usage_type,
    billing_scheme,
    unit_amount_decimal,
    tiers_mode,
    tiers,
    transform_divide_by,
    transform_round,
    price_type,
    is_active,
    created_at,
    extract_day
from renamed
