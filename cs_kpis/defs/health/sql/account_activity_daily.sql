-- Everything that happened at a CRM account on a day, counted once so the daily indicators can be built
-- with window functions instead of re-reading raw events for every day. One row per account and day on
-- which anything happened: product usage (track calls of workspaces mapped through marts.account_xref),
-- tickets, satisfaction ratings, NPS responses, failed payments, and the "interval" deltas that turn
-- distinct-in-window counts into running sums: a user active on day a counts towards the 30-day actives of
-- days [a, min(a + 30, next active day)), so +1 on a and -1 at the end; the running sum over days is then
-- exactly the number of distinct users active in the trailing 30 days (likewise 7 days, key features).
-- Days are UTC. Product configuration (key features, milestones, value event) is kpis.health_product_config.
-- Built incrementally (cs_kpis/lib/incremental.py): the current row of kpis._build_window holds the first
-- day to (re)build (start_day; null = every day) and a range of accounts (account_from exclusive ..
-- account_to inclusive; null = open; listed: 'only' the accounts of kpis._build_accounts for this build,
-- which a nightly rebuilds on every day when their older inputs changed, or every account 'except' them);
-- every day is kept (the indicators' running sums start from the first one); a full build runs in ranges of about 40 M account-days, at most 1.5 M per GB of DuckDB's memory
-- limit (12 M at 8 GB), so the event windows spill less. A nightly build
-- rebuilds the days from start_day, reading events from 31 days before it: a spell that reaches a rebuilt
-- day started at most 30 days earlier, so the rebuilt days equal a full build's (tested); a first milestone
-- on a rebuilt day is looked up in every event only for the account and milestone pairs with no event in
-- those 31 days before the window (the others were reached before it). reads_days=34 (the received days read
-- before the window) sizes a nightly's account ranges by those days: cut as a full build, the large
-- company's nightly ran in 10 ranges, each reading the window's events and every event for the milestones.
-- @grain account_id, day
-- @incremental lookback_days=7 chunk_rows=40000000 rows_per_gb=1500000 reads_days=34
-- @column account_id: CRM account (marts.account_xref crm_account_id)
-- @column day: calendar day (UTC)
-- @column events: tracked (track) events that day
-- @column active_users: distinct users with a tracked event that day
-- @column key_feature_events: track events of configured key features
-- @column value_events: track events of the configured value event
-- @column first_value_at: time of the first value event that day (null when none): the account's first value is the minimum
-- @column users_7d_delta: change of the distinct 7-day active users at this day (running sum = 7-day actives)
-- @column users_30d_delta: change of the distinct 30-day active users at this day (running sum = 30-day actives)
-- @column key_features_30d_delta: change of the distinct key features used in 30 days (running sum = features used)
-- @column milestones_reached: onboarding milestones reached for the first time that day
-- @column tickets_created: support tickets created that day
-- @column urgent_high_delta: urgent/high tickets opened (+1) minus solved (-1) that day (running sum = open urgent/high)
-- @column csat_good: satisfaction ratings answered good that day
-- @column csat_bad: satisfaction ratings answered bad that day
-- @column nps_promoters: NPS responses 9-10 that day
-- @column nps_passives: NPS responses 7-8 that day
-- @column nps_detractors: NPS responses 0-6 that day
-- @column failed_payments: Stripe invoice.payment_failed events that day
with build_window as (
    select
        max(start_day) as start_day,
        max(account_from) as account_from,
        max(account_to) as account_to,
        max(build_seq) as build_seq,
        max(listed) as listed
    from kpis._build_window
    where model = 'kpis.account_activity_daily' and is_current
),

listed_accounts as (
    -- the accounts a nightly rebuilds on every day (their older inputs changed): this pass builds only them
    -- (listed = 'only'), or every account but them (listed = 'except')
    select distinct a.account_id
    from kpis._build_accounts as a
    inner join build_window as bw
        on bw.build_seq = a.build_seq
    where a.model = 'kpis.account_activity_daily' and bw.listed is not null
),

xref as (
    -- the accounts of this build (large companies are built in ranges of accounts; a nightly builds the
    -- listed accounts, then the others)
    select x.source_system, x.source_id, x.crm_account_id as account_id
    from marts.account_xref as x
    cross join build_window as bw
    left join listed_accounts as l
        on l.account_id = x.crm_account_id
    where x.crm_account_id is not null
        and (bw.account_from is null or x.crm_account_id > bw.account_from)
        and (bw.account_to is null or x.crm_account_id <= bw.account_to)
        and (bw.listed is null
            or (bw.listed = 'only' and l.account_id is not null)
            or (bw.listed = 'except' and l.account_id is null))
),

product_accounts as (
    select source_id as workspace_id, account_id
    from xref
    where source_system = 'product'
),

key_features as (
    select distinct name from kpis.health_product_config where setting = 'key_feature'
),

value_event as (
    select distinct name from kpis.health_product_config where setting = 'value_event'
),

milestones as (
    select distinct name from kpis.health_product_config where setting = 'onboarding_milestone'
),

received_days as (
    -- the landing days to read: all, or (nightly) those from 34 days before the window. An event is received
    -- after it happens (Segment's timestamp is corrected to the receiving clock), so these hold every event
    -- of the 31 days before the window; joining on them lets DuckDB skip older row groups of the scan
    select distinct e.received_day
    from staging.stg_product__events as e
    cross join build_window as bw
    where bw.start_day is null or e.received_day >= cast(bw.start_day - interval 34 day as date)
),

events as (
    select
        a.account_id,
        e.user_id,
        e.event_name,
        e.occurred_at,
        cast(e.occurred_at as date) as day
    from staging.stg_product__events as e
    inner join product_accounts as a
        on a.workspace_id = e.workspace_id
    inner join received_days as r
        on r.received_day = e.received_day
    cross join build_window as bw
    where e.event_type = 'track'
        and (bw.start_day is null or e.occurred_at >= cast(bw.start_day - interval 31 day as date))
),

user_days as (
    -- one row per account, user and day (a null user is one row per account and day): the day's counts
    -- summed again per account and day below, the distinct users counted as these rows, and the users' spells
    select
        e.account_id,
        e.user_id,
        e.day,
        count(*) as events,
        sum(case when k.name is not null then 1 else 0 end) as key_feature_events,
        sum(case when v.name is not null then 1 else 0 end) as value_events,
        min(case when v.name is not null then e.occurred_at end) as first_value_at
    from events as e
    left join key_features as k on k.name = e.event_name
    left join value_event as v on v.name = e.event_name
    group by e.account_id, e.user_id, e.day
),

usage as (
    select
        account_id,
        day,
        sum(events) as events,
        count(user_id) as active_users,
        sum(key_feature_events) as key_feature_events,
        sum(value_events) as value_events,
        min(first_value_at) as first_value_at
    from user_days
    group by account_id, day
),

user_spells as (
    select
        account_id,
        day,
        max(day) over (
            partition by account_id, user_id order by day rows between 1 preceding and 1 preceding
        ) as prev_day,
        min(day) over (
            partition by account_id, user_id order by day rows between 1 following and 1 following
        ) as next_day
    from user_days
    where user_id is not null
),

feature_days as (
    select distinct e.account_id, e.event_name, e.day
    from events as e
    inner join key_features as k on k.name = e.event_name
),

feature_spells as (
    select
        account_id,
        day,
        max(day) over (
            partition by account_id, event_name order by day rows between 1 preceding and 1 preceding
        ) as prev_day,
        min(day) over (
            partition by account_id, event_name order by day rows between 1 following and 1 following
        ) as next_day
    from feature_days
),

window_deltas as (
    -- a spell starting at day counts until min(day + window, next active day): +1 on day, -1 at that end. Where
    -- the next active day comes first, the spell's -1 there and the next spell's +1 cancel, so neither is written
    -- (a user's spell counts for 7 days when it starts more than 7 days after the previous one, else it goes on;
    -- each such day is a day of the usage, so the keys stay the same)
    select
        account_id,
        day,
        case when prev_day is null or day > cast(prev_day + interval 7 day as date) then 1 else 0 end as users_7d,
        case when prev_day is null or day > cast(prev_day + interval 30 day as date) then 1 else 0 end as users_30d,
        0 as features_30d
    from user_spells
    where prev_day is null or day > cast(prev_day + interval 7 day as date)
    union all
    select account_id, cast(day + interval 7 day as date) as day, -1, 0, 0
    from user_spells where next_day is null or next_day > cast(day + interval 7 day as date)
    union all
    select account_id, cast(day + interval 30 day as date) as day, 0, -1, 0
    from user_spells where next_day is null or next_day > cast(day + interval 30 day as date)
    union all
    select account_id, day, 0, 0, 1
    from feature_spells where prev_day is null or day > cast(prev_day + interval 30 day as date)
    union all
    select account_id, cast(day + interval 30 day as date) as day, 0, 0, -1
    from feature_spells where next_day is null or next_day > cast(day + interval 30 day as date)
),

window_daily as (
    select
        account_id,
        day,
        sum(users_7d) as users_7d_delta,
        sum(users_30d) as users_30d_delta,
        sum(features_30d) as key_features_30d_delta
    from window_deltas
    group by account_id, day
),

window_milestones as (
    -- a window's account and milestone pairs in the events it reads (from 31 days before the window) and their
    -- first day there (none in a build of every day: its milestones are empty)
    select e.account_id, e.event_name, min(e.day) as day
    from events as e
    inner join (
        select m.name from milestones as m cross join build_window as bw where bw.start_day is not null
    ) as m on m.name = e.event_name
    group by e.account_id, e.event_name
),

milestone_candidates as (
    -- the pairs a window's days can reach for the first time: with no event in the 31 days before the window
    -- (a pair with one there was reached before the window, and a pair without events read has none on the
    -- window's days: those are all read, as for the usage). Only these look at every older event
    select w.account_id, w.event_name
    from window_milestones as w
    cross join build_window as bw
    where w.day >= bw.start_day
),

milestone_firsts as (
    -- first times need every event, not only the rebuilt days'. A build of every day (a full build's range, a
    -- nightly's accounts rebuilt on every day) has read every event of its accounts already (events); a window
    -- reads every event of its candidate pairs' workspaces and milestones here (a few per cent of its pairs: it
    -- scanned and grouped every milestone event of every workspace before, BENCHMARKS.md "Activity's nightly:
    -- the milestones' first days looked up for the pairs a window can reach"). Each branch is empty in the
    -- other kind of build, so DuckDB does not scan its events (a second scan of every event in each range of a
    -- full build)
    select e.account_id, e.event_name, min(e.day) as day
    from events as e
    inner join (
        select m.name from milestones as m cross join build_window as bw where bw.start_day is null
    ) as m on m.name = e.event_name
    group by e.account_id, e.event_name
    union all
    select c.account_id, e.event_name, cast(min(e.occurred_at) as date) as day
    from staging.stg_product__events as e
    inner join (
        select distinct a.workspace_id, c.account_id, c.event_name
        from milestone_candidates as c
        inner join product_accounts as a on a.account_id = c.account_id
    ) as c on c.workspace_id = e.workspace_id and c.event_name = e.event_name
    where e.event_type = 'track'
        -- the candidates' milestones (a few names): DuckDB filters the scan by them
        and e.event_name in (select event_name from milestone_candidates)
    group by c.account_id, e.event_name
),

milestone_daily as (
    select account_id, day, count(*) as milestones_reached
    from milestone_firsts
    group by account_id, day
),

tickets as (
    -- the tickets of this build's accounts
    select t.account_id, t.ticket_id, t.priority, t.created_day, t.solved_day
    from (
        -- include: support_tickets
    ) as t
    cross join build_window as bw
    left join listed_accounts as l
        on l.account_id = t.account_id
    where (bw.account_from is null or t.account_id > bw.account_from)
        and (bw.account_to is null or t.account_id <= bw.account_to)
        and (bw.listed is null
            or (bw.listed = 'only' and l.account_id is not null)
            or (bw.listed = 'except' and l.account_id is null))
),

ticket_daily as (
    select account_id, day, sum(created) as tickets_created, sum(urgent_high) as urgent_high_delta
    from (
        select account_id, created_day as day, 1 as created,
               case when priority in ('urgent', 'high') then 1 else 0 end as urgent_high
        from tickets
        union all
        select account_id, solved_day as day, 0 as created, -1 as urgent_high
        from tickets
        where priority in ('urgent', 'high') and solved_day is not null
    ) as t
    cross join build_window as bw
    where bw.start_day is null or t.day >= bw.start_day
    group by account_id, day
),

csat_daily as (
    select
        t.account_id,
        cast(coalesce(r.updated_at, r.created_at) as date) as day,
        sum(case when r.score = 'good' then 1 else 0 end) as csat_good,
        sum(case when r.score = 'bad' then 1 else 0 end) as csat_bad
    from staging.stg_support__satisfaction_ratings as r
    inner join tickets as t
        on t.ticket_id = r.ticket_id
    cross join build_window as bw
    where r.score in ('good', 'bad')
        and (bw.start_day is null or cast(coalesce(r.updated_at, r.created_at) as date) >= bw.start_day)
    group by t.account_id, cast(coalesce(r.updated_at, r.created_at) as date)
),

nps_daily as (
    select
        x.account_id,
        cast(r.responded_at as date) as day,
        sum(case when r.score >= 9 then 1 else 0 end) as nps_promoters,
        sum(case when r.score between 7 and 8 then 1 else 0 end) as nps_passives,
        sum(case when r.score <= 6 then 1 else 0 end) as nps_detractors
    from staging.stg_nps__survey_responses as r
    inner join xref as x
        on x.source_system = 'nps' and x.source_id = r.person_id
    cross join build_window as bw
    where r.score is not null and (bw.start_day is null or cast(r.responded_at as date) >= bw.start_day)
    group by x.account_id, cast(r.responded_at as date)
),

payment_daily as (
    select
        x.account_id,
        cast(e.created_at as date) as day,
        count(*) as failed_payments
    from staging.stg_billing__events as e
    inner join xref as x
        on x.source_system = 'billing' and x.source_id = e.customer_id
    cross join build_window as bw
    where e.event_type = 'invoice.payment_failed'
        and (bw.start_day is null or cast(e.created_at as date) >= bw.start_day)
    group by x.account_id, cast(e.created_at as date)
),

all_keys as (
    select account_id, day from usage
    union
    select account_id, day from window_daily
    union
    select account_id, day from milestone_daily
    union
    select account_id, day from ticket_daily
    union
    select account_id, day from csat_daily
    union
    select account_id, day from nps_daily
    union
    select account_id, day from payment_daily
),

keys as (
    select k.account_id, k.day
    from all_keys as k
    cross join build_window as bw
    where bw.start_day is null or k.day >= bw.start_day
)

-- the counts stored as BIGINT straight away (sums are HUGEINT on DuckDB: a full build then altered 12 columns of
-- the whole table)
select
    k.account_id,
    k.day,
    cast(coalesce(u.events, 0) as bigint) as events,
    cast(coalesce(u.active_users, 0) as bigint) as active_users,
    cast(coalesce(u.key_feature_events, 0) as bigint) as key_feature_events,
    cast(coalesce(u.value_events, 0) as bigint) as value_events,
    u.first_value_at,
    cast(coalesce(w.users_7d_delta, 0) as bigint) as users_7d_delta,
    cast(coalesce(w.users_30d_delta, 0) as bigint) as users_30d_delta,
    cast(coalesce(w.key_features_30d_delta, 0) as bigint) as key_features_30d_delta,
    cast(coalesce(m.milestones_reached, 0) as bigint) as milestones_reached,
    cast(coalesce(t.tickets_created, 0) as bigint) as tickets_created,
    cast(coalesce(t.urgent_high_delta, 0) as bigint) as urgent_high_delta,
    cast(coalesce(c.csat_good, 0) as bigint) as csat_good,
    cast(coalesce(c.csat_bad, 0) as bigint) as csat_bad,
    cast(coalesce(n.nps_promoters, 0) as bigint) as nps_promoters,
    cast(coalesce(n.nps_passives, 0) as bigint) as nps_passives,
    cast(coalesce(n.nps_detractors, 0) as bigint) as nps_detractors,
    cast(coalesce(p.failed_payments, 0) as bigint) as failed_payments
from keys as k
left join usage as u on u.account_id = k.account_id and u.day = k.day
left join window_daily as w on w.account_id = k.account_id and w.day = k.day
left join milestone_daily as m on m.account_id = k.account_id and m.day = k.day
left join ticket_daily as t on t.account_id = k.account_id and t.day = k.day
left join csat_daily as c on c.account_id = k.account_id and c.day = k.day
left join nps_daily as n on n.account_id = k.account_id and n.day = k.day
left join payment_daily as p on p.account_id = k.account_id and p.day = k.day
