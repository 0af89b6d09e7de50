"""The fingerprints of the health layer's incremental tables (cs_kpis/lib/incremental.py): per account, a hash
of every input row dated before the previous night's window that the account's rows are made of (the indicators'
input built incrementally too, the activity, reaches them through its build records instead). When an
account's differs the next night (an old ticket whose priority changed, a remapped workspace, an event
arriving later than the lookback), the nightly rebuilds that account's every kept day, the window's days for
everyone; when too many accounts changed (incremental.MAX_REBUILT_SHARE: a regenerated demo company, restated
billing) or an input no account owns changed (the product configuration, the calendar), the build is full.
Inputs outside a fingerprint (for the indicators: first-reply and resolution times of old tickets, invoices
paid late, CSM sentiment history; a write to kpis.account_activity_daily outside its builds) reach days older than
the lookback only with ``full_refresh``.
"""

import datetime as dt
from pathlib import Path

from cs_kpis.lib.incremental import Carry, Fingerprint, Part
from cs_kpis.lib.sql import sql_part

SQL_DIR = Path(__file__).parent / "sql"


PRODUCT_CONFIG_SQL = ("select count(*), coalesce(bit_xor(hash(t)), 0) from kpis.health_product_config as t "
                      "where cast(? as date) is not null")

INDICATOR_FINGERPRINT = Fingerprint(
    # inputs no account owns: new product configuration, another calendar start
    shared=(PRODUCT_CONFIG_SQL, "select min(day) from marts.dim_day where cast(? as date) is not null"),
    # everything before a day that an account's indicators of later days are built from (regenerated or restated
    # source history, a remapped account). A row's end (the next MRR change, a period's end) on or after the
    # day is hashed as no end: the indicators read it only as "in force on the day" (start <= day < end), the
    # same for every older day either way, and an open MRR level or period ending on the new day (a change, a
    # cancellation) made every such nightly rebuild the year
    # The activity (kpis.account_activity_daily) is not hashed here: its rows change only through its own builds,
    # and their records already reach this build (incremental.plan's upstream rule): a full build of it makes this
    # one full, the accounts it rebuilt on every day are rebuilt on every day here, and this window starts no
    # later than its window. Hashing its every row each night (30.7 M on the large company) found nothing those
    # records do not say, and was most of the plan's cost (BENCHMARKS.md "Indicators' nightly: the profile").
    parts=(
        *(f"select account_id, count(*) as n, bit_xor(hash(t)) as h from (select * {replace} from {table}) as t "
          f"where {column} < ? group by account_id"
          for table, column, replace in (
              ("marts.mrr_daily_changes", "change_date",
               "replace (case when next_change_date < cast(? as date) then next_change_date end as next_change_date)"),
              ("marts.subscription_periods", "start_date",
               "replace (case when end_date < cast(? as date) then end_date end as end_date)"),
          )),
    ),
)
INDICATOR_FINGERPRINT_SQL = (*INDICATOR_FINGERPRINT.shared, INDICATOR_FINGERPRINT.by_account)


def indicator_fingerprint(con, before: dt.date) -> str:
    """The shared part's hash of kpis.account_indicators_daily's inputs of the rows dated before ``before``."""
    return INDICATOR_FINGERPRINT.shared_hash(con, before)


ACTIVITY_CTES = f"""
tickets as (
    -- the tickets as the activity reads them (sql/parts/support_tickets.sql): of organizations mapped to an account
    select account_id, ticket_id, priority, created_day, solved_day from (
{sql_part(SQL_DIR, 'support_tickets')}
    ) as s
),
xref as (
    select source_system, source_id, crm_account_id as account_id from marts.account_xref
    where crm_account_id is not null
)"""
ACTIVITY_PARTS = (
    # a late event (counted per workspace first: far fewer rows to map), its workspace's account; appended by
    # received day, which follows the occurred time: ordered (the rows of the days hashed read apart)
    Part(source="staging.stg_product__events", where="event_type = 'track'", dated="occurred_at", key="workspace_id",
         hashed="hash(message_id)", mapping="inner join xref as x on x.source_system = 'product' and x.source_id = p.key",
         account="x.account_id", ordered=True),
    # a ticket whose priority class or organization changed (the activity counts open urgent/high days by the
    # latest priority, and reads no other class: low -> normal changes no row, so it is hashed as the class);
    # a solved day on or after the day is hashed as none (it changes no older day)
    Part(source="tickets", key="account_id", dated="created_day",
         hashed="hash(ticket_id, coalesce(priority in ('urgent', 'high'), false), created_day, "
                "case when solved_day < {day} then solved_day end)"),
    # satisfaction ratings, under their ticket's account
    Part(source="staging.stg_support__satisfaction_ratings as r inner join tickets as t on t.ticket_id = r.ticket_id",
         key="t.account_id", dated="cast(coalesce(r.updated_at, r.created_at) as date)",
         hashed="hash(r.ticket_id, r.score, cast(coalesce(r.updated_at, r.created_at) as date))"),
    Part(source="staging.stg_nps__survey_responses as r "
                "inner join xref as x on x.source_system = 'nps' and x.source_id = r.person_id",
         key="x.account_id", dated="r.responded_at", hashed="hash(r.person_id, r.score, cast(r.responded_at as date))"),
    Part(source="staging.stg_billing__events as e "
                "inner join xref as x on x.source_system = 'billing' and x.source_id = e.customer_id",
         where="e.event_type = 'invoice.payment_failed'", key="x.account_id", dated="e.created_at",
         hashed="hash(e.event_id, e.customer_id, e.event_type)"),
)

ACTIVITY_FINGERPRINT = Fingerprint(
    # what kpis.account_activity_daily's rows dated before a day are made of, per account as the activity maps
    # its sources (marts.account_xref): a remap moves a source id's rows from one account's hash to another's
    # (both rebuilt), a mapping first seen for an id without older rows (a new NPS respondent every day on a
    # real company) changes none, and rows of ids mapped to no account are in no account's rows
    shared=(PRODUCT_CONFIG_SQL,),
    parts=ACTIVITY_PARTS,
    ctes=ACTIVITY_CTES,
)
ACTIVITY_FINGERPRINT_SQL = (*ACTIVITY_FINGERPRINT.shared, ACTIVITY_FINGERPRINT.by_account)


def activity_fingerprint(con, before: dt.date) -> str:
    """The shared part's hash of kpis.account_activity_daily's inputs of the rows dated before ``before``."""
    return ACTIVITY_FINGERPRINT.shared_hash(con, before)


FINGERPRINTS = {"kpis.account_activity_daily": ACTIVITY_FINGERPRINT,
                "kpis.account_indicators_daily": INDICATOR_FINGERPRINT}
"""the fingerprint of each incremental SQL model of the layer, by table"""

INDICATOR_CARRY = Carry(
    # what kpis.account_indicators_daily's running sums start from (its activity_totals): per account, the activity
    # before the first day a nightly's windows read. The nightly rolls it forward by a day instead of summing the
    # activity's whole history (BENCHMARKS.md "Indicators' nightly: the running sums' carry kept")
    table="kpis._indicator_carry",
    source="kpis.account_activity_daily",
    firsts=(("first_activity_day", "day", "date"), ("first_value_at", "first_value_at", "timestamptz")),
    sums=(("users_7d", "users_7d_delta"), ("users_30d", "users_30d_delta"),
          ("key_features_30d", "key_features_30d_delta"), ("milestones_reached", "milestones_reached"),
          ("urgent_high", "urgent_high_delta")),
)
CARRIES = {"kpis.account_indicators_daily": INDICATOR_CARRY}
"""the carry each incremental SQL model of the layer keeps for its next build, by table (incremental.Carry)"""
