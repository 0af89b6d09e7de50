-- Stripe subscriptions, latest snapshot per subscription (status=all: trialing, active, past_due,
-- canceled, ...). Items are in staging.stg_billing__subscription_items; the history of changes is in
-- staging.stg_billing__events. The first discount is flattened; all of them stay in discounts.
-- @grain subscription_id
-- @incremental by=load merge=subscription_id
-- @column subscription_id: Stripe subscription id (sub_)
-- @column customer_id: the Stripe customer (staging.stg_billing__customers.customer_id)
-- @column crm_account_id: metadata.salesforce_account_id on the subscription (blank is null), as written in Stripe
-- @column status: trialing, active, past_due, unpaid, canceled, incomplete, incomplete_expired or paused
-- @column currency: subscription currency, upper case
-- @column collection_method: charge_automatically or send_invoice
-- @column created_at: when the subscription was created
-- @column started_at: start_date: when the subscription started (may precede created_at for backdated ones)
-- @column billing_cycle_anchor_at: the reference moment of the billing cycle
-- @column trial_start_at: start of the trial, or null
-- @column trial_end_at: end of the trial, or null
-- @column current_period_start: start of the current billing period
-- @column current_period_end: end of the current billing period
-- @column cancel_at_period_end: true when the subscription is set to cancel at the end of the current period
-- @column cancel_at: scheduled cancellation moment, or null
-- @column canceled_at: when cancellation was requested, or null
-- @column ended_at: when the subscription ended, or null while it runs
-- @column cancellation_reason: cancellation_details.reason, or null
-- @column latest_invoice_id: the most recent invoice (in_)
-- @column discount_id: id of the first discount (di_), or null
-- @column discount_coupon_id: coupon of the first discount (staging.stg_billing__coupons.coupon_id), or null
-- @column discount_percent_off: percent_off of the first discount's coupon, or null
-- @column discount_amount_off_minor: amount_off of the first discount's coupon in minor units, or null
-- @column discount_start_at: when the first discount started applying, or null
-- @column discount_end_at: when the first discount stops applying (null = forever or no discount)
-- @column discounts: every discount as JSON (expanded: id, coupon{...}, start, end)
-- @column extract_day: the landing extract day of the loaded version

with source as (
    select * from raw.billing__subscriptions
    -- the raw loads this build reads: every load in a full build, the loads not built yet in a nightly one
    -- (a row without a load id, never written by dlt, counts as the load '')
    where coalesce(_dlt_load_id, '') in (
        select _dlt_load_id from staging._build_loads
        where model = 'staging.stg_billing__subscriptions' and is_current
    )
),

renamed as (
    select
        id as subscription_id,
        customer as customer_id,
        nullif(trim({{ billing_account_id }}), '') as crm_account_id,
        status,
        upper(currency) as currency,
        collection_method,
        created as created_at,
        start_date as started_at,
        billing_cycle_anchor as billing_cycle_anchor_at,
        trial_start as trial_start_at,
        trial_end as trial_end_at,
        current_period_start,
        current_period_end,
        cancel_at_period_end,
        cancel_at,
        canceled_at,
        ended_at,
        cancellation_details__reason as cancellation_reason,
        latest_invoice as latest_invoice_id,
        json_extract_string(discounts, '$[0].id') as discount_id,
        json_extract_string(discounts, '$[0].coupon.id') as discount_coupon_id,
        cast(json_extract_string(discounts, '$[0].coupon.percent_off') as double) as discount_percent_off,
        cast(json_extract_string(discounts, '$[0].coupon.amount_off') as bigint) as discount_amount_off_minor,
        to_timestamp(cast(json_extract_string(discounts, '$[0].start') as bigint)) as discount_start_at,
        to_timestamp(cast(json_extract_string(discounts, '$[0].end') as bigint)) as discount_end_at,
        discounts,
        _extract_day as extract_day
    from source
)

select * from renamed
