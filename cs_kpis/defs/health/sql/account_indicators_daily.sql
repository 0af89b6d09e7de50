-- Leading indicators per CRM account and day (KPI_DEFINITIONS.md "Leading indicators"), as known at the end
-- of that day: one row per account per day from its first subscription day (trials included) to the
-- data's as-of day. Trailing windows include the day itself ("30 days" = day-29 .. day) and are running sums
-- of deltas from kpis.account_activity_daily (a day's value enters a window on the day and leaves it 30, 60 or
-- 90 days later), summed over the days that have deltas and carried to each output day from the latest of them,
-- so the cost is a few rows per account-day, not a scan of raw events per day, and a nightly's rows are its
-- output days alone. Point in time: every value uses only facts dated
-- on or before the day (ticket priority and reopen counts are their latest state; CSM sentiment, CSM and
-- segment are the CRM state in force, marts.account_states: loaded versions, rebuilt from Salesforce's field
-- history before the first load, null before that history starts). Indicators without data are
-- null (not 0), so the health score can leave them out.
-- Built incrementally (cs_kpis/lib/incremental.py): the current row of kpis._build_window holds the first
-- day to (re)build (start_day; null = each account's whole history) and a range of accounts (account_from
-- exclusive .. account_to inclusive; null = open; listed: 'only' the accounts of kpis._build_accounts
-- for this build, which a nightly rebuilds on every day when their older inputs changed, all 'except'
-- them, or every account with them 'whole': from the history's first day, in the window's pass, when they are
-- few: listed=window). Rows are produced for days >= start_day only (a listed account's in a pass of 'whole':
-- from history_start); the trailing windows read the activity of the 89 days
-- before it (its deltas dated before the first output day count on that day), and the running sums (distinct
-- actives, milestones, open urgent/high tickets) start from the sum of every activity delta before those
-- days (a nightly reads that sum from the carry the build before kept, kpis._indicator_carry: @incremental
-- carry, incremental.Carry), so a windowed build equals the same days of a full build (tested). The history kept is
-- CS_KPIS_HEALTH_HISTORY_DAYS days. The build renders the range's bounds as constants on the activity's three scans and
-- the carry's (`-- account range:` lines, incremental.with_account_range): the joins on the range's accounts give the same
-- rows, the constants let DuckDB skip the row groups of other accounts.
-- @grain account_id, day
-- @incremental lookback_days=7 history=limited rows_per_gb=250000 reads_days=89 window_rows_per_gb=1500000 listed=window carry=kpis._indicator_carry
-- @column account_id: CRM account
-- @column day: the as-of day (UTC)
-- @column root_account_id: top of the account's hierarchy (marts.accounts; the account itself when unknown)
-- @column mrr: MRR in force at the end of the day, USD (0 when none)
-- @column arr: 12 x mrr
-- @column is_active: mrr > 0
-- @column is_trial: a trial subscription is in force
-- @column plan: the highest plan in force (by configured features on the plan), null when none
-- @column seats: licensed seats in force (sum of quantities of plan subscriptions), null when none
-- @column events_30d: tracked events in the last 30 days
-- @column events_prior_30d: tracked events in the 30 days before those (days -59 .. -30)
-- @column active_users_7d: distinct users with a tracked event in the last 7 days
-- @column active_users_30d: distinct users with a tracked event in the last 30 days
-- @column stickiness: mean daily active users over 30 days / active_users_30d (null when no actives)
-- @column events_per_active_user_30d: events_30d / active_users_30d: usage intensity (null when no actives)
-- @column usage_trend: events_30d / events_prior_30d - 1 (null when the prior window is incomplete or empty)
-- @column key_features_30d: distinct configured key features used in the last 30 days
-- @column plan_features: key features available on the plan in force (configured per plan)
-- @column feature_adoption: key_features_30d / plan_features (null without a plan)
-- @column seat_utilisation: active_users_30d / seats (null without seats)
-- @column is_activated: 1 once the account's first configured value event happened, else 0
-- @column first_value_at: time of the account's first value event (null before it)
-- @column ttfv_days: time to first value: first value event - CRM account creation, in days (null before activation)
-- @column onboarding_completion: share of configured onboarding milestones reached so far
-- @column tickets_30d: support tickets created in the last 30 days
-- @column open_urgent_high: urgent or high priority tickets open at the end of the day
-- @column median_first_reply_minutes: median first-reply minutes of tickets created in the last 90 days
-- @column median_resolution_minutes: median full-resolution minutes of tickets solved in the last 90 days
-- @column first_contact_resolution: solved in the last 90 days with no reopen and at most one agent reply / solved in the last 90 days
-- @column csat_responses_90d: good + bad satisfaction ratings in the last 90 days
-- @column csat_90d: good / (good + bad) over the last 90 days (null without ratings)
-- @column nps_responses_90d: NPS responses in the last 90 days
-- @column nps_90d: % promoters - % detractors over the last 90 days, -100..100 (null without responses)
-- @column csm_sentiment: the CRM's CSM sentiment picklist value in force (Green, Yellow, Red), null when unrated or unknown
-- @column csm_id: the CSM (User id) in charge of the account that day (marts.account_states), null when unknown
-- @column segment: the account's CRM segment that day (marts.account_states), null when unknown; the revenue KPIs use the current segment instead
-- @column max_days_past_due: days past due of the oldest unpaid invoice (0 when none is past due)
-- @column failed_payments_90d: failed payment attempts in the last 90 days
-- @column days_to_renewal: days until the renewal: the end of the current paid term (a licensed billing period longer than 180 days) of a subscription that is active and not set to cancel; null when there is none (monthly and quarterly billing have no term)
-- @column cancellation_scheduled: 1 when a subscription in force has a cancellation scheduled, else 0
with build_window as (
    -- reads_from: the first activity day the trailing windows read (89 days before the build window; null = all);
    -- earliest_day: the first day any account of the pass is written from (a pass of 'whole' writes the listed
    -- accounts from the history's first day; null = every account's whole history); carry_through: this pass reads
    -- each account's running sums' carry from kpis._indicator_carry, kept through exactly the first day its windows
    -- read (null: it sums the carry from every activity row; every build keeps a carry for the next one);
    -- rewritten_from: the first day the next nightly deletes and writes again (the fingerprint day of this build)
    select
        max(start_day) as start_day,
        cast(max(start_day) - interval 89 day as date) as reads_from,
        case when max(listed) = 'whole' then max(history_start) else max(start_day) end as earliest_day,
        max(account_from) as account_from,
        max(account_to) as account_to,
        max(build_seq) as build_seq,
        max(listed) as listed,
        max(history_start) as history_start,
        max(carry_through) as carry_through,
        max(fingerprint_day) as rewritten_from
    from kpis._build_window
    where model = 'kpis.account_indicators_daily' and is_current
),

listed_accounts as (
    -- the accounts a nightly rebuilds on every day (their older inputs changed): this pass builds only them
    -- (listed = 'only'), every account but them (listed = 'except'), or every account, them from the
    -- history's first day (listed = 'whole')
    select distinct a.account_id
    from kpis._build_accounts as a
    inner join build_window as bw
        on bw.build_seq = a.build_seq
    where a.model = 'kpis.account_indicators_daily' and bw.listed is not null
),

starts as (
    -- the accounts of this build: all, or the range (account_from, account_to] (large histories are
    -- built in ranges of accounts so that memory stays bounded), the listed accounts or the others; from_day:
    -- the first day written for the account (the build window's; a listed account's in a pass of 'whole': the
    -- history's first day; null = its whole history) and reads_from the first activity day its windows read
    select
        p.account_id,
        min(p.start_date) as first_day,
        max(case when bw.listed = 'whole' and l.account_id is not null then bw.history_start else bw.start_day end)
            as from_day,
        max(case when bw.listed = 'whole' and l.account_id is not null
            then cast(bw.history_start - interval 89 day as date) else bw.reads_from end) as reads_from,
        max(case when bw.listed = 'whole' and l.account_id is not null then 1 else 0 end) as is_listed,
        max(case when bw.carry_through is null then 1 else 0 end) as sums_activity
    from marts.subscription_periods as p
    cross join build_window as bw
    left join listed_accounts as l
        on l.account_id = p.account_id
    where p.account_id is not null
        and (bw.account_from is null or p.account_id > bw.account_from)
        and (bw.account_to is null or p.account_id <= bw.account_to)
        and (bw.listed is null or bw.listed = 'whole'
            or (bw.listed = 'only' and l.account_id is not null)
            or (bw.listed = 'except' and l.account_id is null))
    group by p.account_id
),

activity_totals as (
    -- per account: its first active day, its first configured value event (the activity table keeps each day's
    -- first) and the carry of the running sums: every delta dated before the first day the trailing windows read
    -- (the account's reads_from, or the calendar's first day when later, as on a full build). Deltas dated before
    -- the calendar (product use before the first subscription) are carried too: without them a spell begun before
    -- the calendar and ended inside it made the distinct actives negative. A build that keeps the carry
    -- (carry_through) reads it from kpis._indicator_carry (cs_kpis/lib/incremental.py, Carry): the same sums and
    -- first days over the activity before that day, kept for each account by the build before and, for the
    -- accounts rebuilt on every day, summed again by this one; the first days of later activity come from the days
    -- the windows read (windowed). Otherwise from every activity row of the history (30.7 M on the large company)
    select
        c.account_id,
        c.first_activity_day,
        c.first_value_at,
        c.users_7d,
        c.users_30d,
        c.key_features_30d,
        c.milestones_reached,
        c.urgent_high
    from kpis._indicator_carry as c
    inner join starts as s on s.account_id = c.account_id and s.sums_activity = 0
    -- account range: c.account_id
    union all
    select
        account_id,
        min(day) as first_activity_day,
        min(first_value_at) as first_value_at,
        sum(case when is_carry then users_7d_delta end) as users_7d,
        sum(case when is_carry then users_30d_delta end) as users_30d,
        sum(case when is_carry then key_features_30d_delta end) as key_features_30d,
        sum(case when is_carry then milestones_reached end) as milestones_reached,
        sum(case when is_carry then urgent_high_delta end) as urgent_high
    from (
        select
            a.*,
            a.day < case when s.reads_from is null or s.reads_from < cal.first_day then cal.first_day
                else s.reads_from end as is_carry
        from kpis.account_activity_daily as a
        -- (an empty join when the carry is kept: DuckDB then reads none of the activity)
        inner join starts as s on s.account_id = a.account_id and s.sums_activity = 1
        cross join (select min(day) as first_day from marts.dim_day) as cal
        -- account range: a.account_id
    ) as a
    group by account_id
),

account_keys as (
    -- a whole-number key per account: (account, day) pairs below are one bigint, which hashes and compares
    -- much faster than text plus date in the joins of millions of account-days; first_out: the first output
    -- day (subscribed, inside the build window and the calendar); a bigint: Spark's row_number() is a 32-bit
    -- int, and key * 100000 would overflow it past 21,474 accounts. grid_start: where a grid of every day from
    -- the account's earliest subscription or activity would start (the prior 30 days are complete 59 days on)
    select
        s.account_id,
        s.first_day,
        greatest(s.first_day, coalesce(s.from_day, s.first_day), cal.first_day) as first_out,
        s.reads_from,
        bw.reads_from as window_reads_from,
        s.is_listed,
        greatest(least(s.first_day, coalesce(a.first_activity_day, s.first_day)), cal.first_day) as grid_start,
        cast(row_number() over (order by s.account_id) as bigint) as account_key
    from starts as s
    left join activity_totals as a on a.account_id = s.account_id
    cross join build_window as bw
    cross join (select min(day) as first_day from marts.dim_day) as cal
),

window_grid as (
    -- the output days of each account: from its first output day to the as-of day
    select
        s.account_id,
        s.account_key,
        d.day,
        s.account_key * 100000 + date_diff('day', cast('1900-01-01' as date), d.day) as gk
    from account_keys as s
    inner join marts.dim_day as d
        on d.day >= s.first_out
),

window_activity as (
    -- the activity the output days read, keyed like the grid: from 89 days before the build window (every day
    -- of the calendar on a full build); first_gk and last_gk: the account's first output day and the as-of day
    select
        k.account_key,
        k.account_key * 100000 + date_diff('day', cast('1900-01-01' as date), a.day) as gk,
        k.account_key * 100000 + date_diff('day', cast('1900-01-01' as date), k.first_out) as first_gk,
        k.account_key * 100000 + date_diff('day', cast('1900-01-01' as date), cal.as_of) as last_gk,
        a.day,
        a.first_value_at,
        a.events,
        a.active_users,
        a.tickets_created,
        a.csat_good,
        a.csat_bad,
        a.nps_promoters,
        a.nps_detractors,
        a.nps_promoters + a.nps_passives + a.nps_detractors as nps_responses,
        a.failed_payments,
        a.users_7d_delta,
        a.users_30d_delta,
        a.key_features_30d_delta,
        a.milestones_reached,
        a.urgent_high_delta
    from (
        select a.*
        from kpis.account_activity_daily as a
        -- the days read, as a join on the day: DuckDB filters the scan by them before the join on the accounts
        -- (a filter on the build window's columns ran after it, on every activity row of the history)
        inner join (
            select d.day
            from marts.dim_day as d
            cross join build_window as bw
            where bw.reads_from is null or d.day >= bw.reads_from
        ) as rd on rd.day = a.day
        -- account range: a.account_id
        union all
        -- a pass of 'whole': the listed accounts' earlier days, from 89 days before the history's first day (a
        -- join on those few accounts: DuckDB reads only their row groups)
        select a.*
        from kpis.account_activity_daily as a
        inner join account_keys as lk
            on lk.account_id = a.account_id
            and lk.is_listed = 1
            and a.day < lk.window_reads_from
            and (lk.reads_from is null or a.day >= lk.reads_from)
        -- the calendar's days, as the other branch (an earlier day is in the running sums' carry)
        inner join marts.dim_day as cd on cd.day = a.day
        -- account range: a.account_id
    ) as a
    inner join account_keys as k on k.account_id = a.account_id
    cross join (select max(day) as as_of from marts.dim_day) as cal
),

window_deltas as (
    -- every trailing sum as a running sum of deltas: a day's value enters a 30-day sum on the day (+) and
    -- leaves it 30 days later (-), enters the prior 30 days 30 days later and leaves them 60 days later, enters
    -- a 90-day sum and leaves it 90 days later; the running sums' own deltas count on their day. A delta dated
    -- before the account's first output day counts on that day (it is in every output day's sum), so the
    -- output days are the only grid: no day before them is read as a row of the grid
    select
        w.account_key,
        greatest(w.gk + o.shift, w.first_gk) as gk,
        case when o.shift = 0 then w.events when o.shift = 30 then -w.events else 0 end as events_30d,
        case when o.shift = 30 then w.events when o.shift = 60 then -w.events else 0 end as events_prior_30d,
        case when o.shift = 0 then w.active_users when o.shift = 30 then -w.active_users else 0 end
            as active_user_days_30d,
        case when o.shift = 0 then w.tickets_created when o.shift = 30 then -w.tickets_created else 0 end
            as tickets_30d,
        case when o.shift = 0 then w.csat_good when o.shift = 90 then -w.csat_good else 0 end as csat_good_90d,
        case when o.shift = 0 then w.csat_bad when o.shift = 90 then -w.csat_bad else 0 end as csat_bad_90d,
        case when o.shift = 0 then w.nps_promoters when o.shift = 90 then -w.nps_promoters else 0 end
            as nps_promoters_90d,
        case when o.shift = 0 then w.nps_detractors when o.shift = 90 then -w.nps_detractors else 0 end
            as nps_detractors_90d,
        case when o.shift = 0 then w.nps_responses when o.shift = 90 then -w.nps_responses else 0 end
            as nps_responses_90d,
        case when o.shift = 0 then w.failed_payments when o.shift = 90 then -w.failed_payments else 0 end
            as failed_payments_90d,
        case when o.shift = 0 then w.users_7d_delta else 0 end as active_users_7d,
        case when o.shift = 0 then w.users_30d_delta else 0 end as active_users_30d,
        case when o.shift = 0 then w.key_features_30d_delta else 0 end as key_features_30d,
        case when o.shift = 0 then w.milestones_reached else 0 end as milestones_reached,
        case when o.shift = 0 then w.urgent_high_delta else 0 end as open_urgent_high,
        case when o.shift = 0 then w.day end as first_activity_day,
        case when o.shift = 0 then w.first_value_at end as first_value_at
    from window_activity as w
    cross join (select 0 as shift union all select 30 union all select 60 union all select 90) as o
    where w.gk + o.shift <= w.last_gk
        and (o.shift = 0
            or (o.shift = 30 and (w.events <> 0 or w.active_users <> 0 or w.tickets_created <> 0))
            or (o.shift = 60 and w.events <> 0)
            or (o.shift = 90 and (w.csat_good <> 0 or w.csat_bad <> 0 or w.nps_responses <> 0
                or w.failed_payments <> 0)))
),

window_daily as (
    select
        account_key,
        gk,
        sum(events_30d) as events_30d,
        sum(events_prior_30d) as events_prior_30d,
        sum(active_user_days_30d) as active_user_days_30d,
        sum(tickets_30d) as tickets_30d,
        sum(csat_good_90d) as csat_good_90d,
        sum(csat_bad_90d) as csat_bad_90d,
        sum(nps_promoters_90d) as nps_promoters_90d,
        sum(nps_detractors_90d) as nps_detractors_90d,
        sum(nps_responses_90d) as nps_responses_90d,
        sum(failed_payments_90d) as failed_payments_90d,
        sum(active_users_7d) as active_users_7d,
        sum(active_users_30d) as active_users_30d,
        sum(key_features_30d) as key_features_30d,
        sum(milestones_reached) as milestones_reached,
        sum(open_urgent_high) as open_urgent_high,
        min(first_activity_day) as first_activity_day,
        min(first_value_at) as first_value_at
    from window_deltas
    group by account_key, gk
),

window_running as (
    -- the running sums (and first days) at each day that has deltas: a third of the output days on the large
    -- company. An output day takes them from its account's latest such day (windowed: delta_gk), so the 15 sums
    -- are windows over these rows instead of over every output day (BENCHMARKS.md, session 31)
    select
        gk,
        sum(events_30d) over run as events_30d,
        sum(events_prior_30d) over run as events_prior_30d,
        sum(active_user_days_30d) over run as active_user_days_30d,
        sum(active_users_7d) over run as active_users_7d,
        sum(active_users_30d) over run as active_users_30d,
        sum(key_features_30d) over run as key_features_30d,
        sum(milestones_reached) over run as milestones_reached,
        sum(tickets_30d) over run as tickets_30d,
        sum(open_urgent_high) over run as open_urgent_high,
        sum(csat_good_90d) over run as csat_good_90d,
        sum(csat_bad_90d) over run as csat_bad_90d,
        sum(nps_promoters_90d) over run as nps_promoters_90d,
        sum(nps_detractors_90d) over run as nps_detractors_90d,
        sum(nps_responses_90d) over run as nps_responses_90d,
        sum(failed_payments_90d) over run as failed_payments_90d,
        -- the first active day and value event among the days read so far (those before the first output day
        -- count on it): with a kept carry, the activity after the carry's day
        min(first_activity_day) over run as first_activity_day,
        min(first_value_at) over run as first_value_at
    from window_daily
    window run as (partition by account_key order by gk rows between unbounded preceding and current row)
),

plan_features as (
    -- plan_rank 1 = the most features (ties: the first name)
    select plan, features, row_number() over (order by features desc, plan) as plan_rank
    from (
        select name as plan, value as features from kpis.health_product_config where setting = 'plan_features'
    ) as f
),

milestone_count as (
    select count(distinct name) as milestones from kpis.health_product_config where setting = 'onboarding_milestone'
),

ticket_facts as (
    -- the tickets a median below can read (reply_tickets, solved_tickets): created or solved less than 90 days
    -- before the account's first day the pass writes (every ticket on a full build of every day), kept once
    -- for both instead of every ticket of the history
    select t.account_id, t.ticket_id, t.created_day, t.solved_day, t.first_reply_minutes,
        t.full_resolution_minutes, t.is_fcr, s.from_day
    from (
        -- include: support_tickets
    ) as t
    inner join (
        select account_id, from_day, cast(from_day - interval 90 day as date) as tickets_after from starts
    ) as s on s.account_id = t.account_id
    where s.from_day is null or t.created_day > s.tickets_after or t.solved_day > s.tickets_after
),

reply_tickets as (
    -- the tickets a first-reply median of an output day can hold: created less than 90 days before the build
    -- window (every ticket on a full build of every day). A change day before the window then has a median
    -- of fewer tickets, but the output days only read the last change day on or before them, whose 90 days
    -- hold no ticket left out
    select t.account_id, t.from_day, t.created_day, t.first_reply_minutes
    from ticket_facts as t
    where t.first_reply_minutes is not null
        and (t.from_day is null or t.created_day > cast(t.from_day - interval 90 day as date))
),

solved_tickets as (
    -- the same for tickets solved: solved less than 90 days before the build window
    select t.account_id, t.from_day, t.ticket_id, t.solved_day, t.full_resolution_minutes, t.is_fcr
    from ticket_facts as t
    where t.solved_day is not null
        and (t.from_day is null or t.solved_day > cast(t.from_day - interval 90 day as date))
),

change_days as (
    -- medians over 90 days change only where a ticket enters the window (created, or solved, that day) or leaves
    -- it (90 days later): they are computed on those change days, not on every account-day (a median's state per
    -- group is a list of values: millions of groups spilled gigabytes), and each holds until the next one.
    -- kind: 'reply' (tickets created) or 'solved' (tickets solved)
    select 'reply' as kind, account_id, from_day, created_day as day from reply_tickets
    union
    select 'reply' as kind, account_id, from_day, cast(created_day + interval 90 day as date) as day
    from reply_tickets
    union
    select 'solved' as kind, account_id, from_day, solved_day as day from solved_tickets
    union
    select 'solved' as kind, account_id, from_day, cast(solved_day + interval 90 day as date) as day
    from solved_tickets
),

change_points as (
    -- only the change days an output day reads: the one in force on the account's first day the pass writes
    -- (the last one on or before it), the later ones, none after the as-of day (a nightly's 90 days of earlier
    -- change days were each a median over their 90 days of tickets: most of its cost), left out before each
    -- change day's next one is found (an aggregation and a join, not a sort of every change day). The last one's
    -- next day is null (a day after the as-of day, which no output day reaches, before the as-of day's filter
    -- moved first)
    select
        c.kind,
        c.account_id,
        c.day,
        min(c.day) over (partition by c.kind, c.account_id order by c.day rows between 1 following and 1 following)
            as next_day
    from change_days as c
    left join (
        select kind, account_id, max(day) as day
        from change_days
        where day <= from_day
        group by kind, account_id
    ) as f
        on f.kind = c.kind and f.account_id = c.account_id
    cross join (select max(day) as as_of from marts.dim_day) as cal
    where (f.day is null or c.day >= f.day) and c.day <= cal.as_of
),

reply_spans as (
    -- each change day's median; an empty window (every ticket left it) gives null until the next ticket
    select p.account_id, p.day, p.next_day, median(t.first_reply_minutes) as median_first_reply_minutes
    from change_points as p
    left join reply_tickets as t
        on t.account_id = p.account_id
        and t.created_day <= p.day
        and t.created_day > cast(p.day - interval 90 day as date)
    where p.kind = 'reply'
    group by p.account_id, p.day, p.next_day
),

solved_spans as (
    -- the same for tickets solved in the last 90 days
    select
        p.account_id,
        p.day,
        p.next_day,
        median(t.full_resolution_minutes) as median_resolution_minutes,
        case when count(t.ticket_id) > 0
            then cast(sum(t.is_fcr) as double) / cast(count(t.ticket_id) as double) end as first_contact_resolution
    from change_points as p
    left join solved_tickets as t
        on t.account_id = p.account_id
        and t.solved_day <= p.day
        and t.solved_day > cast(p.day - interval 90 day as date)
    where p.kind = 'solved'
    group by p.account_id, p.day, p.next_day
),

billing_accounts as (
    select x.source_id as customer_id, x.crm_account_id as account_id, s.from_day
    from marts.account_xref as x
    inner join starts as s on s.account_id = x.crm_account_id
    where x.source_system = 'billing'
),

unpaid_invoices as (
    -- due on its due date (send_invoice) or at creation (charged automatically); unpaid until paid,
    -- voided or written off. One settled on or before the account's first day the pass writes is past due on no
    -- output day and changes no state from that day on: left out (a condition of the join on the account, not of
    -- a join with the build window after it)
    select
        b.account_id,
        cast(coalesce(i.due_at, i.created_at) as date) as due_day,
        cast(coalesce(i.paid_at, i.voided_at, i.marked_uncollectible_at) as date) as settled_day
    from staging.stg_billing__invoices as i
    inner join billing_accounts as b on b.customer_id = i.customer_id
    where i.status <> 'draft' and i.amount_due_minor > 0
        and (b.from_day is null or coalesce(i.paid_at, i.voided_at, i.marked_uncollectible_at) is null
            or cast(coalesce(i.paid_at, i.voided_at, i.marked_uncollectible_at) as date) > b.from_day)
),

term_lines as (
    -- the invoice lines of paid terms: a licensed subscription item (no prorations, no metered prices) billed
    -- for more than 180 days, ended after the first day the pass writes (the earliest of its accounts'): a few
    -- thousand of the history's lines, read before their invoices (a join of every invoice, built each night)
    select l.invoice_id, l.subscription_id, cast(l.period_start as date) as period_start,
        cast(l.period_end as date) as period_end
    from staging.stg_billing__invoice_lines as l
    left join staging.stg_billing__prices as p on p.price_id = l.price_id
    cross join (
        select coalesce(earliest_day, cast('0001-01-01' as date)) as first_day from build_window
    ) as bw
    where cast(l.period_end as date) > bw.first_day
        and not coalesce(l.is_proration, false)
        and coalesce(p.usage_type, 'licensed') = 'licensed'
        and l.subscription_id is not null
        and date_diff('day', cast(l.period_start as date), cast(l.period_end as date)) > 180
),

term_periods as (
    -- the paid term of a licensed subscription item: a billing period longer than 180 days (an annual or
    -- longer contract), from the invoice lines (no drafts or voids). Monthly and quarterly periods renew every
    -- period: they are not a contract renewal (docs/KPI_DEFINITIONS.md). A term ended by the account's first day
    -- the pass writes is in force on no output day: left out
    select b.account_id, l.subscription_id, l.period_start, l.period_end
    from term_lines as l
    inner join staging.stg_billing__invoices as i on i.invoice_id = l.invoice_id
    inner join billing_accounts as b on b.customer_id = i.customer_id
    where i.status not in ('draft', 'void')
        and (b.from_day is null or l.period_end > b.from_day)
),

state_days as (
    -- each subscription's end-of-day state: the last one reported that day (arg_max by changed_at; subscription_id
    -- and changed_at are marts.subscription_states' unique key, checked). A build with a first day (every
    -- nightly, and a full build of a limited history) keeps of the days before the account's first day only the
    -- last one's state, which is in force on that day: no output day reads an earlier one. One aggregation of
    -- every state (a group per subscription and day from the first day on, one for all its earlier days), not
    -- the last change before the first day and then the states from it on (two reads of every state of the
    -- history, joined, then sorted, each night). flagged: a cancellation is scheduled (an unknown status: not
    -- flagged), renews: none is (unknown: renewing), as the joins below read them (and arg_max skips nulls)
    select
        subscription_id,
        account_id,
        change_day,
        flagged,
        renews,
        min(change_day) over (
            partition by subscription_id order by change_day rows between 1 following and 1 following
        ) as next_change_day
    from (
        select
            st.subscription_id,
            b.account_id,
            max(cast(st.changed_at as date)) as change_day,
            arg_max(coalesce((coalesce(st.cancel_at_period_end, false) or st.cancel_at is not null)
                and st.ended_at is null and st.status not in ('canceled', 'incomplete_expired'), false),
                st.changed_at) as flagged,
            arg_max(coalesce(not (coalesce(st.cancel_at_period_end, false) or st.cancel_at is not null)
                and st.ended_at is null and st.status not in ('canceled', 'incomplete_expired'), true),
                st.changed_at) as renews
        from marts.subscription_states as st
        inner join billing_accounts as b on b.customer_id = st.customer_id
        group by st.subscription_id, b.account_id,
            case when cast(st.changed_at as date) < b.from_day then null else cast(st.changed_at as date) end
    ) as s
),

boundaries as (
    -- every day on which a state the indicators read may change (an MRR change, a subscription period, a CRM
    -- version, an invoice falling due or settled, a paid term, a subscription's end-of-day state, a 90-day
    -- ticket median): between two of them every state below is constant
    select account_id, change_date as day from marts.mrr_daily_changes
    union all
    select account_id, next_change_date as day from marts.mrr_daily_changes
    union all
    select account_id, start_date as day from marts.subscription_periods
    union all
    select account_id, end_date as day from marts.subscription_periods
    union all
    select account_id, valid_from as day from marts.account_states
    union all
    select account_id, valid_to as day from marts.account_states
    union all
    select account_id, cast(due_day + interval 1 day as date) as day from unpaid_invoices
    union all
    select account_id, settled_day as day from unpaid_invoices
    union all
    select account_id, period_start as day from term_periods
    union all
    select account_id, period_end as day from term_periods
    union all
    select account_id, change_day as day from state_days
    union all
    select account_id, next_change_day as day from state_days
    union all
    select account_id, day from reply_spans
    union all
    select account_id, day from solved_spans
),

segments as (
    -- the output days that start a segment: each account's first output day and every boundary after it. The
    -- states are computed on these days only and hold until the next one (a few rows per account instead
    -- of one per account-day), then reach every output day by one join on the segment's key. The boundaries
    -- on or before the earliest first output day of the pass are left out before that join (most of the
    -- history's, in a nightly: a comparison with one day, not a condition of the join on each account)
    select distinct k.account_id, b.day,
        k.account_key * 100000 + date_diff('day', cast('1900-01-01' as date), b.day) as gk, k.grid_start
    from boundaries as b
    cross join (select min(first_out) as first_out from account_keys) as e
    inner join account_keys as k on k.account_id = b.account_id
    cross join (select max(day) as as_of from marts.dim_day) as cal
    where b.day > e.first_out and b.day > k.first_out and b.day <= cal.as_of
    union all
    select k.account_id, k.first_out as day,
        k.account_key * 100000 + date_diff('day', cast('1900-01-01' as date), k.first_out) as gk, k.grid_start
    from account_keys as k
    cross join (select max(day) as as_of from marts.dim_day) as cal
    where k.first_out <= cal.as_of
),

periods_in_force as (
    select
        g.gk,
        max(p.features) as plan_features,
        min(p.plan_rank) as plan_rank,
        sum(case when p.features is not null then sp.seats end) as seats,
        max(case when sp.is_trial then 1 else 0 end) as is_trial
    from segments as g
    inner join marts.subscription_periods as sp
        on sp.account_id = g.account_id
        and sp.start_date <= g.day
        and (sp.end_date is null or sp.end_date > g.day)
    left join plan_features as p
        on p.plan = sp.plan
    group by g.gk
),

mrr as (
    select g.gk, c.mrr
    from segments as g
    inner join marts.mrr_daily_changes as c
        on c.account_id = g.account_id
        and c.change_date <= g.day
        and (c.next_change_date is null or c.next_change_date > g.day)
),

reply_90d as (
    select g.gk, r.median_first_reply_minutes
    from segments as g
    inner join reply_spans as r
        on r.account_id = g.account_id
        and r.day <= g.day
        and (r.next_day is null or r.next_day > g.day)
),

solved_90d as (
    select g.gk, s.median_resolution_minutes, s.first_contact_resolution
    from segments as g
    inner join solved_spans as s
        on s.account_id = g.account_id
        and s.day <= g.day
        and (s.next_day is null or s.next_day > g.day)
),

sentiment as (
    -- the CRM state in force at the end of the day: loaded versions, and before the first load the state
    -- rebuilt from Salesforce's field history (marts.account_states; one row per account and day)
    select g.gk, max(a.csm_sentiment) as csm_sentiment, max(a.csm_id) as csm_id, max(a.segment) as segment
    from segments as g
    inner join marts.account_states as a
        on a.account_id = g.account_id
        and a.valid_from <= g.day
        and (a.valid_to is null or a.valid_to > g.day)
    where not a.is_deleted
    group by g.gk
),

past_due as (
    select g.gk, min(u.due_day) as oldest_due_day
    from segments as g
    inner join unpaid_invoices as u
        on u.account_id = g.account_id
        and u.due_day < g.day
        and (u.settled_day is null or u.settled_day > g.day)
    group by g.gk
),

cancellations as (
    select distinct g.gk
    from state_days as s
    inner join segments as g
        on g.account_id = s.account_id
        and g.day >= s.change_day
        and (s.next_change_day is null or g.day < s.next_change_day)
    where s.flagged
),

renewal as (
    -- the renewal: the nearest end of a paid term in force whose subscription is still active and not set
    -- to cancel at the end of the day (a subscription with no state yet counts as renewing)
    select g.gk, min(t.period_end) as renewal_day
    from segments as g
    inner join term_periods as t
        on t.account_id = g.account_id
        and t.period_start <= g.day
        and t.period_end > g.day
    left join state_days as s
        on s.subscription_id = t.subscription_id
        and s.change_day <= g.day
        and (s.next_change_day is null or g.day < s.next_change_day)
    where coalesce(s.renews, true)
    group by g.gk
),

segment_states as (
    -- every state of a segment, and the account's own facts (hierarchy, creation, first value, running sums'
    -- carry), in one row
    select
        g.gk,
        coalesce(acc.root_account_id, g.account_id) as root_account_id,
        acc.created_at,
        g.grid_start,
        fv.first_value_at,
        fv.users_7d as carry_users_7d,
        fv.users_30d as carry_users_30d,
        fv.key_features_30d as carry_key_features_30d,
        fv.milestones_reached as carry_milestones_reached,
        fv.urgent_high as carry_urgent_high,
        m.mrr,
        f.is_trial,
        pl.plan,
        f.seats,
        f.plan_features,
        r.median_first_reply_minutes,
        s.median_resolution_minutes,
        s.first_contact_resolution,
        se.csm_sentiment,
        se.csm_id,
        se.segment,
        pd.oldest_due_day,
        rn.renewal_day,
        c.gk is not null as cancellation_scheduled
    from segments as g
    left join marts.accounts as acc on acc.account_id = g.account_id
    left join activity_totals as fv on fv.account_id = g.account_id
    left join mrr as m on m.gk = g.gk
    left join periods_in_force as f on f.gk = g.gk
    left join plan_features as pl on pl.plan_rank = f.plan_rank
    left join reply_90d as r on r.gk = g.gk
    left join solved_90d as s on s.gk = g.gk
    left join sentiment as se on se.gk = g.gk
    left join past_due as pd on pd.gk = g.gk
    left join renewal as rn on rn.gk = g.gk
    left join cancellations as c on c.gk = g.gk
),

dense as (
    select
        g.account_id,
        g.account_key,
        g.day,
        g.gk,
        -- the first day of a segment (the states below hold from it to the next one)
        case when m.gk is not null then g.day end as segment_day,
        -- a day with deltas (window_running has its running sums)
        case when a.gk is not null then g.gk end as delta_gk
    from window_grid as g
    left join window_daily as a
        on a.gk = g.gk
    left join segments as m
        on m.gk = g.gk
),

windowed as (
    -- every output day with its running sums: those of its account's latest day with deltas (none yet: 0, and
    -- no first days), and its segment
    select
        d.account_id,
        d.day,
        d.gk,
        d.segment_day,
        coalesce(r.events_30d, 0) as events_30d,
        coalesce(r.events_prior_30d, 0) as events_prior_30d,
        coalesce(r.active_user_days_30d, 0) as active_user_days_30d,
        coalesce(r.active_users_7d, 0) as active_users_7d,
        coalesce(r.active_users_30d, 0) as active_users_30d,
        coalesce(r.key_features_30d, 0) as key_features_30d,
        coalesce(r.milestones_reached, 0) as milestones_reached,
        coalesce(r.tickets_30d, 0) as tickets_30d,
        coalesce(r.open_urgent_high, 0) as open_urgent_high,
        coalesce(r.csat_good_90d, 0) as csat_good_90d,
        coalesce(r.csat_bad_90d, 0) as csat_bad_90d,
        coalesce(r.nps_promoters_90d, 0) as nps_promoters_90d,
        coalesce(r.nps_detractors_90d, 0) as nps_detractors_90d,
        coalesce(r.nps_responses_90d, 0) as nps_responses_90d,
        coalesce(r.failed_payments_90d, 0) as failed_payments_90d,
        r.first_activity_day,
        r.first_value_at
    from (
        select
            account_id,
            day,
            gk,
            max(segment_day) over run as segment_day,
            max(delta_gk) over run as delta_gk
        from dense
        window run as (partition by account_key order by day rows between unbounded preceding and current row)
    ) as d
    left join window_running as r
        on r.gk = d.delta_gk
),

indicator_days as (
    -- the output days with their segment's states; the running sums plus what came before the first output day
    select
        w.account_id,
        w.day,
        ss.root_account_id,
        ss.created_at,
        -- the earlier of the carry's (or the history's) first value event and the days' read so far (least skips nulls)
        least(ss.first_value_at, w.first_value_at) as first_value_at,
        coalesce(ss.mrr, 0) as mrr,
        ss.is_trial,
        ss.plan,
        ss.seats,
        ss.plan_features,
        w.events_30d,
        w.events_prior_30d,
        -- the days of the prior 30 days (59 .. 30 days back) on or after the grid's start
        greatest(0, least(30, date_diff('day', least(ss.grid_start, w.first_activity_day), w.day) - 29)) as prior_days,
        w.active_user_days_30d,
        w.active_users_7d + coalesce(ss.carry_users_7d, 0) as active_users_7d,
        w.active_users_30d + coalesce(ss.carry_users_30d, 0) as active_users_30d,
        w.key_features_30d + coalesce(ss.carry_key_features_30d, 0) as key_features_30d,
        w.milestones_reached + coalesce(ss.carry_milestones_reached, 0) as milestones_reached,
        w.tickets_30d,
        w.open_urgent_high + coalesce(ss.carry_urgent_high, 0) as open_urgent_high,
        ss.median_first_reply_minutes,
        ss.median_resolution_minutes,
        ss.first_contact_resolution,
        w.csat_good_90d,
        w.csat_bad_90d,
        w.nps_promoters_90d,
        w.nps_detractors_90d,
        w.nps_responses_90d,
        ss.csm_sentiment,
        ss.csm_id,
        ss.segment,
        ss.oldest_due_day,
        w.failed_payments_90d,
        ss.renewal_day,
        ss.cancellation_scheduled
    from windowed as w
    left join segment_states as ss
        on ss.gk = w.gk - date_diff('day', w.segment_day, w.day)
)

select
    w.account_id,
    w.day,
    w.root_account_id,
    w.mrr,
    12 * w.mrr as arr,
    w.mrr > 0 as is_active,
    coalesce(w.is_trial, 0) = 1 as is_trial,
    w.plan,
    cast(w.seats as bigint) as seats,
    cast(w.events_30d as bigint) as events_30d,
    case when w.prior_days = 30 then cast(w.events_prior_30d as bigint) end as events_prior_30d,
    cast(w.active_users_7d as bigint) as active_users_7d,
    cast(w.active_users_30d as bigint) as active_users_30d,
    case when w.active_users_30d > 0
        then cast(w.active_user_days_30d as double) / 30.0 / cast(w.active_users_30d as double) end as stickiness,
    case when w.active_users_30d > 0
        then cast(w.events_30d as double) / cast(w.active_users_30d as double) end as events_per_active_user_30d,
    case when w.prior_days = 30 and w.events_prior_30d > 0
        then cast(w.events_30d as double) / cast(w.events_prior_30d as double) - 1 end as usage_trend,
    cast(w.key_features_30d as bigint) as key_features_30d,
    w.plan_features,
    case when w.plan_features > 0
        then cast(w.key_features_30d as double) / cast(w.plan_features as double) end as feature_adoption,
    case when w.seats > 0 then cast(w.active_users_30d as double) / cast(w.seats as double) end as seat_utilisation,
    case when cast(w.first_value_at as date) <= w.day then 1 else 0 end as is_activated,
    case when cast(w.first_value_at as date) <= w.day then w.first_value_at end as first_value_at,
    case when cast(w.first_value_at as date) <= w.day
        then cast(date_diff('second', w.created_at, w.first_value_at) as double) / 86400.0 end as ttfv_days,
    case when mc.milestones > 0
        then cast(w.milestones_reached as double) / cast(mc.milestones as double) end as onboarding_completion,
    cast(w.tickets_30d as bigint) as tickets_30d,
    cast(w.open_urgent_high as bigint) as open_urgent_high,
    w.median_first_reply_minutes,
    w.median_resolution_minutes,
    w.first_contact_resolution,
    cast(w.csat_good_90d + w.csat_bad_90d as bigint) as csat_responses_90d,
    case when w.csat_good_90d + w.csat_bad_90d > 0
        then cast(w.csat_good_90d as double) / cast(w.csat_good_90d + w.csat_bad_90d as double) end as csat_90d,
    cast(w.nps_responses_90d as bigint) as nps_responses_90d,
    case when w.nps_responses_90d > 0
        then 100.0 * cast(w.nps_promoters_90d - w.nps_detractors_90d as double) / cast(w.nps_responses_90d as double)
    end as nps_90d,
    w.csm_sentiment,
    w.csm_id,
    w.segment,
    coalesce(date_diff('day', w.oldest_due_day, w.day), 0) as max_days_past_due,
    cast(w.failed_payments_90d as bigint) as failed_payments_90d,
    date_diff('day', w.day, w.renewal_day) as days_to_renewal,
    case when w.cancellation_scheduled then 1 else 0 end as cancellation_scheduled
from indicator_days as w
cross join milestone_count as mc
cross join build_window as bw
-- month by month, then each account's days together and in order, and the days the next nightly writes again
-- (rewritten_from: the build's fingerprint day, its lookback's first day) last, as the scores are written
-- (cs_kpis/defs/health/scoring.py, by_month): the next nightly's delete by day then takes rows at each account
-- range's end, not a few of every row group (BENCHMARKS.md, session 34), and its filters by day skip the other
-- months' row groups. Unordered, the join on the latest day with deltas (a build side of a third of the output days)
-- returns the rows shuffled, and the scores, which read them by account, ran 8 % slower (BENCHMARKS.md, session 31)
order by case when w.day >= bw.rewritten_from then 1 else 0 end, date_trunc('month', w.day), w.account_id, w.day
