-- The customer-success worklist: one row per account scored in kpis.health_scores (its latest day), with its
-- CSM, health and 30-day trend, the health components that pull it down, its next renewal, and its open
-- alerts from alerts.alert_candidates (status new or open): the risks, and the expansion lead with the day it
-- was first seen. The KPI report's worklist, top risks and expansion tables read this table and add no rule
-- of their own; the alert rules themselves live in cs_kpis/defs/alerts/.
-- @grain account_id
-- @column account_id: CRM account
-- @column account_name: CRM account name (the id when the account is not in marts.accounts)
-- @column segment: current CRM segment ('unknown' when not in marts.accounts)
-- @column csm_id: the account's CSM (marts.accounts.csm_id), null when unassigned
-- @column csm_name: the CSM's CRM user name, else csm_id
-- @column day: the account's latest scored day (kpis.health_scores.day)
-- @column is_active: the account has MRR on that day
-- @column arr: 12 x MRR on that day, USD
-- @column score: health score 0-100
-- @column band: green, yellow or red
-- @column trend_30d: change of the score over 30 days, rounded to 0.1 point (0 rather than -0.0)
-- @column weak_components: the health components scored below 50, with their scores ('usage 10, adoption 20'), null when none
-- @column days_to_renewal: days until the renewal (kpis.account_indicators_daily: the end of the current paid annual or longer term of a subscription not set to cancel), null when none
-- @column renewal_date: day + days_to_renewal: the day the term ends
-- @column risk_alerts: the types of the account's open risk alerts (every type but expansion_opportunity), null when none
-- @column risk_severities: their severities (critical, high, medium, info), separated by ', '
-- @column risk_reasons: their reasons, as the alerts word them, separated by ' | '
-- @column expansion_reason: the reason of the account's open expansion_opportunity alert, null when none
-- @column expansion_since: the first day that lead fired (alerts.alert_candidates.first_seen)
with open_alerts as (
    select account_id, alert_type, severity, reason, first_seen
    from alerts.alert_candidates
    where status in ('new', 'open')
),

risks as (
    select account_id,
        string_agg(alert_type, ', ') as risk_alerts,
        string_agg(severity, ', ') as risk_severities,
        string_agg(alert_type || ': ' || reason, ' | ') as risk_reasons
    from open_alerts
    where alert_type <> 'expansion_opportunity'
    group by account_id
),

expansion as (
    select account_id, min(reason) as expansion_reason, min(first_seen) as expansion_since
    from open_alerts
    where alert_type = 'expansion_opportunity'
    group by account_id
)

select
    h.account_id,
    coalesce(a.account_name, h.account_id) as account_name,
    coalesce(a.segment, 'unknown') as segment,
    a.csm_id,
    coalesce(u.user_name, a.csm_id) as csm_name,
    h.day,
    h.is_active,
    h.arr,
    h.score,
    h.band,
    case when round(h.delta_30d, 1) = 0 then 0.0 else round(h.delta_30d, 1) end as trend_30d,
    nullif(concat_ws(', ',
        case when h.usage_score < 50 then 'usage ' || cast(cast(round(h.usage_score) as integer) as varchar) end,
        case when h.adoption_score < 50 then 'adoption ' || cast(cast(round(h.adoption_score) as integer) as varchar) end,
        case when h.support_score < 50 then 'support ' || cast(cast(round(h.support_score) as integer) as varchar) end,
        case when h.sentiment_score < 50 then 'sentiment ' || cast(cast(round(h.sentiment_score) as integer) as varchar) end,
        case when h.billing_score < 50 then 'billing ' || cast(cast(round(h.billing_score) as integer) as varchar) end
    ), '') as weak_components,
    i.days_to_renewal,
    cast(h.day + i.days_to_renewal * interval '1' day as date) as renewal_date,
    r.risk_alerts,
    r.risk_severities,
    r.risk_reasons,
    e.expansion_reason,
    e.expansion_since
from kpis.health_scores as h
left join marts.accounts as a on a.account_id = h.account_id
left join staging.stg_crm__users as u on u.user_id = a.csm_id
left join kpis.account_indicators_daily as i on i.account_id = h.account_id and i.day = h.day
left join risks as r on r.account_id = h.account_id
left join expansion as e on e.account_id = h.account_id
