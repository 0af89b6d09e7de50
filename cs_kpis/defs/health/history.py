"""The daily health history: how much of it is (re)built, and how a nightly run adds one day.

Two settings (environment variables, read at run time):

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

The build window is recorded in ``kpis._health_build_window`` (one row, replaced by every indicator build):
the indicator SQL reads ``start_day`` from it, and the score asset reads it to know which days changed.
A full build happens when the table is missing, ``full_refresh`` is set, the indicator SQL changed, or the
history setting changed; otherwise the build is incremental.
"""

import datetime as dt
import os
from dataclasses import dataclass

WINDOW_TABLE = "kpis._health_build_window"
ENV_HISTORY_DAYS = "CS_KPIS_HEALTH_HISTORY_DAYS"
ENV_LOOKBACK_DAYS = "CS_KPIS_HEALTH_LOOKBACK_DAYS"
DEFAULT_LOOKBACK_DAYS = 7


def history_days() -> int | None:
    raw = (os.environ.get(ENV_HISTORY_DAYS) or "").strip().lower()
    if raw in ("", "all"):
        return None
    try:
        days = int(raw)
    except ValueError:
        raise ValueError(f"{ENV_HISTORY_DAYS} must be a whole number of days or 'all', not {raw!r}") from None
    if days < 1:
        raise ValueError(f"{ENV_HISTORY_DAYS} must be at least 1, not {days}")
    return days


def lookback_days() -> int:
    raw = (os.environ.get(ENV_LOOKBACK_DAYS) or "").strip()
    if not raw:
        return DEFAULT_LOOKBACK_DAYS
    try:
        days = int(raw)
    except ValueError:
        raise ValueError(f"{ENV_LOOKBACK_DAYS} must be a whole number of days, not {raw!r}") from None
    if days < 1:
        raise ValueError(f"{ENV_LOOKBACK_DAYS} must be at least 1, not {days}")
    return days


@dataclass(frozen=True)
class BuildWindow:
    mode: str                      # "full" or "incremental"
    start_day: dt.date | None      # first day (re)built; None = every account's whole history
    history_start: dt.date | None  # first day kept; None = everything
    as_of: dt.date | None
    sql_version: str
    reason: str


def _exists(con, table: str) -> bool:
    schema, name = table.split(".")
    return bool(con.execute("select count(*) from information_schema.tables where table_schema = ? and "
                            "table_name = ?", [schema, name]).fetchall()[0][0])


def previous_window(con) -> dict | None:
    if not _exists(con, WINDOW_TABLE):
        return None
    cur = con.execute(f"select * from {WINDOW_TABLE}")
    cols = [d[0] for d in cur.description]
    rows = cur.fetchall()
    return dict(zip(cols, rows[-1])) if rows else None


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

    if full_refresh:
        return full("full_refresh requested")
    if not _exists(con, table) or prev is None:
        return full(f"{table} not built yet")
    if prev.get("sql_version") != sql_version:
        return full("the indicator SQL changed")
    before = prev.get("history_start")
    if before is not None and (history_start is None or history_start < before):
        return full(f"{ENV_HISTORY_DAYS} grew: days before {before} were never built")
    last = con.execute(f"select max(day) from {table}").fetchall()[0][0]
    if last is None or as_of is None:
        return full(f"{table} is empty")
    start = min(last, as_of) - dt.timedelta(days=lookback - 1)
    if history_start is not None:
        start = max(start, history_start)
    return BuildWindow("incremental", start, history_start, as_of, sql_version,
                       f"last built day {last}, lookback {lookback} days")


def write_window(con, window: BuildWindow | None) -> None:
    """Record the window the indicator SQL reads (None: a full build of everything, for tests and tools)."""
    con.execute("create schema if not exists kpis")
    con.execute(f"create or replace table {WINDOW_TABLE} (mode varchar, start_day date, history_start date, "
                "as_of date, sql_version varchar, reason varchar, built_at timestamptz)")
    if window is None:
        window = BuildWindow("full", None, None, None, "", "full build")
    con.execute(f"insert into {WINDOW_TABLE} values (?, ?, ?, ?, ?, ?, now())",
                [window.mode, window.start_day, window.history_start, window.as_of, window.sql_version,
                 window.reason])


def build_indicators(con, model, window: BuildWindow) -> dict:
    """(Re)build ``model`` (kpis.account_indicators_daily) for ``window``: one statement on a full build;
    on an incremental one, delete the window's days (and days that fell out of the history) and insert
    them again, in one transaction. Returns counts for the UI."""
    write_window(con, window)
    con.execute("set TimeZone = 'UTC'")
    if window.mode == "full":
        con.execute(f"create or replace table {model.table} as\n{model.sql}")
        deleted = 0
    else:
        con.execute("begin transaction")
        try:
            deleted = con.execute(
                f"delete from {model.table} where day >= ? or (cast(? as date) is not null and day < ?)",
                [window.start_day, window.history_start, window.history_start]).fetchall()[0][0]
            con.execute(f"insert into {model.table} by name\n{model.sql}")
            con.execute("commit")
        except Exception:
            con.execute("rollback")
            raise
    inserted = con.execute(f"select count(*) from {model.table} where day >= ?",
                           [window.start_day or dt.date(1900, 1, 1)]).fetchall()[0][0]
    return {"mode": window.mode, "start_day": window.start_day, "history_start": window.history_start,
            "reason": window.reason, "rows_deleted": int(deleted), "rows_written": int(inserted)}
