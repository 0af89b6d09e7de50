-- One row per stretch of time in which a subscription's MRR (and its list MRR, FX rate, seats, plan and
-- trial/delinquency flags) is constant, in the reporting currency (USD). Built from marts.subscription_states:
-- - the state in force on a day is the last state reported that day (end-of-day state), so a
--   subscription that ends on day d contributes nothing on d (end_date is exclusive);
-- - a past-due spell longer than 30 days (counted in ends of day, up to the end of the data's as-of
--   day) is delinquent churn: MRR is 0 from the day it went past due, and the period is flagged delinquent; shorter spells keep contributing;
-- - currency conversion uses the rate of the day the current local MRR took effect, so exchange-rate
--   moves alone never create MRR movements; a delinquent spell and the payment that ends it change no local
--   MRR, so they keep the rate; rounded half-up to the cent per subscription;
-- - the list MRR is converted at the same rate as the MRR (not at the rate of the day the list amount was set):
--   list_mrr - mrr is the discount at one rate and list_mrr = mrr when paying without a discount; so it
--   moves with the rate when only the MRR's local amount changes (a discount starting or ending,
--   a trial converting, a return from unpaid or paused), which is why no KPI reads it;
-- - a period has one rate: it ends where the rate changes, even when the USD figures do not (MRR 0 in a
--   delinquent spell whose discount ends, a list MRR that rounds to the same cent at both rates);
-- - the state after a subscription ended is not a period.
-- @grain subscription_id, start_date
-- @column subscription_id: Stripe subscription id
-- @column customer_id: Stripe customer id
-- @column account_id: the CRM account the customer maps to (null when the customer matches no CRM account)
-- @column start_date: first day of the period (UTC)
-- @column end_date: first day after the period (exclusive); null while open
-- @column mrr: MRR in USD after recurring discounts, rounded to the cent
-- @column list_mrr: MRR in USD before discounts, at the period's fx_rate (the MRR's rate)
-- @column currency: the subscription's currency
-- @column fx_rate: USD per unit of currency, fixed on the day the local MRR took effect; one per period (mrr and list_mrr)
-- @column plan: plan tier of the main licensed item
-- @column billing_interval: month, year, week or day
-- @column interval_count: intervals per billing period
-- @column seats: quantity of the main licensed item
-- @column is_trial: the subscription was trialing (MRR 0)
-- @column is_delinquent: past due for more than 30 days: counted as churned from the day it went past due
with as_of as (
    select max(day) as data_as_of from marts.dim_day
),

ranked as (
    select
        s.*,
        cast(s.changed_at as date) as change_day,
        row_number() over (
            partition by s.subscription_id, cast(s.changed_at as date)
            order by s.changed_at desc, s.event_id desc
        ) as rn
    from marts.subscription_states as s
),

daily as (
    -- the end-of-day states, each with: the MRR of the day before; its past-due spell's number, the days not
    -- past due so far (the days of one spell have one number, and the next spell another); and the next day
    -- it is not past due. One sort of the states for the three (each window of its own sorted them again)
    select
        *,
        lag(mrr_minor) over (partition by subscription_id order by change_day) as prev_mrr_minor,
        sum(case when is_past_due then 0 else 1 end) over (
            partition by subscription_id order by change_day rows between unbounded preceding and current row
        ) as spell_no,
        min(case when not is_past_due then change_day end) over (
            partition by subscription_id order by change_day rows between 1 following and unbounded following
        ) as next_paid_day
    from ranked
    where rn = 1
),

spell_bounds as (
    -- a spell runs from its first past-due day until the next state that is not past due
    select
        subscription_id,
        spell_no,
        min(change_day) as spell_start,
        min(next_paid_day) as spell_end
    from daily
    where is_past_due
    group by subscription_id, spell_no
),

effective as (
    select
        m.*,
        -- days past due at the end of a day: spell_start .. spell_end - 1 for a closed spell, and
        -- spell_start .. as-of day for an open one; delinquent when that is more than 30 (an open spell
        -- that began on day P qualifies once as-of - P >= 30)
        coalesce(m.is_past_due and b.spell_start is not null
            and (case when b.spell_end is null then date_diff('day', b.spell_start, a.data_as_of) + 1
                      else date_diff('day', b.spell_start, b.spell_end) end) > 30, false) as is_delinquent
    from daily as m
    cross join as_of as a
    left join spell_bounds as b
        on b.subscription_id = m.subscription_id and b.spell_no = m.spell_no and m.is_past_due
),

with_mrr as (
    select
        *,
        case when is_delinquent then 0 else mrr_minor end as effective_mrr_minor
    from effective
),

fx_anchor as (
    -- the day the current local MRR took effect: the rate is fixed on that day. The local MRR, not the
    -- effective one: a delinquent spell (0) and the payment ending it are flags, not amounts, so MRR comes
    -- back at the rate of the day its amount was set (before or during the spell), not of the payment day
    select
        *,
        max(case when prev_mrr_minor is null or prev_mrr_minor <> mrr_minor
                 then change_day end) over (
            partition by subscription_id order by change_day rows between unbounded preceding and current row
        ) as mrr_since
    from with_mrr
),

converted as (
    select
        f.*,
        r.rate as fx_rate,
        -- half-up to the cent; the 1e-9 guard absorbs binary floating error (see marts/README.md). The list
        -- MRR takes the MRR's rate, not one of its own: list_mrr / fx_rate is the local list amount (the check
        -- revenue_history_matches_paid_invoices reads it so) and a paying subscription without a discount,
        -- a converted trial too, has list_mrr = mrr
        cast(round(f.effective_mrr_minor / 100.0 * r.rate + 1e-9, 2) as decimal(18, 2)) as mrr,
        cast(round(f.list_mrr_minor / 100.0 * r.rate + 1e-9, 2) as decimal(18, 2)) as list_mrr
    from fx_anchor as f
    left join staging.stg_billing__fx_rates as r
        on r.currency = f.currency and r.rate_date = f.mrr_since
),

islands as (
    select
        *,
        case when lag(mrr) over w is null
                  or lag(mrr) over w <> mrr
                  or lag(is_trial) over w <> is_trial
                  or lag(is_delinquent) over w <> is_delinquent
                  or lag(coalesce(plan, '')) over w <> coalesce(plan, '')
                  -- the price before discounts and the seats too: a 100%-discounted subscription keeps MRR 0
                  -- through a seat change, and its period must not keep the old seats and list price
                  or lag(list_mrr) over w <> list_mrr
                  or lag(coalesce(seats, -1)) over w <> coalesce(seats, -1)
                  -- and the rate, so that each period's fx_rate is the one its amounts were converted at: the
                  -- local MRR can change while the USD figures do not (a discount ending in a delinquent spell,
                  -- MRR 0, with a list MRR that rounds to the same cent at the new rate)
                  or lag(coalesce(fx_rate, -1)) over w <> coalesce(fx_rate, -1)
                  or lag(ended_at is not null or status = 'canceled') over w <> (ended_at is not null or status = 'canceled')
             then 1 else 0 end as starts_period
    from converted
    window w as (partition by subscription_id order by change_day)
),

numbered as (
    select
        *,
        sum(starts_period) over (
            partition by subscription_id order by change_day rows between unbounded preceding and current row
        ) as period_no
    from islands
),

periods as (
    select
        subscription_id,
        period_no,
        min(change_day) as start_date,
        max(customer_id) as customer_id,
        max(mrr) as mrr,
        max(list_mrr) as list_mrr,
        max(currency) as currency,
        max(fx_rate) as fx_rate,  -- one value per period (islands split on it), as mrr and list_mrr
        max(plan) as plan,
        max(billing_interval) as billing_interval,
        max(interval_count) as interval_count,
        max(seats) as seats,
        bool_or(is_trial) as is_trial,
        bool_or(is_delinquent) as is_delinquent,
        bool_or(ended_at is not null or status = 'canceled') as is_ended
    from numbered
    group by subscription_id, period_no
),

bounded as (
    select
        *,
        lead(start_date) over (partition by subscription_id order by start_date) as end_date
    from periods
)

select
    b.subscription_id,
    b.customer_id,
    a.account_id,
    b.start_date,
    b.end_date,
    b.mrr,
    b.list_mrr,
    b.currency,
    b.fx_rate,
    b.plan,
    b.billing_interval,
    b.interval_count,
    b.seats,
    b.is_trial,
    b.is_delinquent
from bounded as b
left join staging.stg_billing__customers as c on c.customer_id = b.customer_id
left join marts.accounts as a on a.account_id = c.crm_account_id
where not b.is_ended
