"""The fingerprints of the health layer's incremental tables (cs_kpis/lib/incremental.py): a hash of every
input row dated before the previous night's window. When it differs the next night (a regenerated demo
company, restated billing, a remapped account, an event arriving later than the lookback), the build is full
instead of leaving stale days behind. Inputs outside a fingerprint (for the indicators: first-reply and
resolution times of old tickets, invoices paid late, CSM sentiment history) reach days older than the
lookback only with ``full_refresh``.
"""

import datetime as dt
from pathlib import Path

from cs_kpis.lib.incremental import fingerprint_of
from cs_kpis.lib.sql import sql_part

SQL_DIR = Path(__file__).parent / "sql"

INDICATOR_FINGERPRINT_SQL = tuple(
    # everything before a day that the indicators of later days are built from (count and xor of row hashes:
    # order-independent): regenerated or restated source history, a remapped account, new product configuration.
    # A row's end (the next MRR change, a period's end) on or after the day is hashed as no end: the indicators
    # read it only as "in force on the day" (start <= day < end), the same for every older day either way, and
    # an open MRR level or period ending on the new day (a change, a cancellation) made every such nightly
    # rebuild the year
    f"select count(*), coalesce(bit_xor(hash(t)), 0) from (select * {replace} from {table}) as t where {column} < ?"
    for table, column, replace in (
        ("kpis.account_activity_daily", "day", ""),
        ("marts.mrr_daily_changes", "change_date",
         "replace (case when next_change_date < cast(? as date) then next_change_date end as next_change_date)"),
        ("marts.subscription_periods", "start_date",
         "replace (case when end_date < cast(? as date) then end_date end as end_date)"),
    )
) + ("select count(*), coalesce(bit_xor(hash(t)), 0) from kpis.health_product_config as t",
     "select min(day) from marts.dim_day")


def indicator_fingerprint(con, before: dt.date) -> str:
    """A hash of the inputs of kpis.account_indicators_daily's rows dated before ``before``."""
    return fingerprint_of(con, INDICATOR_FINGERPRINT_SQL, before)


ACTIVITY_FINGERPRINT_SQL = (
    # what kpis.account_activity_daily's rows dated before a day are made of, as they shape those rows: a
    # late event, a ticket whose priority changed, a rating or NPS response moved or restated, a remapped
    # account all change it (and force a full activity build)
    ("select count(*), coalesce(bit_xor(hash(message_id)), 0) from staging.stg_product__events "
     "where event_type = 'track' and occurred_at < cast(? as date)"),
    # the tickets as the activity reads them (sql/parts/support_tickets.sql): unmatched organizations are
    # left out here and covered by the account_xref line below
    ("select count(*), coalesce(bit_xor(hash(ticket_id, account_id, priority, created_day, "
     "case when solved_day < cast(? as date) then solved_day end)), 0) "
     f"from (\n{sql_part(SQL_DIR, 'support_tickets')}\n) as s where created_day < cast(? as date)"),
    ("select count(*), coalesce(bit_xor(hash(ticket_id, score, cast(coalesce(updated_at, created_at) as date))), 0) "
     "from staging.stg_support__satisfaction_ratings where cast(coalesce(updated_at, created_at) as date) < cast(? as date)"),
    ("select count(*), coalesce(bit_xor(hash(person_id, score, cast(responded_at as date))), 0) "
     "from staging.stg_nps__survey_responses where responded_at < cast(? as date)"),
    ("select count(*), coalesce(bit_xor(hash(event_id, customer_id, event_type)), 0) from staging.stg_billing__events "
     "where event_type = 'invoice.payment_failed' and created_at < cast(? as date)"),
    # the account mappings of the source ids that have rows above: a mapping first seen for an id without
    # older rows (a new NPS respondent, customer or workspace, every day on a real company) cannot change an
    # older day, and hashing the whole table made every such nightly rebuild the year; a remap, or an older
    # id matched for the first time, changes it (systems the activity does not read: hashed whole)
    ("select count(*), coalesce(bit_xor(hash(source_system, source_id, crm_account_id)), 0) "
     "from marts.account_xref as x where "
     "(x.source_system = 'product' and x.source_id in (select workspace_id from staging.stg_product__events "
     "where event_type = 'track' and occurred_at < cast(? as date))) "
     "or (x.source_system = 'support' and x.source_id in (select cast(organization_id as varchar) "
     "from staging.stg_support__tickets where cast(created_at as date) < cast(? as date))) "
     "or (x.source_system = 'nps' and x.source_id in (select person_id from staging.stg_nps__survey_responses "
     "where responded_at < cast(? as date))) "
     "or (x.source_system = 'billing' and x.source_id in (select customer_id from staging.stg_billing__events "
     "where event_type = 'invoice.payment_failed' and created_at < cast(? as date))) "
     "or x.source_system not in ('product', 'support', 'nps', 'billing')"),
    ("select count(*), coalesce(bit_xor(hash(t)), 0) from kpis.health_product_config as t "
     "where cast(? as date) is not null"),
)


def activity_fingerprint(con, before: dt.date) -> str:
    """A hash of the inputs of kpis.account_activity_daily's rows dated before ``before``."""
    return fingerprint_of(con, ACTIVITY_FINGERPRINT_SQL, before)


FINGERPRINTS = {"kpis.account_activity_daily": activity_fingerprint,
                "kpis.account_indicators_daily": indicator_fingerprint}
"""the fingerprint of each incremental SQL model of the layer, by table"""
