"""Checks on the marts. Blocking: a broken mart must not reach the KPIs or anyone's inbox."""

import textwrap
from pathlib import Path

import dagster as dg

from cs_kpis import tuning
from cs_kpis.defs.marts.assets import DIM_MONTH, DIM_POSITION, key
from cs_kpis.defs.staging import assets as staging
from cs_kpis.lib.checks import accepted_range_check, sql_check, unique_key_check
from cs_kpis.lib.sql import sql_part

MARTS_SQL = Path(__file__).resolve().parent / "sql"

PERIODS = key("subscription_periods")
CHANGES = key("mrr_daily_changes")
ACCOUNTS = key("accounts")
ACCOUNT_STATES = key("account_states")
ACCOUNT_STATES_DO_NOT_OVERLAP = "account_states_do_not_overlap"
ACCOUNT_STATES_OVERLAP_SQL = """
    select account_id, valid_from, valid_to, next_from, source
    from (select account_id, valid_from, valid_to, source,
                 lead(valid_from) over (partition by account_id order by valid_from) as next_from
          from marts.account_states) as s
    where valid_to <= valid_from or (next_from is not null and (valid_to is null or valid_to > next_from))
"""
STATES = key("subscription_states")
DISCOUNT_OBJECTS = key("discount_objects")
EVENT_DISCOUNTS_KNOWN = "subscription_states_event_discounts_known"
EVENT_DISCOUNTS_KNOWN_SQL = """
    select event_id, subscription_id, json_extract_string(entry, '$') as discount_id
    from (
        select event_id, object_id as subscription_id,
               unnest(list_concat(coalesce(json_extract(object, '$.discounts[*]'), []),
                                  coalesce(json_extract(object, '$.items.data[*].discounts[*]'), []))) as entry
        from staging.stg_billing__events
        where object_type = 'subscription' and event_type like 'customer.subscription.%'
    ) as e
    where json_type(entry) = 'VARCHAR'
      and json_extract_string(entry, '$') not in (select discount_id from marts.discount_objects)
"""
ITEM_DISCOUNTS = key("subscription_item_discounts")
ITEM_DISCOUNTS_VALID = "subscription_item_discounts_stretches_valid"
ITEM_DISCOUNTS_VALID_SQL = """
    select source, subscription_id, subscription_item_id, valid_from, valid_to, discounts_in_force, coupon_id,
           discount_factor, discount_offset_minor
    from marts.subscription_item_discounts
    where valid_to <= valid_from
       or discount_factor < 0 or discount_factor > 1 or discount_offset_minor < 0
       or (discounts_in_force > 0) <> (coupon_id is not null)
"""

PERIODS_DO_NOT_OVERLAP = "subscription_periods_do_not_overlap"
PERIODS_HAVE_FX_RATE = "subscription_periods_have_fx_rate"
CHANGES_MATCH_PERIODS = "mrr_daily_changes_match_subscription_periods"
HIERARCHY_RESOLVED = "accounts_hierarchy_resolved"
HISTORY_MATCHES_INVOICES = "revenue_history_matches_paid_invoices"
STATES_VALUES_PARSED = "subscription_states_every_value_parsed"

ENV_HISTORY_TOLERANCE = tuning.SETTINGS["checks.revenue_history_tolerance"].env
DEFAULT_HISTORY_TOLERANCE = tuning.SETTINGS["checks.revenue_history_tolerance"].default
"""share of a subscription's invoiced monthly amount its MRR may differ by (at least 1 USD)"""

HISTORY_SQL = """
with subs as (
    -- days, once per subscription rather than once per line and month
    select subscription_id, cast(ended_at as date) as ended_day from staging.stg_billing__subscriptions
),
last_invoice as (
    select subscription_id, cast(max(created_at) as date) as last_invoiced_day
    from staging.stg_billing__invoices
    group by subscription_id
),
quantities as (
    select line_id as row_id, price_id, quantity from staging.stg_billing__invoice_lines
    union all
    select subscription_item_id as row_id, price_id, quantity from staging.stg_billing__subscription_items
),
priced as (
    -- what a quantity of a price costs per billing period, by its tiers: the rule every model includes
{priced_quantities}
),
lines as (
    -- licensed recurring lines of paid invoices (and the prorations of any finalized invoice: the change
    -- happened whether or not it was paid), each worth price x quantity a month before discounts (a
    -- proration's credit negative)
    select
        l.line_id,
        -- whose discounts a line shares: its subscription item's (the line alone when it has no item)
        coalesce(l.subscription_item_id, l.line_id) as item_key,
        coalesce(l.subscription_id, i.subscription_id) as subscription_id,
        cast(l.period_start as date) as period_start,
        cast(l.period_end as date) as period_end,
        l.is_proration,
        l.is_proration_credit,
        l.amount_minor,
        -- what the customer is charged for the line after its discounts: Stripe's prorations are net of the
        -- subscription's discounts (API 2025-03-31.basil); from 2025-09-30.clover a gross amount with the
        -- discount in discount_amounts is opt-in
        l.amount_minor - coalesce(l.discount_amount_minor, 0) as net_minor,
        -- the invoice's (first) discount and the line's times, read for the months to excuse only (discounted)
        l.period_start as period_start_at,
        l.period_end as period_end_at,
        i.currency,
        i.discount_coupon_id,
        i.discount_duration,
        i.discount_percent_off,
        i.discount_end_at,
        case when l.is_proration_credit then -1 else 1 end * pr.amount_per_interval
            as amount_per_interval,
        case p."interval"
            when 'month' then cast(p.interval_count as double)
            when 'year' then 12.0 * p.interval_count
            when 'week' then 12.0 * p.interval_count / 52.0
            when 'day' then 12.0 * p.interval_count / 365.0
        end as months_per_period
    from staging.stg_billing__invoice_lines as l
    inner join staging.stg_billing__invoices as i on i.invoice_id = l.invoice_id
    inner join staging.stg_billing__prices as p on p.price_id = l.price_id
    inner join priced as pr on pr.row_id = l.line_id
    where (i.status = 'paid' or (l.is_proration and i.status not in ('draft', 'void')))
      and coalesce(p.usage_type, 'licensed') = 'licensed'
      and coalesce(p.price_type, 'recurring') = 'recurring'
),
invoiced as (
    -- what the paid invoices say each subscription is worth a month on each month's read day, for the
    -- months they settle: before the subscription ended, and closed by a later invoice (a change credited
    -- on the next invoice is not known before it)
    select
        l.subscription_id,
        m.month,
        m.read_day,
        sum(l.amount_per_interval / l.months_per_period) as invoiced_minor,
        max(case when l.is_proration then 0 else l.amount_minor end) as charged,
        sum(case when l.is_proration and not l.is_proration_credit and l.net_minor > 0 then 1 else 0 end)
            as charged_prorations
    from lines as l
    inner join marts.dim_month as m
        on m.read_day >= l.period_start and m.read_day < l.period_end
    left join subs as s on s.subscription_id = l.subscription_id
    inner join last_invoice as li on li.subscription_id = l.subscription_id
    where (s.ended_day is null or s.ended_day > m.read_day)
      and li.last_invoiced_day > m.read_day
    group by l.subscription_id, m.month, m.read_day
),
recorded as (
    -- what the revenue history has on those read days
    select
        i.subscription_id,
        i.month,
        i.read_day,
        i.invoiced_minor,
        i.charged_prorations,
        coalesce(sum(p.mrr), 0) as mrr,
        coalesce(sum(p.list_mrr), 0) as list_mrr,
        max(p.fx_rate) as fx_rate,
        max(p.currency) as currency,
        max(case when p.is_delinquent then 1 else 0 end) as delinquent
    from invoiced as i
    left join marts.subscription_periods as p
        on p.subscription_id = i.subscription_id
        and p.start_date <= i.read_day
        and (p.end_date is null or p.end_date > i.read_day)
    where i.charged > 0
    group by i.subscription_id, i.month, i.read_day, i.invoiced_minor, i.charged_prorations
),
to_excuse as (
    -- the months the history has at MRR 0 with a list price: only the discounts can make those right (below),
    -- so only their subscriptions' discounts are looked up. Every other month's outcome does not depend on
    -- them (MRR > 0, or MRR and list MRR both 0, or delinquent), which saves reading every line's discounts
    select subscription_id, month, read_day
    from recorded
    where delinquent = 0 and mrr = 0 and list_mrr <> 0
),
excused_lines as (
    -- the lines of their subscriptions: discounted sums the same line-months as invoiced does for those months
    select * from lines where subscription_id in (select subscription_id from to_excuse)
),
named_discounts as (
    -- each discount a line names by id in its discount_amounts (every discount applied to the line: its own
    -- and its share of the invoice's; a proration lists the subscription's at 0, its amount being net of
    -- them), and what it took off the line; for the items of the months to excuse (every line of such an item)
    select
        l.line_id,
        l.item_key,
        cast(l.period_start as date) as period_start,
        cast(l.period_end as date) as period_end,
        coalesce(json_extract_string(l.discount_amounts, '$[' || cast(p.position as varchar) || '].discount.id'),
                 json_extract_string(l.discount_amounts, '$[' || cast(p.position as varchar) || '].discount'))
            as discount_id,
        cast(json_extract_string(l.discount_amounts, '$[' || cast(p.position as varchar) || '].amount') as bigint)
            as amount_minor,
        l.amount_minor as line_amount_minor,
        l.currency
    from (
        -- most lines name none: left out before the join to the positions, which reads each list once per
        -- position; and the lines of draft and void invoices
        select l.line_id, coalesce(l.subscription_item_id, l.line_id) as item_key, l.period_start, l.period_end,
               l.discount_amounts, l.amount_minor, i.currency
        from staging.stg_billing__invoice_lines as l
        inner join staging.stg_billing__invoices as i on i.invoice_id = l.invoice_id
        where l.discount_amounts is not null and cast(l.discount_amounts as varchar) <> '[]'
          and i.status not in ('draft', 'void')
          and coalesce(l.subscription_item_id, l.line_id) in (select item_key from excused_lines)
    ) as l
    -- Stripe allows at most 20 discounts on an object
    inner join marts.dim_position as p
        on p.position < 20
        and json_extract_string(l.discount_amounts, '$[' || cast(p.position as varchar) || '].discount') is not null
),
discounts_in_force as (
    -- on each read day a line covers, what its discounts in force that day took off it: a discount counts
    -- for MRR forever, or repeating from its start until its end, a once coupon never (marts.discount_objects,
    -- the discounts listed expanded, with their start and end); one that no list shows expanded counts, its
    -- end unknown. covers_line: one of them would take the whole line alone (100% off, an amount_off in the
    -- line's currency at least the line's amount, or one whose terms no list shows)
    select n.line_id, n.item_key, m.read_day, sum(n.amount_minor) as discount_minor,
           max(case when d.discount_id is null or d.percent_off >= 100 or ca.amount_off_minor >= n.line_amount_minor
                    then 1 else 0 end) as covers_line
    from named_discounts as n
    inner join marts.dim_month as m
        on m.read_day >= n.period_start and m.read_day < n.period_end
    left join marts.discount_objects as d on d.discount_id = n.discount_id
    left join marts.coupon_amounts as ca on ca.coupon_id = d.coupon_id and upper(ca.currency) = upper(n.currency)
    where d.discount_id is null
       or (d.coupon_duration in ('forever', 'repeating')
           and (d.discount_start is null or cast(d.discount_start as date) <= m.read_day)
           and (d.discount_end is null or cast(d.discount_end as date) > m.read_day))
    group by n.line_id, n.item_key, m.read_day
),
items_in_force as (
    -- the subscription items one of whose lines covering the read day names a discount in force that day:
    -- a proration names the subscription's discounts (at 0), not its item's own (Stripe's classic billing
    -- mode), which the item's cycle line names
    select distinct item_key, read_day from discounts_in_force
),
items_named as (
    -- the subscription items one of whose lines covering the read day names any discount: an item none of
    -- whose lines names one (a new item of a swap, its own discount on no line yet) keeps the free proration
    -- rule without the in-force condition, as a discount no list shows expanded does
    select distinct n.item_key, m.read_day
    from named_discounts as n
    inner join marts.dim_month as m
        on m.read_day >= n.period_start and m.read_day < n.period_end
),
discounted as (
    -- for the months to excuse, over the same lines as invoiced: what the discounts in force on the read day
    -- took off the paid (not proration) lines, a month: summed, as Stripe spreads one coupon over a
    -- subscription's lines. A line its discounts took to 0 counts whole while one in force would take it all
    -- alone: Stripe applies a line's discounts one after the other, so a once coupon applied first leaves less
    -- (or nothing) for a forever 100% one
    select
        l.subscription_id,
        m.month,
        sum(case when l.is_proration then 0
                 when l.net_minor <= 0 and f.covers_line = 1 then l.amount_minor / l.months_per_period
                 else coalesce(f.discount_minor, 0) / l.months_per_period end)
            as discount_minor,
        -- what the invoice's (first) discount may take off a period at most, in the invoice's currency: all
        -- of it (100%), or its amount_off (its own or from its currency_options); the line's discount_amounts
        -- stop at the line's amount, so they cannot say whether the coupon also covers a higher price the
        -- subscription moved to within the period (an upgrade's prorations are billed apart)
        max(case when not l.is_proration and (l.discount_end_at is null or cast(l.discount_end_at as date) > m.read_day)
                 then case when l.discount_duration in ('forever', 'repeating') then
                          case when l.discount_percent_off >= 100 then 1e15 else ca.amount_off_minor end
                      end / l.months_per_period end) as discount_capacity_minor,
        -- the list price a month of the proration charges the discounts took to 0, though at price x
        -- quantity their part of the period (an average month is 2,629,746 s) is worth enough that a
        -- discount leaving more than the tolerance would have left at least half a minor unit, and while a
        -- discount of their item is still in force (when a line of the item names any). A
        -- proration-only invoice lists no discount of its own, so a free charge is the only evidence it keeps
        -- that the discounts cover the new price: of that item's price, not of the others'
        sum(case when l.is_proration and not l.is_proration_credit and l.amount_per_interval > 0
                      and l.net_minor <= 0 and (fi.item_key is not null or nm.item_key is null)
                      and l.amount_per_interval * cast(date_diff('second', l.period_start_at, l.period_end_at) as double)
                          / (l.months_per_period * 2629746.0)
                          * {tolerance} >= 0.5
                 then l.amount_per_interval / l.months_per_period else 0 end) as free_list_minor
    from excused_lines as l
    inner join to_excuse as e on e.subscription_id = l.subscription_id
    inner join marts.dim_month as m
        on m.month = e.month and m.read_day >= l.period_start and m.read_day < l.period_end
    left join discounts_in_force as f on f.line_id = l.line_id and f.read_day = m.read_day
    left join items_in_force as fi on fi.item_key = l.item_key and fi.read_day = m.read_day
    left join items_named as nm on nm.item_key = l.item_key and nm.read_day = m.read_day
    left join marts.coupon_amounts as ca
        on ca.coupon_id = l.discount_coupon_id and upper(ca.currency) = upper(l.currency)
    left join subs as s on s.subscription_id = l.subscription_id
    inner join last_invoice as li on li.subscription_id = l.subscription_id
    where (s.ended_day is null or s.ended_day > m.read_day)
      and li.last_invoiced_day > m.read_day
    group by l.subscription_id, m.month
),
compared as (
    select
        r.subscription_id,
        r.month,
        r.invoiced_minor,
        d.discount_minor,
        d.discount_capacity_minor,
        -- the free charges count when no proration charge covering the read day charged anything
        case when r.charged_prorations = 0 then d.free_list_minor else 0 end as free_list_minor,
        r.mrr,
        r.list_mrr,
        r.fx_rate,
        r.currency,
        r.delinquent
    from recorded as r
    left join discounted as d on d.subscription_id = r.subscription_id and d.month = r.month
),
unknown_changes as (
    -- a subscription the event ledger never mentions whose items today (subscriptions list) differ from
    -- its last invoiced items, and from its items at the end if it ended: it changed at a time neither its
    -- invoices nor the events show
    select
        h.subscription_id,
        cast(null as date) as month,
        'items changed at a time no invoice or event shows' as problem,
        cast(h.list_mrr_minor as decimal(18, 2)) as expected,
        cast(c.list_mrr_minor as decimal(18, 2)) as found
    from (
        select subscription_id, list_mrr_minor,
               row_number() over (partition by subscription_id order by changed_at desc) as rn
        from marts.subscription_states
        where source = 'invoices' and status <> 'canceled'
    ) as h
    inner join (
        select
            si.subscription_id,
            sum(pr.amount_per_interval / case si."interval"
                when 'month' then cast(si.interval_count as double)
                when 'year' then 12.0 * si.interval_count
                when 'week' then 12.0 * si.interval_count / 52.0
                when 'day' then 12.0 * si.interval_count / 365.0
            end) as list_mrr_minor
        from staging.stg_billing__subscription_items as si
        inner join priced as pr on pr.row_id = si.subscription_item_id
        where coalesce(si.usage_type, 'licensed') = 'licensed'
        group by si.subscription_id
    ) as c on c.subscription_id = h.subscription_id
    left join (
        select distinct subscription_id from marts.subscription_states where source = 'events'
    ) as e on e.subscription_id = h.subscription_id
    -- the items at the end (the history's canceled state), with any change made in the second the
    -- subscription ended: a seat change and the cancellation in the same second leave their prorations
    -- pending, and the list shows the items after the change
    left join (
        select subscription_id, list_mrr_minor
        from marts.subscription_states
        where source = 'invoices' and status = 'canceled'
    ) as x on x.subscription_id = h.subscription_id and abs(x.list_mrr_minor - c.list_mrr_minor) < 0.5
    where h.rn = 1 and e.subscription_id is null and x.subscription_id is null
      and abs(h.list_mrr_minor - c.list_mrr_minor) >= 0.5
),
unknown_before_ledger as (
    -- a subscription whose first event in the ledger shows other main items before it (its previous
    -- attributes, or its own object when the items did not change) than its invoices show last
    select
        f.subscription_id,
        cast(null as date) as month,
        'items changed before the event ledger at a time no invoice shows' as problem,
        cast(h.seats as decimal(18, 2)) as expected,
        cast(coalesce(f.prev_seats, f.seats) as decimal(18, 2)) as found
    from (
        -- the previous attributes read for each subscription's first state only
        select
            subscription_id,
            plan,
            seats,
            json_extract_string(previous_attributes, '$.items.data[0].price.metadata.plan_tier') as prev_plan,
            cast(json_extract_string(previous_attributes, '$.items.data[0].quantity') as bigint) as prev_seats,
            json_extract_string(previous_attributes, '$.items') is not null as items_changed,
            rn
        from (
            select
                s.subscription_id,
                s.plan,
                s.seats,
                e.previous_attributes,
                row_number() over (partition by s.subscription_id order by s.changed_at) as rn
            from marts.subscription_states as s
            inner join staging.stg_billing__events as e on e.event_id = s.event_id
            where s.source = 'events'
        ) as ranked
    ) as f
    inner join (
        select subscription_id, plan, seats,
               row_number() over (partition by subscription_id order by changed_at desc) as rn
        from marts.subscription_states
        where source = 'invoices' and status <> 'canceled'
    ) as h on h.subscription_id = f.subscription_id and h.rn = 1
    where f.rn = 1
      and (case when f.items_changed then coalesce(f.prev_plan, '') <> coalesce(h.plan, '')
                     or coalesce(f.prev_seats, -1) <> coalesce(h.seats, -1)
                else coalesce(f.plan, '') <> coalesce(h.plan, '') or coalesce(f.seats, -1) <> coalesce(h.seats, -1) end)
)
select
    subscription_id,
    month,
    case when no_mrr then 'no MRR in a month its paid invoice covers'
         else 'MRR before discounts differs from the paid invoices' end as problem,
    round(invoiced_minor / 100.0 * coalesce(fx_rate, 1), 2) as expected,
    case when no_mrr then mrr else list_mrr end as found
from (
    -- no MRR is right when the paid invoice's discounts cover the month's list price (a 100% coupon, or an
    -- amount_off one of at least the price): the history has the subscription at its list price and the
    -- discounts take it to 0.00 (never below); what those still in force on the read day took off the line,
    -- or what the coupon may take off (the line's price may be lower than the list price after an upgrade
    -- within the period), or the list price of the prorations covering the read day that charged nothing for
    -- the new price (when none charged anything) while a discount of their item is in force (if one is named)
    select *, mrr = 0 and (list_mrr = 0 or list_mrr * 100.0 / fx_rate
                           - greatest(discount_minor, coalesce(discount_capacity_minor, 0), free_list_minor) >= 50)
              as no_mrr
    from compared
) as c
where delinquent = 0 and (no_mrr
   or abs(list_mrr - invoiced_minor / 100.0 * fx_rate) > greatest({tolerance} * invoiced_minor / 100.0 * fx_rate, 1.0))
union all
select * from unknown_changes
union all
select * from unknown_before_ledger
"""


# subscription_states.sql parses each event's object with a fixed schema; a value of another JSON type
# (a quoted "12.50" where Stripe sends an integer of minor units, an object where it sends a quantity)
# would be cast silently or become NULL there. The source contracts quarantine such events
# (cs_kpis/sources/billing/settings.py); this check is the model's own guard for what got past them.
_FIELDS = {
    # field label: (JSON path in the event's object, accepted DuckDB json_type values besides NULL)
    "customer": ("$.customer", ("VARCHAR",)),
    "status": ("$.status", ("VARCHAR",)),
    "currency": ("$.currency", ("VARCHAR",)),
    "cancel_at_period_end": ("$.cancel_at_period_end", ("BOOLEAN",)),
    "cancel_at": ("$.cancel_at", ("UBIGINT", "BIGINT")),
    "ended_at": ("$.ended_at", ("UBIGINT", "BIGINT")),
}
_ITEM_FIELDS = {
    # the same in each of its items (items.data[i]), labelled items[i].<label>
    "quantity": ("$.quantity", ("UBIGINT", "BIGINT")),
    "price.unit_amount": ("$.price.unit_amount", ("UBIGINT", "BIGINT")),
    "price.recurring.interval": ("$.price.recurring.interval", ("VARCHAR",)),
    "price.recurring.interval_count": ("$.price.recurring.interval_count", ("UBIGINT", "BIGINT")),
    "price.recurring.usage_type": ("$.price.recurring.usage_type", ("VARCHAR",)),
    "price.unit_amount_decimal": ("$.price.unit_amount_decimal", ("VARCHAR",)),
    "price.transform_quantity.divide_by": ("$.price.transform_quantity.divide_by", ("UBIGINT", "BIGINT")),
}


def _list(values) -> str:
    return "[" + ", ".join(f"'{v}'" for v in values) + "]"


def _fields(fields: dict, item: bool) -> str:
    """The fields as rows (i: their place in the list of paths, label, path, accepted types)."""
    return "\n        union all ".join(
        f"select {item} as is_item, {i} as i, '{label}' as label, '{path}' as path, {_list(('NULL', *ok))} as accepted"
        for i, (label, (path, ok)) in enumerate(fields.items(), 1))


# Each event's object (and each of its items) is parsed once for the types of all its fields (json_type with a
# list of paths), not once per field: 13 parses of every event took 1.9 s on the large company (issue 18).
STATES_VALUES_SQL = f"""
with events as (
    select event_id, object_id, object, coalesce(json_array_length(object, '$.items.data'), 0) as n_items
    from staging.stg_billing__events
    where object_type = 'subscription' and event_type like 'customer.subscription.%'
),
docs as (
    -- the object itself, and each item of it (items.data[position])
    select event_id, object_id, false as is_item, cast(null as integer) as position, object as doc,
           json_type(object, {_list(path for path, _ in _FIELDS.values())}) as types
    from events
    union all
    select event_id, object_id, true, position, item,
           json_type(item, {_list(path for path, _ in _ITEM_FIELDS.values())})
    from (
        select e.event_id, e.object_id, p.position,
               json_extract(e.object, '$.items.data[' || cast(p.position as varchar) || ']') as item
        from events as e
        inner join marts.dim_position as p on p.position < e.n_items
    ) as i
),
fields as (
        {_fields(_FIELDS, False)}
        union all {_fields(_ITEM_FIELDS, True)}
)
select d.event_id, d.object_id as subscription_id,
       case when f.is_item then 'items[' || cast(d.position as varchar) || '].' || f.label else f.label end as field,
       coalesce(d.types[f.i], 'NULL') as found_type,
       cast(json_extract(d.doc, f.path) as varchar) as found_value
from docs as d
inner join fields as f on f.is_item = d.is_item
where not list_contains(f.accepted, coalesce(d.types[f.i], 'NULL'))
"""


def history_check_sql(tolerance: float) -> str:
    return HISTORY_SQL.format(tolerance=float(tolerance),
                              priced_quantities=textwrap.indent(sql_part(MARTS_SQL, "priced_quantities"), "    "))

marts_checks = [
    sql_check(
        PERIODS, HISTORY_MATCHES_INVOICES,
        "revenue history agrees with what the customers paid: every subscription month a paid recurring invoice "
        "settles has MRR, within the check_thresholds resource's revenue_history_tolerance (default "
        f"{DEFAULT_HISTORY_TOLERANCE:.0%}, at least 1 USD) of the invoiced amount normalised to a month "
        f"(settings.checks.revenue_history_tolerance in the company file; {ENV_HISTORY_TOLERANCE} overrides), and "
        "no subscription's items changed at a time neither its invoices nor the event ledger show. The rows name "
        "the subscriptions (see marts/README.md)",
        lambda t: history_check_sql(t.revenue_history_tolerance), thresholds=("revenue_history_tolerance",),
        additional_deps=[STATES, DIM_MONTH, DIM_POSITION, DISCOUNT_OBJECTS, key("price_tiers"),
                         key("coupon_amounts")] + [
            staging.key(n) for n in ("stg_billing__invoices", "stg_billing__invoice_lines",
                                                   "stg_billing__prices", "stg_billing__subscriptions",
                                                   "stg_billing__subscription_items")],
    ),
    sql_check(
        STATES, STATES_VALUES_PARSED,
        "every field of a Stripe subscription event that the ledger reads holds a value of the type Stripe "
        "documents (integers of minor units, ISO currency text, true/false): a value of another type would "
        "be cast silently or dropped to NULL by subscription_states. The rows name the event, the field and "
        "the value found; fix or remove the event in the export, then reload billing",
        STATES_VALUES_SQL,
        additional_deps=[staging.key("stg_billing__events"), DIM_POSITION],
    ),
    unique_key_check(STATES, "marts.subscription_states", ["subscription_id", "changed_at"]),
    unique_key_check(DISCOUNT_OBJECTS, "marts.discount_objects", ["discount_id"]),
    sql_check(
        STATES, EVENT_DISCOUNTS_KNOWN,
        "every discount a subscription event names by id (Stripe never expands an event's object) is listed "
        "expanded somewhere (the subscriptions list, an item, an invoice or an invoice line: "
        "marts.discount_objects), so the event ledger knows its coupon. An unknown one counts for nothing, and "
        "the subscription's MRR is too high while it is attached if it lowers MRR (a once coupon never does). "
        "The rows name the event, the subscription and the discount id; check that the billing extract asks "
        "for expand[]=data.discounts and data.items.data.discounts (docs/LANDING.md)",
        EVENT_DISCOUNTS_KNOWN_SQL, blocking=False, severity=dg.AssetCheckSeverity.WARN,
        additional_deps=[staging.key("stg_billing__events"), DISCOUNT_OBJECTS],
    ),
    unique_key_check(ITEM_DISCOUNTS, "marts.subscription_item_discounts",
                     ["source", "subscription_item_id", "valid_from"]),
    sql_check(
        ITEM_DISCOUNTS, ITEM_DISCOUNTS_VALID,
        "each stretch of a subscription item's own discounts ends after it begins, leaves between 0 and 100% of "
        "the item's MRR (discount_factor in [0, 1]), takes off no negative amount, and names a coupon exactly "
        "when a discount counts for MRR. A row here would price the item wrongly in the revenue history: the "
        "rows name the item; look at its invoice lines' and the subscriptions list's discounts (percent_off, "
        "amount_off, currency) in the Stripe export",
        ITEM_DISCOUNTS_VALID_SQL,
    ),
    unique_key_check(PERIODS, "marts.subscription_periods", ["subscription_id", "start_date"]),
    unique_key_check(CHANGES, "marts.mrr_daily_changes", ["account_id", "change_date"]),
    unique_key_check(ACCOUNTS, "marts.accounts", ["account_id"]),
    unique_key_check(ACCOUNT_STATES, "marts.account_states", ["account_id", "valid_from"]),
    sql_check(
        ACCOUNT_STATES, ACCOUNT_STATES_DO_NOT_OVERLAP,
        "an account has one CRM state on any day: each row ends where the next begins (the rows rebuilt from "
        "Salesforce's field history end on the first loaded snapshot's day). An overlap would give a day two "
        "owners, CSMs or sentiments; see cs_kpis/defs/marts/README.md, 'CRM state before the first snapshot'",
        ACCOUNT_STATES_OVERLAP_SQL,
    ),
    accepted_range_check(PERIODS, "marts.subscription_periods", "mrr", low=0, name="subscription_periods_no_negative_mrr"),
    accepted_range_check(CHANGES, "marts.mrr_daily_changes", "mrr", low=0, name="mrr_daily_changes_no_negative_mrr"),
    sql_check(
        PERIODS, PERIODS_DO_NOT_OVERLAP,
        "a subscription is in at most one period on any day: each period ends where the next begins",
        """
        select subscription_id, start_date, end_date, next_start
        from (select subscription_id, start_date, end_date,
                     lead(start_date) over (partition by subscription_id order by start_date) as next_start
              from marts.subscription_periods) as p
        where end_date <= start_date or (next_start is not null and (end_date is null or end_date > next_start))
        """,
    ),
    sql_check(
        PERIODS, PERIODS_HAVE_FX_RATE,
        "every period with revenue found an exchange rate for its currency on the day its MRR took effect "
        "(a missing rate would silently turn revenue into nulls): add the rate to reference/fx_rates.csv",
        "select subscription_id, start_date, currency from marts.subscription_periods "
        "where fx_rate is null",
    ),
    sql_check(
        CHANGES, CHANGES_MATCH_PERIODS,
        "on every change day, an account's MRR equals the sum of its subscription periods in force that day",
        """
        select c.account_id, c.change_date, c.mrr, coalesce(sum(p.mrr), 0) as periods_mrr
        from marts.mrr_daily_changes as c
        left join marts.subscription_periods as p
            on p.account_id = c.account_id and p.start_date <= c.change_date
            and (p.end_date is null or p.end_date > c.change_date)
        group by c.account_id, c.change_date, c.mrr
        having c.mrr <> coalesce(sum(p.mrr), 0)
        """,
        additional_deps=[PERIODS],
    ),
    sql_check(
        ACCOUNTS, HIERARCHY_RESOLVED,
        "every account's root was found (hierarchies deeper than five levels are not walked) and every "
        "parent exists in the CRM",
        """
        select a.account_id, a.parent_account_id, a.root_account_id
        from marts.accounts as a
        left join marts.accounts as r on r.account_id = a.root_account_id
        left join marts.accounts as p on p.account_id = a.parent_account_id
        where r.parent_account_id is not null or (a.parent_account_id is not null and p.account_id is null)
        """,
    ),
]
