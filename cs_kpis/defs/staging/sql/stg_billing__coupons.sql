-- Stripe coupons: the discounts subscriptions can carry (percent or fixed amount, once/repeating/forever).
-- @grain coupon_id
-- @column coupon_id: Stripe coupon id (e.g. WELCOME20)
-- @column coupon_name: coupon name
-- @column percent_off: percentage discount (0-100), or null for a fixed-amount coupon
-- @column currency: currency of amount_off, upper case; null for a percent coupon
-- @column minor_units_per_major: 100, or 1 for Stripe's zero-decimal currencies; null without a currency
-- @column amount_off_minor: fixed discount in minor units of currency, or null for a percent coupon
-- @column amount_off: amount_off_minor in major units
-- @column currency_options: an amount_off coupon's amounts in other currencies as JSON ({"eur": {"amount_off": 9000}}), as listed with expand[]=data.currency_options; null when none
-- @column duration: once, repeating or forever
-- @column duration_in_months: months a repeating coupon applies; null otherwise
-- @column is_valid: whether the coupon can still be redeemed
-- @column times_redeemed: redemptions so far
-- @column created_at: when the coupon was created
-- @column redeem_by: last moment the coupon can be redeemed, or null
-- @column extract_day: the landing extract day of the loaded version

with source as (
    select * from raw.billing__coupons
),

renamed as (
    select
        id as coupon_id,
        name as coupon_name,
        cast(percent_off as double) as percent_off,
        upper(currency) as currency,
        case
            when currency is null then null
            when upper(currency) in (
                -- include: zero_decimal_currencies
            ) then 1
            else 100
        end as minor_units_per_major,
        amount_off as amount_off_minor,
        currency_options,
        duration,
        cast(duration_in_months as integer) as duration_in_months,
        valid as is_valid,
        times_redeemed,
        created as created_at,
        redeem_by,
        _extract_day as extract_day
    from source
)

select
    coupon_id,
    coupon_name,
    percent_off,
    currency,
    minor_units_per_major,
    amount_off_minor,
    cast(cast(amount_off_minor as double) / minor_units_per_major as decimal(18, 2)) as amount_off,
    currency_options,
    duration,
    duration_in_months,
    is_valid,
    times_redeemed,
    created_at,
    redeem_by,
    extract_day
from renamed
