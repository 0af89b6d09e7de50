-- Every price as the tiers that price a quantity of it, from the prices list (Stripe includes a price's
-- tiers only when asked: GET /v1/prices?expand[]=data.tiers; a subscription item's or an event's price
-- never carries them). A per-unit price is one tier without an upper bound, at unit_amount_decimal (which
-- may hold fractions of a cent) or else unit_amount, with its transform_quantity (units billed in packs).
-- What q units cost per billing period (marts/README.md, "Prices"):
--   graduated (and per unit): sum over tiers of units in the tier x unit amount, plus the flat amount of
--     every tier at least one unit reaches;
--   volume: q x the unit amount of the tier q falls in, plus that tier's flat amount;
--   with transform_quantity, q is first divided by divide_by and rounded up or down.
-- @grain price_id, tier_position
-- @column price_id: Stripe price id (price_)
-- @column tiers_mode: graduated (each unit priced by the tier it falls in; every per-unit price) or volume (every unit priced by the tier the whole quantity falls in)
-- @column tier_position: 0-based place of the tier in the price's list (0 for a per-unit price)
-- @column lower_bound: units below the tier: the previous tier's up_to, 0 for the first
-- @column up_to: the tier's last unit; null for the last tier (no bound)
-- @column unit_amount_minor: price per unit in the tier, minor units (fractions of a cent kept)
-- @column flat_amount_minor: the tier's flat amount, minor units (0 when none)
-- @column divide_by: transform_quantity.divide_by of a per-unit price (units billed in packs of this many); 1 without
-- @column round_up: true when a part pack counts as a whole one (transform_quantity.round = up)
with tiers as (
    select
        p.price_id,
        coalesce(p.tiers_mode, 'graduated') as tiers_mode,
        t.position as tier_position,
        cast(json_extract_string(p.tiers, '$[' || cast(t.position as varchar) || '].up_to') as double) as up_to,
        coalesce(
            cast(json_extract_string(p.tiers, '$[' || cast(t.position as varchar) || '].unit_amount_decimal') as double),
            cast(json_extract_string(p.tiers, '$[' || cast(t.position as varchar) || '].unit_amount') as double),
            0.0) as unit_amount_minor,
        coalesce(
            cast(json_extract_string(p.tiers, '$[' || cast(t.position as varchar) || '].flat_amount_decimal') as double),
            cast(json_extract_string(p.tiers, '$[' || cast(t.position as varchar) || '].flat_amount') as double),
            0.0) as flat_amount_minor
    from staging.stg_billing__prices as p
    inner join marts.dim_position as t
        on json_extract_string(p.tiers, '$[' || cast(t.position as varchar) || ']') is not null
    where p.billing_scheme = 'tiered'
),

per_unit as (
    select
        price_id,
        'graduated' as tiers_mode,
        0 as tier_position,
        cast(null as double) as up_to,
        coalesce(unit_amount_decimal, cast(unit_amount_minor as double)) as unit_amount_minor,
        0.0 as flat_amount_minor,
        coalesce(transform_divide_by, 1) as divide_by,
        coalesce(transform_round, 'up') = 'up' as round_up
    from staging.stg_billing__prices
    where coalesce(billing_scheme, 'per_unit') <> 'tiered'
)

select
    price_id,
    tiers_mode,
    tier_position,
    coalesce(lag(up_to) over (partition by price_id order by tier_position), 0.0) as lower_bound,
    up_to,
    unit_amount_minor,
    flat_amount_minor,
    cast(1 as bigint) as divide_by,
    true as round_up
from tiers
union all
select
    price_id,
    tiers_mode,
    tier_position,
    0.0 as lower_bound,
    up_to,
    unit_amount_minor,
    flat_amount_minor,
    cast(divide_by as bigint) as divide_by,
    round_up
from per_unit
