-- Each subscription item's own discounts (Stripe's item-level discounts, applied to the item before the
-- subscription's), valued for MRR: one row per item and stretch of time in which the same discounts are in
-- force. Two sources: the item's invoice lines (source invoices: every line lists its own discounts with
-- expand[]=data.lines.data.discounts; a discount the invoice itself lists is the subscription's, not the
-- item's), cut at every start and end of one of the item's discounts; and the subscriptions list (source
-- subscriptions: the item's discounts as listed today, expand[]=data.items.data.discounts, valued at the
-- start of the event ledger, or at the end of the list's day with no events). A discount counts for MRR by
-- the rules of marts/README.md: forever, or repeating from its start until its end; a once coupon never;
-- an amount_off only in the subscription's currency, its own or from its currency_options
-- (marts.coupon_amounts). Several discounts are composed in the item's order by the shared discount rule
-- (parts/composed_discounts.sql) into one map x -> max(0, x * discount_factor - discount_offset_minor /
-- months per billing period). marts.subscription_history_states applies it to each item's list MRR.
-- Kept apart from that model so Spark plans each (together they ran out of Java heap while planning).
-- @grain source, subscription_item_id, valid_from
-- @column source: invoices (from the item's invoice lines) or subscriptions (as the subscriptions list shows the item today)
-- @column subscription_id: Stripe subscription id (sub_...)
-- @column subscription_item_id: Stripe subscription item id (si_...)
-- @column valid_from: when these discounts came into force (a discount's start or end; for the list, the start of the event ledger)
-- @column valid_to: when the next change of the item's discounts happens (null: still in force)
-- @column is_discount_end: valid_from is the end of one of the item's discounts (a change point of the history)
-- @column discounts_in_force: how many of the item's discounts count for MRR in this stretch (0: none, the item at list price)
-- @column coupon_id: the coupon of the first discount that counts, if any
-- @column discount_factor: what the percentage discounts leave of the item's MRR (1.0 when none), composed in order
-- @column discount_offset_minor: what the amount_off discounts take off per billing period after the factor, minor units of the subscription's currency (divide by the months per billing period for MRR)
with ledger as (
    -- the event ledger covers the time from its first loaded event on
    select min(created_at) as ledger_start from staging.stg_billing__events
),

list_as_of as (
    -- the subscriptions list is as of the end of its last extract day
    select cast(max(extract_day) as timestamp) + interval '1' day - interval '1' second as listed_at
    from staging.stg_billing__subscriptions
),

invoices as (
    select i.invoice_id, i.subscription_id, i.status, i.discounts
    from staging.stg_billing__invoices as i
    where i.status <> 'draft' and i.subscription_id is not null
),

discounted_lines as (
    -- the lines that list discounts of their own (a line whose discounts came as bare ids has none)
    select
        coalesce(l.subscription_id, i.subscription_id) as subscription_id,
        l.subscription_item_id,
        l.discounts
    from staging.stg_billing__invoice_lines as l
    inner join invoices as i on i.invoice_id = l.invoice_id
    where i.status <> 'void'
      and l.subscription_item_id is not null
      and json_extract_string(l.discounts, '$[0].id') is not null
),

discount_lists as (
    -- the lists of expanded discounts this model reads, each kind named by listed_on: the invoices' own
    -- (the subscription's discounts), the item's invoice lines' and the listed items' (the subscriptions list).
    -- A subscription's invoices (an item's lines) repeat the same list, parsed once: what reads their entries
    -- keeps one row per discount (distinct, or grouped by min and max)
    select distinct 'invoices' as listed_on, i.subscription_id, cast(null as varchar) as subscription_item_id,
                    i.discounts
    from invoices as i
    union all
    select distinct 'invoice_lines' as listed_on, l.subscription_id, l.subscription_item_id, l.discounts
    from discounted_lines as l
    union all
    select 'subscription_items' as listed_on, si.subscription_id, si.subscription_item_id, si.discounts
    from staging.stg_billing__subscription_items as si
    where json_extract_string(si.discounts, '$[0].id') is not null
),

listed_entries as (
    -- each entry of each list: the shared parse of an expanded discount
    -- include: expanded_discounts
),

subscription_discounts as (
    -- the discounts the subscription's invoices list (the subscription's own, not an item's)
    select distinct subscription_id, discount_id
    from listed_entries
    where listed_on = 'invoices'
),

item_discounts as (
    -- every discount of a subscription item seen on its invoice lines, in the order the lines list them;
    -- a discount the invoice itself lists (the subscription's) is not the item's own
    select
        ld.subscription_id,
        ld.subscription_item_id,
        ld.discount_id,
        min(ld.position) as discount_position,
        max(ld.coupon_id) as coupon_id,
        max(ld.coupon_duration) as coupon_duration,
        max(ld.percent_off) as percent_off,
        max(ld.amount_off) as amount_off,
        max(ld.coupon_currency) as coupon_currency,
        max(ld.discount_start) as discount_start,
        max(ld.discount_end) as discount_end
    from listed_entries as ld
    left join subscription_discounts as sd
        on sd.subscription_id = ld.subscription_id and sd.discount_id = ld.discount_id
    where ld.listed_on = 'invoice_lines' and sd.discount_id is null
    group by ld.subscription_id, ld.subscription_item_id, ld.discount_id
),

breaks as (
    -- where the item's discounts in force may change: each discount's start and end
    select subscription_id, subscription_item_id, at_time, max(is_end) as is_discount_end
    from (
        select subscription_id, subscription_item_id, discount_start as at_time, 0 as is_end
        from item_discounts where discount_start is not null
        union all
        select subscription_id, subscription_item_id, discount_end as at_time, 1 as is_end
        from item_discounts where discount_end is not null
    ) as b
    group by subscription_id, subscription_item_id, at_time
),

stretches as (
    select
        'invoices' as source,
        subscription_id,
        subscription_item_id,
        at_time as valid_from,
        lead(at_time) over (partition by subscription_id, subscription_item_id order by at_time) as valid_to,
        is_discount_end = 1 as is_discount_end
    from breaks
    union all
    -- the list's items with discounts of their own, from the start of the ledger on
    select
        'subscriptions' as source,
        si.subscription_id,
        si.subscription_item_id,
        coalesce(lg.ledger_start, la.listed_at) as valid_from,
        cast(null as timestamp with time zone) as valid_to,
        false as is_discount_end
    from staging.stg_billing__subscription_items as si
    cross join ledger as lg
    cross join list_as_of as la
    where json_extract_string(si.discounts, '$[0].id') is not null
),

discount_inputs as (
    -- the item's discounts that count for MRR in each stretch, in the item's order, for the shared rule;
    -- months_per_period 1: the offset stays per billing period (the history divides by the item's own)
    select
        st.subscription_item_id as owner_id,
        st.valid_from as at_time,
        0 as item_position,
        row_number() over (
            partition by st.subscription_item_id, st.valid_from
            order by d.discount_position, d.discount_start, d.discount_id
        ) as discount_order,
        d.coupon_id,
        d.percent_off,
        case when d.coupon_currency = upper(su.currency) then d.amount_off else ca.amount_off_minor end
            as amount_off_minor,
        1.0 as months_per_period
    from stretches as st
    inner join staging.stg_billing__subscriptions as su on su.subscription_id = st.subscription_id
    inner join item_discounts as d
        on d.subscription_item_id = st.subscription_item_id
        and d.subscription_id = st.subscription_id
        and d.discount_start <= st.valid_from
        and (d.discount_end is null or d.discount_end > st.valid_from)
    -- an amount_off coupon of another currency: the amount its currency_options give for this one
    left join marts.coupon_amounts as ca on ca.coupon_id = d.coupon_id and ca.currency = upper(su.currency)
    where st.source = 'invoices'
      and d.coupon_duration in ('forever', 'repeating')
      and (d.amount_off is null or d.percent_off is not null or d.coupon_currency = upper(su.currency)
           or ca.amount_off_minor is not null)
    union all
    select
        st.subscription_item_id as owner_id,
        st.valid_from as at_time,
        1 as item_position,
        r.position as discount_order,
        r.coupon_id,
        r.percent_off,
        case when r.coupon_currency = upper(su.currency) then r.amount_off else ca.amount_off_minor end
            as amount_off_minor,
        1.0 as months_per_period
    from stretches as st
    inner join staging.stg_billing__subscriptions as su on su.subscription_id = st.subscription_id
    -- the listed item's own discounts, in the item's order
    inner join listed_entries as r
        on r.listed_on = 'subscription_items' and r.subscription_item_id = st.subscription_item_id
    left join marts.coupon_amounts as ca on ca.coupon_id = r.coupon_id and ca.currency = upper(su.currency)
    where st.source = 'subscriptions'
      and r.coupon_duration in ('forever', 'repeating')
      and (r.discount_end is null or r.discount_end > st.valid_from)
      and (r.amount_off is null or r.percent_off is not null or r.coupon_currency = upper(su.currency)
           or ca.amount_off_minor is not null)
),

discount_maps as (
    -- each stretch's discounts composed: the shared discount rule
    -- include: composed_discounts
),

counted as (
    select owner_id, at_time, item_position, count(*) as discounts_in_force
    from discount_inputs
    group by owner_id, at_time, item_position
)

select
    st.source,
    st.subscription_id,
    st.subscription_item_id,
    st.valid_from,
    st.valid_to,
    st.is_discount_end,
    coalesce(c.discounts_in_force, 0) as discounts_in_force,
    dm.first_coupon_id as coupon_id,
    coalesce(dm.factor, 1.0) as discount_factor,
    coalesce(dm.offset_minor, 0.0) as discount_offset_minor
from stretches as st
left join discount_maps as dm
    on dm.owner_id = st.subscription_item_id and dm.at_time = st.valid_from
    and dm.item_position = case when st.source = 'invoices' then 0 else 1 end
left join counted as c
    on c.owner_id = st.subscription_item_id and c.at_time = st.valid_from
    and c.item_position = case when st.source = 'invoices' then 0 else 1 end
