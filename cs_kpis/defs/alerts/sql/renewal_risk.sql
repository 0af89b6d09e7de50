-- renewal_risk: a term contract renews within $renewal_within_days days and the health band is in
-- $risky_bands (high), or a cancellation is scheduled (critical).
-- A renewal is the end of a paid licensed billing period longer than $min_term_days days (an annual
-- contract), from the invoice lines as kpis.account_indicators_daily reads them. Monthly and quarterly
-- plans "renew" every period, so for them "renewal within 90 days" is always true and the rule would
-- degenerate into "health yellow or red" (a third of the demo company); they are covered by health_red,
-- health_drop and the scheduled-cancellation arm instead. (kpis.account_indicators_daily.days_to_renewal is
-- the nearest end of any paid period, monthly add-ons included, so it cannot tell a term renewal apart.)
with billing_accounts as (
    select source_id as customer_id, crm_account_id as account_id
    from marts.account_xref
    where source_system = 'billing' and crm_account_id is not null
),
term_periods as (
    select distinct b.account_id, cast(l.period_start as date) as period_start,
        cast(l.period_end as date) as period_end
    from staging.stg_billing__invoice_lines as l
    inner join staging.stg_billing__invoices as i on i.invoice_id = l.invoice_id
    inner join billing_accounts as b on b.customer_id = i.customer_id
    left join staging.stg_billing__prices as p on p.price_id = l.price_id
    where i.status not in ('draft', 'void')
        and not coalesce(l.is_proration, false)
        and coalesce(p.usage_type, 'licensed') = 'licensed'
        and l.subscription_id is not null
        and date_diff('day', cast(l.period_start as date), cast(l.period_end as date)) > $min_term_days
),
term_renewal as (
    select i.account_id, i.day, min(date_diff('day', i.day, t.period_end)) as days_to_term_renewal
    from kpis.account_indicators_daily as i
    inner join term_periods as t
        on t.account_id = i.account_id and t.period_start <= i.day and t.period_end > i.day
    where i.day between cast($first_day as date) and cast($as_of as date)
    group by i.account_id, i.day
)
select i.account_id, i.day,
    case when i.cancellation_scheduled = 1 then 'critical' else $severity end as severity,
    concat_ws('; ',
        case when i.cancellation_scheduled = 1 then 'cancellation scheduled' end,
        case when r.days_to_term_renewal <= $renewal_within_days and s.band in (select unnest($risky_bands))
            then 'contract renews in ' || r.days_to_term_renewal || ' days with health '
                || cast(round(s.score) as integer) || ' (' || s.band || ')' end) as reason
from kpis.account_indicators_daily as i
left join kpis.health_scores_daily as s
    on s.account_id = i.account_id and s.day = i.day
left join term_renewal as r
    on r.account_id = i.account_id and r.day = i.day
where i.is_active
    and (i.cancellation_scheduled = 1
        or (r.days_to_term_renewal <= $renewal_within_days and s.band in (select unnest($risky_bands))))
    and i.day between cast($first_day as date) and cast($as_of as date)
