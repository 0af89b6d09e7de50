-- Every account's MRR at each day it changed: the storage behind marts.mrr_daily. One row per account
-- per day on which its MRR (the sum of its subscription periods in force that day) changed, with the
-- value that holds from that day until the next change. A year of daily MRR for 100,000 accounts would
-- be ~36M rows; the change points are a few per account-month, and the daily view expands them on read.
-- Customers that match no CRM account are not here (see marts.subscription_periods, account_id null).
-- @grain account_id, change_date
-- @column account_id: CRM account id
-- @column change_date: the day the account's MRR took this value
-- @column mrr: MRR in USD from change_date on (0 after churn)
-- @column previous_mrr: MRR in USD on the day before change_date
-- @column next_change_date: the next change day (exclusive end of this value); null while current
with deltas as (
    select account_id, start_date as change_date, mrr as delta
    from marts.subscription_periods
    where account_id is not null
    union all
    select account_id, end_date as change_date, -mrr as delta
    from marts.subscription_periods
    where account_id is not null and end_date is not null
),

per_day as (
    select account_id, change_date, sum(delta) as delta
    from deltas
    group by account_id, change_date
),

running as (
    select
        account_id,
        change_date,
        sum(delta) over (
            partition by account_id order by change_date rows between unbounded preceding and current row
        ) as mrr
    from per_day
),

changes as (
    select
        account_id,
        change_date,
        mrr,
        coalesce(lag(mrr) over (partition by account_id order by change_date), 0) as previous_mrr
    from running
)

select
    account_id,
    change_date,
    cast(mrr as decimal(18, 2)) as mrr,
    cast(previous_mrr as decimal(18, 2)) as previous_mrr,
    lead(change_date) over (partition by account_id order by change_date) as next_change_date
from changes
where mrr <> previous_mrr
