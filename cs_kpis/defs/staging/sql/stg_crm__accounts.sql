-- Salesforce accounts, one row per version: the CRM's SCD2 history as loaded by dlt (a new version
-- whenever an extract day changed the account). Filter on is_current for today's state, or on
-- valid_from <= t and (valid_to > t or valid_to is null) for the state at time t.
-- @grain account_id, valid_from
-- @column account_id: Salesforce Account.Id (18 characters, prefix 001)
-- @column account_name: Account.Name
-- @column parent_account_id: Account.ParentId, the parent account in a hierarchy; null for top-level accounts
-- @column owner_id: Account.OwnerId, the account executive (staging.stg_crm__users.user_id)
-- @column csm_id: CSM__c, the customer success manager (staging.stg_crm__users.user_id)
-- @column segment: Segment__c: SMB, Mid-Market or Enterprise
-- @column industry: Account.Industry
-- @column country: Account.BillingCountry
-- @column account_type: Account.Type (e.g. Customer)
-- @column employee_count: Account.NumberOfEmployees
-- @column csm_sentiment: CSM_Sentiment__c: Green, Yellow, Red, or null when the CSM has not rated it
-- @column workspace_id: Product_Workspace_Id__c, the product workspace (Segment groupId, ws_...)
-- @column created_at: Account.CreatedDate
-- @column last_modified_at: Account.LastModifiedDate
-- @column system_modified_at: Account.SystemModstamp (also moves on system-side changes)
-- @column is_deleted: Account.IsDeleted (in the recycle bin)
-- @column valid_from: start of this version's validity (dlt _dlt_valid_from: the load of the extract day that saw it)
-- @column valid_to: end of this version's validity (dlt _dlt_valid_to); null while the version is current
-- @column is_current: true for the version valid now (valid_to is null)

with source as (
    -- parent_id exists even when every ParentId is null: the crm source declares it (crm/settings.py)
    select * from raw.crm__accounts
),

renamed as (
    select
        id as account_id,
        name as account_name,
        parent_id as parent_account_id,
        owner_id,
        {{ crm_csm }} as csm_id,
        {{ crm_segment }} as segment,
        industry,
        billing_country as country,
        type as account_type,
        cast(number_of_employees as integer) as employee_count,
        {{ crm_csm_sentiment }} as csm_sentiment,
        {{ crm_product_workspace_id }} as workspace_id,
        created_date as created_at,
        last_modified_date as last_modified_at,
        system_modstamp as system_modified_at,
        coalesce(is_deleted, false) as is_deleted,
        _dlt_valid_from as valid_from,
        _dlt_valid_to as valid_to,
        _dlt_valid_to is null as is_current
    from source
)

select * from renamed
