-- Delighted NPS survey responses: one row per response (0-10 score), with the Salesforce account the
-- respondent's person properties name.
-- @grain response_id
-- @incremental by=load merge=response_id
-- @column response_id: Delighted response id (digit string)
-- @column person_id: Delighted person id of the respondent (digit string)
-- @column survey_type: survey type (nps)
-- @column score: likelihood to recommend, 0-10 (9-10 promoter, 7-8 passive, 0-6 detractor)
-- @column comment: free-text comment, or null
-- @column crm_account_id: person_properties.salesforce_account_id (blank is null), not checked against the CRM (marts.account_xref does that)
-- @column company_name: person_properties.Company
-- @column respondent_email: person_properties.Email
-- @column permalink: link to the response in Delighted
-- @column responded_at: created_at: when the response was submitted
-- @column updated_at: when the response was last updated (e.g. a comment added)
-- @column extract_day: the landing extract day of the loaded version

with source as (
    select * from raw.nps__survey_responses
    -- the raw loads this build reads: every load in a full build, the loads not built yet in a nightly one
    -- (a row without a load id, never written by dlt, counts as the load '')
    where coalesce(_dlt_load_id, '') in (
        select _dlt_load_id from staging._build_loads
        where model = 'staging.stg_nps__survey_responses' and is_current
    )
),

renamed as (
    select
        id as response_id,
        person as person_id,
        survey_type,
        cast(score as integer) as score,
        comment,
        nullif(trim({{ nps_account_id }}), '') as crm_account_id,
        person_properties__company as company_name,
        person_properties__email as respondent_email,
        permalink,
        created_at as responded_at,
        updated_at,
        _extract_day as extract_day
    from source
)

select * from renamed
