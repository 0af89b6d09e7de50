-- Stripe customers (latest state), with the Salesforce account their metadata names.
-- @grain customer_id
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
