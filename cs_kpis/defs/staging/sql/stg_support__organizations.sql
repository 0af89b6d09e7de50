-- Zendesk organizations: the customer companies tickets belong to.
-- @grain organization_id
-- @incremental by=load merge=organization_id
-- @column organization_id: Zendesk organization id
-- @column organization_name: organization name
-- @column crm_account_id: external_id (blank is null): the Salesforce Account.Id as entered in Zendesk, not checked against the CRM (marts.account_xref does that)
-- @column domain_names: the organization's email domains, JSON list
-- @column tags: organization tags, JSON list
-- @column created_at: when the organization was created
-- @column updated_at: when the organization was last updated
-- @column extract_day: the landing extract day of the loaded version

with source as (
    select * from raw.support__organizations
    -- the raw loads this build reads: every load in a full build, the loads not built yet in a nightly one
    -- (a row without a load id, never written by dlt, counts as the load '')
    where coalesce(_dlt_load_id, '') in (
        select _dlt_load_id from staging._build_loads
        where model = 'staging.stg_support__organizations' and is_current
    )
),

renamed as (
    select
        id as organization_id,
        name as organization_name,
        nullif(trim({{ support_account_id }}), '') as crm_account_id,
        domain_names,
        tags,
        created_at,
        updated_at,
        _extract_day as extract_day
    from source
)

select * from renamed
