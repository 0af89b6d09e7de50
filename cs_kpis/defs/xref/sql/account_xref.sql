-- The account cross-reference: every Stripe customer, Zendesk organization, Segment workspace and NPS
-- respondent, with the CRM account it belongs to, or null when its key names no current, undeleted
-- Salesforce account (missing, blank or unknown). Billing matches on the customer's
-- metadata.salesforce_account_id, support on the organization's external_id, product on the workspace id
-- (Account.Product_Workspace_Id__c), NPS on the respondent's person_properties.salesforce_account_id
-- (taken from the respondent's latest response). Unmatched records and their volume are in
-- marts.unmatched_source_records.
-- @grain source_system, source_id
-- @column source_system: billing, support, product or nps
-- @column source_id: the record in its system: Stripe customer id, Zendesk organization id, Segment workspace id or Delighted person id (as text)
-- @column source_name: the record's name in its system (customer name, organization name, company of the respondent); null for workspaces
-- @column source_account_key: the value the match was tried on (Salesforce account id, or workspace id for product); null when the record carries none
-- @column crm_account_id: the matched Salesforce Account.Id (staging.stg_crm__accounts.account_id), null when unmatched
-- @column match_method: how the system is matched: metadata (billing), external_id (support), workspace_id (product) or person_properties (nps)
-- @column matched: true when crm_account_id is not null

with crm_accounts as (
    select
        account_id,
        workspace_id
    from staging.stg_crm__accounts
    where is_current and not is_deleted
),

-- a workspace claimed by two accounts goes to the smaller account id, so the grain holds
crm_workspaces as (
    select
        workspace_id,
        min(account_id) as account_id
    from crm_accounts
    where workspace_id is not null
    group by workspace_id
),

billing as (
    select
        'billing' as source_system,
        customers.customer_id as source_id,
        customers.customer_name as source_name,
        customers.crm_account_id as source_account_key,
        crm_accounts.account_id as crm_account_id,
        'metadata' as match_method
    from staging.stg_billing__customers as customers
    left join crm_accounts
        on customers.crm_account_id = crm_accounts.account_id
),

support as (
    select
        'support' as source_system,
        cast(organizations.organization_id as varchar) as source_id,
        organizations.organization_name as source_name,
        organizations.crm_account_id as source_account_key,
        crm_accounts.account_id as crm_account_id,
        'external_id' as match_method
    from staging.stg_support__organizations as organizations
    left join crm_accounts
        on organizations.crm_account_id = crm_accounts.account_id
),

workspaces as (
    select distinct workspace_id
    from staging.stg_product__events
    where workspace_id is not null
),

product as (
    select
        'product' as source_system,
        workspaces.workspace_id as source_id,
        cast(null as varchar) as source_name,
        workspaces.workspace_id as source_account_key,
        crm_workspaces.account_id as crm_account_id,
        'workspace_id' as match_method
    from workspaces
    left join crm_workspaces
        on workspaces.workspace_id = crm_workspaces.workspace_id
),

ranked_responses as (
    select
        person_id,
        company_name,
        crm_account_id,
        row_number() over (
            partition by person_id
            order by responded_at desc, response_id desc
        ) as recency
    from staging.stg_nps__survey_responses
),

respondents as (
    select
        person_id,
        company_name,
        crm_account_id
    from ranked_responses
    where recency = 1
),

nps as (
    select
        'nps' as source_system,
        respondents.person_id as source_id,
        respondents.company_name as source_name,
        respondents.crm_account_id as source_account_key,
        crm_accounts.account_id as crm_account_id,
        'person_properties' as match_method
    from respondents
    left join crm_accounts
        on respondents.crm_account_id = crm_accounts.account_id
),

unioned as (
    select * from billing
    union all
    select * from support
    union all
    select * from product
    union all
    select * from nps
)

select
    source_system,
    source_id,
    source_name,
    source_account_key,
    crm_account_id,
    match_method,
    crm_account_id is not null as matched
from unioned
