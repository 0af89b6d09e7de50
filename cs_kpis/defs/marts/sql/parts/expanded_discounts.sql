-- Each entry of Stripe's lists of expanded discounts, one row per list and position: the one parse of a
-- discount object (id, coupon{id, duration, percent_off, amount_off, currency}, start, end) that
-- marts.discount_objects, marts.subscription_item_discounts and marts.subscription_history_states include.
-- It reads a CTE `discount_lists`: one row per list, its JSON text in `discounts` beside whatever columns
-- say whose list it is (a model that reads several kinds of list unions them there, with a column naming
-- the kind, and parses them once). It gives those columns as they are, the entry's position in its list
-- (0-based: Stripe's order) and the entry's fields: discount_id, coupon_id, coupon_duration, percent_off and
-- amount_off (double; amount_off in minor units of coupon_currency), coupon_currency (upper case),
-- discount_start and discount_end (UTC; end null for once and forever). Only entries with an id are
-- returned: an entry that is a bare id (a list of ids, as an event sends them) has no fields to read. Each
-- entry is read from the list's text by path (json_extract_string), never by parsing the list into typed
-- objects: that way a list of ids, or one mixing ids and objects, reads alike on DuckDB and Spark.
select
    l.*,
    p.position,
    json_extract_string(l.discounts, '$[' || cast(p.position as varchar) || '].id') as discount_id,
    json_extract_string(l.discounts, '$[' || cast(p.position as varchar) || '].coupon.id') as coupon_id,
    json_extract_string(l.discounts, '$[' || cast(p.position as varchar) || '].coupon.duration')
        as coupon_duration,
    cast(json_extract_string(l.discounts, '$[' || cast(p.position as varchar) || '].coupon.percent_off')
         as double) as percent_off,
    cast(json_extract_string(l.discounts, '$[' || cast(p.position as varchar) || '].coupon.amount_off')
         as double) as amount_off,
    upper(json_extract_string(l.discounts, '$[' || cast(p.position as varchar) || '].coupon.currency'))
        as coupon_currency,
    to_timestamp(cast(json_extract_string(l.discounts, '$[' || cast(p.position as varchar) || '].start')
                      as bigint)) as discount_start,
    to_timestamp(cast(json_extract_string(l.discounts, '$[' || cast(p.position as varchar) || '].end')
                      as bigint)) as discount_end
from (
    -- an empty list has no entry: left out before the join to the positions, which reads each list's text
    -- once per position (most invoices and lines list none; BENCHMARKS.md "Marts on the nightly")
    select * from discount_lists where discounts is not null and cast(discounts as varchar) <> '[]'
) as l
-- Stripe allows at most 20 discounts on an object; a list without a second entry (nearly all: one discount) is
-- tried at position 0 only, so its text is read once for the bound instead of once per position (a null entry
-- at position 1 ends the list: Stripe never sends one)
inner join marts.dim_position as p
    on p.position < case when json_extract_string(l.discounts, '$[1]') is null then 1 else 20 end
    and json_extract_string(l.discounts, '$[' || cast(p.position as varchar) || '].id') is not null
