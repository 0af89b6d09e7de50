-- Stripe invoices (latest state): subscription creation, cycle and update (proration) invoices with their
-- amounts in minor units and, for convenience, major units. Lines are in staging.stg_billing__invoice_lines.
-- @grain invoice_id
-- @incremental by=load merge=invoice_id
-- @column invoice_id: Stripe invoice id (in_)
-- @column invoice_number: the invoice number shown to the customer
-- @column customer_id: the Stripe customer (staging.stg_billing__customers.customer_id)
-- @column customer_name: customer name as printed on the invoice
-- @column subscription_id: parent.subscription_details.subscription (API 2025-03-31.basil and later); null for one-off invoices
-- @column status: draft, open, paid, uncollectible or void
-- @column billing_reason: subscription_create, subscription_cycle, subscription_update, manual, ...
-- @column collection_method: charge_automatically or send_invoice
-- @column attempt_count: payment attempts so far
-- @column created_at: when the invoice was created
-- @column due_at: due_date: when payment is due (send_invoice), or null
-- @column period_start: start of the period the invoice covers
-- @column period_end: end of the period the invoice covers
-- @column finalized_at: status_transitions.finalized_at, or null
-- @column paid_at: status_transitions.paid_at, or null
-- @column voided_at: status_transitions.voided_at, or null
-- @column marked_uncollectible_at: status_transitions.marked_uncollectible_at, or null
-- @column currency: invoice currency, upper case
-- @column minor_units_per_major: 100, or 1 for Stripe's zero-decimal currencies
-- @column subtotal_minor: sum of line amounts before discounts, minor units
-- @column total_minor: total after discounts and taxes, minor units (negative for credit notes)
-- @column amount_due_minor: amount to collect, minor units
-- @column amount_paid_minor: amount paid so far, minor units
-- @column amount_remaining_minor: amount still to pay, minor units
-- @column total: total_minor in major units
-- @column amount_due: amount_due_minor in major units
-- @column amount_paid: amount_paid_minor in major units
-- @column discounts: applied discounts as JSON (expanded discount objects: id, coupon{...}, start, end)
-- @column discount_id: id of the first discount (di_), or null
-- @column discount_coupon_id: coupon of the first discount, or null
-- @column discount_duration: the first discount's coupon duration: once, repeating or forever
-- @column discount_percent_off: percent_off of the first discount's coupon, or null
-- @column discount_amount_off_minor: amount_off of the first discount's coupon in minor units, or null
-- @column discount_start_at: when the first discount started applying, or null
-- @column discount_end_at: when the first discount stops applying (null = forever or once)
-- @column extract_day: the landing extract day of the loaded version

with source as (
    select * from raw.billing__invoices
    -- the raw loads this build reads: every load in a full build, the loads not built yet in a nightly one
    -- (a row without a load id, never written by dlt, counts as the load '')
    where coalesce(_dlt_load_id, '') in (
        select _dlt_load_id from staging._build_loads
        where model = 'staging.stg_billing__invoices' and is_current
    )
),

renamed as (
    select
        id as invoice_id,
        number as invoice_number,
        customer as customer_id,
        customer_name,
        parent__subscription_details__subscription as subscription_id,
        status,
        billing_reason,
        collection_method,
        attempt_count,
        created as created_at,
        due_date as due_at,
        period_start,
        period_end,
        status_transitions__finalized_at as finalized_at,
        status_transitions__paid_at as paid_at,
        status_transitions__voided_at as voided_at,
        status_transitions__marked_uncollectible_at as marked_uncollectible_at,
        upper(currency) as currency,
        case when upper(currency) in (
            -- include: zero_decimal_currencies
        ) then 1 else 100 end as minor_units_per_major,
        subtotal as subtotal_minor,
        total as total_minor,
        amount_due as amount_due_minor,
        amount_paid as amount_paid_minor,
        amount_remaining as amount_remaining_minor,
        discounts,
        json_extract_string(discounts, '$[0].id') as discount_id,
        json_extract_string(discounts, '$[0].coupon.id') as discount_coupon_id,
        json_extract_string(discounts, '$[0].coupon.duration') as discount_duration,
        cast(json_extract_string(discounts, '$[0].coupon.percent_off') as double) as discount_percent_off,
        cast(json_extract_string(discounts, '$[0].coupon.amount_off') as bigint) as discount_amount_off_minor,
        to_timestamp(cast(json_extract_string(discounts, '$[0].start') as bigint)) as discount_start_at,
        to_timestamp(cast(json_extract_string(discounts, '$[0].end') as bigint)) as discount_end_at,
        _extract_day as extract_day
    from source
)

select
    invoice_id,
    invoice_number,
    customer_id,
    customer_name,
    subscription_id,
    status,
    billing_reason,
    collection_method,
    attempt_count,
    created_at,
    due_at,
    period_start,
    period_end,
    finalized_at,
    paid_at,
    voided_at,
    marked_uncollectible_at,
    currency,
    minor_units_per_major,
    subtotal_minor,
    total_minor,
    amount_due_minor,
    amount_paid_minor,
    amount_remaining_minor,
    cast(cast(total_minor as double) / minor_units_per_major as decimal(18, 2)) as total,
    cast(cast(amount_due_minor as double) / minor_units_per_major as decimal(18, 2)) as amount_due,
    cast(cast(amount_paid_minor as double) / minor_units_per_major as decimal(18, 2)) as amount_paid,
    discounts,
    discount_id,
    discount_coupon_id,
    discount_duration,
    discount_percent_off,
    discount_amount_off_minor,
    discount_start_at,
    discount_end_at,
    extract_day
from renamed
