-- Every account's MRR on every day it changed or was positive, in USD: a view over
-- marts.mrr_daily_changes and the day spine, so it costs no storage and stays in step with the change
-- points. Query it per account and day; for month ends use marts.mrr_monthly.
-- @materialized view
-- @row_count mrr_daily_rows
-- @grain account_id, day
-- @column account_id: CRM account id
-- @column day: calendar day (UTC)
-- @column mrr: MRR in force at the end of that day, USD
select
    c.account_id,
    d.day,
    c.mrr
from marts.mrr_daily_changes as c
inner join marts.dim_day as d
    on d.day >= c.change_date
    and (c.next_change_date is null or d.day < c.next_change_date)
where c.mrr > 0 or d.day = c.change_date
