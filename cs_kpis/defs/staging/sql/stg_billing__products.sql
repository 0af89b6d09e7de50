-- Stripe products: the plans sold (one product per plan tier, plus add-ons).
-- @grain product_id
-- @column product_id: Stripe product id (prod_)
-- @column product_name: product name
-- @column plan_tier: metadata.plan_tier (starter, growth, enterprise, ...)
-- @column product_type: Stripe product type (service)
-- @column is_active: whether the product can be sold
-- @column created_at: when the product was created
-- @column updated_at: when the product was last updated
-- @column extract_day: the landing extract day of the loaded version

with source as (
    select * from raw.billing__products
),

renamed as (
    select
        id as product_id,
        name as product_name,
        metadata__plan_tier as plan_tier,
        type as product_type,
        active as is_active,
        created as created_at,
        updated as updated_at,
        _extract_day as extract_day
    from source
)

select * from renamed
