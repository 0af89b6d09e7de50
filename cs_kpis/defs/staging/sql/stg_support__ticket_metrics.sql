-- Zendesk ticket metrics: one row per ticket with its reply and resolution times, in calendar and
-- business minutes.
-- @grain ticket_metric_id
-- @incremental by=load merge=ticket_metric_id
-- @column ticket_metric_id: Zendesk ticket metric id
-- @column ticket_id: the ticket (staging.stg_support__tickets.ticket_id)
-- @column created_at: when the metric record was created
-- @column updated_at: when the metric record was last updated
-- @column assigned_at: when the ticket was last assigned, or null
-- @column initially_assigned_at: when the ticket was first assigned, or null
-- @column solved_at: when the ticket was solved, or null while unsolved
-- @column reopens: times the ticket was reopened
-- @column replies: public agent replies
-- @column group_stations: agent groups the ticket passed through
-- @column assignee_stations: assignees the ticket passed through
-- @column first_reply_minutes: reply_time_in_minutes.calendar: minutes to the first public agent reply
-- @column first_reply_business_minutes: reply_time_in_minutes.business
-- @column first_resolution_minutes: first_resolution_time_in_minutes.calendar
-- @column full_resolution_minutes: full_resolution_time_in_minutes.calendar: minutes from creation to the final solve
-- @column full_resolution_business_minutes: full_resolution_time_in_minutes.business
-- @column on_hold_minutes: on_hold_time_in_minutes.calendar
-- @column extract_day: the landing extract day of the loaded version

with source as (
    select * from raw.support__ticket_metrics
    -- the raw loads this build reads: every load in a full build, the loads not built yet in a nightly one
    -- (a row without a load id, never written by dlt, counts as the load '')
    where coalesce(_dlt_load_id, '') in (
        select _dlt_load_id from staging._build_loads
        where model = 'staging.stg_support__ticket_metrics' and is_current
    )
),

renamed as (
    select
        id as ticket_metric_id,
        ticket_id,
        created_at,
        updated_at,
        assigned_at,
        initially_assigned_at,
        solved_at,
        reopens,
        replies,
        group_stations,
        assignee_stations,
        reply_time_in_minutes__calendar as first_reply_minutes,
        reply_time_in_minutes__business as first_reply_business_minutes,
        first_resolution_time_in_minutes__calendar as first_resolution_minutes,
        full_resolution_time_in_minutes__calendar as full_resolution_minutes,
        full_resolution_time_in_minutes__business as full_resolution_business_minutes,
        on_hold_time_in_minutes__calendar as on_hold_minutes,
        _extract_day as extract_day
    from source
)

select * from renamed
