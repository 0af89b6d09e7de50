-- Daily FX rates from reference/fx_rates.csv: 1 unit of currency = rate units of the reporting currency (USD).
-- @grain rate_date, currency
-- @column rate_date: the day the rate applies to
-- @column currency: ISO 4217 currency code, upper case
-- @column rate: units of the reporting currency (USD) per 1 unit of currency

with source as (
    select * from raw.billing__fx_rates
),

renamed as (
    select
        cast(date as date) as rate_date,
        upper(currency) as currency,
        cast(rate as decimal(18, 6)) as rate
    from source
)

select * from renamed
