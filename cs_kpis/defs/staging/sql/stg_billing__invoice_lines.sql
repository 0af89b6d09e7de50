-- Stripe invoice lines: one row per line of each invoice's latest version (subscription item charges and
-- prorations). A new invoice version replaces its whole line set.
-- @grain line_id
-- @incremental by=load merge=line_id,invoice_id
-- @column line_id: Stripe invoice line item id (il_)
-- @column invoice_id: the invoice (staging.stg_billing__invoices.invoice_id)
-- @column subscription_id: parent.subscription_item_details.subscription, or null for non-subscription lines
-- @column subscription_item_id: parent.subscription_item_details.subscription_item (si_), or null
-- @column price_id: pricing.price_details.price (staging.stg_billing__prices.price_id)
-- @column product_id: pricing.price_details.product
-- @column line_type: parent.type, e.g. subscription_item_details
-- @column description: line description as printed on the invoice
-- @column is_proration: true for a proration line (mid-period change)
-- @column credited_invoice_id: parent.subscription_item_details.proration_details.credited_items.invoice: on a credit proration, the invoice holding the line it credits (the charge of the unused time); null on every other line, and on a credit whose charge was on no invoice yet
-- @column is_proration_credit: true for a proration that credits unused time (takes the old item off) rather than charging the remaining time: Stripe names the line it credits (credited_invoice_id), or the amount is negative, or it is 0 (a discount took all of it: Stripe's prorations are net of discounts) and the description is Stripe's English "Unused time on ..." (a charge's is "Remaining time on ..."; a localized one is not told: check zero_amount_prorations_are_recognised). The rule is parts/proration_credit.sql
-- @column quantity: units billed
-- @column period_start: start of the period the line covers
-- @column period_end: end of the period the line covers
-- @column currency: line currency, upper case
-- @column minor_units_per_major: 100, or 1 for Stripe's zero-decimal currencies
-- @column amount_minor: line amount in minor units (negative for credited prorations, 0 for one a discount took all of); a proration's is net of the subscription's discounts
-- @column subtotal_minor: line subtotal before discounts in minor units
-- @column amount: amount_minor in major units
-- @column discount_amounts: discount amounts applied to the line, as JSON
-- @column discount_amount_minor: the sum of the line's discount amounts, minor units (0 without discounts)
-- @column discounts: the line's `discounts` as JSON: expanded discount objects (id, coupon{...}, start, end, subscription_item) in API mode, where the connector asks for expand[]=data.lines.data.discounts, and in the simulator's files; discount ids (strings) where an export has them unexpanded. Only the line's own (its subscription item's) discounts: the invoice's are in its discounts. marts.subscription_item_discounts values the expanded ones
-- @column extract_day: the landing extract day of the invoice version the line came with

with source as (
    select * from raw.billing__invoice_lines
    -- the raw loads this build reads: every load in a full build, the loads not built yet in a nightly one
    -- (a row without a load id, never written by dlt, counts as the load '')
    where coalesce(_dlt_load_id, '') in (
        select _dlt_load_id from staging._build_loads
        where model = 'staging.stg_billing__invoice_lines' and is_current
    )
),

renamed as (
    select
        id as line_id,
        invoice as invoice_id,
        parent__subscription_item_details__subscription as subscription_id,
        parent__subscription_item_details__subscription_item as subscription_item_id,
        pricing__price_details__price as price_id,
        pricing__price_details__product as product_id,
        parent__type as line_type,
        description,
        coalesce(parent__subscription_item_details__proration, false) as is_proration,
        parent__subscription_item_details__proration_details__credited_items__invoice as credited_invoice_id,
        quantity,
        period__start as period_start,
        period__end as period_end,
        upper(currency) as currency,
        case when upper(currency) in (
            -- include: zero_decimal_currencies
        ) then 1 else 100 end as minor_units_per_major,
        amount as amount_minor,
        subtotal as subtotal_minor,
        discount_amounts,
        discounts,
        coalesce(list_sum(cast(json_extract(discount_amounts, '$[*].amount') as bigint[])), 0) as discount_amount_minor,
        _extract_day as extract_day
    from source
)

select
    line_id,
    invoice_id,
    subscription_id,
    subscription_item_id,
    price_id,
    product_id,
    line_type,
    description,
    is_proration,
    credited_invoice_id,
    (
        -- include: proration_credit
    ) as is_proration_credit,
    quantity,
    period_start,
    period_end,
    currency,
    minor_units_per_major,
    amount_minor,
    subtotal_minor,
    cast(cast(amount_minor as double) / minor_units_per_major as decimal(18, 2)) as amount,
    discount_amounts,
    discount_amount_minor,
    discounts,
    extract_day
from renamed
