-- Salesforce users: the account executives and customer success managers accounts are assigned to.
-- @grain user_id
-- @column user_id: Salesforce User.Id (prefix 005)
-- @column user_name: User.Name
-- @column email: User.Email
-- @column title: User.Title
-- @column role: UserRoleName__c: CSM or AE
-- @column is_active: User.IsActive
-- @column created_at: User.CreatedDate
-- @column system_modified_at: User.SystemModstamp
-- @column extract_day: the landing extract day of the loaded version

with source as (
    select * from raw.crm__users
),

renamed as (
    select
        id as user_id,
        name as user_name,
        email,
        title,
        user_role_name__c as role,
        is_active,
        created_date as created_at,
        system_modstamp as system_modified_at,
        _extract_day as extract_day
    from source
)

select * from renamed
