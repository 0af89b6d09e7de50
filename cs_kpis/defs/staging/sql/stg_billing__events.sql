-- Stripe events: every subscription create/update/delete and invoice paid/payment-failed notification,
-- with the object as it was after the change and, for updates, the previous values of the changed fields.
-- @grain event_id
-- @incremental by=load
-- @column event_id: Stripe event id (evt_)
-- @column event_type: event type, e.g. customer.subscription.updated, invoice.paid
-- @column created_at: when the event happened
-- @column api_version: Stripe API version the payload is rendered in
-- @column object_type: data.object.object: subscription or invoice
-- @column object_id: data.object.id: the subscription (sub_) or invoice (in_) id
-- @column customer_id: data.object.customer: the Stripe customer (cus_)
-- @column object: data.object as JSON: the full object after the change
-- @column previous_attributes: data.previous_attributes as JSON: old values of exactly the fields that changed (updates only, else null)
-- @column extract_day: the landing extract day the event was delivered in

with source as (
    select * from raw.billing__events
    -- the raw loads this build reads: every load in a full build, the loads not built yet in a nightly one
    -- (a row without a load id, never written by dlt, counts as the load '')
    where coalesce(_dlt_load_id, '') in (
        select _dlt_load_id from staging._build_loads
        where model = 'staging.stg_billing__events' and is_current
    )
),

renamed as (
    select
        id as event_id,
        type as event_type,
        created as created_at,
        api_version,
        json_extract_string(data, '$.object.object') as object_type,
        json_extract_string(data, '$.object.id') as object_id,
        json_extract_string(data, '$.object.customer') as customer_id,
        json_extract(data, '$.object') as object,
        json_extract(data, '$.previous_attributes') as previous_attributes,
        _extract_day as extract_day
    from source
)

select * from renamed
