-- Segment events (track, identify, group), one row per messageId: duplicates Segment delivered more than
-- once are already dropped by the raw load. occurred_at is when it happened on the client; late events
-- arrive up to 3 days later (received_at).
-- A nightly build appends only the raw loads not built yet (raw events are insert-only: a duplicate delivered
-- in a later load is dropped from that load, never from an earlier one); see cs_kpis/lib/incremental_loads.py.
-- @incremental by=load
-- @grain message_id
-- @column message_id: Segment messageId
-- @column event_type: Segment call type: track, identify or group
-- @column user_id: Segment userId (staging.stg_crm__contacts.product_user_id)
-- @column anonymous_id: Segment anonymousId, or null
-- @column event_name: the track event name (e.g. Report Created); null for identify and group
-- @column workspace_id: the product workspace: context.groupId of track calls, groupId of group calls (Salesforce Product_Workspace_Id__c); which fields is systems.product.workspace_id_fields
-- @column occurred_at: Segment timestamp: when the event happened (client clock, corrected by Segment)
-- @column original_timestamp: Segment originalTimestamp (raw client clock)
-- @column sent_at: Segment sentAt: when the client sent it
-- @column received_at: Segment receivedAt: when Segment received it
-- @column received_day: the landing folder day (UTC date of received_at)
-- @column properties: track properties as JSON; null for identify and group
-- @column traits: identify / group traits as JSON; null for track

with source as (
    select * from raw.product__events
    -- the raw loads this build reads: every load in a full build, the loads not built yet in a nightly one
    -- (a row without a load id, never written by dlt, counts as the load '')
    where coalesce(_dlt_load_id, '') in (
        select _dlt_load_id from staging._build_loads
        where model = 'staging.stg_product__events' and is_current
    )
),

renamed as (
    select
        message_id,
        type as event_type,
        user_id,
        anonymous_id,
        event as event_name,
        {{ product_workspace_id }} as workspace_id,
        timestamp as occurred_at,
        original_timestamp,
        sent_at,
        received_at,
        _received_day as received_day,
        properties,
        traits
    from source
)

select * from renamed
