-- Every Stripe discount (di_...) seen expanded, with its coupon, start and end: what an event's discount id
-- stands for. Stripe never expands an event's object (API 2025-03-31.basil): a customer.subscription.*
-- event lists its discounts, and each item's, as ids, while the subscriptions list
-- (expand[]=data.discounts, data.items.data.discounts) and the invoices (expand[]=data.discounts,
-- data.lines.data.discounts) list them expanded. A discount is never changed once made (a new coupon makes
-- a new discount), so any one of them says what it is. The event ledger (marts.subscription_states) reads
-- an event's discount ids here; one that no list shows expanded cannot be valued (the check
-- subscription_states_event_discounts_known names it).
-- @grain discount_id
-- @column discount_id: Stripe discount id (di_...)
-- @column coupon_id: the discount's coupon
-- @column coupon_duration: once, repeating or forever
-- @column percent_off: the coupon's percentage (0-100), or null for an amount_off coupon
-- @column amount_off: the coupon's amount off in minor units of coupon_currency, or null for a percent coupon
-- @column coupon_currency: ISO currency of amount_off, upper case
-- @column discount_start: when the discount was applied (UTC)
-- @column discount_end: when a repeating discount ends (null for once and forever)
-- @column seen_in: where it was found expanded: subscriptions, subscription_items, invoices or invoice_lines (the first of these that lists it)
with discount_lists as (
    -- the JSON lists of expanded discounts, from every object Stripe lists them on; each list of the invoices
    -- and their lines once (most repeat the subscription's discount invoice after invoice: 139,017 lists on the
    -- large company are 22,721 texts; the entries are reduced to one row per discount below anyway)
    select 1 as source_rank, discounts from staging.stg_billing__subscriptions
    where json_extract_string(discounts, '$[0].id') is not null
    union all
    select 2, discounts from staging.stg_billing__subscription_items
    where json_extract_string(discounts, '$[0].id') is not null
    union all
    select distinct 3, discounts from staging.stg_billing__invoices
    where json_extract_string(discounts, '$[0].id') is not null
    union all
    select distinct 4, discounts from staging.stg_billing__invoice_lines
    where json_extract_string(discounts, '$[0].id') is not null
),

found as (
    -- each entry of each list: the shared parse of an expanded discount
    -- include: expanded_discounts
)

select
    discount_id,
    max(coupon_id) as coupon_id,
    max(coupon_duration) as coupon_duration,
    max(percent_off) as percent_off,
    max(amount_off) as amount_off,
    max(coupon_currency) as coupon_currency,
    max(discount_start) as discount_start,
    max(discount_end) as discount_end,
    case min(source_rank)
        when 1 then 'subscriptions'
        when 2 then 'subscription_items'
        when 3 then 'invoices'
        else 'invoice_lines'
    end as seen_in
from found
where coupon_id is not null
group by discount_id
