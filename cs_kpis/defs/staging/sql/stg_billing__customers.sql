-- Stripe customers (latest state), with the Salesforce account their metadata names.
-- @grain customer_id
-- @incremental by=load merge=customer_id
-- @column customer_id: Stripe customer id (cus_)
-- @column crm_account_id: metadata.salesforce_account_id as written in Stripe (blank is null); not checked against the CRM: marts.account_xref does that
-- @column customer_name: customer name
-- @column email: customer email
-- @column currency: the customer's default currency, upper case (ISO 4217)
-- @column is_delinquent: Stripe's delinquent flag (the latest invoice payment failed)
-- @column balance_minor: customer credit balance in minor units of currency (negative = credit)
-- @column created_at: when the customer was created
-- @column extract_day: the landing extract day of the loaded version

with source as (
    select * from raw.billing__customers
    -- the raw loads this build reads: every load in a full build, the loads not built yet in a nightly one
    -- (a row without a load id, never written by dlt, counts as the load '')
    where coalesce(_dlt_load_id, '') in (
        select _dlt_load_id from staging._build_loads
        where model = 'staging.stg_billing__customers' and is_current
    )
),

renamed as (
    select
        id as customer_id,
        nullif(trim({{ billing_account_id }}), '') as crm_account_id,
        name as customer_name,
        email,
        upper(currency) as currency,
        delinquent as is_delinquent,
        balance as balance_minor,
        created as created_at,
        _extract_day as extract_day
    from source
)

select * from renamed
