-- Salesforce contacts: the people at customer accounts, with their product user id when they use the product.
-- @grain contact_id
-- @incremental by=load merge=contact_id
-- @column contact_id: Salesforce Contact.Id (prefix 003)
-- @column account_id: Contact.AccountId (staging.stg_crm__accounts.account_id)
-- @column first_name: Contact.FirstName
-- @column last_name: Contact.LastName
-- @column email: Contact.Email
-- @column title: Contact.Title
-- @column role: Role__c: Champion, Admin, User, or null
-- @column product_user_id: Product_User_Id__c, the Segment userId of this person (staging.stg_product__events.user_id)
-- @column created_at: Contact.CreatedDate
-- @column system_modified_at: Contact.SystemModstamp
-- @column extract_day: the landing extract day of the loaded version

with source as (
    select * from raw.crm__contacts
    -- the raw loads this build reads: every load in a full build, the loads not built yet in a nightly one
    -- (a row without a load id, never written by dlt, counts as the load '')
    where coalesce(_dlt_load_id, '') in (
        select _dlt_load_id from staging._build_loads
        where model = 'staging.stg_crm__contacts' and is_current
    )
),

renamed as (
    select
        id as contact_id,
        account_id,
        first_name,
        last_name,
        email,
        title,
        {{ crm_contact_role }} as role,
        product_user_id__c as product_user_id,
        created_date as created_at,
        system_modstamp as system_modified_at,
        _extract_day as extract_day
    from source
)

select * from renamed
