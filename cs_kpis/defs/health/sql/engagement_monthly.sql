-- Company-wide engagement, support and feedback KPIs per calendar month (the current month up to the as-of
-- day), from the daily leading indicators and the support and survey facts of accounts mapped to the CRM.
-- Activation rate = accounts activated (first value event) within 30 days of their CRM creation / accounts
-- created in the month whose 30 days have passed; TTFV over accounts whose first value event is in the month.
-- @grain month
-- @column month: first day of the calendar month
-- @column accounts_scored: accounts with an indicator row on the month's read day (started and not before)
-- @column active_accounts: accounts with MRR > 0 on the read day
-- @column accounts_created: CRM accounts created in the month that have a subscription
-- @column accounts_activated_30d: of those, activated within 30 days of creation (null while the 30 days have not passed)
-- @column activation_rate: accounts_activated_30d / accounts_created whose 30 days have passed (null when none)
-- @column median_ttfv_days: median time to first value, days, of accounts whose first value event is in the month
-- @column mean_ttfv_days: mean of the same
-- @column active_users_30d: distinct users active in the 30 days to the read day, summed over accounts
-- @column median_feature_adoption: median feature adoption of active accounts on the read day
-- @column median_seat_utilisation: median seat utilisation of active accounts on the read day
-- @column tickets_created: support tickets created in the month
-- @column tickets_solved: support tickets solved in the month
-- @column mean_resolution_minutes: mean full-resolution minutes of tickets solved in the month
-- @column median_resolution_minutes: median full-resolution minutes of tickets solved in the month
-- @column median_first_reply_minutes: median first-reply minutes of tickets created in the month
-- @column first_contact_resolution: solved in the month with no reopen and at most one agent reply / solved in the month
-- @column csat_responses: good + bad satisfaction ratings answered in the month
-- @column csat: good / (good + bad) in the month (null without ratings)
-- @column nps_responses: NPS responses in the month
-- @column nps: % promoters - % detractors of the month's responses, -100..100 (null without responses)
with months as (
    select month, month_end, read_day from marts.dim_month
),

as_of as (
    select max(day) as as_of_day from marts.dim_day
),

read_day_indicators as (
    select
        m.month,
        count(*) as accounts_scored,
        sum(case when i.is_active then 1 else 0 end) as active_accounts,
        sum(i.active_users_30d) as active_users_30d,
        median(case when i.is_active then i.feature_adoption end) as median_feature_adoption,
        median(case when i.is_active then i.seat_utilisation end) as median_seat_utilisation
    from months as m
    inner join kpis.account_indicators_daily as i on i.day = m.read_day
    group by m.month
),

first_days as (
    -- each account's first indicator row carries its creation; the last row carries its first value event
    select
        i.account_id,
        a.created_at,
        max(i.first_value_at) as first_value_at
    from kpis.account_indicators_daily as i
    inner join marts.accounts as a on a.account_id = i.account_id
    group by i.account_id, a.created_at
),

activation as (
    select
        m.month,
        count(*) as accounts_created,
        sum(case when cast(f.created_at + interval 30 day as date) <= x.as_of_day
                 and f.first_value_at is not null and f.first_value_at <= f.created_at + interval 30 day
                 then 1 else 0 end) as activated,
        sum(case when cast(f.created_at + interval 30 day as date) <= x.as_of_day then 1 else 0 end) as matured
    from first_days as f
    cross join as_of as x
    inner join months as m on m.month = date_trunc('month', cast(f.created_at as date))
    group by m.month
),

ttfv as (
    select
        m.month,
        median(cast(date_diff('second', f.created_at, f.first_value_at) as double) / 86400.0) as median_ttfv_days,
        avg(cast(date_diff('second', f.created_at, f.first_value_at) as double) / 86400.0) as mean_ttfv_days
    from first_days as f
    inner join months as m on m.month = date_trunc('month', cast(f.first_value_at as date))
    group by m.month
),

tickets as (
    -- include: support_tickets
),

created as (
    select m.month, count(*) as tickets_created, median(t.first_reply_minutes) as median_first_reply_minutes
    from tickets as t
    inner join months as m on m.month = date_trunc('month', t.created_day)
    group by m.month
),

solved as (
    select
        m.month,
        count(*) as tickets_solved,
        avg(t.full_resolution_minutes) as mean_resolution_minutes,
        median(t.full_resolution_minutes) as median_resolution_minutes,
        cast(sum(t.is_fcr) as double) / cast(count(*) as double) as first_contact_resolution
    from tickets as t
    inner join months as m on m.month = date_trunc('month', t.solved_day)
    group by m.month
),

daily as (
    select
        m.month,
        sum(a.csat_good) as csat_good,
        sum(a.csat_bad) as csat_bad,
        sum(a.nps_promoters) as promoters,
        sum(a.nps_detractors) as detractors,
        sum(a.nps_promoters + a.nps_passives + a.nps_detractors) as nps_responses
    from kpis.account_activity_daily as a
    inner join months as m on m.month = date_trunc('month', a.day)
    group by m.month
)

select
    m.month,
    coalesce(r.accounts_scored, 0) as accounts_scored,
    coalesce(r.active_accounts, 0) as active_accounts,
    coalesce(ac.accounts_created, 0) as accounts_created,
    case when ac.matured > 0 then ac.activated end as accounts_activated_30d,
    case when ac.matured > 0 then cast(ac.activated as double) / cast(ac.matured as double) end as activation_rate,
    tt.median_ttfv_days,
    tt.mean_ttfv_days,
    r.active_users_30d,
    r.median_feature_adoption,
    r.median_seat_utilisation,
    coalesce(c.tickets_created, 0) as tickets_created,
    coalesce(s.tickets_solved, 0) as tickets_solved,
    s.mean_resolution_minutes,
    s.median_resolution_minutes,
    c.median_first_reply_minutes,
    s.first_contact_resolution,
    coalesce(d.csat_good + d.csat_bad, 0) as csat_responses,
    case when d.csat_good + d.csat_bad > 0
        then cast(d.csat_good as double) / cast(d.csat_good + d.csat_bad as double) end as csat,
    coalesce(d.nps_responses, 0) as nps_responses,
    case when d.nps_responses > 0
        then 100.0 * cast(d.promoters - d.detractors as double) / cast(d.nps_responses as double) end as nps
from months as m
left join read_day_indicators as r on r.month = m.month
left join activation as ac on ac.month = m.month
left join ttfv as tt on tt.month = m.month
left join created as c on c.month = m.month
left join solved as s on s.month = m.month
left join daily as d on d.month = m.month
