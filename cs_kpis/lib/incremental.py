"""Incremental builds of account x day tables: one planner, one control table, one chunked delete-and-insert.

A SQL model becomes incremental with a header tag (cs_kpis/lib/sql.py)::

    -- @incremental lookback_days=7 history=limited chunk_rows=40000000

- ``lookback_days`` (default 7; ``CS_KPIS_HEALTH_LOOKBACK_DAYS`` overrides it for every incremental table):
  a nightly build rebuilds this many days ending at the last built day (from that day minus (lookback_days - 1) days)
  and every later day up to the as-of day, so facts that arrive late (events received days after they
  happened, tickets solved, invoices paid) still reach their days.
- ``history`` ``all`` (default: every day is kept) or ``limited``: only the ``CS_KPIS_HEALTH_HISTORY_DAYS``
  days ending at the as-of day are kept (unset or ``all``: every day); older days are deleted as it moves.
- ``chunk_rows`` (default CHUNK_ROWS): a build runs in contiguous ranges of account ids, each of about this
  many account-days (from each account's first subscription day in marts.subscription_periods), so memory
  stays bounded at any size. One transaction: readers see the old or the new table, never half of it.
- ``rows_per_gb`` (default none): with DuckDB's ``memory_limit`` set, a range holds at most this many
  account-days per GB of it (and at most ``chunk_rows``), so a smaller memory limit gives smaller ranges
  instead of spilling (measured for the indicators: BENCHMARKS.md "Indicators: ticket medians and
  memory-sized ranges"). Such a model's nightly window is cut into the ranges of a full build, since it reads
  far more than the days it writes (BENCHMARKS.md "Large (2026-12-05, session 10)"), unless it says how far
  back it reads:
- ``reads_days`` (default none; only with ``rows_per_gb``, refused without it): the model reads at most this
  many days before the first day it writes (its longest trailing window; what it needs from earlier days is a
  small per-account carry), so a nightly window's ranges are sized by the account-days from
  ``start_day - reads_days`` to the as-of day instead of a full build's (BENCHMARKS.md "Indicators by segments").
- ``window_rows_per_gb`` (default ``rows_per_gb``; only with ``reads_days``, refused without it): account-days
  of those read days a nightly window's range may hold per GB, for a model whose nightly holds far less per
  account-day read than a full build per account-day written (the indicators read the 89 days before the
  window as sparse activity rows, not a grid: BENCHMARKS.md "Health nightly: one read of the inputs'
  history"). The accounts a nightly rebuilds on every day are cut by ``rows_per_gb``, as a full build, and so is
  a window that writes more than a nightly's lookback + 1 days (a catch-up after missed nights: the days
  written are a full grid per account).
- ``listed=window`` (default: off): the model's SQL can build the accounts a nightly rebuilds on every day in the
  window's own pass (``listed`` = ``whole`` below), and does so when their kept account-days are at most
  LISTED_IN_WINDOW_SHARE of a full build's range. Each pass reads the inputs that are not per account whole
  (tickets, invoices, subscription states: about 5 operator seconds on the large company), so a pass of their own
  cost the indicators' nightly 1.8-3.8 s for 9 accounts (BENCHMARKS.md "Indicators' nightly: the listed accounts in
  the window's pass").
- ``carry=<schema>._<table>`` (default: none; only with ``reads_days``): the model's running sums start from a
  per-account summary of its input before the first day its window reads, which each build keeps in that table
  for the next one (Carry: what it holds, when it is read and why it stays true). The model's SQL reads it when
  its control row has ``carry_through``, else it sums every input row; a build of such a model needs its Carry
  (sql_assets ``carries``), or it fails.

The table must have ``account_id`` and ``day`` columns; the as-of day is ``max(day)`` of marts.dim_day.
Every build is a row of CONTROL_TABLE (``model``, ``mode``, ``start_day``, ``history_start``, ``as_of``,
``reason``, the fingerprint, the current account range, ``accounts_rebuilt``, ``listed``); the model's
SQL reads its current row::

    select max(start_day) as start_day, max(account_from) as account_from, max(account_to) as account_to,
           max(build_seq) as build_seq, max(listed) as listed, max(history_start) as history_start
    from kpis._build_window where model = 'kpis.my_table' and is_current

and produces the rows of days >= start_day (null: every day) for the accounts in (account_from, account_to]
(null: open; a line ``-- account range: <alias>.account_id`` after a scan's joins is rendered as a WHERE of the
range's bounds as constants, with_account_range, so that DuckDB skips the other accounts' row groups: the
model must still restrict its accounts itself); when ``listed`` is ``only``, only for the accounts of
ACCOUNTS_TABLE (``kpis._build_accounts``) with that model and build_seq, when ``except``, for every other account (a left join of the list where the
accounts are first read, so every later step handles only them: plain SQL, DuckDB and Spark), when ``whole``
(``listed=window`` models only), for every account, the listed ones from ``history_start`` (null: their whole
history) and the others from ``start_day``. Python-built
tables (the health scores) use plan, record and account_ranges the same way. The alerts
(cs_kpis/defs/alerts/engine.py) record their builds here too, with a planner of their own that reads these
records (a full build of a table they read makes theirs full; the accounts one rebuilt on every day are
rebuilt on every day by theirs too, within MAX_REBUILT_SHARE, rebuilt_share).

A build is full when asked (``full_refresh``), when the table or its record is missing, when its SQL changed,
when the kept history grew, or when a table it reads was fully rebuilt since its last build (``upstream``).
Otherwise it is incremental: the window's days for every account, and every kept day of the window's
``accounts``:

- a model's ``fingerprint`` (Fingerprint) hashes its inputs dated before the previous night's window, per
  account they map to (count and xor of row hashes in FINGERPRINTS_TABLE, ``kpis._build_fingerprints``, the
  current build's only) and a shared part no account owns; a nightly's plan hashes the day it compares and
  the day its record keeps in one statement (BuildWindow.fingerprint_next), each input given as a Part read
  once for both days (an input given as a query is read once per day). The accounts whose
  hash differs from last night's (restated or late facts: an old ticket's priority, a remap, which changes the
  old and the new account's) are rebuilt on every day; a row mapping to no account is in no account's hash;
- the accounts any upstream build since rebuilt on every day (ACCOUNTS_TABLE) are rebuilt too, so the
  indicators and the scores follow the activity's list instead of rebuilding everything;
- the build is full instead when the shared part changed (the product configuration, the calendar), or when
  the accounts to rebuild are more than MAX_REBUILT_SHARE (10%) of the accounts of marts.subscription_periods:
  a regenerated or restated company, not a few late facts (and the listed pass would cost a large part of a
  full build anyway). The reason names the counts; ``accounts_rebuilt`` records how many.

The build then deletes the window's days and the listed accounts' rows, runs the SQL with ``listed`` =
``only`` and start_day = the history start (in ranges of those accounts only), then with ``except`` and the
window's start_day for everyone else, in ranges, all in one transaction; a ``listed=window`` model with few
listed accounts runs once per range instead, with ``whole``.
On the large company one nightly's 216 old tickets touched about 200 of 100,000 accounts: rebuilding those
replaces a full build of all three health tables (BENCHMARKS.md "Nightly: only the changed accounts").

Each build also records the table's rows when it began and ended (record_rows), and CHECKED_TABLE the build a
row or key check last passed on: such a check (cs_kpis/lib/checks.py written_rows_check) looks only at the rows
written since (rows_to_check), every row after a full build or when the counts do not chain from the pass through
the builds to now (another path wrote). The scores' unique key is checked this way: grouping the large company's
33 M keys each night cost 4.4 CPU seconds, its 0.8 M written keys 0.2.

Why not Dagster daily partitions: a nightly job materializes partitioned and unpartitioned assets together,
a day reads the days before it (trailing windows, running sums), and late facts rewrite recent days in the
same run. A watermark with a lookback (dbt's incremental models work the same way) gives that in one run,
and ``full_refresh`` is the single-run backfill. What it does not give: a per-day status in the UI.
"""

import datetime as dt
import hashlib
import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from cs_kpis import tuning

CONTROL_TABLE = "kpis._build_window"
ENV_HISTORY_DAYS = tuning.SETTINGS["health.history_days"].env
ENV_LOOKBACK_DAYS = tuning.SETTINGS["health.lookback_days"].env
DEFAULT_LOOKBACK_DAYS = tuning.SETTINGS["health.lookback_days"].default
CHUNK_ROWS = 12_000_000
"""account-days per range of a build, unless the model's tag says otherwise"""
TAG_KEYS = {"lookback_days", "history", "chunk_rows", "rows_per_gb", "reads_days", "window_rows_per_gb", "listed", "by",
            "merge", "carry"}
LISTED_IN_WINDOW_SHARE = 0.1
"""a model tagged ``listed=window`` builds the accounts a nightly rebuilds on every day in the window's own pass
when their kept days are at most this share of a full build's range (more: a pass of their own, as without it)"""


def history_days() -> int | None:
    """Days of daily history kept for ``history=limited`` tables: the company file's
    settings.health.history_days, CS_KPIS_HEALTH_HISTORY_DAYS overrides (cs_kpis/tuning.py); None = all."""
    value = tuning.get("health.history_days")
    return None if value == "all" else value


def lookback_override() -> int | None:
    """settings.health.lookback_days (CS_KPIS_HEALTH_LOOKBACK_DAYS overrides), when one is set; else None and
    each model's own tag decides."""
    if tuning.source("health.lookback_days") == "default":
        return None
    return tuning.get("health.lookback_days")


@dataclass(frozen=True)
class Incremental:
    """How a table is built incrementally (the ``@incremental`` tag, or given by Python)."""
    table: str
    sql_version: str
    lookback_days: int = DEFAULT_LOOKBACK_DAYS
    limited_history: bool = False
    chunk_rows: int = CHUNK_ROWS
    rows_per_gb: int | None = None
    """account-days a range may hold per GB of DuckDB's memory limit (None: chunk_rows alone decides)"""
    reads_days: int | None = None
    """days before its window's first day the model reads (None: it reads every earlier day)"""
    window_rows_per_gb: int | None = None
    """account-days read per GB a nightly window's range may hold (None: rows_per_gb)"""
    listed_in_window: bool = False
    """its SQL builds the accounts rebuilt on every day in the window's pass (``listed`` = ``whole``), when few"""
    carry_table: str | None = None
    """the per-account carry its SQL reads (``carry=<table>``); ``carry`` says what it holds"""
    carry: "Carry | None" = None
    """what the build keeps in ``carry_table`` for the next build (Carry)"""
    upstream: tuple[str, ...] = ()
    """tables it reads that are built incrementally too: a full build of one makes the next build full"""
    fingerprint: "Fingerprint | Callable | None" = None
    """what the inputs of its rows dated before a day are made of, per account and shared (Fingerprint); or
    fingerprint(con, before) -> str, one hash of every input, for a model with a planner of its own (the
    alerts) that compares it itself: record() keeps it, plan() does not take it"""

    def lookback(self) -> int:
        override = lookback_override()
        return self.lookback_days if override is None else override

    def history(self) -> int | None:
        return history_days() if self.limited_history else None


def parse_tag(value: str, where: str) -> dict:
    """``lookback_days=7 history=limited chunk_rows=40000000`` -> {"lookback_days": 7, ...}; an unknown key or
    a bad value fails naming it and ``where``."""
    out = {}
    for part in value.split():
        key, _, raw = part.partition("=")
        if key not in TAG_KEYS:
            raise ValueError(f"{where}: @incremental {key}: unknown setting (allowed: {', '.join(sorted(TAG_KEYS))})")
        if key == "by":
            # by=day (default): this module's account x day windows; by=load: the raw loads not built yet
            # (cs_kpis/lib/incremental_loads.py), a staging table over an insert-only raw table
            if raw not in ("day", "load"):
                raise ValueError(f"{where}: @incremental by must be day or load, not {raw!r}")
            if raw == "load":
                out["by"] = "load"
        elif key == "merge":
            # by=load over a merged raw table: a load replaces the rows holding any of its values of these
            # columns (cs_kpis/lib/incremental_loads.py)
            columns = tuple(c for c in raw.split(",") if c)
            if not columns or not all(re.fullmatch(r"[a-z_][a-z0-9_]*", c) for c in columns):
                raise ValueError(f"{where}: @incremental merge takes column names separated by commas, not {raw!r}")
            out["merge"] = columns
        elif key == "listed":
            # listed=window: the SQL reads listed = 'whole' (every account; the listed ones from the history's
            # first day), so the accounts a nightly rebuilds on every day need no pass of their own
            if raw != "window":
                raise ValueError(f"{where}: @incremental listed must be window, not {raw!r}")
            out["listed_in_window"] = True
        elif key == "carry":
            # carry=<schema>._<table>: the model reads a per-account carry the build keeps there (Carry)
            if not re.fullmatch(r"[a-z_][a-z0-9_]*\._[a-z0-9_]+", raw):
                raise ValueError(f"{where}: @incremental carry must name a table <schema>._<name>, not {raw!r}")
            out["carry_table"] = raw
        elif key == "history":
            if raw not in ("all", "limited"):
                raise ValueError(f"{where}: @incremental history must be all or limited, not {raw!r}")
            out["limited_history"] = raw == "limited"
        else:
            try:
                out[key] = int(raw.replace("_", ""))
            except ValueError:
                raise ValueError(f"{where}: @incremental {key} must be a whole number, not {raw!r}") from None
            if out[key] < 1:
                raise ValueError(f"{where}: @incremental {key} must be at least 1, not {out[key]}")
    # what a setting sizes only with another is refused without it (build_ranges would ignore it silently)
    if "window_rows_per_gb" in out and "reads_days" not in out:
        raise ValueError(f"{where}: @incremental window_rows_per_gb needs reads_days: it sizes the ranges of a nightly "
                         "window by the days read from reads_days before it, and without reads_days the window is cut "
                         "as a full build's ranges (window_rows_per_gb would be ignored)")
    if "reads_days" in out and "rows_per_gb" not in out:
        raise ValueError(f"{where}: @incremental reads_days needs rows_per_gb: only ranges sized by DuckDB's memory "
                         "limit are cut by the days read (with chunk_rows alone, reads_days would be ignored)")
    if "carry_table" in out and "reads_days" not in out:
        raise ValueError(f"{where}: @incremental carry needs reads_days: the carry runs through the first day a window reads")
    if "merge" in out and out.get("by") != "load":
        raise ValueError(f"{where}: @incremental merge needs by=load")
    if out.get("by") == "load" and set(out) - {"by", "merge"}:
        raise ValueError(f"{where}: @incremental by=load takes no other setting than merge (it has no days or accounts)")
    return out


@dataclass(frozen=True)
class BuildWindow:
    mode: str                      # "full" or "incremental"
    start_day: dt.date | None      # first day (re)built; None = every account's whole history
    history_start: dt.date | None  # first day kept; None = everything
    as_of: dt.date | None
    sql_version: str
    reason: str
    accounts: tuple[str, ...] = ()
    """accounts whose every kept day an incremental build rebuilds too (their older inputs changed, or a table
    it reads rebuilt them), sorted; the window's days are rebuilt for every account"""
    fingerprint_next: str | None = None
    """a temp table with the per-account fingerprint record() keeps for the next night (of the inputs dated
    before as_of minus (lookback - 1) days, the first day of the next night's lookback: next_fingerprint_day),
    hashed by the plan in the same read as the one it compared (None: record() hashes it)"""


def table_exists(con, table: str) -> bool:
    schema, name = table.split(".")
    # what information_schema.tables reads (duckdb_tables() and duckdb_views()), without that view's work
    return bool(con.execute("select (select count(*) from duckdb_tables() where schema_name = $1 and table_name = $2)"
                            " + (select count(*) from duckdb_views() where schema_name = $1 and view_name = $2 and not internal)",
                            [schema, name]).fetchall()[0][0])


def fingerprint_of(con, queries: Sequence[str], before: dt.date) -> str:
    """16 hex digits of sha256 over the results of ``queries``, each with every ``?`` bound to ``before``."""
    con.execute("set TimeZone = 'UTC'")
    parts = [con.execute(sql, [before] * sql.count("?")).fetchall()[0] for sql in queries]
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


ACCOUNTS_TABLE = "kpis._build_accounts"
"""(model, build_seq, account_id): the accounts whose every kept day a build rebuilt (beside its window)"""
FINGERPRINTS_TABLE = "kpis._build_fingerprints"
"""(model, account_id, rows, hash): each account's fingerprint of the current build of each model"""
MAX_REBUILT_SHARE = 0.10
"""a nightly rebuilds the changed accounts alone while they are at most this share of the accounts (the health
tables count those of marts.subscription_periods, the alerts' nightly those of marts.accounts, a larger set, so
the same list is a slightly smaller share there); more is a restatement rather than a few late facts, and the build is full"""


@dataclass(frozen=True)
class Part:
    """One input of a per-account fingerprint, hashed for any number of days in one scan (a nightly's plan
    compares last night's day and hashes the next night's from the same read): the rows of ``source`` (a FROM
    clause) that pass ``where`` and whose ``dated`` is before the day, counted and xor-ed (``hashed``, an
    expression; ``{day}`` in it stands for the day) per ``key``; with ``mapping`` (a join on ``p``, the counts
    per key) summed again per ``account`` (many keys, e.g. workspaces, per account: far fewer rows to map).

    ``ordered``: the source's rows are stored about in ``dated`` order (appended as they arrive, as the product
    events by their received day), and ``hashed`` does not depend on the day. Several days are then hashed as one
    count and xor per key of every row before the last day, and the rows between the first and the last day read
    apart (the scan's zone maps skip the older row groups), whose counts and xors taken back out give the earlier
    days (xor is its own inverse): the same counts and hashes in any order (the order only decides what the second
    read skips), without a filtered count and xor per day of every row (the large company's 58.7 M events:
    BENCHMARKS.md "Activity's nightly: the events hashed once")."""
    source: str
    key: str
    dated: str
    hashed: str
    where: str = "true"
    mapping: str = ""
    account: str = "p.key"
    ordered: bool = False

    def per_account(self, days: Sequence[str]) -> str:
        """account_id and n<i>, h<i> (count and xor of row hashes before day i, each a SQL date expression)."""
        last = days[0] if len(days) == 1 else f"greatest({', '.join(days)})"
        if self.ordered and len(days) > 1 and "{day}" not in self.hashed:
            # every row before the last day once; the rows from the first day on again, per day the ones it lacks
            first = f"least({', '.join(days)})"
            tail = ", ".join(f"count(*) filter (where {self.dated} >= {d}) as n{i}, bit_xor({self.hashed}) "
                             f"filter (where {self.dated} >= {d}) as h{i}" for i, d in enumerate(days))
            cols = ", ".join(f"a.n - coalesce(t.n{i}, 0) as n{i}, xor(a.h, coalesce(t.h{i}, 0)) as h{i}"
                             for i in range(len(days)))
            sql = (f"select a.key, {cols} from (select {self.key} as key, count(*) as n, bit_xor({self.hashed}) as h "
                   f"from {self.source} where ({self.where}) and {self.dated} < {last} group by {self.key}) as a "
                   f"left join (select {self.key} as key, {tail} from {self.source} where ({self.where}) and "
                   f"{self.dated} >= {first} and {self.dated} < {last} group by {self.key}) as t "
                   "on t.key is not distinct from a.key")
        else:
            aggs = ", ".join(f"count(*) filter (where {self.dated} < {d}) as n{i}, "
                             f"bit_xor({self.hashed.replace('{day}', d)}) filter (where {self.dated} < {d}) as h{i}"
                             for i, d in enumerate(days))
            sql = (f"select {self.key} as key, {aggs} from {self.source} where ({self.where}) and "
                   f"{self.dated} < {last} group by {self.key}")
        if self.mapping:
            sums = ", ".join(f"sum(p.n{i}) as n{i}, bit_xor(p.h{i}) as h{i}" for i in range(len(days)))
            sql = f"select {self.account} as key, {sums} from ({sql}) as p {self.mapping} group by {self.account}"
        return sql


@dataclass(frozen=True)
class Fingerprint:
    """What the inputs of a model's rows dated before a day are made of.

    ``parts``: per input, count and xor of row hashes per account the rows map to (order-independent), either
    a Part or one query of ``account_id, n, h`` (every ``?`` of it is the day); the account's fingerprint is
    its rows and the xor of each part's hash mixed with the part's number (equal hashes of two inputs cannot
    cancel out): a difference rebuilds that account's every kept day. An input row that maps to no account
    cannot change an account's rows and is left out; a row mapped to another account changes the hash of both.
    ``ctes``: the common table expressions the parts read (``name as (...)``, comma-separated). ``shared``:
    queries of inputs no account owns (the product configuration, the calendar's start; every ``?`` is the
    day): a difference makes the build full."""
    shared: tuple[str, ...]
    parts: tuple["Part | str", ...]
    ctes: str = ""

    def sql(self, days: Sequence[str]) -> str:
        """One query of ``k, account_id, rows, hash``: the fingerprint before each day ``days[k]`` (SQL date
        expressions), each part read once for all of them."""
        ctes, blocks = [self.ctes] if self.ctes else [], []
        for num, part in enumerate(self.parts, 1):
            if isinstance(part, str):  # its own query per day (a day-dependent row, e.g. an end hashed as none)
                blocks += [f"select {num} as part, {k} as k, account_id, n, h from ({part.replace('?', d)}) as p{num}_{k}"
                           for k, d in enumerate(days)]
                continue
            ctes.append(f"_fp{num} as {'materialized ' if len(days) > 1 else ''}({part.per_account(days)})")
            blocks += [f"select {num} as part, {k} as k, key as account_id, n{k} as n, h{k} as h from _fp{num} "
                       f"where n{k} > 0" for k in range(len(days))]
        union = "\n    union all\n    ".join(blocks)
        return (f"with {', '.join(ctes)}\n" if ctes else "") + (
            f"select k, account_id, sum(n) as rows, bit_xor(hash(part, h)) as hash from (\n    {union}\n) as parts "
            "group by k, account_id")

    @property
    def by_account(self) -> str:
        """The query of ``k, account_id, rows, hash`` for one day, every ``?`` of it that day."""
        return self.sql(["cast(? as date)"])

    def shared_hash(self, con, before: dt.date) -> str:
        return fingerprint_of(con, self.shared, before)

    def compute(self, con, before: dt.date, into: str) -> None:
        """The per-account fingerprint at ``before`` into the temp table ``into`` (account_id, rows, hash)."""
        self.compute_days(con, [before], [into])

    def compute_days(self, con, days: Sequence[dt.date], intos: Sequence[str]) -> None:
        """The per-account fingerprint at each of ``days`` into the temp table of ``intos`` at the same place,
        every input read once."""
        con.execute("set TimeZone = 'UTC'")
        sql = self.sql([f"cast('{d.isoformat()}' as date)" for d in days])
        con.execute(f"create or replace temp table _fingerprint_days as select k, account_id, cast(rows as bigint) "
                    f"as rows, cast(hash as ubigint) as hash from ({sql}) as f where account_id is not null")
        for k, into in enumerate(intos):
            con.execute(f"create or replace temp table {into} as select account_id, rows, hash "
                        f"from _fingerprint_days where k = {k}")
        con.execute("drop table if exists _fingerprint_days")

    def changed_accounts(self, con, before: dt.date, table: str, also: tuple[dt.date, str] | None = None) -> list[str]:
        """The accounts whose fingerprint at ``before`` differs from the one recorded for ``table``'s current
        build (an account with inputs on one side only counts too). ``also`` (a day, a temp table): the
        fingerprint at that day too, from the same read, into that table (record() reads it: a nightly reads
        its inputs' history once)."""
        days, intos = [before], ["_fingerprint_now"]
        if also is not None:
            days.append(also[0])
            intos.append(also[1])
        self.compute_days(con, days, intos)
        got = con.execute(
            f"select coalesce(n.account_id, p.account_id) as account_id from _fingerprint_now as n "
            f"full outer join (select * from {FINGERPRINTS_TABLE} where model = ?) as p "
            "on p.account_id = n.account_id "
            "where n.account_id is null or p.account_id is null or n.rows <> p.rows or n.hash <> p.hash "
            "order by 1", [table]).fetchall()
        con.execute("drop table if exists _fingerprint_now")
        return [r[0] for r in got]


@dataclass(frozen=True)
class Carry:
    """What a model's rows need from its input's history before the first day a window reads, kept per account by
    each build for the next one (``@incremental carry=<table>``). A running sum over a window's days starts from
    the sum of every earlier delta; summing those from the whole history each night read every row of it (the
    indicators: 30.7 M activity rows on the large company, 2.7 of the 13.5 operator seconds of their nightly's query,
    its largest cost that does not shrink with the window). The build keeps
    instead, per account, the ``sums`` and the least values (``firsts``) of the ``source`` rows dated before the
    next nightly's first read day (``through_day``: ``reads_days`` before its first day, or the calendar's first day
    when later), in ``table``: the next nightly rolls it forward by the days in between. Its SQL reads the table
    when the build's control row has ``carry_through`` (the day it runs through, exactly the window's first read
    day), else it sums every source row as before.

    Kept only while it stays true: the source is an incremental table whose rows older than its own window change
    only through the accounts its builds rebuild on every day (which this model rebuilds on every day too, and
    whose carry each build sums again), and a full build of it makes this model's build full (plan's upstream
    rule), which sums the carry again from every row. A carry is read only by the build right after the one that
    kept it (its control row's ``carry_day``), only when that day is exactly the new window's first read day (a
    window that starts earlier: a longer lookback, an upstream window that started earlier: summed again from every
    row), and only under the same definition (``carry_version``)."""
    table: str
    source: str
    firsts: tuple[tuple[str, str, str], ...]
    """(carry column, source column, its type): the least value of the rows (nulls skipped)"""
    sums: tuple[tuple[str, str], ...]
    """(carry column, source column): the sum of the rows (a bigint)"""
    day: str = "day"

    @property
    def version(self) -> str:
        """A hash of the definition: a carry kept under another one is not read (it would sum other columns)."""
        return hashlib.sha256(repr(self).encode()).hexdigest()[:12]

    def ddl(self, con) -> None:
        """Create the table when missing (empty: no carry kept)."""
        cols = ", ".join([f"{c} {kind}" for c, _, kind in self.firsts] + [f"{c} bigint" for c, _ in self.sums])
        con.execute(f"create schema if not exists {self.table.split('.')[0]}")
        con.execute(f"create table if not exists {self.table} (account_id varchar, through_day date, {cols})")

    def totals(self, rows: str, through: str) -> str:
        """``account_id``, ``through_day`` and the carry's columns, from ``rows`` (a relation of the source's
        columns) dated before ``through`` (a SQL date)."""
        aggs = [f"min({src}) as {c}" for c, src, _ in self.firsts] + [f"sum({src}) as {c}" for c, src in self.sums]
        return (f"select account_id, {through} as through_day, {', '.join(aggs)} from {rows} as r "
                f"where r.{self.day} < {through} group by account_id")

    def rolled(self, kept: str, later: str, through: str) -> str:
        """The carry through ``through`` from carry rows ``kept`` and further ``later`` ones (same columns)."""
        aggs = [f"min({c}) as {c}" for c, _, _ in self.firsts] + [f"sum({c}) as {c}" for c, _ in self.sums]
        cols = ", ".join([c for c, _, _ in self.firsts] + [c for c, _ in self.sums])
        return (f"select account_id, {through} as through_day, {', '.join(aggs)} from (select account_id, {cols} "
                f"from {kept} union all select account_id, {cols} from ({later}) as l) as u group by account_id")


def carry_day(con, spec: Incremental, start_day: dt.date | None) -> dt.date | None:
    """The first activity day a window starting on ``start_day`` reads (``reads_days`` before it, the calendar's
    first day when later or when the window has no start): the day ``spec``'s carry runs through."""
    first = con.execute("select min(day) from marts.dim_day").fetchall()[0][0]
    if start_day is None or first is None:
        return first
    return max(start_day - dt.timedelta(days=spec.reads_days), first)


def carry_prepare(con, spec: Incremental, window: BuildWindow, prev: dict | None, seq: int) -> dt.date | None:
    """Before a build's passes: the day its SQL reads the kept carry through (set as the control row's
    carry_through), or None (the SQL sums every source row): the carry the previous build kept, through exactly
    this window's first read day. The accounts the build rebuilds on every day get their carry summed again
    here, through their own first read day (their rows are kept in the temp table ``_carry_listed`` for
    carry_keep)."""
    carry = spec.carry
    carry.ddl(con)
    through = carry_day(con, spec, window.start_day)
    if (window.mode != "incremental" or window.start_day is None or prev is None or through is None
            or prev.get("carry_day") != through or prev.get("carry_version") != carry.version):
        return None
    con.execute("drop table if exists _carry_listed")
    if window.accounts:
        # their source rows, read once for both steps
        con.execute(f"create temp table _carry_listed as select * from {carry.source} where account_id in (select "
                    f"account_id from {ACCOUNTS_TABLE} where model = ? and build_seq = ?)", [spec.table, seq])
        listed_through = carry_day(con, spec, window.history_start)
        con.execute(f"delete from {carry.table} where account_id in (select account_id from {ACCOUNTS_TABLE} "
                    "where model = ? and build_seq = ?)", [spec.table, seq])
        con.execute(f"insert into {carry.table} by name {carry.totals('_carry_listed', sql_date(listed_through))}")
    con.execute(f"update {CONTROL_TABLE} set carry_through = ? where model = ? and is_current", [through, spec.table])
    return through


def carry_keep(con, spec: Incremental, window: BuildWindow, through: dt.date | None, seq: int) -> dt.date | None:
    """After a build's passes: the carry the next nightly reads, through its first read day (as_of minus the
    lookback's days, then reads_days: the next window's, when the table ends on the as-of day), rolled forward from
    the carry this build read (its accounts rebuilt on every day summed from their rows) or summed from every
    source row; recorded as the control row's carry_day. Returns that day (None: no calendar)."""
    carry = spec.carry
    nxt = next_carry_day(con, spec, window.as_of) if window.as_of else None
    if nxt is None:
        return None
    if through is not None and nxt >= through:
        listed = f"select account_id from {ACCOUNTS_TABLE} where model = '{spec.table}' and build_seq = {int(seq)}"
        later = (f"select * from {carry.source} where {carry.day} >= {sql_date(through)} and {carry.day} < "
                 f"{sql_date(nxt)} and account_id not in ({listed})")
        new_rows = carry.totals(f"({later})", sql_date(nxt))
        if window.accounts:
            new_rows += " union all " + carry.totals("_carry_listed", sql_date(nxt))
        sql = carry.rolled(f"(select * from {carry.table} where account_id not in ({listed}))", new_rows, sql_date(nxt))
    else:
        sql = carry.totals(carry.source, sql_date(nxt))
    carry_replace(con, spec, sql, nxt, seq)
    con.execute("drop table if exists _carry_listed")
    return nxt


def next_carry_day(con, spec: Incremental, as_of: dt.date) -> dt.date | None:
    """The day the carry a build of ``as_of`` keeps runs through: the first read day of the next nightly's window
    (as_of minus the lookback's days, then reads_days)."""
    return carry_day(con, spec, as_of - dt.timedelta(days=spec.lookback() - 1))


def carry_replace(con, spec: Incremental, sql: str, through: dt.date, seq: int) -> None:
    """Replace the kept carry by the rows of ``sql`` (the carry's columns, through ``through``), recorded on build
    ``seq``'s control row as its carry_day, under the carry's current definition."""
    carry = spec.carry
    con.execute(f"create or replace temp table _carry_next as {sql}")
    con.execute(f"delete from {carry.table}")
    con.execute(f"insert into {carry.table} by name select * from _carry_next")
    con.execute("drop table if exists _carry_next")
    con.execute(f"update {CONTROL_TABLE} set carry_day = ?, carry_version = ? where model = ? and build_seq = ?",
                [through, carry.version, spec.table, seq])


def sql_date(day: dt.date) -> str:
    """``day`` as a SQL date literal."""
    return f"date '{day.isoformat()}'"


def builds(con, table: str | None = None) -> list[dict]:
    """Every build recorded in the control table (of ``table``, or of every table), oldest first."""
    if not table_exists(con, CONTROL_TABLE):
        return []
    where = "where model = ?" if table else ""
    cur = con.execute(f"select * from {CONTROL_TABLE} {where} order by build_seq", [table] if table else [])
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def current(con, table: str) -> dict | None:
    """The current (latest) build of ``table``, or None."""
    done = builds(con, table)
    return done[-1] if done else None


PLANNER_TABLES = ("marts.dim_day", "marts.subscription_periods")
"""what the planner reads besides the model's own inputs (the as-of day, each account's first subscription
day): every incremental model's asset depends on them"""


def next_fingerprint_table(table: str) -> str:
    """The temp table in which a nightly's plan of ``table`` leaves the per-account fingerprint its record
    keeps (BuildWindow.fingerprint_next)."""
    return "_fingerprint_next_" + re.sub(r"[^a-z0-9]", "_", table.lower())


def next_fingerprint_day(spec: Incremental, as_of: dt.date) -> dt.date:
    """The day a build of ``as_of`` hashes its inputs before, for the next night to compare: the first day of
    the next night's lookback."""
    return as_of - dt.timedelta(days=spec.lookback() - 1)


def plan(con, spec: Incremental, *, full_refresh: bool = False) -> BuildWindow:
    """What the next build of ``spec.table`` (re)computes (the rules are in the module's docstring)."""
    lookback, history = spec.lookback(), spec.history()
    as_of = con.execute("select max(day) from marts.dim_day").fetchall()[0][0]
    history_start = as_of - dt.timedelta(days=history - 1) if (history and as_of is not None) else None
    prev = current(con, spec.table)

    def full(reason: str) -> BuildWindow:
        return BuildWindow("full", history_start, history_start, as_of, spec.sql_version, reason)

    if full_refresh:
        return full("full_refresh requested")
    if not table_exists(con, spec.table) or prev is None:
        return full(f"{spec.table} not built yet")
    if prev.get("sql_version") != spec.sql_version:
        return full(f"the SQL of {spec.table} changed")
    before = prev.get("history_start")
    if before is not None and (history_start is None or history_start < before):
        return full(f"{ENV_HISTORY_DAYS} grew: days before {before} were never built")
    last = con.execute(f"select max(day) from {spec.table}").fetchall()[0][0]
    if last is None or as_of is None:
        return full(f"{spec.table} is empty")
    since = [b for t in spec.upstream for b in builds(con, t) if b["build_seq"] > prev["build_seq"]]
    rebuilt = sorted({b["model"] for b in since if b["mode"] != "incremental" or b["start_day"] is None})
    if rebuilt:
        return full(f"{', '.join(rebuilt)} fully rebuilt since the last build")
    start = min(last, as_of) - dt.timedelta(days=lookback - 1)
    fp_day = prev.get("fingerprint_day")
    changed: list[str] = []
    if spec.fingerprint is not None:
        if not isinstance(spec.fingerprint, Fingerprint):
            raise TypeError(f"{spec.table}: plan() needs a Fingerprint (per account), not a plain function")
        if fp_day is None or prev.get("fingerprint_accounts") is None:
            return full(f"no per-account fingerprint of {spec.table}'s inputs recorded (built by an older version)")
        if spec.fingerprint.shared_hash(con, fp_day) != prev.get("fingerprint"):
            return full(f"inputs dated before {fp_day} that no account owns changed since the last build (the "
                        "product configuration, the calendar's start)")
        # tonight's fingerprint for the next night too, from the same read of the inputs' history (record())
        fingerprint_next = (next_fingerprint_day(spec, as_of), next_fingerprint_table(spec.table))
        changed = spec.fingerprint.changed_accounts(con, fp_day, spec.table, also=fingerprint_next)
        start = min(start, fp_day)
    start = min([start, *(b["start_day"] for b in since)])
    if history_start is not None:
        start = max(start, history_start)
    upstream = sorted(set(rebuilt_accounts(con, since)) - set(changed))
    accounts = tuple(sorted({*changed, *upstream}))
    reason = (f"last built day {last}, lookback {lookback} days"
              + (f", {len(since)} upstream build(s) since" if since else ""))
    if accounts:
        why = " and ".join(part for part in (
            f"{len(changed)} whose inputs dated before {fp_day} changed" if changed else "",
            f"{len(upstream)} rebuilt upstream" if upstream else "") if part)
        too_many, listed = rebuilt_share(con, accounts, why)
        if too_many:
            con.execute(f"drop table if exists {next_fingerprint_table(spec.table)}")
            return full(too_many)
        reason += f"; {listed}"
    elif spec.fingerprint is not None:
        reason += "; older inputs unchanged"
    return BuildWindow("incremental", start, history_start, as_of, spec.sql_version, reason, accounts,
                       next_fingerprint_table(spec.table) if spec.fingerprint is not None else None)


def rebuilt_accounts(con, done: Sequence[dict]) -> list[str]:
    """The accounts the builds ``done`` rebuilt on every day (ACCOUNTS_TABLE)."""
    seqs = [b["build_seq"] for b in done if b.get("accounts_rebuilt")]
    if not seqs:
        return []
    marks = ", ".join("?" for _ in seqs)
    return [r[0] for r in con.execute(f"select distinct account_id from {ACCOUNTS_TABLE} where build_seq in "
                                      f"({marks}) order by 1", seqs).fetchall()]


def rebuilt_share(con, accounts: Sequence[str], why: str,
                  universe: str = "marts.subscription_periods") -> tuple[str | None, str]:
    """Whether rebuilding ``accounts`` on every day is still a nightly: (the reason for a full build instead,
    when they are more than MAX_REBUILT_SHARE of the accounts of ``universe``, else None; the words for the
    build's reason: how many, ``why``, the share and the first five)."""
    total = con.execute(f"select count(distinct account_id) from {universe}").fetchall()[0][0]
    if len(accounts) > MAX_REBUILT_SHARE * max(total, 1):
        return (f"{len(accounts)} account(s) to rebuild on every day ({why}), more than {MAX_REBUILT_SHARE:.0%} "
                f"of the {total} accounts: a restatement rather than a few late facts, rebuilt in full"), ""
    return None, (f"{len(accounts)} account(s) rebuilt on every day ({why}; {len(accounts) / max(total, 1):.2%} "
                  f"of {total}): {', '.join(accounts[:5])}" + (", ..." if len(accounts) > 5 else ""))


COLUMNS = ("model varchar, build_seq bigint, is_current boolean, mode varchar, start_day date, "
           "history_start date, as_of date, sql_version varchar, reason varchar, fingerprint_day date, "
           "fingerprint varchar, built_at timestamptz, account_from varchar, account_to varchar, "
           "fingerprint_accounts bigint, accounts_rebuilt bigint, listed varchar, table_rows_before bigint, "
           "table_rows bigint, carry_through date, carry_day date, carry_version varchar")
"""the control table's columns; fingerprint: the shared part's hash (Fingerprint), fingerprint_accounts: how
many accounts' fingerprints FINGERPRINTS_TABLE holds for the build, accounts_rebuilt: how many accounts it
rebuilt on every day (ACCOUNTS_TABLE), listed: the current pass builds ``only`` those accounts, every account
``except`` them, every account with them ``whole`` (listed_in_window), or (null) every account; table_rows_before, table_rows: the table's rows when the build began
and when it ended (record_rows; rows_to_check follows them from build to build); carry_through: the day the current
pass's SQL reads the kept carry through (Carry; null: it sums every source row), carry_day and carry_version: the day
the carry this build kept runs through and its definition's hash (Carry.version)"""
ADDED_COLUMNS = ("fingerprint_accounts bigint", "accounts_rebuilt bigint", "listed varchar", "table_rows_before bigint",
                 "table_rows bigint", "carry_through date", "carry_day date", "carry_version varchar")
"""columns added since the control table first shipped: an older warehouse's table gets them on its next build"""


def ensure_control_tables(con) -> None:
    """The control tables, created or brought up to date."""
    con.execute(f"create schema if not exists {CONTROL_TABLE.split('.')[0]}")
    con.execute(f"create table if not exists {CONTROL_TABLE} ({COLUMNS})")
    for column in ADDED_COLUMNS:
        con.execute(f"alter table {CONTROL_TABLE} add column if not exists {column}")
    con.execute(f"create table if not exists {ACCOUNTS_TABLE} (model varchar, build_seq bigint, account_id varchar)")
    con.execute(f"create table if not exists {FINGERPRINTS_TABLE} (model varchar, account_id varchar, rows bigint, "
                "hash ubigint)")
    con.execute(f"create table if not exists {CHECKED_TABLE} (model varchar, check_name varchar, build_seq bigint, "
                "table_rows bigint, every_row_seq bigint)")


def record(con, spec: Incremental, window: BuildWindow | None) -> int:
    """Record a build of ``spec.table`` (None: a full build of everything, for tests and tools) as its current
    one, with the fingerprint of its inputs before the next nightly window and the accounts it rebuilds on
    every day; returns its build_seq."""
    ensure_control_tables(con)
    if spec.carry is not None:
        spec.carry.ddl(con)  # the model's SQL reads it (empty: no carry kept)
    window = window or BuildWindow("full", None, None, None, "", "full build of every day, version unknown")
    fp_day = fp = fp_accounts = None
    if window.as_of is not None and spec.fingerprint is not None and not isinstance(spec.fingerprint, Fingerprint):
        fp_day = next_fingerprint_day(spec, window.as_of)
        fp = spec.fingerprint(con, fp_day)
    elif window.as_of is not None and spec.fingerprint is not None:
        fp_day = next_fingerprint_day(spec, window.as_of)
        fp = spec.fingerprint.shared_hash(con, fp_day)
        con.execute(f"delete from {FINGERPRINTS_TABLE} where model = ?", [spec.table])
        new = window.fingerprint_next  # hashed by the plan, in the read it compared
        if new is not None and not con.execute("select count(*) from duckdb_tables() where temporary and "
                                                "table_name = ?", [new]).fetchall()[0][0]:
            new = None  # planned on another connection (its temp tables are not this one's): hash it here
        if new is None:
            new = "_fingerprint_new"
            spec.fingerprint.compute(con, fp_day, new)
        con.execute(f"insert into {FINGERPRINTS_TABLE} select ?, account_id, rows, hash from {new}", [spec.table])
        fp_accounts = con.execute(f"select count(*) from {new}").fetchall()[0][0]
        con.execute(f"drop table if exists {new}")
    seq = con.execute(f"select coalesce(max(build_seq), 0) + 1 from {CONTROL_TABLE}").fetchall()[0][0]
    con.execute(f"update {CONTROL_TABLE} set is_current = false where model = ? and is_current", [spec.table])
    con.execute(f"insert into {CONTROL_TABLE} (model, build_seq, is_current, mode, start_day, history_start, as_of, "
                "sql_version, reason, fingerprint_day, fingerprint, built_at, fingerprint_accounts, accounts_rebuilt, "
                "listed) values (?, ?, true, ?, ?, ?, ?, ?, ?, ?, ?, now(), ?, ?, null)",
                [spec.table, seq, window.mode, window.start_day, window.history_start, window.as_of,
                 window.sql_version, window.reason, fp_day, fp, fp_accounts, len(window.accounts) or None])
    if window.accounts:
        con.execute(f"insert into {ACCOUNTS_TABLE} select ?, ?, unnest(cast(? as varchar[]))",
                    [spec.table, seq, list(window.accounts)])
    # a table reads the lists of the builds of its inputs since its own current build: older ones are never read
    con.execute(f"delete from {ACCOUNTS_TABLE} where build_seq < (select min(build_seq) from {CONTROL_TABLE} "
                "where is_current)")
    return seq


def table_rows(con, table: str) -> int | None:
    """The rows of ``table`` (None when it does not exist)."""
    return con.execute(f"select count(*) from {table}").fetchall()[0][0] if table_exists(con, table) else None


def record_rows(con, table: str, before: int | None) -> None:
    """The current build of ``table`` began with ``before`` rows in it and ends with the rows it holds now: the
    checks of the rows it wrote (rows_to_check) know from these that nothing else wrote to it in between."""
    con.execute(f"update {CONTROL_TABLE} set table_rows_before = ?, table_rows = ? where model = ? and is_current",
                [before, table_rows(con, table), table])


CHECKED_TABLE = "kpis._build_checks"
"""(model, check_name, build_seq, table_rows, every_row_seq): the build of a table whose rows a check last passed
on, the table's rows then, and the build it last passed on looking at every row (rows_to_check, mark_checked)"""

EVERY_ROW_AFTER_BUILDS = 7
"""a check of the rows written looks at every row again once this many builds have passed since it last did (a
week of nightlies): a write outside the builds that keeps the row count (a row deleted and a duplicate inserted
by hand) is then caught within a week, not only at the next full build"""


def rows_to_check(con, table: str, check_name: str) -> tuple[str | None, str]:
    """The rows of ``table`` a row or key check ``check_name`` has to look at: (a parenthesised query of them, or
    None for every row; in words). The rows written by the builds since the last
    build the check passed on (mark_checked): their days from the earliest first day they wrote, and every day of
    the accounts they rebuilt on every day. The rows before were checked when they were written. Every row when
    the check never passed, a build since was full, or the table's row counts do not chain from the pass through
    each build's start and end to now (record_rows): then something else wrote to it (a duplicate inserted by
    another path adds a row). A failed check marks nothing, so the rows it found stay in scope until it passes."""
    if not table_exists(con, CONTROL_TABLE) or not table_exists(con, CHECKED_TABLE) or not table_exists(con, table):
        return None, "every row (no check recorded yet)"
    passed = con.execute(f"select build_seq, table_rows, every_row_seq from {CHECKED_TABLE} where model = ? and "
                         "check_name = ?", [table, check_name]).fetchall()
    if not passed:
        return None, "every row (no passing check recorded)"
    seq, expected, every_row_seq = passed[0]
    all_builds = builds(con, table)
    since = [b for b in all_builds if b["build_seq"] > seq]
    if every_row_seq is None or sum(b["build_seq"] > every_row_seq for b in all_builds) >= EVERY_ROW_AFTER_BUILDS:
        return None, f"every row (its weekly look: {EVERY_ROW_AFTER_BUILDS} or more builds since it last looked at all)"
    for b in since:
        if b["mode"] != "incremental" or b["start_day"] is None:
            return None, f"every row (a {b['mode']} build since the last passing check)"
        if b.get("table_rows_before") != expected or b.get("table_rows") is None:
            return None, "every row (the table's rows changed outside its builds since the last passing check)"
        expected = b["table_rows"]
    if table_rows(con, table) != expected:
        return None, "every row (the table's rows changed since its last build)"
    if not since:
        return f"(select * from {table} where false)", "none: nothing written since the last passing check"
    listed = [b["build_seq"] for b in since if b.get("accounts_rebuilt")]
    if listed:
        marks = ", ".join("?" for _ in listed)
        held = con.execute(f"select count(distinct build_seq) from {ACCOUNTS_TABLE} where model = ? and build_seq in "
                           f"({marks})", [table, *listed]).fetchall()[0][0]
        if held != len(listed):
            return None, "every row (the accounts a build since rebuilt are no longer listed)"
    first = min(b["start_day"] for b in since)
    day = sql_date(first)
    # two scans, not one with an `or`: the days' filter then skips row groups, the accounts' runs on the rest
    rows = f"select * from {table} where day >= {day}"
    words = f"the rows written since the last passing check: days from {first}"
    if listed:
        seqs = ", ".join(str(int(n)) for n in listed)
        rows += (f" union all select * from {table} where day < {day} and account_id in (select account_id from "
                 f"{ACCOUNTS_TABLE} where model = '{table}' and build_seq in ({seqs}))")
        words += f" and every day of the accounts rebuilt by build(s) {seqs}"
    return f"({rows})", words


def mark_checked(con, table: str, check_name: str, every_row: bool) -> None:
    """``check_name`` passed on every row of ``table``'s current build (``every_row``: it looked at all of them,
    else at the rows rows_to_check gave): the next check looks at what is written after it."""
    current_build = current(con, table)
    if current_build is None:
        return
    ensure_control_tables(con)
    seq = current_build["build_seq"]
    before = con.execute(f"select every_row_seq from {CHECKED_TABLE} where model = ? and check_name = ?",
                         [table, check_name]).fetchall()
    every_row_seq = seq if every_row or not before else before[0][0]
    con.execute(f"delete from {CHECKED_TABLE} where model = ? and check_name = ?", [table, check_name])
    con.execute(f"insert into {CHECKED_TABLE} values (?, ?, ?, ?, ?)",
                [table, check_name, seq, table_rows(con, table), every_row_seq])


def set_range(con, table: str, first: str | None, last: str | None) -> None:
    """The account range (first exclusive, last inclusive; None = open) the current build of ``table`` is at."""
    con.execute(f"update {CONTROL_TABLE} set account_from = ?, account_to = ? where model = ? and is_current",
                [first, last, table])


def set_listed_pass(con, table: str, start_day: dt.date | None, listed: str | None) -> None:
    """The first day the current pass of ``table``'s build writes, and its accounts: ``only`` those of
    ACCOUNTS_TABLE for the build, every account ``except`` them, every account with them ``whole`` (from
    ``history_start``: listed_in_window), or None: every account."""
    con.execute(f"update {CONTROL_TABLE} set start_day = ?, listed = ? where model = ? and is_current",
                [start_day, listed, table])


_RANGE_LINE = re.compile(r"^([ \t]*)--[ \t]*account range:[ \t]*([a-z_][a-z0-9_]*\.account_id)[ \t]*$", re.MULTILINE)


def with_account_range(sql: str, first: str | None, last: str | None) -> str:
    """``sql`` with every ``-- account range: <alias>.account_id`` line replaced by a WHERE of the range (first
    exclusive, last inclusive; None = open) on that column, the bounds as constants: DuckDB then skips the row
    groups of other accounts by their zone maps, which a range read from kpis._build_window (a join or a
    subquery) does not reach. The model must restrict the same rows to the range anyway (the line only lets the
    scan skip what a later join drops); the line stays a comment when the range is open."""
    def where(m: re.Match) -> str:
        bounds = [f"{m.group(2)} {op} '{value.replace(chr(39), chr(39) * 2)}'"
                  for op, value in ((">", first), ("<=", last)) if value is not None]
        return f"{m.group(1)}where {' and '.join(bounds)}" if bounds else m.group(0)

    return _RANGE_LINE.sub(where, sql)


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


def account_ranges(con, window: BuildWindow, chunk_rows: int = CHUNK_ROWS,
                   only: Sequence[str] | None = None) -> list[tuple[str | None, str | None]]:
    """Contiguous account ranges (lower bound exclusive, upper inclusive, None = open) covering every account
    id, cut where about ``chunk_rows`` account-days of the window (from each account's first subscription
    day) add up, counting the accounts ``only`` when given; [(None, None)] when one range holds them all."""
    if window.as_of is None:
        return [(None, None)]
    rows = account_days(con, window, only)
    if not rows:
        return [(None, None)]
    cuts = [last for _, last in split_ranges(rows, chunk_rows)][:-1]
    return list(itertools.pairwise([None, *cuts, None]))


def account_days(con, window: BuildWindow, only: Sequence[str] | None = None) -> list[tuple[str, int]]:
    """(account, days) of every account (of ``only``, when given), in id order: the days of ``window`` from the
    account's first subscription day (marts.subscription_periods) or the window's start, whichever is later, to
    its as-of day."""
    listed = "and account_id in (select unnest(cast(? as varchar[])))" if only is not None else ""
    return con.execute(
        "select account_id, greatest(date_diff('day', greatest(min(start_date), coalesce(cast(? as date), "
        "min(start_date))), cast(? as date)), 0) + 1 from marts.subscription_periods "
        f"where account_id is not null {listed} group by account_id order by account_id",
        [window.start_day, window.as_of, *([list(only)] if only is not None else [])]).fetchall()


_UNITS = {"": 1, "b": 1, "bytes": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4,
          "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4}


def memory_limit_gb(con) -> float | None:
    """DuckDB's memory_limit of ``con`` in GB (10^9 bytes), as DuckDB reports it (e.g. '7.4 GiB'); None when
    it cannot be read."""
    value = str(con.execute("select current_setting('memory_limit')").fetchall()[0][0]).strip()
    m = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)", value)
    if not m or m.group(2).lower() not in _UNITS:
        return None
    return float(m.group(1)) * _UNITS[m.group(2).lower()] / 1000**3


def range_rows(con, spec: Incremental, chunk_rows: int | None = None, per_gb: int | None = None) -> int:
    """Account-days per range: ``chunk_rows`` when given, else the model's ``chunk_rows``, lowered to
    ``rows_per_gb`` (``per_gb`` when given) x DuckDB's memory limit when the model sets ``rows_per_gb``."""
    if chunk_rows:
        return chunk_rows
    rows = spec.chunk_rows
    limit = memory_limit_gb(con) if spec.rows_per_gb else None
    if limit:
        rows = min(rows, max(1, int(limit * (per_gb or spec.rows_per_gb))))
    return rows


def build_ranges(con, spec: Incremental, window: BuildWindow, chunk_rows: int | None = None,
                 only: Sequence[str] | None = None) -> tuple[list[tuple[str | None, str | None]], int]:
    """The account ranges of a build of ``window`` (of the accounts ``only``, when given) and the account-days
    per range."""
    # a nightly window of every other account (not the accounts rebuilt on every day, ``only``) may hold more
    # account-days read per GB than a full build holds written (window_rows_per_gb), so long as it writes no
    # more days than a nightly does (the lookback's days up to last night's as-of day, and tonight's): the days
    # written are a full grid per account, so a catch-up window after missed nights is cut as a full build's
    nightly = (window.mode == "incremental" and window.start_day is not None and only is None and spec.reads_days
               and window.as_of is not None and (window.as_of - window.start_day).days <= spec.lookback())
    rows_per_range = range_rows(con, spec, chunk_rows, spec.window_rows_per_gb if nightly else None)
    # a model sized by memory reads more than the days it writes (trailing windows, the running sums' carry
    # from every earlier day), so a nightly window's ranges are cut by the days it reads: from reads_days
    # before the window, or (unknown reach) as a full build's. On the large company one nightly range of every
    # account cut by the days written ran out of 8 GB + 4 GB of spill in the indicators
    sized = window
    if spec.rows_per_gb and not chunk_rows:
        reach = spec.reads_days if window.start_day is not None else None
        sized = replace(window, start_day=window.start_day - dt.timedelta(days=reach) if reach is not None else None)
    return account_ranges(con, sized, rows_per_range, only), rows_per_range


def listed_in_window(con, spec: Incremental, window: BuildWindow, chunk_rows: int | None = None) -> bool:
    """Whether a build of ``window`` builds its listed accounts (every kept day) in the window's pass: the model
    is tagged ``listed=window``, the build is incremental with listed accounts, and their kept account-days are at
    most LISTED_IN_WINDOW_SHARE of a full build's range (the window's ranges are sized by the days they read,
    which a listed account's every day would exceed if they were many)."""
    if not (spec.listed_in_window and window.accounts and window.mode != "full" and window.as_of is not None):
        return False
    days = sum(n for _, n in account_days(con, replace(window, start_day=window.history_start), window.accounts))
    return days <= LISTED_IN_WINDOW_SHARE * range_rows(con, spec, chunk_rows)


def build(con, spec: Incremental, sql: str, window: BuildWindow, chunk_rows: int | None = None) -> dict:
    """(Re)build ``spec.table`` from ``sql`` (which reads its current row of the control table) for
    ``window``, in one transaction with its record: a full build replaces the table; an incremental one
    deletes the window's days (and days that fell out of the history) and inserts them again, and rebuilds
    every kept day of the window's ``accounts`` first (the SQL reads ``listed``: ``only`` the accounts of
    ACCOUNTS_TABLE for its build, then every account ``except`` them), or in the window's pass (``whole``:
    listed_in_window). Accounts are built in ranges of about
    ``chunk_rows`` account-days (default: range_rows). Returns counts for the UI."""
    con.execute("set TimeZone = 'UTC'")
    ranges, rows_per_range = build_ranges(con, spec, window, chunk_rows)
    listed = replace(window, start_day=window.history_start)  # the rebuilt accounts: every kept day
    whole = listed_in_window(con, spec, window, chunk_rows)
    listed_ranges = (build_ranges(con, spec, listed, chunk_rows, window.accounts)[0]
                     if window.accounts and not whole else [])
    if spec.carry_table is not None and (spec.carry is None or spec.carry.table != spec.carry_table):
        raise ValueError(f"{spec.table} reads the carry {spec.carry_table} (its @incremental tag): build it with that "
                         "Carry (cs_kpis/defs/health/fingerprints.py CARRIES)")
    prev = current(con, spec.table) if table_exists(con, CONTROL_TABLE) else None
    con.execute("begin transaction")
    try:
        before = table_rows(con, spec.table)
        seq = record(con, spec, window)
        carried = carry_prepare(con, spec, window, prev, seq) if spec.carry is not None else None
        deleted = rebuilt = 0
        if window.mode != "full":
            deleted = con.execute(
                f"delete from {spec.table} where day >= ? or (cast(? as date) is not null and day < ?)",
                [window.start_day, window.history_start, window.history_start]).fetchall()[0][0]
        if listed_ranges:
            # the listed accounts first, every kept day; then the window's days of all the others. (Writing the
            # window for everyone and then deleting the listed accounts' new rows in the same transaction made
            # the commit 3 s slower on 32,000 accounts.)
            deleted += con.execute(
                f"delete from {spec.table} where account_id in (select account_id from {ACCOUNTS_TABLE} "
                "where model = ? and build_seq = ?)", [spec.table, seq]).fetchall()[0][0]
            set_listed_pass(con, spec.table, listed.start_day, "only")
            for first, last in listed_ranges:
                set_range(con, spec.table, first, last)
                rebuilt += con.execute(f"insert into {spec.table} by name\n{with_account_range(sql, first, last)}"
                                       ).fetchall()[0][0]
            set_listed_pass(con, spec.table, window.start_day, "except")
        if whole:
            # every kept day of the listed accounts in the window's own pass (the SQL reads listed = 'whole')
            deleted += con.execute(
                f"delete from {spec.table} where account_id in (select account_id from {ACCOUNTS_TABLE} "
                "where model = ? and build_seq = ?)", [spec.table, seq]).fetchall()[0][0]
            set_listed_pass(con, spec.table, window.start_day, "whole")
        for n, (first, last) in enumerate(ranges):
            set_range(con, spec.table, first, last)
            ranged = with_account_range(sql, first, last)
            if window.mode == "full" and n == 0:
                con.execute(f"create schema if not exists {spec.table.split('.')[0]}")
                con.execute(f"create or replace table {spec.table} as\n{ranged}")
            else:
                con.execute(f"insert into {spec.table} by name\n{ranged}")
        if whole:
            rebuilt = con.execute(
                f"select count(*) from {spec.table} where account_id in (select account_id from {ACCOUNTS_TABLE} "
                "where model = ? and build_seq = ?)", [spec.table, seq]).fetchall()[0][0]
        if listed_ranges or whole:
            set_listed_pass(con, spec.table, window.start_day, None)
        set_range(con, spec.table, None, None)
        kept = carry_keep(con, spec, window, carried, seq) if spec.carry is not None else None
        record_rows(con, spec.table, before)
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    inserted = con.execute(f"select count(*) from {spec.table} where day >= ?",
                           [window.start_day or dt.date(1900, 1, 1)]).fetchall()[0][0]
    return {"mode": window.mode, "start_day": window.start_day, "history_start": window.history_start,
            "reason": window.reason, "rows_deleted": int(deleted), "rows_written": int(inserted),
            "account_ranges": len(ranges) + len(listed_ranges), "rows_per_range": rows_per_range,
            "accounts_rebuilt": len(window.accounts), "rows_of_rebuilt_accounts": int(rebuilt),
            **({"carry_read": carried, "carry_kept": kept} if spec.carry is not None else {})}


def metadata(stats: dict, seconds: float) -> dict:
    """A build's counts as Dagster metadata."""
    return {"build_mode": stats["mode"], "build_reason": stats["reason"],
            "build_start_day": str(stats["start_day"]) if stats["start_day"] else "all days",
            "history_start": str(stats["history_start"]) if stats.get("history_start") else "all days",
            "rows_written": stats["rows_written"], "rows_deleted": stats["rows_deleted"],
            "account_ranges": stats["account_ranges"], "seconds": seconds,
            "accounts_rebuilt": stats.get("accounts_rebuilt", 0),
            "rows_of_rebuilt_accounts": stats.get("rows_of_rebuilt_accounts", 0),
            **({"rows_per_range": stats["rows_per_range"]} if "rows_per_range" in stats else {}),
            **({"carry": (f"read through {stats['carry_read']}" if stats["carry_read"] else "summed from every row")
                + (f"; kept through {stats['carry_kept']}" if stats["carry_kept"] else "")} if "carry_read" in stats else {})}
