-- Zendesk tickets (latest state). Timing metrics are in staging.stg_support__ticket_metrics.
-- @grain ticket_id
-- @incremental by=load merge=ticket_id
-- @column ticket_id: Zendesk ticket id
-- @column organization_id: the requester's organization (staging.stg_support__organizations.organization_id), or null
-- @column requester_id: the Zendesk user who asked
-- @column assignee_id: the agent assigned, or null
-- @column group_id: the agent group assigned, or null
-- @column status: new, open, pending, hold, solved or closed
-- @column priority: low, normal, high or urgent, or null
-- @column type: problem, incident, question or task, or null
-- @column subject: ticket subject
-- @column channel: via.channel: email, web, chat, api, ...
-- @column tags: ticket tags, JSON list
-- @column has_incidents: true for a problem ticket with linked incidents
-- @column satisfaction_score: satisfaction_rating.score: good, bad, offered or unoffered
-- @column satisfaction_rating_id: satisfaction_rating.id (staging.stg_support__satisfaction_ratings.rating_id), or null
-- @column created_at: when the ticket was created
-- @column updated_at: when the ticket was last updated
-- @column due_at: due date of a task ticket, or null
-- @column extract_day: the landing extract day of the loaded version

with source as (
    select * from raw.support__tickets
    -- the raw loads this build reads: every load in a full build, the loads not built yet in a nightly one
    -- (a row without a load id, never written by dlt, counts as the load '')
    where coalesce(_dlt_load_id, '') in (
        select _dlt_load_id from staging._build_loads
        where model = 'staging.stg_support__tickets' and is_current
    )
),

renamed as (
    select
        id as ticket_id,
        organization_id,
        requester_id,
        assignee_id,
        group_id,
        status,
        priority,
        type,
        subject,
        via__channel as channel,
        tags,
        has_incidents,
        satisfaction_rating__score as satisfaction_score,
        satisfaction_rating__id as satisfaction_rating_id,
        created_at,
        updated_at,
        due_at,
        _extract_day as extract_day
    from source
)

select * from renamed
