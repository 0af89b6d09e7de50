-- Source records that match no CRM account (marts.account_xref), with what they weigh: billing customers by
-- current list MRR in USD, support organizations by tickets, product workspaces by events, NPS respondents by
-- responses, each also as a share of its system's total. The MRR is an approximation for triage, not the
-- MRR the KPIs report: today's Stripe snapshot of active and past_due subscriptions, the sum of their
-- licensed items' unit_amount x quantity normalised to a month (year / 12, week x 52 / 12, day x 365 / 12,
-- divided by interval_count), converted at the latest FX rate; discounts, trials, metered usage and
-- delinquency are ignored.
-- @grain source_system, source_id
-- @column source_system: billing, support, product or nps
-- @column source_id: the record in its system (as in marts.account_xref)
-- @column source_name: the record's name in its system, or null
-- @column source_account_key: the key the record carries (Salesforce account id or workspace id); null when it has none
-- @column unmatched_reason: missing key (the record names no account) or unknown key (it names one the CRM does not have, or a deleted one)
-- @column volume_measure: what volume counts: mrr_usd (billing), tickets (support), events (product) or responses (nps)
-- @column volume: the record's volume in volume_measure (0 when it has none)
-- @column system_total_volume: the whole system's volume in volume_measure, matched and unmatched (all current list MRR, all tickets, all events, all responses)
-- @column share_of_total: volume / system_total_volume (0 when the total is 0)

with unmatched as (
    select
        source_system,
        source_id,
        source_name,
        source_account_key
    from marts.account_xref
    where not matched
),

fx_ranked as (
    select
        currency,
        rate,
        row_number() over (partition by currency order by rate_date desc) as recency
    from staging.stg_billing__fx_rates
),

fx_latest as (
    select
        currency,
        cast(rate as double) as rate
    from fx_ranked
    where recency = 1
),

item_mrr as (
    select
        subscriptions.customer_id,
        cast(items.unit_amount_minor as double) * items.quantity / items.minor_units_per_major
        * case items.interval
            when 'month' then 1.0
            when 'year' then cast(1 as double) / 12
            when 'week' then cast(52 as double) / 12
            when 'day' then cast(365 as double) / 12
        end
        / items.interval_count
        * fx_latest.rate as mrr_usd
    from staging.stg_billing__subscriptions as subscriptions
    inner join staging.stg_billing__subscription_items as items
        on subscriptions.subscription_id = items.subscription_id
    inner join fx_latest
        on items.currency = fx_latest.currency
    where subscriptions.status in ('active', 'past_due')
        and items.usage_type = 'licensed'
),

volumes as (
    select
        'billing' as source_system,
        customer_id as source_id,
        sum(mrr_usd) as volume
    from item_mrr
    group by customer_id

    union all

    select
        'support' as source_system,
        cast(organization_id as varchar) as source_id,
        cast(count(*) as double) as volume
    from staging.stg_support__tickets
    where organization_id is not null
    group by organization_id

    union all

    select
        'product' as source_system,
        workspace_id as source_id,
        cast(count(*) as double) as volume
    from staging.stg_product__events
    -- only the unmatched workspaces' events are counted (the rest would be joined to nothing below): 60 M events
    -- grouped into 97 k workspaces cost more than looking each up among the few hundred unmatched
    where workspace_id in (select source_id from unmatched where source_system = 'product')
    group by workspace_id

    union all

    select
        'nps' as source_system,
        person_id as source_id,
        cast(count(*) as double) as volume
    from staging.stg_nps__survey_responses
    group by person_id
),

system_totals as (
    select 'billing' as source_system, coalesce(sum(mrr_usd), 0) as total from item_mrr
    union all
    select 'support' as source_system, cast(count(*) as double) as total from staging.stg_support__tickets
    union all
    select 'product' as source_system, cast(count(*) as double) as total from staging.stg_product__events
    union all
    select 'nps' as source_system, cast(count(*) as double) as total from staging.stg_nps__survey_responses
),

final as (
    select
        unmatched.source_system,
        unmatched.source_id,
        unmatched.source_name,
        unmatched.source_account_key,
        case when unmatched.source_account_key is null then 'missing key' else 'unknown key' end as unmatched_reason,
        case unmatched.source_system
            when 'billing' then 'mrr_usd'
            when 'support' then 'tickets'
            when 'product' then 'events'
            when 'nps' then 'responses'
        end as volume_measure,
        coalesce(volumes.volume, 0) as volume,
        system_totals.total as system_total_volume
    from unmatched
    left join volumes
        on unmatched.source_system = volumes.source_system
        and unmatched.source_id = volumes.source_id
    left join system_totals
        on unmatched.source_system = system_totals.source_system
)

select
    source_system,
    source_id,
    source_name,
    source_account_key,
    unmatched_reason,
    volume_measure,
    cast(round(volume, 2) as double) as volume,
    cast(round(system_total_volume, 2) as double) as system_total_volume,
    case
        when system_total_volume > 0 then cast(volume as double) / cast(system_total_volume as double)
        else cast(0 as double)
    end as share_of_total
from final
