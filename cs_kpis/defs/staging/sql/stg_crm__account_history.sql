-- Salesforce field history of accounts (AccountHistory, read with queryAll): one row per change of a
-- tracked Account field, never modified. Salesforce keeps it 18 months (longer with Field Audit Trail).
-- A change of a lookup to User (the owner, the CSM field) is written as two rows at the same moment: one
-- with the User Ids (DataType EntityId) and one with their names (DataType Text); tracked_field marks the
-- Id row only. Custom fields are named by their API names from the company configuration.
-- @grain history_id
-- @column history_id: AccountHistory.Id (prefix 017)
-- @column account_id: AccountHistory.AccountId (staging.stg_crm__accounts.account_id)
-- @column field_name: AccountHistory.Field: the field changed, as Salesforce names it (Owner for the owner, the API name of a custom field)
-- @column tracked_field: the account attribute the row changes (owner_id, csm_id, segment, csm_sentiment), or null for another field and for the name row of a lookup change
-- @column data_type: AccountHistory.DataType (EntityId, Text, DynamicEnum, ...)
-- @column old_value: AccountHistory.OldValue as text (the value before the change; null when the field was empty)
-- @column new_value: AccountHistory.NewValue as text (the value after the change; null when emptied)
-- @column changed_at: AccountHistory.CreatedDate, when the change was made
-- @column changed_by_id: AccountHistory.CreatedById, the User who made the change
-- @column is_deleted: AccountHistory.IsDeleted (its account is in the recycle bin)
-- @column extract_day: the landing extract day that brought the row

with source as (
    select * from raw.crm__account_history
),

renamed as (
    select
        id as history_id,
        account_id,
        field as field_name,
        case
            when field = 'Owner' and data_type = 'EntityId' then 'owner_id'
            when field = {{ crm_csm_history_field }} and data_type = 'EntityId' then 'csm_id'
            when field = {{ crm_segment_history_field }} then 'segment'
            when field = {{ crm_csm_sentiment_history_field }} then 'csm_sentiment'
        end as tracked_field,
        data_type,
        old_value,
        new_value,
        created_date as changed_at,
        created_by_id as changed_by_id,
        coalesce(is_deleted, false) as is_deleted,
        _extract_day as extract_day
    from source
)

select * from renamed
