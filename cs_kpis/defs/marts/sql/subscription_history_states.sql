-- The subscription ledger before the event ledger begins, rebuilt from what Stripe keeps for ever: the
-- invoices (every line has its service period, price and quantity, proration lines mark mid-period
-- changes: a credit takes the old item off, a charge puts the new one on), the pending invoice items
-- (prorations of a change not invoiced yet) and the subscriptions list (start, trial, end). A credit is
-- told from a charge by what Stripe marks it with (staging's is_proration_credit: the line it credits, a
-- negative amount, or Stripe's "Unused time" description when a discount took the whole amount: a
-- proration's amount is net of the subscription's discounts, so a 100% discount leaves 0 on both).
-- Stripe keeps only ~30 days of events, so on
-- a real account nearly all history comes from here; marts.subscription_states takes these states for
-- the times before the first loaded event and the event states from then on (rules: marts/README.md).
-- One row per change point: subscription start, each licensed line's period start (a cycle's items, or
-- a proration), trial end, discount end (the subscription's, or an item's own from the lines' expanded
-- discounts), past-due spell start and end, and the end of the subscription;
-- plus, for a subscription the event ledger never mentions, its current state from the subscriptions
-- list, in force from the start of the ledger.
-- @grain subscription_id, changed_at
-- @column source: invoices (history from invoice lines) or subscriptions (the current state from the list)
-- @column subscription_id: Stripe subscription id (sub_...)
-- @column customer_id: Stripe customer id (cus_...)
-- @column changed_at: when the state began (UTC)
-- @column status: trialing, active, past_due or canceled, as the invoices and the subscription show it
-- @column currency: ISO currency of the subscription, upper case
-- @column billing_interval: month, year, week or day (of the licensed items)
-- @column interval_count: number of intervals per billing period
-- @column plan: the plan tier of the main licensed line (price metadata plan_tier, else the price nickname)
-- @column seats: quantity of the main licensed line
-- @column list_mrr_minor: undiscounted MRR in minor units: each licensed line's price x quantity per month
-- @column discounted_mrr_minor: list_mrr_minor after every discount in force that counts for MRR, applied in Stripe's order (each item's own, then the subscription's; minor units)
-- @column coupon_id: the first discount in force that counts for MRR (the subscription's, else an item's own), if any
-- @column cancel_at_period_end: always false here (the invoices do not show a scheduled cancellation)
-- @column cancel_at: always null here
-- @column ended_at: when service ended, once it has
with ledger as (
    -- the event ledger covers the time from its first loaded event on
    select min(created_at) as ledger_start from staging.stg_billing__events
),

list_as_of as (
    -- the subscriptions list is as of the end of its last extract day
    select cast(max(extract_day) as timestamp) + interval '1' day - interval '1' second as listed_at
    from staging.stg_billing__subscriptions
),

subs as (
    select
        s.subscription_id,
        s.customer_id,
        s.currency,
        coalesce(s.started_at, s.created_at) as started_at,
        s.trial_start_at,
        s.trial_end_at,
        s.ended_at,
        s.status,
        s.discount_coupon_id,
        s.discount_percent_off,
        s.discount_amount_off_minor,
        s.discount_start_at,
        s.discount_end_at
    from staging.stg_billing__subscriptions as s
),

invoices as (
    select i.*
    from staging.stg_billing__invoices as i
    where i.status <> 'draft' and i.subscription_id is not null
),

billed as (
    -- the lines of the subscription's invoices
    select
        coalesce(l.subscription_id, i.subscription_id) as subscription_id,
        l.line_id,
        l.subscription_item_id,
        l.period_start,
        l.is_proration,
        l.is_proration_credit,
        l.quantity,
        l.price_id
    from staging.stg_billing__invoice_lines as l
    inner join invoices as i on i.invoice_id = l.invoice_id
    where i.status <> 'void'
),

pending as (
    -- proration items not yet on an invoice (a change credited on the next invoice, e.g. a seat decrease
    -- on an annual plan): they date the change until that invoice comes; once billed, they are lines
    select
        subscription_id,
        invoice_item_id as line_id,
        subscription_item_id,
        period_start,
        is_proration,
        is_proration_credit,
        quantity,
        price_id
    from staging.stg_billing__invoice_items
    where is_pending and is_proration and subscription_id is not null
),

quantities as (
    -- every quantity this model prices: invoice lines, pending invoice items and the listed items
    select line_id as row_id, price_id, quantity from billed
    union all
    select line_id as row_id, price_id, quantity from pending
    union all
    select subscription_item_id as row_id, price_id, quantity from staging.stg_billing__subscription_items
),

priced as (
    -- what each quantity of its price costs per billing period, by the price's tiers (marts.price_tiers:
    -- per unit, graduated or volume; transform_quantity applied): the shared pricing rule
    -- include: priced_quantities
),

lines as (
    -- licensed recurring lines and pending prorations, each worth its price for its quantity per month
    select
        l.subscription_id,
        l.line_id,
        l.subscription_item_id,
        l.period_start,
        l.is_proration,
        l.is_proration_credit,
        l.quantity,
        coalesce(p.plan_tier, p.price_name) as plan,
        p."interval" as billing_interval,
        p.interval_count,
        case p."interval"
            when 'month' then cast(p.interval_count as double)
            when 'year' then 12.0 * p.interval_count
            when 'week' then 12.0 * p.interval_count / 52.0
            when 'day' then 12.0 * p.interval_count / 365.0
        end as months_per_period,
        ba.amount_per_interval
    from (select * from billed union all select * from pending) as l
    inner join staging.stg_billing__prices as p on p.price_id = l.price_id
    inner join priced as ba on ba.row_id = l.line_id
    cross join ledger as lg
    cross join list_as_of as la
    -- only the time before the ledger is rebuilt (with the full event history, nothing is); with no
    -- events at all, the time up to the subscriptions list's extract: nothing later is known yet
    where l.period_start < coalesce(lg.ledger_start, la.listed_at)
      and coalesce(p.usage_type, 'licensed') = 'licensed'
      and coalesce(p.price_type, 'recurring') = 'recurring'
),

snapshots as (
    -- a period's regular (not proration) lines are the subscription's licensed items from period_start
    select
        subscription_id,
        period_start as point_at,
        sum(amount_per_interval / months_per_period) as snapshot_mrr,
        max(billing_interval) as billing_interval,
        max(interval_count) as interval_count,
        max(months_per_period) as months_per_period
    from lines
    where not is_proration
    group by subscription_id, period_start
),

credited as (
    -- the items a proration credits (takes off) from its period start
    select distinct subscription_id, period_start, subscription_item_id, plan, quantity
    from lines
    where is_proration_credit
),

main_lines as (
    -- the main licensed line of each period and of each proration: the largest charge. A period's regular
    -- line that a proration credits from the very start of the period is not among them: the change came at
    -- the cycle's instant, after the cycle began (as list_mrr_minor counts it in states below), so the item
    -- now has the proration's quantity (3 seats billed on the Sep 9 renewal, down to 2 the same second: 2)
    select subscription_id, period_start as point_at, plan, quantity as seats
    from (
        select
            l.*,
            row_number() over (
                partition by l.subscription_id, l.period_start
                order by l.amount_per_interval desc, l.line_id
            ) as rn
        from lines as l
        left join credited as c
            on c.subscription_id = l.subscription_id
            and c.period_start = l.period_start
            and not l.is_proration
            and (c.subscription_item_id = l.subscription_item_id
                 or ((c.subscription_item_id is null or l.subscription_item_id is null)
                     and c.plan = l.plan and c.quantity = l.quantity))
        where not l.is_proration_credit
          and c.subscription_id is null
    ) as ranked
    where rn = 1
),

prorations as (
    -- a proration line changes the items from its period start: a credit removes the old item's MRR, a
    -- charge adds the new one's
    select
        subscription_id,
        period_start as point_at,
        sum(case when is_proration_credit then -1 else 1 end * amount_per_interval / months_per_period) as delta_mrr
    from lines
    where is_proration
    group by subscription_id, period_start
),

failed as (
    -- a past-due spell begins when an invoice is not paid at its first attempt (still open, marked
    -- uncollectible, or paid only after a retry) and lasts until an invoice of the subscription is paid,
    -- this one is voided or marked uncollectible, or the subscription ends
    select
        i.subscription_id,
        i.invoice_id,
        coalesce(i.finalized_at, i.created_at) as spell_start,
        i.voided_at,
        i.marked_uncollectible_at
    from invoices as i
    where i.amount_due_minor > 0
      and (i.attempt_count > 1 or i.status in ('open', 'uncollectible')
           or (i.status = 'void' and i.paid_at is null))
),

spells as (
    select
        f.subscription_id,
        f.spell_start,
        -- least() skips nulls; null when the spell is still open
        least(min(p.paid_at), max(f.voided_at), max(f.marked_uncollectible_at), max(s.ended_at)) as spell_end
    from failed as f
    inner join subs as s on s.subscription_id = f.subscription_id
    left join invoices as p
        on p.subscription_id = f.subscription_id and p.paid_at > f.spell_start
    group by f.subscription_id, f.invoice_id, f.spell_start
),

discount_lists as (
    -- the lists of expanded discounts this model reads, each kind named by listed_on: the subscription's
    -- invoices' (expand[]=data.discounts: each discount with its coupon, start and end) and the subscriptions
    -- list's (expand[]=data.discounts)
    -- A subscription's invoices repeat the same list, parsed once (139,017 lists on the large company are 22,721
    -- per subscription): what reads their entries keeps one row per discount (grouped by min and max)
    select distinct 'invoices' as listed_on, i.subscription_id, i.discounts from invoices as i
    union all
    select 'subscriptions' as listed_on, su.subscription_id, su.discounts from staging.stg_billing__subscriptions as su
),

listed_entries as (
    -- each entry of each list, with its place in the list: the shared parse of an expanded discount
    -- include: expanded_discounts
),

discounts as (
    -- every discount seen on the subscription's invoices, in the order Stripe lists them
    select
        subscription_id,
        discount_id,
        min(position) as discount_position,
        max(coupon_id) as coupon_id,
        max(coupon_duration) as coupon_duration,
        max(percent_off) as percent_off,
        max(amount_off) as amount_off,
        max(coupon_currency) as coupon_currency,
        max(discount_start) as discount_start,
        max(discount_end) as discount_end
    from listed_entries
    where listed_on = 'invoices'
    group by subscription_id, discount_id
),

discounted_items as (
    -- the items with discounts of their own on their invoice lines (marts.subscription_item_discounts)
    select distinct subscription_id, subscription_item_id
    from marts.subscription_item_discounts
    where source = 'invoices'
),

points as (
    select subscription_id, started_at as point_at, 0 as kind from subs
    union all select subscription_id, point_at, 1 from snapshots
    union all select subscription_id, point_at, 2 from prorations
    union all select subscription_id, trial_end_at, 3 from subs where trial_end_at is not null
    union all select subscription_id, ended_at, 3 from subs where ended_at is not null
    union all select subscription_id, discount_end, 3 from discounts where discount_end is not null
    -- the end of an item's own discount
    union all select subscription_id, valid_from, 3 from marts.subscription_item_discounts
        where source = 'invoices' and is_discount_end
    union all select subscription_id, spell_start, 3 from spells
    union all select subscription_id, spell_end, 3 from spells where spell_end is not null
),

timeline as (
    -- every point before the ledger, in time order, with the running sum of proration changes
    select
        p.subscription_id,
        p.point_at,
        p.kind,
        row_number() over (partition by p.subscription_id order by p.point_at, p.kind) as seq,
        coalesce(r.delta_mrr, 0) as delta_mrr
    from (
        select pt.subscription_id, pt.point_at, min(pt.kind) as kind
        from points as pt
        cross join ledger as lg
        cross join list_as_of as la
        where pt.point_at < coalesce(lg.ledger_start, la.listed_at)
        group by pt.subscription_id, pt.point_at
    ) as p
    left join prorations as r on r.subscription_id = p.subscription_id and r.point_at = p.point_at
),

carried as (
    select
        t.*,
        sum(t.delta_mrr) over w as running_delta,
        max(case when s.point_at is not null then t.seq end) over w as snapshot_seq,
        max(case when m.point_at is not null then t.seq end) over w as main_seq
    from timeline as t
    left join snapshots as s on s.subscription_id = t.subscription_id and s.point_at = t.point_at
    left join main_lines as m on m.subscription_id = t.subscription_id and m.point_at = t.point_at
    window w as (partition by t.subscription_id order by t.seq rows between unbounded preceding and current row)
),

states as (
    select
        c.subscription_id,
        c.point_at,
        -- the snapshot plus the prorations after it; a proration at the very moment of a cycle is a change
        -- made after the cycle began, so it counts (the running sum before the snapshot row is taken off)
        s.snapshot_mrr + c.running_delta - (sc.running_delta - sc.delta_mrr) as list_mrr_minor,
        s.billing_interval,
        s.interval_count,
        s.months_per_period,
        m.plan,
        m.seats
    from carried as c
    left join carried as sc on sc.subscription_id = c.subscription_id and sc.seq = c.snapshot_seq
    left join snapshots as s on s.subscription_id = sc.subscription_id and s.point_at = sc.point_at
    left join carried as mc on mc.subscription_id = c.subscription_id and mc.seq = c.main_seq
    left join main_lines as m on m.subscription_id = mc.subscription_id and m.point_at = mc.point_at
),

in_window as (
    select
        st.*,
        su.customer_id,
        su.currency,
        su.ended_at as sub_ended_at,
        su.ended_at is not null and st.point_at >= su.ended_at as is_ended,
        su.trial_start_at is not null and st.point_at >= su.trial_start_at and st.point_at < su.trial_end_at as is_trial
    from states as st
    inner join subs as su on su.subscription_id = st.subscription_id
    cross join ledger as lg
    cross join list_as_of as la
    where st.point_at >= su.started_at
      and (su.ended_at is null or st.point_at <= su.ended_at)
      and st.point_at < coalesce(lg.ledger_start, la.listed_at)
),

past_due as (
    select w.subscription_id, w.point_at
    from in_window as w
    inner join spells as sp
        on sp.subscription_id = w.subscription_id
        and sp.spell_start <= w.point_at
        and (sp.spell_end is null or sp.spell_end > w.point_at)
    group by w.subscription_id, w.point_at
),

flagged as (
    select w.*, pd.point_at is not null as is_past_due
    from in_window as w
    left join past_due as pd on pd.subscription_id = w.subscription_id and pd.point_at = w.point_at
),

item_states as (
    -- at each point, the list MRR of each item with discounts of its own: its lines in force (the regular
    -- lines of the latest period, and the prorations since, a credit taking away), as in list_mrr_minor
    select
        c.subscription_id,
        c.point_at,
        di.subscription_item_id,
        sum(case when l.is_proration_credit then -1 else 1 end
            * cast(l.amount_per_interval as double) / l.months_per_period) as item_mrr_minor,
        max(l.months_per_period) as months_per_period
    from carried as c
    inner join carried as sc on sc.subscription_id = c.subscription_id and sc.seq = c.snapshot_seq
    inner join discounted_items as di on di.subscription_id = c.subscription_id
    inner join lines as l
        on l.subscription_id = di.subscription_id
        and l.subscription_item_id = di.subscription_item_id
        and ((not l.is_proration and l.period_start = sc.point_at)
             or (l.is_proration and l.period_start >= sc.point_at and l.period_start <= c.point_at))
    group by c.subscription_id, c.point_at, di.subscription_item_id
),

listed_item_rows as (
    -- the subscription's licensed items as the subscriptions list shows them now, each with its list MRR
    select
        i.*,
        cast(i.amount_per_interval as double) / i.months_per_period as item_mrr_minor
    from (
        select
            si.subscription_id,
            si.subscription_item_id,
            si."interval",
            si.interval_count,
            si.plan_tier,
            si.price_name,
            si.quantity,
            la.amount_per_interval,
            case si."interval"
                when 'month' then cast(si.interval_count as double)
                when 'year' then cast(12.0 * si.interval_count as double)
                when 'week' then cast(12.0 * si.interval_count as double) / 52.0
                when 'day' then cast(12.0 * si.interval_count as double) / 365.0
            end as months_per_period,
            row_number() over (
                partition by si.subscription_id
                order by la.amount_per_interval desc, si.subscription_item_id
            ) as rn
        from staging.stg_billing__subscription_items as si
        inner join priced as la on la.row_id = si.subscription_item_id
        where coalesce(si.usage_type, 'licensed') = 'licensed'
    ) as i
),

listed_items as (
    -- the subscription's items as the subscriptions list shows them now
    select
        subscription_id,
        sum(item_mrr_minor) as list_mrr_minor,
        max("interval") as billing_interval,
        max(interval_count) as interval_count,
        max(months_per_period) as months_per_period,
        max(case when rn = 1 then coalesce(plan_tier, price_name) end) as plan,
        max(case when rn = 1 then quantity end) as seats
    from listed_item_rows
    group by subscription_id
),

discount_inputs as (
    -- the discounts that count for MRR, in Stripe's order, as lists for the shared discount rule:
    -- at each point of the history (item_position -1): forever, or repeating from its start until its end,
    -- from the invoices' discounts; a once coupon never; an amount_off only in the subscription's currency,
    -- its own or from its currency_options
    select
        f.subscription_id as owner_id,
        f.point_at as at_time,
        -1 as item_position,
        row_number() over (
            partition by f.subscription_id, f.point_at
            order by d.discount_position, d.discount_start, d.discount_id
        ) as discount_order,
        d.coupon_id,
        d.percent_off,
        case when d.coupon_currency = upper(f.currency) then d.amount_off else ca.amount_off_minor end
            as amount_off_minor,
        f.months_per_period
    from flagged as f
    inner join discounts as d
        on d.subscription_id = f.subscription_id
        and d.discount_start <= f.point_at
        and (d.discount_end is null or d.discount_end > f.point_at)
    -- an amount_off coupon of another currency: the amount its currency_options give for this one
    left join marts.coupon_amounts as ca on ca.coupon_id = d.coupon_id and ca.currency = upper(f.currency)
    where d.coupon_duration in ('forever', 'repeating')
      and (d.amount_off is null or d.percent_off is not null or d.coupon_currency = upper(f.currency)
           or ca.amount_off_minor is not null)
    union all
    -- and (item_position -2) the discounts the subscriptions list shows today (expanded), in the list's
    -- order, that count at the start of the ledger
    select
        su.subscription_id as owner_id,
        coalesce(lg.ledger_start, la.listed_at) as at_time,
        -2 as item_position,
        r.position as discount_order,
        r.coupon_id,
        r.percent_off,
        case when r.coupon_currency = upper(su.currency) then r.amount_off else ca.amount_off_minor end
            as amount_off_minor,
        li.months_per_period
    from staging.stg_billing__subscriptions as su
    inner join listed_items as li on li.subscription_id = su.subscription_id
    inner join listed_entries as r on r.listed_on = 'subscriptions' and r.subscription_id = su.subscription_id
    -- an amount_off coupon of another currency: the amount its currency_options give for this one
    left join marts.coupon_amounts as ca on ca.coupon_id = r.coupon_id and ca.currency = upper(su.currency)
    cross join ledger as lg
    cross join list_as_of as la
    where r.coupon_duration in ('forever', 'repeating')
      and (r.discount_end is null or r.discount_end > coalesce(lg.ledger_start, la.listed_at))
      and (r.amount_off is null or r.percent_off is not null or r.coupon_currency = upper(su.currency)
           or ca.amount_off_minor is not null)
),

discount_maps as (
    -- each list's discounts composed: the shared discount rule
    -- include: composed_discounts
),

item_valued as (
    -- what the items' own discounts (marts.subscription_item_discounts, the stretch in force at the point)
    -- take off each item's MRR at each point of the history: the item's MRR after its discounts, never
    -- below 0, in place of its list MRR; and the first item's (by item id) first coupon that counts
    select
        subscription_id,
        point_at,
        sum(item_mrr_minor - greatest(0.0, item_mrr_minor * discount_factor
                                           - cast(discount_offset_minor as double) / months_per_period)) as taken_off_minor,
        max(case when rn = 1 then coupon_id end) as first_coupon_id
    from (
        select
            it.subscription_id,
            it.point_at,
            it.item_mrr_minor,
            it.months_per_period,
            d.discount_factor,
            d.discount_offset_minor,
            d.coupon_id,
            row_number() over (partition by it.subscription_id, it.point_at order by it.subscription_item_id) as rn
        from item_states as it
        inner join marts.subscription_item_discounts as d
            on d.source = 'invoices'
            and d.subscription_id = it.subscription_id
            and d.subscription_item_id = it.subscription_item_id
            and d.valid_from <= it.point_at
            and (d.valid_to is null or d.valid_to > it.point_at)
        where d.discounts_in_force > 0
    ) as v
    group by subscription_id, point_at
),

listed_item_valued as (
    -- the same for the items as the subscriptions list shows them, at the start of the ledger
    select
        subscription_id,
        sum(item_mrr_minor - greatest(0.0, item_mrr_minor * discount_factor
                                           - cast(discount_offset_minor as double) / months_per_period)) as taken_off_minor,
        max(case when rn = 1 then coupon_id end) as first_coupon_id
    from (
        select
            r.subscription_id,
            r.item_mrr_minor,
            r.months_per_period,
            d.discount_factor,
            d.discount_offset_minor,
            d.coupon_id,
            row_number() over (partition by r.subscription_id order by r.subscription_item_id) as rn
        from listed_item_rows as r
        inner join marts.subscription_item_discounts as d
            on d.source = 'subscriptions'
            and d.subscription_id = r.subscription_id
            and d.subscription_item_id = r.subscription_item_id
        where d.discounts_in_force > 0
    ) as v
    group by subscription_id
),

with_discount as (
    -- items after their own discounts, then the subscription's discounts on the sum
    select
        f.*,
        coalesce(dm.first_coupon_id, iv.first_coupon_id) as coupon_id,
        case when dm.owner_id is null then f.list_mrr_minor - coalesce(iv.taken_off_minor, 0.0)
             else greatest(0.0, (f.list_mrr_minor - coalesce(iv.taken_off_minor, 0.0)) * dm.factor - dm.offset_minor)
        end as discounted_mrr_minor
    from flagged as f
    left join discount_maps as dm
        on dm.owner_id = f.subscription_id and dm.at_time = f.point_at and dm.item_position = -1
    left join item_valued as iv on iv.subscription_id = f.subscription_id and iv.point_at = f.point_at
),

history as (
    select
        'invoices' as source,
        subscription_id,
        customer_id,
        point_at as changed_at,
        case
            when is_ended then 'canceled'
            when is_trial then 'trialing'
            when is_past_due then 'past_due'
            else 'active'
        end as status,
        upper(currency) as currency,
        billing_interval,
        interval_count,
        plan,
        seats,
        list_mrr_minor,
        discounted_mrr_minor,
        coupon_id,
        false as cancel_at_period_end,
        cast(null as timestamp with time zone) as cancel_at,
        case when is_ended then sub_ended_at end as ended_at
    from with_discount
),

with_events as (
    select distinct object_id as subscription_id
    from staging.stg_billing__events
    where object_type = 'subscription'
),

listed as (
    -- the current state, from the subscriptions list, for a subscription the event ledger never mentions:
    -- in force from the start of the ledger (or, with no events at all, at the end of the list's day)
    select
        'subscriptions' as source,
        su.subscription_id,
        su.customer_id,
        coalesce(lg.ledger_start, la.listed_at) as changed_at,
        su.status,
        upper(su.currency) as currency,
        li.billing_interval,
        li.interval_count,
        li.plan,
        li.seats,
        li.list_mrr_minor,
        case when lm.owner_id is null then li.list_mrr_minor - coalesce(iv.taken_off_minor, 0.0)
             else greatest(0.0, (li.list_mrr_minor - coalesce(iv.taken_off_minor, 0.0)) * lm.factor - lm.offset_minor)
        end as discounted_mrr_minor,
        coalesce(lm.first_coupon_id, iv.first_coupon_id) as coupon_id,
        false as cancel_at_period_end,
        cast(null as timestamp with time zone) as cancel_at,
        cast(null as timestamp with time zone) as ended_at
    from subs as su
    cross join ledger as lg
    cross join list_as_of as la
    inner join listed_items as li on li.subscription_id = su.subscription_id
    left join discount_maps as lm on lm.owner_id = su.subscription_id and lm.item_position = -2
    -- the listed items' own discounts at the ledger's start
    left join listed_item_valued as iv on iv.subscription_id = su.subscription_id
    left join with_events as we on we.subscription_id = su.subscription_id
    where we.subscription_id is null
      and su.started_at < coalesce(lg.ledger_start, la.listed_at)
      and (su.ended_at is null or su.ended_at > coalesce(lg.ledger_start, la.listed_at))
      and (su.discount_end_at is null or su.discount_end_at > coalesce(lg.ledger_start, la.listed_at))
)

select * from history
union all
-- (history has one row per point of in_window: the anti-join reads the lighter of the two, so Spark does
-- not plan the discount valuation twice)
select l.* from listed as l
left join in_window as h on h.subscription_id = l.subscription_id and h.point_at = l.changed_at
where h.subscription_id is null
