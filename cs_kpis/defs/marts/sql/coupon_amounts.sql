-- What an amount_off coupon takes off a subscription, per billing period, in each currency subscriptions
-- are billed in: its own amount_off in its own currency, else the amount its currency_options give for
-- that currency (the coupons list, GET /v1/coupons?expand[]=data.currency_options: a discount's own coupon
-- never carries them). Stripe applies an amount_off coupon only to a subscription in a currency it has an
-- amount for, so a currency without a row gets nothing off. Every path of the subscription ledger (events,
-- invoices, the subscriptions list) reads amounts off here (marts/README.md, "An amount_off coupon").
-- @grain coupon_id, currency
-- @column coupon_id: Stripe coupon id
-- @column currency: ISO currency of the subscription it applies to, upper case
-- @column amount_off_minor: minor units of that currency taken off per billing period
-- @column source: amount_off (the coupon's own currency) or currency_options
with currencies as (
    -- every currency with exchange rates (a subscription's MRR needs one), and the reporting currency
    select distinct upper(currency) as currency from staging.stg_billing__fx_rates
    union
    select 'USD' as currency
)

select coupon_id, currency, amount_off_minor, source
from (
    select
        c.coupon_id,
        cu.currency,
        case when c.currency = cu.currency then cast(c.amount_off_minor as double)
             else cast(json_extract_string(c.currency_options, '$.' || lower(cu.currency) || '.amount_off') as double)
        end as amount_off_minor,
        case when c.currency = cu.currency then 'amount_off' else 'currency_options' end as source
    from staging.stg_billing__coupons as c
    cross join currencies as cu
    where c.amount_off_minor is not null
) as a
where amount_off_minor is not null
