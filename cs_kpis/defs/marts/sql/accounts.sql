-- One row per CRM account as it is now: the entity every KPI is reported by. The hierarchy is walked up
-- to four levels to find the top parent (Salesforce hierarchies deeper than that are rare; the check
-- marts_accounts_hierarchy_resolved fails if one is deeper).
-- @grain account_id
-- @column account_id: Salesforce Account Id (18 characters)
-- @column account_name: account name
-- @column parent_account_id: direct parent account, null at the top
-- @column root_account_id: top of the hierarchy (the account itself when it has no parent)
-- @column segment: current segment (SMB, Mid-Market, Enterprise)
-- @column csm_id: the customer success manager (User id)
-- @column owner_id: the account owner (account executive, User id)
-- @column industry: industry
-- @column country: billing country
-- @column workspace_id: the product workspace (Segment group) of the account
-- @column csm_sentiment: the CSM's sentiment picklist value
-- @column created_at: when the account was created in the CRM
with current_accounts as (
    select *
    from staging.stg_crm__accounts
    where is_current and not coalesce(is_deleted, false)
)

select
    a.account_id,
    a.account_name,
    a.parent_account_id,
    coalesce(p4.account_id, p3.account_id, p2.account_id, p1.account_id, a.account_id) as root_account_id,
    a.segment,
    a.csm_id,
    a.owner_id,
    a.industry,
    a.country,
    a.workspace_id,
    a.csm_sentiment,
    a.created_at
from current_accounts as a
left join current_accounts as p1 on p1.account_id = a.parent_account_id
left join current_accounts as p2 on p2.account_id = p1.parent_account_id
left join current_accounts as p3 on p3.account_id = p2.parent_account_id
left join current_accounts as p4 on p4.account_id = p3.parent_account_id
