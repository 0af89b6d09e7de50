-- Zendesk satisfaction ratings: a customer's good/bad rating of a solved ticket, or a survey offered but unanswered.
-- @grain rating_id
-- @incremental by=load merge=rating_id
-- @column rating_id: Zendesk satisfaction rating id
-- @column ticket_id: the rated ticket (staging.stg_support__tickets.ticket_id)
-- @column score: good, bad, or offered (survey sent, no answer yet)
-- @column comment: the customer's comment, or null
-- @column assignee_id: the agent assigned when the rating was made
-- @column requester_id: the Zendesk user who rated
-- @column group_id: the agent group assigned
-- @column created_at: when the rating was created (survey offered)
-- @column updated_at: when the rating was last updated (answered)
-- @column extract_day: the landing extract day of the loaded version

with source as (
    select * from raw.support__satisfaction_ratings
    -- the raw loads this build reads: every load in a full build, the loads not built yet in a nightly one
    -- (a row without a load id, never written by dlt, counts as the load '')
    where coalesce(_dlt_load_id, '') in (
        select _dlt_load_id from staging._build_loads
        where model = 'staging.stg_support__satisfaction_ratings' and is_current
    )
),

renamed as (
    select
        id as rating_id,
        ticket_id,
        score,
        comment,
        assignee_id,
        requester_id,
        group_id,
        created_at,
        updated_at,
        _extract_day as extract_day
    from source
)

select * from renamed
