-- Several discounts composed into one map x -> max(0, x * factor - offset_minor): the discount rule of
-- marts/README.md ("Several discounts"), the one implementation the event ledger (subscription_states), the
-- invoice history and the subscriptions list's current state (subscription_history_states) include. It
-- reads a CTE `discount_inputs`: one row per discount that counts for MRR, with owner_id, at_time and
-- item_position (the list it belongs to: a state at a time, and -1 for the subscription's own list or an
-- item's position), discount_order (its place in that list), coupon_id, percent_off, amount_off_minor (in
-- the subscription's currency) and months_per_period. Each discount is the step x -> x * (1 - percent/100)
-- or x - amount_off / months per period, applied in order to what the ones before it left; composed, the
-- offset of a step is scaled by the product of the multipliers after it. Once a step reaches 0 the rest
-- cannot lift it (every multiplier is between 0 and 1), so clamping at the end is the same as clamping at
-- each step. It gives one row per list: owner_id, at_time, item_position, first_coupon_id (the first
-- discount's coupon), factor and offset_minor.
select
    s.owner_id,
    s.at_time,
    s.item_position,
    max(case when s.discount_order = s.first_order then s.coupon_id end) as first_coupon_id,
    case when sum(case when s.multiplier = 0 then 1 else 0 end) > 0 then 0.0
         else exp(sum(case when s.multiplier > 0 then ln(s.multiplier) else 0 end)) end as factor,
    sum(s.offset_minor * case when coalesce(s.zeros_after, 0) > 0 then 0.0 else exp(coalesce(s.ln_after, 0)) end)
        as offset_minor
from (
    select
        m.*,
        min(m.discount_order) over (partition by m.owner_id, m.at_time, m.item_position) as first_order,
        sum(case when m.multiplier = 0 then 1 else 0 end) over w_after as zeros_after,
        sum(case when m.multiplier > 0 then ln(m.multiplier) else 0 end) over w_after as ln_after
    from (
        select
            d.owner_id,
            d.at_time,
            d.item_position,
            d.discount_order,
            d.coupon_id,
            case when d.percent_off is not null then 1 - cast(d.percent_off as double) / 100.0 else 1.0 end
                as multiplier,
            case when d.percent_off is null and d.amount_off_minor is not null
                 then cast(d.amount_off_minor as double) / d.months_per_period else 0.0 end as offset_minor
        from discount_inputs as d
    ) as m
    window w_after as (
        partition by m.owner_id, m.at_time, m.item_position order by m.discount_order
        rows between 1 following and unbounded following
    )
) as s
group by s.owner_id, s.at_time, s.item_position
