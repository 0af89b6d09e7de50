-- What a quantity of a price costs per billing period: the pricing rule of marts/README.md ("Prices"), the
-- one implementation every model that prices a quantity includes (subscription_states for tiered items,
-- subscription_history_states for invoice lines, pending invoice items and the listed items, and the check
-- revenue_history_matches_paid_invoices). It reads a CTE `quantities` (row_id, price_id, quantity; a null
-- quantity counts as 1) and gives one row per row_id whose price is in marts.price_tiers: row_id,
-- amount_per_interval (minor units, fractions of a cent kept). Units are the quantity divided by the
-- price's transform_quantity.divide_by, rounded up or down; graduated (and per unit): each tier's units x
-- its unit amount plus the flat amount of every tier at least one unit reaches; volume: all units at the
-- unit amount of the tier their number falls in, plus that tier's flat amount.
select
    u.row_id,
    sum(case
        when u.tiers_mode = 'volume' then
            case when u.units > u.lower_bound and (u.up_to is null or u.units <= u.up_to)
                 then u.units * u.unit_amount_minor + u.flat_amount_minor else 0.0 end
        else greatest(0.0, least(u.units, coalesce(u.up_to, u.units)) - u.lower_bound) * u.unit_amount_minor
             + case when u.units > u.lower_bound then u.flat_amount_minor else 0.0 end
    end) as amount_per_interval
from (
    select
        q.row_id,
        t.tiers_mode,
        t.lower_bound,
        t.up_to,
        t.unit_amount_minor,
        t.flat_amount_minor,
        case
            when t.divide_by = 1 then cast(coalesce(q.quantity, 1) as double)
            when t.round_up then ceil(cast(coalesce(q.quantity, 1) as double) / t.divide_by)
            else floor(cast(coalesce(q.quantity, 1) as double) / t.divide_by)
        end as units
    from quantities as q
    inner join marts.price_tiers as t on t.price_id = q.price_id
) as u
group by u.row_id
