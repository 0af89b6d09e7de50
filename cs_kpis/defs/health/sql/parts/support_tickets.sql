-- one row per support ticket of an organization matched to a CRM account (marts.account_xref): the day it
-- was created, the day it was solved (Zendesk's solved_at, else the last update of a solved or closed
-- ticket), its latest priority, its first-reply and full-resolution minutes, and whether it was resolved at
-- first contact (no reopen, at most one agent reply)
select
    x.crm_account_id as account_id,
    t.ticket_id,
    t.priority,
    cast(t.created_at as date) as created_day,
    cast(coalesce(m.solved_at, case when t.status in ('solved', 'closed') then t.updated_at end) as date)
        as solved_day,
    m.first_reply_minutes,
    m.full_resolution_minutes,
    case when coalesce(m.reopens, 0) = 0 and coalesce(m.replies, 0) <= 1 then 1 else 0 end as is_fcr
from staging.stg_support__tickets as t
inner join marts.account_xref as x
    on x.source_system = 'support' and x.source_id = cast(t.organization_id as varchar)
    and x.crm_account_id is not null
left join staging.stg_support__ticket_metrics as m
    on m.ticket_id = t.ticket_id
