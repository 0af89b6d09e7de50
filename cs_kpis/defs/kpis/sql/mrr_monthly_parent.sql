-- Month-end MRR at the parent-account grain: the children's MRR summed up to the top of their hierarchy
-- (root_account_id) per month, then classified again at that grain. A child churning while its sibling
-- expands is one contraction or expansion of the parent, not a churn. Same columns and movement rules
-- as marts.mrr_monthly, so kpis.revenue_monthly_parent is kpis.revenue_monthly on this table. A hierarchy
-- of one account (most of them) is that account's marts.mrr_monthly rows under the root's id: only the
-- hierarchies of several accounts are summed and classified again (on the large company 2,892 of 84,283,
-- 195 k of 2.8 M rows: 2.0 CPU s where rolling up every row took 3.7, BENCHMARKS.md "Small steps of the nightly").
-- @grain month, account_id
-- @column month: first day of the calendar month M
-- @column account_id: the top-level (root) CRM account; an account without a parent is its own root
-- @column child_accounts: accounts of the hierarchy with a row this month (the root included when it has MRR history)
-- @column active_child_accounts: accounts of the hierarchy with MRR > 0 at end(M)
-- @column mrr: sum of the hierarchy's MRR_a(M), USD
-- @column prev_mrr: sum of the hierarchy's MRR_a(M-1), USD
-- @column movement: new, expansion, contraction, churn, reactivation or unchanged, at the parent grain
-- @column movement_amount: mrr - prev_mrr, USD
-- @column is_active: mrr > 0
with hierarchies as (
    -- the accounts of each hierarchy with MRR history: one (most hierarchies) or several
    select root_account_id, min(account_id) <> max(account_id) as has_several
    from marts.mrr_monthly
    group by root_account_id
),

rolled_up as (
    -- the hierarchies of several accounts: their MRR summed per month
    select
        m.month,
        year(m.month) * 12 + month(m.month) as month_index,
        m.root_account_id as account_id,
        count(*) as child_accounts,
        sum(case when m.mrr > 0 then 1 else 0 end) as active_child_accounts,
        sum(m.mrr) as mrr,
        sum(m.prev_mrr) as prev_mrr
    from marts.mrr_monthly as m
    inner join hierarchies as h
        on h.root_account_id = m.root_account_id
    where h.has_several
    group by m.month, m.root_account_id
),

with_history as (
    -- rows run without gaps from the hierarchy's first active month, so rows are months
    select
        *,
        coalesce(max(case when mrr > 0 then 1 else 0 end) over (
            partition by account_id order by month_index
            rows between unbounded preceding and 1 preceding
        ), 0) = 1 as was_active_before
    from rolled_up
)

select
    month,
    account_id,
    child_accounts,
    active_child_accounts,
    mrr,
    prev_mrr,
    -- the same rules as marts.mrr_monthly
    case
        when prev_mrr = 0 and mrr > 0 and not was_active_before then 'new'
        when prev_mrr = 0 and mrr > 0 then 'reactivation'
        when prev_mrr > 0 and mrr = 0 then 'churn'
        when mrr > prev_mrr then 'expansion'
        when mrr < prev_mrr then 'contraction'
        else 'unchanged'
    end as movement,
    mrr - prev_mrr as movement_amount,
    mrr > 0 as is_active
from with_history

union all

-- a hierarchy of one account: that account's rows of marts.mrr_monthly, whose movements follow the same rules
-- over the same months (the account's first active month on), under the root's id
select
    m.month,
    m.root_account_id as account_id,
    1 as child_accounts,
    case when m.mrr > 0 then 1 else 0 end as active_child_accounts,
    m.mrr,
    m.prev_mrr,
    m.movement,
    m.mrr - m.prev_mrr as movement_amount,
    m.mrr > 0 as is_active
from marts.mrr_monthly as m
inner join hierarchies as h
    on h.root_account_id = m.root_account_id
where not h.has_several
