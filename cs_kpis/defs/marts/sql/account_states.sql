-- Each CRM account's tracked attributes (owner, CSM, segment, CSM sentiment) over time, one row per stretch
-- of days with the same values (end-of-day state: the last value a day reported). From an account's first
-- loaded snapshot on, the rows are the loaded SCD2 versions (staging.stg_crm__accounts, source 'snapshot');
-- before it, they are rebuilt from Salesforce's field history (staging.stg_crm__account_history, source
-- 'field_history'): the value on a day is the OldValue of the earliest change of the field after that day,
-- or the first snapshot's value when nothing changed since. The history reaches back to the first snapshot
-- day minus 18 months (Salesforce's retention) or to the oldest history row kept, whichever is earlier,
-- and never before the account's creation day. Rules and a worked example: cs_kpis/defs/marts/README.md.
-- @grain account_id, valid_from
-- @column account_id: Salesforce Account Id (18 characters)
-- @column valid_from: first day these values were in force (end of day)
-- @column valid_to: first day they no longer were (exclusive); null while in force
-- @column owner_id: the account owner (account executive, User id) on those days
-- @column csm_id: the customer success manager (User id) on those days
-- @column segment: the segment (SMB, Mid-Market, Enterprise) on those days
-- @column csm_sentiment: the CSM's sentiment picklist value on those days (null when unrated)
-- @column is_deleted: the account was in the recycle bin (snapshot rows only)
-- @column is_current: true for the row in force now (valid_to is null)
-- @column source: snapshot (a loaded version) or field_history (rebuilt from AccountHistory before the first snapshot)

with versions as (
    select
        account_id,
        cast(valid_from as date) as valid_from_day,
        cast(valid_to as date) as valid_to_day,
        owner_id,
        csm_id,
        segment,
        csm_sentiment,
        is_deleted,
        created_at,
        -- two loads on one day (API mode): the last version of the day is the day's state
        row_number() over (partition by account_id, cast(valid_from as date) order by valid_from desc) as day_rank
    from staging.stg_crm__accounts
),

loaded as (
    select
        account_id,
        valid_from_day,
        coalesce(lead(valid_from_day) over (partition by account_id order by valid_from_day), valid_to_day)
            as valid_to_day,
        owner_id,
        csm_id,
        segment,
        csm_sentiment,
        is_deleted,
        created_at,
        row_number() over (partition by account_id order by valid_from_day) as version_number
    from versions
    where day_rank = 1
),

first_loaded as (
    select account_id, valid_from_day as first_day, owner_id, csm_id, segment, csm_sentiment,
        cast(created_at as date) as created_day
    from loaded
    where version_number = 1
),

retention as (
    -- how far back the field history reaches: 18 months before the first snapshot, or its oldest row
    select
        case
            when h.oldest_day is not null and h.oldest_day < s.horizon_day then h.oldest_day
            else s.horizon_day
        end as horizon_day
    from (select cast(min(first_day) - interval 18 month as date) as horizon_day from first_loaded) as s
    cross join (select min(cast(changed_at as date)) as oldest_day from staging.stg_crm__account_history) as h
),

changes as (
    -- the tracked fields' changes up to the end of each account's first snapshot day
    select
        c.account_id,
        c.tracked_field,
        cast(c.changed_at as date) as change_day,
        c.old_value,
        row_number() over (
            partition by c.account_id, c.tracked_field, cast(c.changed_at as date)
            order by c.changed_at, c.history_id
        ) as change_rank
    from staging.stg_crm__account_history as c
    inner join first_loaded as f on f.account_id = c.account_id
    where c.tracked_field is not null
        and not c.is_deleted
        and cast(c.changed_at as date) <= f.first_day
),

day_changes as (
    -- the value a field had before a day's changes: the OldValue of the day's earliest change
    select account_id, tracked_field, change_day, old_value
    from changes
    where change_rank = 1
),

known_from as (
    select
        f.account_id,
        case
            when f.created_day is not null and f.created_day > r.horizon_day then f.created_day
            else r.horizon_day
        end as known_from_day,
        f.first_day
    from first_loaded as f
    cross join retention as r
),

starts as (
    select account_id, known_from_day as start_day, first_day
    from known_from
    where known_from_day < first_day
    union
    select d.account_id, d.change_day as start_day, k.first_day
    from day_changes as d
    inner join known_from as k on k.account_id = d.account_id
    where d.change_day > k.known_from_day and d.change_day < k.first_day
),

next_change as (
    -- for each start day and field, the earliest day after it on which the field changed
    select
        s.account_id,
        s.start_day,
        d.tracked_field,
        d.old_value,
        row_number() over (partition by s.account_id, s.start_day, d.tracked_field order by d.change_day)
            as next_rank
    from starts as s
    inner join day_changes as d
        on d.account_id = s.account_id
        and d.change_day > s.start_day
),

walked as (
    select
        account_id,
        start_day,
        max(case when tracked_field = 'owner_id' then 1 else 0 end) as owner_changes_later,
        max(case when tracked_field = 'owner_id' then old_value end) as owner_before,
        max(case when tracked_field = 'csm_id' then 1 else 0 end) as csm_changes_later,
        max(case when tracked_field = 'csm_id' then old_value end) as csm_before,
        max(case when tracked_field = 'segment' then 1 else 0 end) as segment_changes_later,
        max(case when tracked_field = 'segment' then old_value end) as segment_before,
        max(case when tracked_field = 'csm_sentiment' then 1 else 0 end) as sentiment_changes_later,
        max(case when tracked_field = 'csm_sentiment' then old_value end) as sentiment_before
    from next_change
    where next_rank = 1
    group by account_id, start_day
),

rebuilt as (
    select
        s.account_id,
        s.start_day as valid_from_day,
        coalesce(lead(s.start_day) over (partition by s.account_id order by s.start_day), s.first_day)
            as valid_to_day,
        case when w.owner_changes_later = 1 then w.owner_before else f.owner_id end as owner_id,
        case when w.csm_changes_later = 1 then w.csm_before else f.csm_id end as csm_id,
        case when w.segment_changes_later = 1 then w.segment_before else f.segment end as segment,
        case when w.sentiment_changes_later = 1 then w.sentiment_before else f.csm_sentiment end as csm_sentiment
    from starts as s
    inner join first_loaded as f on f.account_id = s.account_id
    left join walked as w on w.account_id = s.account_id and w.start_day = s.start_day
)

select
    account_id,
    valid_from_day as valid_from,
    valid_to_day as valid_to,
    owner_id,
    csm_id,
    segment,
    csm_sentiment,
    false as is_deleted,
    false as is_current,
    'field_history' as source
from rebuilt

union all

select
    account_id,
    valid_from_day as valid_from,
    valid_to_day as valid_to,
    owner_id,
    csm_id,
    segment,
    csm_sentiment,
    coalesce(is_deleted, false) as is_deleted,
    valid_to_day is null as is_current,
    'snapshot' as source
from loaded
