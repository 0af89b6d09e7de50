"""The daily health history: how much of it is (re)built, and how a nightly run adds one day.

Two settings, read at run time (the company file's ``settings.health.history_days`` / ``lookback_days``;
the variables below override them, cs_kpis/tuning.py):

- ``CS_KPIS_HEALTH_HISTORY_DAYS``: days of daily indicators and scores kept, ending at the data's as-of day
  (unset or ``all``: every day since each account's first subscription). The large benchmark keeps 365.
- ``CS_KPIS_HEALTH_LOOKBACK_DAYS`` (default 7): a nightly run rebuilds the days from the last built day
  minus this many days, so facts that arrive late (events received days after they happened, tickets
  solved, invoices paid) still reach the days they belong to.

Why a watermark and not Dagster daily partitions: the nightly job materializes revenue, health and alert
assets together, and a Dagster job cannot mix partitioned and unpartitioned assets; every day's indicators
also read the 89 days before it and running sums from the account's start, so one day is not an independent
unit of work; and late facts rewrite recent days, which a lookback handles in the same run. The trade-off:
there is no per-day status in the UI. A full rebuild of the whole history is one run (``full_refresh`` in
the run config), which is what a single-run backfill over daily partitions would give.

Every indicator build is recorded in ``kpis._health_build_window`` (one row per build, the latest
``is_current``): the indicator SQL reads ``start_day`` from the current row, and the score asset reads the
builds it has not scored yet to know which days changed. A full build happens when the table is missing,
``full_refresh`` is set, the indicator SQL changed, the history grew, or a fingerprint of every input row
dated before the nightly window (activity, MRR change points, subscription periods, product configuration,
calendar start) differs from the one taken at the last build: regenerated or restated history, or a fact
arriving later than the lookback, rebuilds everything instead of leaving stale days behind.
"""

import datetime as dt
import hashlib
import itertools
from dataclasses import dataclass

from cs_kpis import tuning
from cs_kpis.lib.sql import bigint_instead_of_hugeint

WINDOW_TABLE = "kpis._health_build_window"
ENV_HISTORY_DAYS = "CS_KPIS_HEALTH_HISTORY_DAYS"
ENV_LOOKBACK_DAYS = "CS_KPIS_HEALTH_LOOKBACK_DAYS"
DEFAULT_LOOKBACK_DAYS = 7


def _env_days(name: str, default: int | None, allow_all: bool) -> int | None:
    # the company file's settings.health.<key>, overridden by the variable (cs_kpis/tuning.py validates both)
    key = {ENV_HISTORY_DAYS: "health.history_days", ENV_LOOKBACK_DAYS: "health.lookback_days"}[name]
    value = tuning.get(key)
    return None if value == "all" else value


def history_days() -> int | None:
    return _env_days(ENV_HISTORY_DAYS, None, allow_all=True)


def lookback_days() -> int:
    return _env_days(ENV_LOOKBACK_DAYS, DEFAULT_LOOKBACK_DAYS, allow_all=False)


def split_ranges(sizes: list[tuple[str, int]], chunk_rows: int) -> list[tuple[str, str]]:
    """Inclusive ranges of the (sorted) keys whose sizes add up to about ``chunk_rows`` each."""
    ranges, first, size = [], None, 0
    for key, n in sizes:
        first = first or key
        size += n
        if size >= chunk_rows:
            ranges.append((first, key))
            first, size = None, 0
    if first is not None:
        ranges.append((first, sizes[-1][0]))
    return ranges


@dataclass(frozen=True)
class BuildWindow:
    mode: str                      # "full" or "incremental"
    start_day: dt.date | None      # first day (re)built; None = every account's whole history
    history_start: dt.date | None  # first day kept; None = everything
    as_of: dt.date | None
    sql_version: str
    reason: str


FINGERPRINT_SQL = (
    # everything before a day that the indicators of later days are built from: if any of it changes
    # (regenerated or restated source history, a remapped account, new product configuration), the days
    # before the nightly window are stale and the next build must be full
    ("kpis.account_activity_daily", "day"),
    ("marts.mrr_daily_changes", "change_date"),
    ("marts.subscription_periods", "start_date"),
)


def _exists(con, table: str) -> bool:
    schema, name = table.split(".")
    return bool(con.execute("select count(*) from information_schema.tables where table_schema = ? and "
                            "table_name = ?", [schema, name]).fetchall()[0][0])


def fingerprint(con, before: dt.date) -> str:
    """A hash of every input row dated before ``before``, of the product configuration and of the
    calendar's first day (row count and xor of row hashes per table: order-independent)."""
    parts = []
    for table, column in FINGERPRINT_SQL:
        parts.append(con.execute(f"select count(*), coalesce(bit_xor(hash(t)), 0) from {table} as t "
                                 f"where {column} < ?", [before]).fetchall()[0])
    parts.append(con.execute("select count(*), coalesce(bit_xor(hash(t)), 0) from kpis.health_product_config as t")
                 .fetchall()[0])
    parts.append(con.execute("select min(day) from marts.dim_day").fetchall()[0])
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


ACTIVITY_FINGERPRINT_SQL = (
    # what kpis.account_activity_daily's rows dated before a day are made of, as they shape those rows: a
    # late event, a ticket whose priority changed, a rating or NPS response moved or restated, a remapped
    # account all change it (and force a full activity build)
    ("select count(*), coalesce(bit_xor(hash(message_id)), 0) from staging.stg_product__events "
     "where event_type = 'track' and occurred_at < cast(? as date)"),
    ("select count(*), coalesce(bit_xor(hash(ticket_id, organization_id, priority, created_day, "
     "case when solved_day < cast(? as date) then solved_day end)), 0) "
     "from (select t.ticket_id, t.organization_id, t.priority, cast(t.created_at as date) as created_day, "
     "cast(coalesce(m.solved_at, case when t.status in ('solved', 'closed') then t.updated_at end) as date) "
     "as solved_day from staging.stg_support__tickets as t "
     "left join staging.stg_support__ticket_metrics as m on m.ticket_id = t.ticket_id) as s "
     "where created_day < cast(? as date)"),
    ("select count(*), coalesce(bit_xor(hash(ticket_id, score, cast(coalesce(updated_at, created_at) as date))), 0) "
     "from staging.stg_support__satisfaction_ratings where cast(coalesce(updated_at, created_at) as date) < cast(? as date)"),
    ("select count(*), coalesce(bit_xor(hash(person_id, score, cast(responded_at as date))), 0) "
     "from staging.stg_nps__survey_responses where responded_at < cast(? as date)"),
    ("select count(*), coalesce(bit_xor(hash(event_id, customer_id, event_type)), 0) from staging.stg_billing__events "
     "where event_type = 'invoice.payment_failed' and created_at < cast(? as date)"),
    ("select count(*), coalesce(bit_xor(hash(source_system, source_id, crm_account_id)), 0) "
     "from marts.account_xref where cast(? as date) is not null"),
    ("select count(*), coalesce(bit_xor(hash(t)), 0) from kpis.health_product_config as t "
     "where cast(? as date) is not null"),
)


def activity_fingerprint(con, before: dt.date) -> str:
    """A hash of the inputs of kpis.account_activity_daily's rows dated before ``before``."""
    con.execute("set TimeZone = 'UTC'")
    parts = [con.execute(sql, [before] * sql.count("?")).fetchall()[0] for sql in ACTIVITY_FINGERPRINT_SQL]
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def previous_window(con, log: str = WINDOW_TABLE) -> dict | None:
    """The current (latest) build recorded in ``log`` (default: the indicators'), or None."""
    builds = build_log(con, log)
    return builds[-1] if builds else None


def build_log(con, log: str = WINDOW_TABLE) -> list[dict]:
    """Every build recorded in ``log`` (default: the indicators'), oldest first."""
    if not _exists(con, log):
        return []
    cur = con.execute(f"select * from {log} order by build_seq")
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def _rebuild_reason(con, table: str, prev: dict | None, sql_version: str, full_refresh: bool,
                    what: str) -> str | None:
    """Why a windowed build must be full whatever its own rules say (asked for, never built, SQL changed);
    None when nothing forces it."""
    if full_refresh:
        return "full_refresh requested"
    if not _exists(con, table) or prev is None:
        return f"{table} not built yet"
    if prev.get("sql_version") != sql_version:
        return f"the {what} SQL changed"
    return None


def plan_window(con, table: str, sql_version: str, *, full_refresh: bool = False,
                history: int | None = None, lookback: int | None = None) -> BuildWindow:
    """Decide what an indicator build (re)computes; ``history``/``lookback`` default to the settings."""
    history = history_days() if history is None else history
    lookback = lookback_days() if lookback is None else lookback
    as_of = con.execute("select max(day) from marts.dim_day").fetchall()[0][0]
    history_start = as_of - dt.timedelta(days=history - 1) if (history and as_of is not None) else None
    prev = previous_window(con)

    def full(reason: str) -> BuildWindow:
        return BuildWindow("full", history_start, history_start, as_of, sql_version, reason)

    if reason := _rebuild_reason(con, table, prev, sql_version, full_refresh, "indicator"):
        return full(reason)
    before = prev.get("history_start")
    if before is not None and (history_start is None or history_start < before):
        return full(f"{ENV_HISTORY_DAYS} grew: days before {before} were never built")
    last = con.execute(f"select max(day) from {table}").fetchall()[0][0]
    if last is None or as_of is None:
        return full(f"{table} is empty")
    fp_day = prev.get("fingerprint_day")
    if fp_day is None or fingerprint(con, fp_day) != prev.get("fingerprint"):
        return full(f"inputs dated before {fp_day} changed since the last build (restated or regenerated history)")
    start = min(min(last, as_of) - dt.timedelta(days=lookback - 1), fp_day)
    if history_start is not None:
        start = max(start, history_start)
    return BuildWindow("incremental", start, history_start, as_of, sql_version,
                       f"last built day {last}, lookback {lookback} days; older inputs unchanged")


_COLUMNS = ("build_seq bigint, is_current boolean, mode varchar, start_day date, history_start date, as_of date, "
            "sql_version varchar, reason varchar, fingerprint_day date, fingerprint varchar, scored boolean, "
            "built_at timestamptz, account_from varchar, account_to varchar")


def write_window(con, window: BuildWindow | None, lookback: int | None = None, log: str = WINDOW_TABLE,
                 fingerprint_of=None) -> None:
    """Record a build (None: a full build of everything, for tests and tools) as the current one in ``log``,
    with the fingerprint (``fingerprint_of``, default the indicators') of its inputs before the next nightly
    window; the SQL reads ``start_day`` and the account range from the current row."""
    fingerprint_of = fingerprint_of or fingerprint
    con.execute("create schema if not exists kpis")
    con.execute(f"create table if not exists {log} ({_COLUMNS})")
    have = {r[0] for r in con.execute(
        "select column_name from information_schema.columns where table_schema = 'kpis' and table_name = ?",
        [log.split(".")[1]]).fetchall()}
    for column in _COLUMNS.split(", "):
        name = column.split(" ")[0]
        if name not in have:  # a table from an older version of this module
            con.execute(f"alter table {log} add column {column}")
    if window is None:
        window = BuildWindow("full", None, None, None, "", "full build")
    fp_day = fp = None
    if window.as_of is not None:
        lookback = lookback_days() if lookback is None else lookback
        fp_day = window.as_of - dt.timedelta(days=lookback - 1)
        fp = fingerprint_of(con, fp_day)
    seq = con.execute(f"select coalesce(max(build_seq), 0) + 1 from {log}").fetchall()[0][0]
    con.execute(f"update {log} set is_current = false where is_current")
    con.execute(f"insert into {log} (build_seq, is_current, mode, start_day, history_start, as_of, "
                "sql_version, reason, fingerprint_day, fingerprint, scored, built_at) "
                "values (?, true, ?, ?, ?, ?, ?, ?, ?, ?, false, now())",
                [seq, window.mode, window.start_day, window.history_start, window.as_of, window.sql_version,
                 window.reason, fp_day, fp])


def unscored_builds(con) -> list[dict]:
    """Indicator builds the scores have not caught up with yet, oldest first."""
    return [b for b in build_log(con) if not b.get("scored")]


def mark_scored(con) -> None:
    con.execute(f"update {WINDOW_TABLE} set scored = true where not scored")


INDICATOR_CHUNK_ROWS = 12_000_000
"""indicator rows built at a time: accounts are split into ranges of about this many account-days"""


def account_ranges(con, window: BuildWindow, chunk_rows: int = INDICATOR_CHUNK_ROWS) -> list[tuple[str, str]]:
    """Inclusive ranges of account ids, each with about ``chunk_rows`` account-days in the window."""
    rows = con.execute(
        "select account_id, greatest(date_diff('day', greatest(min(start_date), coalesce(cast(? as date), "
        "min(start_date))), cast(? as date)), 0) + 1 from marts.subscription_periods "
        "where account_id is not null group by account_id order by account_id",
        [window.start_day, window.as_of or dt.date(2100, 1, 1)]).fetchall()
    return split_ranges(rows, chunk_rows)


def build_indicators(con, model, window: BuildWindow, chunk_rows: int = INDICATOR_CHUNK_ROWS) -> dict:
    """(Re)build ``model`` (kpis.account_indicators_daily) for ``window`` in one transaction, with the
    window's record: a full build replaces the table; an incremental one deletes the window's days (and
    days that fell out of the history) and inserts them again. Accounts are built in ranges of about
    ``chunk_rows`` account-days (one range on the demo company). Returns counts for the UI."""
    con.execute("set TimeZone = 'UTC'")
    ranges = account_ranges(con, window, chunk_rows) if window.as_of is not None else []
    return _build_in_ranges(con, model, window, ranges if len(ranges) > 1 else [(None, None)], WINDOW_TABLE,
                            fingerprint)


def _build_in_ranges(con, model, window: BuildWindow, ranges: list, log: str, fingerprint_of) -> dict:
    con.execute("begin transaction")
    try:
        write_window(con, window, log=log, fingerprint_of=fingerprint_of)
        deleted = 0
        if window.mode != "full":
            deleted = con.execute(
                f"delete from {model.table} where day >= ? or (cast(? as date) is not null and day < ?)",
                [window.start_day, window.history_start, window.history_start]).fetchall()[0][0]
        for n, (first, last) in enumerate(ranges):
            con.execute(f"update {log} set account_from = ?, account_to = ? where is_current", [first, last])
            if window.mode == "full" and n == 0:
                con.execute(f"create or replace table {model.table} as\n{model.sql}")
            else:
                con.execute(f"insert into {model.table} by name\n{model.sql}")
        con.execute(f"update {log} set account_from = null, account_to = null where is_current")
        bigint_instead_of_hugeint(con, model.schema, model.name)  # sums of counts: BIGINT (once, then no-op)
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    inserted = con.execute(f"select count(*) from {model.table} where day >= ?",
                           [window.start_day or dt.date(1900, 1, 1)]).fetchall()[0][0]
    return {"mode": window.mode, "start_day": window.start_day, "history_start": window.history_start,
            "reason": window.reason, "rows_deleted": int(deleted), "rows_written": int(inserted),
            "account_ranges": len(ranges)}


# ---------------------------------------------------------------------------------- account activity

ACTIVITY_LOG = "kpis._health_activity_window"
ACTIVITY_TABLE = "kpis.account_activity_daily"
ACTIVITY_CHUNK_ROWS = 40_000_000
"""account-days (since each account's first subscription) per range of a full activity build: bounds the
memory and spill of the event windows (the large company's 60 M events build in three ranges)"""


def plan_activity_window(con, sql_version: str, *, full_refresh: bool = False,
                         lookback: int | None = None) -> BuildWindow:
    """Decide what an activity build (re)computes: every day, or (nightly) the days from the last build's
    as-of day minus the lookback. Full when the table or its log is missing, ``full_refresh`` is set, the
    SQL changed, or the inputs of the days before the last build's fingerprint day changed (a late event,
    an older ticket or rating restated, a remapped account); activity always keeps every day, because the
    indicators' running sums start from the first one."""
    lookback = lookback_days() if lookback is None else lookback
    as_of = con.execute("select max(day) from marts.dim_day").fetchall()[0][0]
    prev = previous_window(con, ACTIVITY_LOG)

    def full(reason: str) -> BuildWindow:
        return BuildWindow("full", None, None, as_of, sql_version, reason)

    if reason := _rebuild_reason(con, ACTIVITY_TABLE, prev, sql_version, full_refresh, "activity"):
        return full(reason)
    fp_day, last = prev.get("fingerprint_day"), prev.get("as_of")
    if fp_day is None or last is None or as_of is None:
        return full("no as-of day to continue from")
    if activity_fingerprint(con, fp_day) != prev.get("fingerprint"):
        return full(f"inputs dated before {fp_day} changed since the last build (late or restated facts)")
    start = min(min(last, as_of) - dt.timedelta(days=lookback - 1), fp_day)
    return BuildWindow("incremental", start, None, as_of, sql_version,
                       f"last build as of {last}, lookback {lookback} days; older inputs unchanged")


def activity_ranges(con, window: BuildWindow, chunk_rows: int = ACTIVITY_CHUNK_ROWS) -> list[tuple]:
    """Contiguous account ranges (lower bound exclusive, upper inclusive, None = open) that cover every
    account id, cut where about ``chunk_rows`` account-days of subscribed accounts add up."""
    cuts = [last for _, last in account_ranges(con, window, chunk_rows)][:-1] if window.as_of is not None else []
    bounds = [None, *cuts, None]
    return list(itertools.pairwise(bounds))


def build_activity(con, model, window: BuildWindow, chunk_rows: int = ACTIVITY_CHUNK_ROWS) -> dict:
    """(Re)build kpis.account_activity_daily for ``window`` in one transaction (see build_indicators)."""
    con.execute("set TimeZone = 'UTC'")
    return _build_in_ranges(con, model, window, activity_ranges(con, window, chunk_rows), ACTIVITY_LOG,
                            activity_fingerprint)
