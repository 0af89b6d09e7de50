-- Stripe invoice items (ii_): the proration credits and charges of mid-period subscription changes, as
-- GET /v1/invoiceitems lists them, latest version per id. An item is pending (invoice null) until the
-- subscription's next invoice bills it; then it is also an invoice line (stg_billing__invoice_lines).
-- @grain invoice_item_id
-- @incremental by=load merge=invoice_item_id
-- @column invoice_item_id: Stripe invoice item id (ii_)
-- @column invoice_id: the invoice that billed the item, or null while it is pending
-- @column is_pending: true while the item is on no invoice yet
-- @column customer_id: Stripe customer id (cus_)
-- @column subscription_id: parent.subscription_details.subscription, or null for a one-off item
-- @column subscription_item_id: parent.subscription_details.subscription_item (si_), or null
-- @column price_id: pricing.price_details.price (staging.stg_billing__prices.price_id)
-- @column is_proration: true for a proration (a mid-period change)
-- @column is_proration_credit: true for a proration that credits unused time (takes the old item off) rather than charging the remaining time. API 2025-03-31.basil gives an invoice item no proration_details (its credited_items came in later versions), so: a negative amount, or 0 (a discount took all of it: Stripe's prorations are net of discounts) with Stripe's English description "Unused time on ..." (a charge's is "Remaining time on ..."; a localized one is not told: check zero_amount_prorations_are_recognised). The rule is parts/proration_credit.sql
-- @column quantity: units of the price the item is for
-- @column item_date: when the item was made (Stripe's date)
-- @column period_start: start of the period the item covers (for a proration: the moment of the change)
-- @column period_end: end of the period the item covers
-- @column currency: item currency, upper case
-- @column minor_units_per_major: 100, or 1 for Stripe's zero-decimal currencies
-- @column description: the item's description, e.g. "Unused time on 3 × Growth after 12 Mar 2026"
-- @column amount_minor: amount in minor units (negative for a credit, 0 for one a discount took all of); a proration's is net of the subscription's discounts
-- @column amount: amount_minor in major units
-- @column extract_day: the landing extract day of the item's latest version

with source as (
    select * from raw.billing__invoice_items
    -- the raw loads this build reads: every load in a full build, the loads not built yet in a nightly one
    -- (a row without a load id, never written by dlt, counts as the load '')
    where coalesce(_dlt_load_id, '') in (
        select _dlt_load_id from staging._build_loads
        where model = 'staging.stg_billing__invoice_items' and is_current
    )
),

renamed as (
    select
        id as invoice_item_id,
        invoice as invoice_id,
        invoice is null as is_pending,
        customer as customer_id,
        parent__subscription_details__subscription as subscription_id,
        parent__subscription_details__subscription_item as subscription_item_id,
        pricing__price_details__price as price_id,
        coalesce(proration, false) as is_proration,
        -- API 2025-03-31.basil gives an invoice item no credited_items (parts/proration_credit.sql)
        cast(null as varchar) as credited_invoice_id,
        description,
        quantity,
        date as item_date,
        period__start as period_start,
        period__end as period_end,
        upper(currency) as currency,
        case when upper(currency) in (
            -- include: zero_decimal_currencies
        ) then 1 else 100 end as minor_units_per_major,
        amount as amount_minor,
        _extract_day as extract_day
    from source
)

select
    invoice_item_id,
    invoice_id,
    is_pending,
    customer_id,
    subscription_id,
    subscription_item_id,
    price_id,
    is_proration,
    (
        -- include: proration_credit
    ) as is_proration_credit,
    quantity,
    item_date,
    period_start,
    period_end,
    currency,
    minor_units_per_major,
    description,
    amount_minor,
    cast(cast(amount_minor as double) / minor_units_per_major as decimal(18, 2)) as amount,
    extract_day
from renamed
