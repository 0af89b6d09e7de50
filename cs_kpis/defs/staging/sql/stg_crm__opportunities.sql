-- Salesforce opportunities: new business, renewal and expansion deals per account (latest state).
-- @grain opportunity_id
-- @incremental by=load merge=opportunity_id
-- @column opportunity_id: Salesforce Opportunity.Id (prefix 006)
-- @column account_id: Opportunity.AccountId (staging.stg_crm__accounts.account_id)
-- @column opportunity_name: Opportunity.Name
-- @column opportunity_type: Opportunity.Type: New Business, Renewal or Expansion
-- @column stage_name: Opportunity.StageName
-- @column is_closed: Opportunity.IsClosed
-- @column is_won: Opportunity.IsWon
-- @column close_date: Opportunity.CloseDate
-- @column amount: Opportunity.Amount in major units of currency (Salesforce sends major units)
-- @column currency: Opportunity.CurrencyIsoCode, upper case
-- @column owner_id: Opportunity.OwnerId (staging.stg_crm__users.user_id)
-- @column created_at: Opportunity.CreatedDate
-- @column system_modified_at: Opportunity.SystemModstamp
-- @column extract_day: the landing extract day of the loaded version

with source as (
    select * from raw.crm__opportunities
    -- the raw loads this build reads: every load in a full build, the loads not built yet in a nightly one
    -- (a row without a load id, never written by dlt, counts as the load '')
    where coalesce(_dlt_load_id, '') in (
        select _dlt_load_id from staging._build_loads
        where model = 'staging.stg_crm__opportunities' and is_current
    )
),

renamed as (
    select
        id as opportunity_id,
        account_id,
        name as opportunity_name,
        type as opportunity_type,
        stage_name,
        is_closed,
        is_won,
        close_date,
        cast(amount as decimal(18, 2)) as amount,
        upper(currency_iso_code) as currency,
        owner_id,
        created_date as created_at,
        system_modstamp as system_modified_at,
        _extract_day as extract_day
    from source
)

select * from renamed
