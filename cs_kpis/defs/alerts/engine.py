"""The alert engine: firing conditions per type (sql/<type>.sql), episodes, cooldowns, the log and candidates.

No Dagster here (assets.py wires it in), so tests can drive it with a plain DuckDB connection.

How a log is derived, deterministically, from the daily tables:
1. each type's SQL returns one row per (account, day) on which its condition holds, with severity and reason;
2. consecutive firing days form an episode;
3. per dedup key (account + type), walking its episodes in order: the first raises an alert; an episode
   starting within ``cooldown_days`` of the last raise reopens that alert silently (``reopened``, no
   notification); a condition persisting beyond the cooldown is raised again (``reminder``); an episode
   that ends before the as-of day is ``resolved`` the day after its last firing day.
Every event has a stable id (key, event, day), so appending "events not logged yet" to alerts.alert_log is
idempotent: rerunning on the same data appends nothing, and history once logged is never rewritten.
"""

import hashlib
import json
import re
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from cs_kpis import tuning
from cs_kpis.lib import incremental

HERE = Path(__file__).parent
SQL_DIR = HERE / "sql"
RULES_PATH = HERE / "alert_rules.yaml"
ENV_RULES = tuning.SETTINGS["alerts.rules_file"].env
ALERT_TYPES = ("health_drop", "health_red", "usage_drop", "champion_inactive", "ticket_spike",
               "low_nps_high_value", "renewal_risk", "expansion_opportunity")
NOTIFY_EVENTS = ("raised", "reminder")
_NOTIFY_IN = ", ".join(f"'{event}'" for event in NOTIFY_EVENTS)
CANDIDATE_TYPES = {"dedup_key": "varchar", "account_id": "varchar", "account_name": "varchar",
                   "alert_type": "varchar", "severity": "varchar", "status": "varchar", "hold_reason": "varchar",
                   "owner_id": "varchar", "owner_name": "varchar", "owner_email": "varchar", "arr": "double",
                   "reason": "varchar", "first_seen": "date", "last_seen": "date", "last_raised": "date",
                   "as_of_day": "date"}
"""alerts.alert_candidates' columns, in order, with their SQL types: every column is cast on write, so the table
has these types when no alert fires too (an empty frame's columns would otherwise be NULL-typed)"""
SEVERITY_LEVELS = ("critical", "high", "medium", "info")
"""most severe first: the one order of severities (digests, the KPI report, the CRM sync sort by it)"""
SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITY_LEVELS)}


def severity_rank_sql(column: str = "severity") -> str:
    """SEVERITY_RANK as a SQL CASE on ``column`` (an unknown severity ranks last)."""
    whens = " ".join(f"when '{s}' then {i}" for s, i in SEVERITY_RANK.items())
    return f"case {column} {whens} else {len(SEVERITY_RANK)} end"


def rules_path() -> Path:
    """settings.alerts.rules_file in the company file (CS_KPIS_ALERT_RULES overrides), or alert_rules.yaml."""
    return tuning.get_path("alerts.rules_file") or RULES_PATH


def _kind(value) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, list):
        return "a list"
    return "a string" if isinstance(value, str) else type(value).__name__


def load_rules(path: Path | None = None) -> dict:
    """The rules, validated: every type present, every value of the kind the shipped file has (a number
    where it has a number ...), severities from SEVERITY_LEVELS. Errors name the file and the key."""
    path = Path(path or rules_path())
    rules = yaml.safe_load(path.read_text())
    missing = [t for t in ALERT_TYPES if t not in rules.get("types", {})]
    if missing:
        raise ValueError(f"alert rules: no rule for {', '.join(missing)}")
    shipped = rules if path == RULES_PATH else yaml.safe_load(RULES_PATH.read_text())
    for t in ALERT_TYPES:
        for key, value in rules["types"][t].items():
            if key == "inputs":
                continue
            if key in RESERVED_PARAMETERS:
                raise ValueError(f"alert rules ({path}): types.{t}.{key}: the engine binds ${key} itself "
                                 f"({', '.join(RESERVED_PARAMETERS)} cannot be rule keys); rename the key")
            _check_value(t, key, value, path)
            default = shipped["types"][t].get(key)
            if default is not None and _kind(value) != _kind(default):
                raise ValueError(f"alert rules ({path}): types.{t}.{key} = {value!r}: {_kind(default)} is expected")
    return rules


_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
RESERVED_PARAMETERS = ("first_day", "as_of", "accounts")
"""the parameters the engine binds to every type's SQL itself: a rule key of that name would be shadowed"""
_SCALAR = (bool, int, float, str)


def _check_value(alert_type: str, key: str, value, path: Path | None = None):
    """A rule value fit to be bound: a scalar or a list of scalars; the severity one of SEVERITY_LEVELS."""
    where = f"alert rules ({path or rules_path()}): types.{alert_type}.{key}"
    if key == "severity" and value not in SEVERITY_LEVELS:
        raise ValueError(f"{where} = {value!r}: must be one of {', '.join(SEVERITY_LEVELS)}")
    if isinstance(value, list):
        if not all(isinstance(x, _SCALAR) for x in value):
            raise ValueError(f"{where}: a list of plain values (strings or numbers) is expected")
        return [str(x) for x in value]
    if not isinstance(value, _SCALAR):
        # a bad value in the rules file, reported like every other rule error (the loader catches ValueError)
        raise ValueError(f"{where}: a plain value (string, number, true/false) is expected, got {type(value).__name__}")  # noqa: TRY004
    return value


def condition_sql(alert_type: str, rule: dict, first_day: date, as_of: date,
                  accounts: Sequence[str] | None = None) -> tuple[str, dict]:
    """The type's SQL and its bound parameters. Rule values never become SQL text: the SQL refers to them as
    DuckDB named parameters (``$min_days``), and only the names the SQL uses are bound. ``$accounts`` (a SQL
    may use it to read only their inputs; the caller filters the rows anyway): the accounts evaluated, or null
    for every account."""
    sql = (SQL_DIR / f"{alert_type}.sql").read_text()
    code = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    used = set(_PARAM.findall(code))
    values = {k: v for k, v in rule.items() if k != "inputs"}
    values.update(first_day=first_day.isoformat(), as_of=as_of.isoformat())
    missing = sorted(used - set(values) - {"accounts"})
    if missing:
        raise ValueError(f"alert rules ({rules_path()}): types.{alert_type} has no {', '.join(missing)}")
    bound = {k: _check_value(alert_type, k, values[k]) for k in sorted(used - {"accounts"})}
    if "accounts" in used:
        bound["accounts"] = None if accounts is None else [str(a) for a in accounts]
    return sql, bound


def as_of_day(con) -> date | None:
    return con.execute("select max(day) from kpis.account_indicators_daily").fetchall()[0][0]


def conditions(con, rules: dict, as_of: date, first_day: date | None = None,
               skipped: Iterable[str] = (), sql_engine=None) -> pd.DataFrame:
    """Every (alert_type, account_id, day) on which a condition holds, with severity and reason, as a frame:
    :func:`load_conditions` (the run's own path), then its temp table read back in order."""
    load_conditions(con, rules, as_of, first_day, skipped, sql_engine)
    out = con.execute(f"select * from {CONDITIONS} order by alert_type, account_id, day").df()
    out["day"] = pd.to_datetime(out["day"]).dt.date
    return out


CONDITIONS = "_alert_conditions"
"""temp table: every (alert_type, account_id, day) a condition holds on, with severity and reason"""
KEYS, EPISODES, EVENTS = "_alert_keys", "_alert_episodes", "_alert_events"
"""temp tables: the dedup keys (numbered), their episodes (runs of consecutive firing days), every log event"""
STATE_IN, SNAPSHOT, QUOTABLE = "_alert_state_in", "_alert_snapshot", "_alert_quotable"
"""temp tables: the carried state (each key's alert as of the day before CONDITIONS' first day; empty in a
full build), the state at the checkpoint for the next night; view: the condition rows an event or candidate
can quote (CONDITIONS and each carried alert's last firing day)"""
LISTED = "_alert_listed"
"""temp table: the accounts a nightly rebuilds on every kept day (account_id; empty otherwise)"""
LAST_ACTIVE = "_alert_last_active"
"""temp table (user_id, day): each champion/admin product user's last active day before the first day
champion_inactive evaluates (its SQL reads it); on a nightly it is copied (:func:`copy_last_active`) from
LAST_ACTIVE_DAYS, which the plan's scan of the same events for the input fingerprint leaves
(:func:`input_fingerprints`), so the events are read once; else read from the events (:func:`load_last_active`)"""
ROLE_CONTACTS_SQL = """
    select contact_id, account_id, role, product_user_id, first_name, last_name, created_at
    from staging.stg_crm__contacts where role in (select unnest(cast($roles as varchar[])))
"""
"""the contacts champion_inactive considers (its rule's roles), for the fingerprint and LAST_ACTIVE"""
LAST_ACTIVE_DAY_SQL = "cast(max(occurred_at) filter (where occurred_at < cast($la as date)) as date)"
"""a champion/admin user's last active day before ``$la`` (the rule LAST_ACTIVE holds): the aggregate over its
product events that :func:`load_last_active` uses (the fingerprint's scan, :func:`input_fingerprints`, takes the
day of the latest of its ranges' latest events before ``$la``: the same day). The day of the latest timestamp,
the same as the latest day of each: the one cast per user, not per event (on the large company the scan's 38 M
champion events, 2-3 CPU s: BENCHMARKS.md "Alerts and the KPI report on the large nightly")"""
LAST_ACTIVE_SQL = f"""
    create or replace temp table {LAST_ACTIVE} as
    select user_id, {LAST_ACTIVE_DAY_SQL} as day
    from staging.stg_product__events
    where occurred_at < cast($la as date) and user_id in (
        select product_user_id from ({ROLE_CONTACTS_SQL}) as c
        where cast($accounts as varchar[]) is null or list_contains(cast($accounts as varchar[]), account_id))
    group by user_id
"""
"""LAST_ACTIVE from the events (:func:`load_last_active`)"""
LAST_ACTIVE_DAYS = "_alert_last_active_days"
"""temp table (before, user_id, day) the plan's scan leaves (:func:`input_fingerprints`): each champion/admin
product user's last active day before each day ``before`` it was asked for (null: no event before it), from which
:func:`load_conditions` takes LAST_ACTIVE instead of reading the events again (:func:`copy_last_active`)"""
LAST_ACTIVE_COPY_SQL = f"""
    create or replace temp table {LAST_ACTIVE} as
    select user_id, day from {LAST_ACTIVE_DAYS}
    where before = cast($la as date) and day is not null and user_id in (
        select product_user_id from ({ROLE_CONTACTS_SQL}) as c
        where cast($accounts as varchar[]) is null or list_contains(cast($accounts as varchar[]), account_id))
"""
"""LAST_ACTIVE from LAST_ACTIVE_DAYS (:func:`copy_last_active`): the rows LAST_ACTIVE_SQL gives"""
CHAMPION_EVENTS = "_alert_champion_events"
"""temp table of :func:`input_fingerprints`: per champion/admin user, its events before each fingerprint day"""
EVENT_CODES = ("resolved", "raised", "reopened", "reminder")
"""an event's code is its index here, which is also its order among the events of one day in the log"""
RESOLVED, RAISED, REOPENED, REMINDER = range(4)
EPOCH = date(1970, 1, 1)


def load_conditions(con, rules: dict, as_of: date, first_day: date | None = None,
                    skipped: Iterable[str] = (), sql_engine=None, accounts: Sequence[str] | None = None,
                    last_active_ready: bool = False) -> int:
    """Every (alert_type, account_id, day) on which a condition holds, with severity and reason, into the temp
    table CONDITIONS; the ``skipped`` types (their source system is off, cs_kpis/lib/systems.py) are not
    evaluated. ``accounts``: only those accounts' rows, appended to CONDITIONS (a nightly's rebuilt accounts,
    on the days before its window). Each condition runs on ``sql_engine`` (cs_kpis/lib/engine.py: DuckDB by
    default, or Spark, with the rule values bound as parameters on either). On DuckDB each type's query is inserted where it runs (a
    year of the large company's conditions never leaves DuckDB, so its memory limit holds); on Spark each
    type's rows are fetched and inserted. champion_inactive reads each user's last active day before
    ``first_day`` from LAST_ACTIVE: read here from the events, unless ``last_active_ready`` (the plan's scan
    left LAST_ACTIVE_DAYS: taken from it if it holds this ``first_day``). Returns the number of rows."""
    first_day = first_day or con.execute("select min(day) from kpis.account_indicators_daily").fetchall()[0][0]
    if "champion_inactive" not in skipped:
        rule = rules["types"]["champion_inactive"]
        if not (last_active_ready and copy_last_active(con, rule, first_day, accounts)):
            load_last_active(con, rule, first_day, accounts)
    if accounts is None:
        con.execute(f"create or replace temp table {CONDITIONS} (alert_type varchar, account_id varchar, day date, "
                    "severity varchar, reason varchar)")
    # the accounts' rows only: a bound list, which DuckDB folds into an IN filter and pushes down to the scans
    # (through the windows partitioned by account), where a semi join with a table of them would not be
    only = " where list_contains($_alert_accounts, account_id)" if accounts is not None else ""
    listed = {"_alert_accounts": list(accounts)} if accounts is not None else {}
    on_duckdb = sql_engine is None or sql_engine.settings().engine == "duckdb"
    for t in ALERT_TYPES:
        if t in skipped:
            continue
        sql, params = condition_sql(t, rules["types"][t], first_day, as_of, accounts)
        if on_duckdb:
            # the type's name is bound too; the newlines keep a trailing comment of the file from eating the ")"
            # (a name no rule can bind: condition_sql binds only the names the SQL file uses)
            con.execute(f"insert into {CONDITIONS} select $_alert_type, account_id, cast(day as date), severity, "
                        f"reason from (\n{sql}\n) as c{only}", {**params, "_alert_type": t, **listed})
            continue
        df = sql_engine.query(con, sql, params)
        con.register("_alert_type_rows", df)
        try:
            con.execute(f"insert into {CONDITIONS} select $_alert_type, account_id, cast(day as date), severity, "
                        f"reason from _alert_type_rows{only}", {"_alert_type": t, **listed})
        finally:
            con.unregister("_alert_type_rows")
    n, keys = con.execute(f"select count(*), count(distinct (alert_type, account_id, day)) from {CONDITIONS}"
                          ).fetchall()[0]
    if n != keys:
        raise ValueError("alert conditions hold more than one row for an (alert type, account, day): "
                         "each rule must give at most one row per account and day")
    return int(n)


def load_last_active(con, rule: dict, before: date, accounts: Sequence[str] | None = None) -> None:
    """LAST_ACTIVE: each champion/admin user's (of ``accounts``, or every account) last active day before
    ``before``: one scan of their product events."""
    con.execute("set TimeZone = 'UTC'")
    con.execute(LAST_ACTIVE_SQL, {"roles": [str(r) for r in rule["roles"]], "la": before,
                                  "accounts": None if accounts is None else [str(a) for a in accounts]})


def copy_last_active(con, rule: dict, before: date, accounts: Sequence[str] | None = None) -> bool:
    """LAST_ACTIVE as :func:`load_last_active` leaves it, from LAST_ACTIVE_DAYS (the plan's scan) instead of
    the events; False (nothing done) when that table does not hold the day ``before``."""
    held = con.execute("select count(*) from duckdb_tables() where temporary and table_name = ?",
                       [LAST_ACTIVE_DAYS]).fetchall()[0][0]
    if not held or not con.execute(f"select count(*) from {LAST_ACTIVE_DAYS} where before = ?",
                                   [before]).fetchall()[0][0]:
        return False
    con.execute(LAST_ACTIVE_COPY_SQL, {"roles": [str(r) for r in rule["roles"]], "la": before,
                                       "accounts": None if accounts is None else [str(a) for a in accounts]})
    return True


def _cooldown_sql(rules: dict) -> str:
    whens = " ".join(f"when '{t}' then {max(1, int(rules['types'][t]['cooldown_days']))}" for t in ALERT_TYPES)
    return f"case alert_type {whens} end"


@dataclass
class Alert:
    """A key's latest alert as the walk leaves it (days as numbers since 1970-01-01)."""
    key_no: int
    first_seen: int
    last_seen: int
    last_raised: int


def walk(con, rules: dict, as_of: date, carried_from: date | None = None,
         checkpoint: date | None = None) -> dict[int, Alert]:
    """Episodes, cooldowns and events from the CONDITIONS table; returns each key's latest alert.

    SQL numbers the keys (KEYS) and cuts each key's firing days into episodes (EPISODES: a run of consecutive
    days has a constant ``day - row_number()``). The walk over the episodes is Python: per key, in order, the
    first episode raises; one starting within ``cooldown_days`` of the last raise reopens silently; a condition
    persisting past the cooldown is reminded; an episode ending before the as-of day is resolved the next day.
    The events (EVENTS) get their severity and reason by a join with CONDITIONS on the day they quote, and
    their stable id, sha1(dedup_key|event|day), in SQL. Only episodes and event numbers pass through Python.

    A nightly build (``carried_from``: the day the carried state is as of) starts each key from its state in
    STATE_IN (its alert after every firing day up to ``carried_from``; CONDITIONS then holds the days after it
    only, but for the keys of the build's listed accounts: they are not in STATE_IN and CONDITIONS holds every
    kept day of theirs): an episode starting the day after ``carried_from`` continues the carried one (no raise; reminders
    counted from its last raise), a carried episode that stops there is resolved that day. ``checkpoint``:
    every key's state after the firing days up to that day is left in SNAPSHOT (for the next night)."""
    con.execute(f"""
        create or replace temp table {KEYS} as
        select cast(row_number() over (order by alert_type, account_id) as bigint) as key_no, alert_type, account_id,
            {_cooldown_sql(rules)} as cooldown
        from (select alert_type, account_id from {CONDITIONS}
              union select alert_type, account_id from {STATE_IN}) as k
    """)
    con.execute(f"""
        create or replace temp table {EPISODES} as
        with numbered as (
            select k.key_no, k.cooldown, date_diff('day', date '1970-01-01', c.day) as d,
                date_diff('day', date '1970-01-01', c.day)
                    - row_number() over (partition by c.alert_type, c.account_id order by c.day) as run
            from {CONDITIONS} as c
            inner join {KEYS} as k on k.alert_type = c.alert_type and k.account_id = c.account_id
        )
        select key_no, any_value(cooldown) as cooldown, min(d) as first_day, max(d) as last_day
        from numbered
        group by key_no, run
    """)
    as_of_n = (as_of - EPOCH).days
    c_prev = (carried_from - EPOCH).days if carried_from is not None else None
    ck = (checkpoint - EPOCH).days if checkpoint is not None else None
    latest: dict[int, Alert] = {}
    st = con.execute(f"""
        select k.key_no, date_diff('day', date '1970-01-01', s.first_seen) as first_seen,
            date_diff('day', date '1970-01-01', s.last_seen) as last_seen,
            date_diff('day', date '1970-01-01', s.last_raised) as last_raised
        from {STATE_IN} as s
        inner join {KEYS} as k on k.alert_type = s.alert_type and k.account_id = s.account_id
    """).fetchall()
    for k, fs, ls, lr in st:
        if c_prev is None or ls > c_prev:
            raise ValueError(f"the alerts' carried state (alerts._walk_state) is not as of {carried_from} for "
                             f"key {k}: it was changed by hand or by another version; run the alerts with "
                             "--full-refresh (cs_kpis.run --full-refresh) to rebuild it")
        latest[k] = Alert(k, fs, ls, lr)
    snap = {k: (a.first_seen, a.last_seen, a.last_raised) for k, a in latest.items()}
    ev_key, ev_code, ev_day, ev_quoted = array("q"), array("b"), array("q"), array("q")

    def emit(k: int, code: int, day: int, quoted: int) -> None:
        ev_key.append(k), ev_code.append(code), ev_day.append(day), ev_quoted.append(quoted)

    seen: set[int] = set()
    alert, prev, pending = None, None, False
    # the episodes in batches of whole numbers: no Python object per episode of the whole history at once
    cur = con.execute(f"select key_no, cooldown, first_day, last_day from {EPISODES} order by key_no, first_day")
    while batch := cur.fetchmany(EPISODE_BATCH):
        for k, cd, s, e in batch:
            if k != prev:
                alert, prev = latest.get(k), k
                seen.add(k)
                pending = alert is not None and alert.last_seen == c_prev  # the carried episode may go on
            if pending:
                pending = False
                if s == c_prev + 1:  # it goes on: no raise, reminders from its last raise
                    base = alert.last_raised
                    _remind_and_resolve(alert, k, cd, s, e, base, as_of_n, ck, snap, emit)
                    continue
                emit(k, RESOLVED, c_prev + 1, c_prev)  # it stopped on the carried day: resolved the next day
            if alert is None or s - alert.last_raised >= cd:
                alert = latest[k] = Alert(k, s, e, s)
                emit(k, RAISED, s, s)
            else:
                emit(k, REOPENED, s, s)
            _remind_and_resolve(alert, k, cd, s, e, alert.last_raised, as_of_n, ck, snap, emit)
    for k, a in latest.items():  # carried episodes with no firing day since: resolved the day after
        if k not in seen and a.last_seen == c_prev and c_prev < as_of_n:
            emit(k, RESOLVED, c_prev + 1, c_prev)
    frame = pd.DataFrame({"key_no": np.frombuffer(ev_key, dtype=np.int64),
                          "code": np.frombuffer(ev_code, dtype=np.int8).astype(np.int32),
                          "day": np.frombuffer(ev_day, dtype=np.int64),
                          "quoted": np.frombuffer(ev_quoted, dtype=np.int64)})
    names = " ".join(f"when {i} then '{name}'" for i, name in enumerate(EVENT_CODES))
    con.register("_alert_walked", frame)
    try:
        con.execute(f"""
            create or replace temp table {EVENTS} as
            with e as (
                select k.account_id || ':' || k.alert_type as dedup_key, k.account_id, k.alert_type,
                    case w.code {names} end as event, w.code,
                    cast(date '1970-01-01' + cast(w.day as integer) as date) as event_day, c.severity, c.reason
                from _alert_walked as w
                inner join {KEYS} as k on k.key_no = w.key_no
                inner join {QUOTABLE} as c
                    on c.alert_type = k.alert_type and c.account_id = k.account_id
                    and c.day = cast(date '1970-01-01' + cast(w.quoted as integer) as date)
            )
            select left(sha1(dedup_key || '|' || event || '|' || strftime(event_day, '%Y-%m-%d')), 16) as event_id,
                dedup_key, account_id, alert_type, event, event_day, severity, reason,
                row_number() over (order by event_day, code, dedup_key) as log_order
            from e
        """)
    finally:
        con.unregister("_alert_walked")
    joined = con.execute(f"select count(*) from {EVENTS}").fetchall()[0][0]
    if joined != len(frame):  # every event quotes a firing day of its key
        raise AssertionError(f"alert events: {len(frame)} walked, {joined} found their condition")
    del frame
    if ck is not None:
        _save_snapshot(con, snap)
    return latest


EPISODE_BATCH = 100_000
"""episodes fetched from DuckDB at a time by the walk"""


def _remind_and_resolve(alert: Alert, k: int, cd: int, s: int, e: int, base: int, as_of_n: int, ck: int | None,
                        snap: dict, emit) -> None:
    """The rest of an episode (s..e) of ``alert`` whose last raise is ``base``: a reminder every ``cd`` days
    while it persists, resolved the day after it ends (before the as-of day); the state at the checkpoint."""
    r = base
    while r + cd <= e:  # persisting past the cooldown: remind
        r += cd
        emit(k, REMINDER, r, r)
    if ck is not None and s <= ck:  # the key's state after its firing days up to the checkpoint
        m = min(e, ck)
        snap[k] = (alert.first_seen, m, base + cd * ((m - base) // cd))
    alert.last_raised, alert.last_seen = r, e
    if e < as_of_n:  # resolved the day after its last firing day, quoting that day
        emit(k, RESOLVED, e + 1, e)


def _save_snapshot(con, snap: dict) -> None:
    """SNAPSHOT: every key's state at the checkpoint, with the severity and reason of its last firing day."""
    keys = np.fromiter(snap.keys(), dtype=np.int64, count=len(snap))
    vals = np.array(list(snap.values()), dtype=np.int64).reshape(-1, 3)
    frame = pd.DataFrame({"key_no": keys, "first_seen": vals[:, 0], "last_seen": vals[:, 1], "last_raised": vals[:, 2]})
    con.register("_alert_snap", frame)
    try:
        con.execute(f"""
            create or replace temp table {SNAPSHOT} as
            select k.alert_type, k.account_id, k.cooldown,
                cast(date '1970-01-01' + cast(p.first_seen as integer) as date) as first_seen,
                cast(date '1970-01-01' + cast(p.last_seen as integer) as date) as last_seen,
                cast(date '1970-01-01' + cast(p.last_raised as integer) as date) as last_raised,
                c.severity, c.reason
            from _alert_snap as p
            inner join {KEYS} as k on k.key_no = p.key_no
            inner join {QUOTABLE} as c
                on c.alert_type = k.alert_type and c.account_id = k.account_id
                and c.day = cast(date '1970-01-01' + cast(p.last_seen as integer) as date)
        """)
    finally:
        con.unregister("_alert_snap")
    n = con.execute(f"select count(*) from {SNAPSHOT}").fetchall()[0][0]
    if n != len(frame):
        raise AssertionError(f"alert state: {len(frame)} keys walked, {n} found their last firing day (a bug in "
                             "the walk; run the alerts with --full-refresh and report it)")


def log_frame(con) -> pd.DataFrame:
    """Every event of EVENTS in log order (days as dates): what :func:`append_log` appends from."""
    df = con.execute(f"select event_id, dedup_key, account_id, alert_type, event, event_day, severity, reason "
                     f"from {EVENTS} order by log_order").df()
    df["event_day"] = pd.to_datetime(df["event_day"]).dt.date
    return df


OWNER_SQL = """
    select a.account_id, a.account_name, coalesce(s.csm_id, a.csm_id) as owner_id, u.user_name as owner_name,
        u.email as owner_email, cast(i.arr as double) as arr
    from marts.accounts as a
    left join marts.account_states as s
        on s.account_id = a.account_id and s.valid_from <= $day and (s.valid_to is null or s.valid_to > $day)
    left join staging.stg_crm__users as u on u.user_id = coalesce(s.csm_id, a.csm_id)
    left join kpis.account_indicators_daily as i on i.account_id = a.account_id and i.day = $day
"""
"""each account's CSM in charge on the day (marts.account_states; the current one when no state covers it)"""

CSM_ON_EVENT_DAY_SQL = """
    select e.account_id, e.event_day, s.csm_id as day_owner_id, u.user_name as day_owner_name
    from (select distinct account_id, cast(event_day as date) as event_day from _alert_event_days) as e
    inner join marts.account_states as s
        on s.account_id = e.account_id and s.valid_from <= e.event_day
        and (s.valid_to is null or s.valid_to > e.event_day)
    left join staging.stg_crm__users as u on u.user_id = s.csm_id
"""
"""the CSM in charge of each account on each event's day: the log names who owned the account when it happened"""


def candidates(con, latest: dict[int, Alert], rules: dict, as_of: date, holds: dict[str, str]) -> pd.DataFrame:
    """One row per dedup key whose latest alert fires on the as-of day or resolved recently."""
    recent = int(rules.get("recent_resolved_days", 7))
    new_within = int(rules.get("new_within_days", 1))
    as_of_n = (as_of - EPOCH).days
    kept = [a for a in latest.values() if a.last_seen >= as_of_n or as_of_n - a.last_seen <= recent]
    picked = pd.DataFrame({"key_no": [a.key_no for a in kept],
                           "first_seen": [a.first_seen for a in kept], "last_seen": [a.last_seen for a in kept],
                           "last_raised": [a.last_raised for a in kept]}, dtype="int64")
    # the status: resolved when it no longer fires; new when raised or reminded within new_within_days
    picked["status"] = np.where(picked["last_seen"] < as_of_n, "resolved",
                                np.where(as_of_n - picked["last_raised"] < new_within, "new", "open"))
    con.register("_alert_picked", picked)
    try:
        df = con.execute(f"""
            select k.account_id || ':' || k.alert_type as dedup_key, k.account_id, k.alert_type, c.severity,
                p.status, c.reason,
                cast(date '1970-01-01' + cast(p.first_seen as integer) as date) as first_seen,
                cast(date '1970-01-01' + cast(p.last_seen as integer) as date) as last_seen,
                cast(date '1970-01-01' + cast(p.last_raised as integer) as date) as last_raised
            from _alert_picked as p
            inner join {KEYS} as k on k.key_no = p.key_no
            inner join {QUOTABLE} as c
                on c.alert_type = k.alert_type and c.account_id = k.account_id
                and c.day = cast(date '1970-01-01' + cast(p.last_seen as integer) as date)
        """).df()
    finally:
        con.unregister("_alert_picked")
    for col in ("first_seen", "last_seen", "last_raised"):
        df[col] = pd.to_datetime(df[col]).dt.date
    hold = df["alert_type"].map(holds).where(df["status"] != "resolved")
    df["hold_reason"] = hold.astype(object).where(hold.notna(), None)
    df["status"] = df["status"].where(df["hold_reason"].isna(), "held")
    df["as_of_day"] = as_of
    owners = owners_frame(con, as_of)
    df = df.merge(owners, on="account_id", how="left")
    return df[list(CANDIDATE_TYPES)].sort_values(["alert_type", "account_id"], ignore_index=True)

LOG_DDL = """
create table if not exists alerts.alert_log (
    log_seq bigint not null,        -- increasing in insertion order: the notification sensor's cursor
    event_id varchar not null,      -- hash of (dedup_key, event, event_day): appending is idempotent
    dedup_key varchar not null, account_id varchar not null, alert_type varchar not null,
    event varchar not null,         -- raised, reminder, reopened (inside the cooldown: not notified), resolved
    event_day date not null, severity varchar, reason varchar,
    owner_id varchar, owner_name varchar, arr double,
    notify boolean not null,        -- raised or reminder, recent enough (notify_max_age_days), not held
    logged_at timestamp with time zone not null, run_id varchar
)
"""


def append_log(con, rules: dict, as_of: date, held_types: set[str], run_id: str) -> int:
    """Append the events of EVENTS not logged yet (types on hold wait: they are appended once the hold
    lifts), in log order, each with the CSM in charge on its day (else on the as-of day) and the as-of ARR."""
    con.execute("create schema if not exists alerts")
    con.execute(LOG_DDL)
    max_age = int(rules.get("notify_max_age_days", 3))
    con.execute(f"""
        create or replace temp table _alert_new_events as
        select * from {EVENTS}
        where alert_type not in (select unnest(cast($held as varchar[])))
            and event_id not in (select event_id from alerts.alert_log)
    """, {"held": sorted(held_types)})
    con.execute("create or replace temp view _alert_event_days as select account_id, event_day "
                "from _alert_new_events")
    try:
        before = con.execute("select count(*) from alerts.alert_log").fetchall()[0][0]
        con.execute(f"""
            insert into alerts.alert_log
            select coalesce((select max(log_seq) from alerts.alert_log), 0)
                    + row_number() over (order by e.log_order),
                e.event_id, e.dedup_key, e.account_id, e.alert_type, e.event, e.event_day,
                e.severity, e.reason,
                case when d.day_owner_id is not null then d.day_owner_id else o.owner_id end,
                case when d.day_owner_id is not null then d.day_owner_name else o.owner_name end,
                cast(o.arr as double),
                e.event in ({_NOTIFY_IN}) and date_diff('day', e.event_day, cast($as_of as date)) <= $max_age,
                current_timestamp, $run_id
            from _alert_new_events as e
            left join ({OWNER_SQL}) as o on o.account_id = e.account_id
            left join ({CSM_ON_EVENT_DAY_SQL}) as d on d.account_id = e.account_id and d.event_day = e.event_day
        """, {"day": as_of, "as_of": as_of, "max_age": max_age, "run_id": run_id})
        after = con.execute("select count(*) from alerts.alert_log").fetchall()[0][0]
    finally:
        con.execute("drop view if exists _alert_event_days")
        con.execute("drop table if exists _alert_new_events")
    return int(after - before)


def owners_frame(con, as_of: date) -> pd.DataFrame:
    """Who an account's alerts go to on ``as_of``: its CSM in charge that day, with name, e-mail and ARR."""
    return con.execute(OWNER_SQL, {"day": as_of}).df()


# ---- the nightly build: a bounded window with each key's walk state carried (README "Nightly builds") ----

MODEL = "alerts.alert_candidates"
"""the alerts' row in the control table kpis._build_window (cs_kpis/lib/incremental.py)"""
STATE_TABLE = "alerts._walk_state"
"""each key's alert (first_seen, last_seen, last_raised, and the severity and reason of its last firing day)
after every firing day up to the checkpoint day of the last build"""
TAIL_TABLE = "alerts._conditions_tail"
"""the condition rows of the last build dated after its checkpoint day"""
CHECKPOINT_TABLE = "alerts._walk_checkpoint"
"""one row: the last build's control-table build_seq, checkpoint day, as-of day and the types it held"""
UPSTREAM = ("kpis.account_activity_daily", "kpis.account_indicators_daily", "kpis.health_scores_daily")
"""the incremental tables the conditions read (kpis.health_score_changes is built with the scores, in their
window): a build of one since the last alerts build bounds the window by its first rebuilt day; a full one,
or none recorded at all, makes the build full"""
TAIL_DAYS = 31
"""the checkpoint is this many days before the as-of day (at least 4 x the lookback): a later night whose
window starts after it is incremental (nights the alerts did not run are covered up to about this)"""
ENGINE_VERSION = "walk-state-1"
"""part of every build's version: a change of what is stored or how it is walked makes the next build full"""


@dataclass(frozen=True)
class AlertPlan:
    mode: str                   # "full" or "incremental"
    start_day: date | None      # first day whose conditions are recomputed (None: every day)
    first_day: date | None      # the first day of the history the walk started from (the last full build's)
    carried_from: date | None   # the day the carried state is as of (incremental only)
    reason: str
    accounts: tuple[str, ...] = ()
    """accounts whose keys an incremental build recomputes and walks over every kept day (a table the
    conditions read rebuilt them on every day), sorted; every other key is walked over the window"""
    last_active: bool = False
    """the plan's scan of the events for the fingerprint left LAST_ACTIVE_DAYS before ``start_day`` and, with
    ``accounts``, before ``first_day`` (incremental only): champion_inactive of the window and of the accounts'
    earlier days reads it instead of the events"""


def _lookback() -> int:
    override = incremental.lookback_override()
    return incremental.DEFAULT_LOOKBACK_DAYS if override is None else override


def tail_days() -> int:
    return max(TAIL_DAYS, 4 * _lookback())


def build_version(rules: dict, skipped: Iterable[str]) -> str:
    """A hash of everything that decides the conditions and the walk: the rules, every condition's SQL (with
    the engine's SQL champion_inactive reads through LAST_ACTIVE: its contacts and their last active days), the
    types not evaluated, the engine's version and the tail's length."""
    sql = {t: (SQL_DIR / f"{t}.sql").read_text() for t in ALERT_TYPES}
    sql["engine:role_contacts"], sql["engine:last_active"] = ROLE_CONTACTS_SQL, LAST_ACTIVE_SQL
    sql["engine:last_active_day"] = LAST_ACTIVE_DAY_SQL
    text = json.dumps({"rules": rules, "sql": sql, "skipped": sorted(skipped), "engine": ENGINE_VERSION,
                       "tail_days": tail_days()}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def input_fingerprint(con, rules: dict, skipped: Iterable[str], before: date) -> str:
    """A hash of the inputs the conditions of days before ``before`` read that no build record covers:
    product events and champion/admin contacts (champion_inactive), NPS responses (low_nps_high_value), the
    product configuration (expansion_opportunity). Contacts are the CRM's current state, so only those that
    can shape an older day are hashed: a champion/admin whose product user has an event before ``before``
    (every one with include_never_active). A new contact whose user has no older event (a new account's) can
    change no older day and keeps the nightly incremental; a changed role, account, name or user of an
    active one, or a deleted one, makes the build full."""
    return input_fingerprints(con, rules, skipped, [before])[before]


def input_fingerprints(con, rules: dict, skipped: Iterable[str], befores: Iterable[date],
                       last_active_before: date | Iterable[date] | None = None) -> dict[date, str]:
    """:func:`input_fingerprint` for each day of ``befores``, with one scan of the product events for all.
    ``last_active_before`` (days not after the last of ``befores``): that scan also leaves LAST_ACTIVE_DAYS,
    each champion/admin user's last active day before each of them (what champion_inactive reads of the days
    before a nightly window, and of the days before the history for the accounts a nightly rebuilds), so a
    nightly reads the champions' events before its window once (:func:`load_conditions` takes LAST_ACTIVE from
    it)."""
    skipped, days = set(skipped), sorted(set(befores))
    la_days = sorted({last_active_before} if isinstance(last_active_before, date)
                     else set(last_active_before or ()))
    if la_days and la_days[-1] > days[-1]:
        raise ValueError(f"the last active days before {la_days[-1]} are not in the scan before {days[-1]}")
    parts: dict[date, list] = {d: [] for d in days}
    con.execute("set TimeZone = 'UTC'")
    if "champion_inactive" not in skipped:
        rule = rules["types"]["champion_inactive"]
        # per champion/admin user: its events before each day (count, xor of ids), its first event and its last
        # before each last active day. The events are cut at every one of those days into consecutive ranges,
        # each aggregated per user with no filter (the first range, every event before the earliest day, is
        # nearly all of them) and every user's rows kept; a day's figures are then those of the ranges before
        # it, and the champions' users kept: the same rows as filtered aggregates over the champions' events,
        # without a filter per aggregate over every event nor a probe of each event's user (on the large
        # company 59 M events of 282,042 users, 191,035 of them champions': BENCHMARKS.md "Alerts' nightly
        # on the large warehouse", "Alerts' nightly: the events cut at the fingerprint days")
        cuts = sorted(set(days) | set(la_days))
        ranges = " union all ".join(
            f"select {k} as r, user_id, min(occurred_at) as mi, max(occurred_at) as ma, count(*) as n, "
            f"bit_xor(hash(message_id)) as x from staging.stg_product__events where "
            + (f"occurred_at >= cast($c{k - 1} as date) and " if k else "")
            + f"occurred_at < cast($c{k} as date) group by user_id" for k in range(len(cuts)))
        per_day = ", ".join(f"cast(coalesce(sum(n) filter (where r <= {cuts.index(d)}), 0) as bigint) as n{i}, "
                            f"bit_xor(x) filter (where r <= {cuts.index(d)}) as x{i}" for i, d in enumerate(days))
        last_active = "".join(f", cast(max(ma) filter (where r <= {cuts.index(d)}) as date) as la{j}"
                              for j, d in enumerate(la_days))
        totals = ", ".join(
            f"(select coalesce(sum(n{i}), 0) from ev), (select coalesce(bit_xor(x{i}), 0) from ev), "
            f"(select count(*) from role where $never or product_user_id in (select user_id from ev "
            f"where first_at < cast($d{i} as date))), "
            f"(select coalesce(bit_xor(hash(contact_id, account_id, role, product_user_id, first_name, last_name, "
            f"created_at)), 0) from role where $never or product_user_id in (select user_id from ev "
            f"where first_at < cast($d{i} as date)))" for i in range(len(days)))
        roles, at = [str(r) for r in rule["roles"]], {f"d{i}": d for i, d in enumerate(days)}
        con.execute(f"""
            create or replace temp table {CHAMPION_EVENTS} as
            select * from (
                select user_id, min(mi) as first_at{last_active}, {per_day}
                from ({ranges}) as r
                group by user_id
            ) as u
            where user_id in (select product_user_id from ({ROLE_CONTACTS_SQL}) as c)
        """, {"roles": roles, **{f"c{k}": c for k, c in enumerate(cuts)}})
        try:
            never = bool(rule.get("include_never_active", False))
            row = con.execute(f"with role as ({ROLE_CONTACTS_SQL}), ev as (select * from {CHAMPION_EVENTS}) "
                              f"select {totals}", {"roles": roles, "never": never, **at}).fetchall()[0]
            if la_days:
                con.execute(f"create or replace temp table {LAST_ACTIVE_DAYS} as "
                            + " union all ".join(f"select cast($b{j} as date) as before, user_id, la{j} as day "
                                                 f"from {CHAMPION_EVENTS}" for j in range(len(la_days))),
                            {f"b{j}": d for j, d in enumerate(la_days)})
        finally:
            con.execute(f"drop table if exists {CHAMPION_EVENTS}")
        for i, d in enumerate(days):
            parts[d].append(tuple(row[4 * i: 4 * i + 4]))
    for d in days:
        if "low_nps_high_value" not in skipped:
            parts[d].append(con.execute(
                "select count(*), coalesce(bit_xor(hash(response_id, crm_account_id, score, respondent_email, "
                "comment, responded_at)), 0) from staging.stg_nps__survey_responses "
                "where responded_at < cast($before as date)", {"before": d}).fetchall()[0])
        if "expansion_opportunity" not in skipped:
            parts[d].append(con.execute("select count(*), coalesce(bit_xor(hash(t)), 0) "
                                        "from kpis.health_product_config as t").fetchall()[0])
    return {d: hashlib.sha256(repr(p).encode()).hexdigest()[:16] for d, p in parts.items()}


def _spec(rules: dict, skipped: Iterable[str], known: dict | None = None) -> incremental.Incremental:
    """The alerts' build as the control table knows it; ``known``: fingerprints already computed this run."""
    skipped, known = frozenset(skipped), known if known is not None else {}

    def fingerprint(con, before: date) -> str:
        if before not in known:
            known.update(input_fingerprints(con, rules, skipped, [before]))
        return known[before]
    return incremental.Incremental(MODEL, build_version(rules, skipped), lookback_days=_lookback(),
                                   upstream=UPSTREAM, fingerprint=fingerprint)


def plan(con, rules: dict, as_of: date, skipped: Iterable[str] = (), full_refresh: bool = False,
         known: dict | None = None) -> AlertPlan:
    """What the next build recomputes: the days from the earliest day any input can have changed, with each
    key's state carried from the last build's checkpoint, or everything (the reason says why). ``known``
    receives the fingerprints it computes (with this build's own, from the same scan of the events)."""
    first_day = con.execute("select min(day) from kpis.account_indicators_daily").fetchall()[0][0]
    known = known if known is not None else {}
    spec = _spec(rules, skipped, known)

    def full(reason: str) -> AlertPlan:
        return AlertPlan("full", None, first_day, None, reason)

    if full_refresh:
        return full("full_refresh requested")
    prev = incremental.current(con, MODEL)
    missing = [t for t in (STATE_TABLE, TAIL_TABLE, CHECKPOINT_TABLE, "alerts.alert_candidates", "alerts.alert_log")
               if not incremental.table_exists(con, t)]
    if prev is None or missing:
        return full("the alerts were not built yet" if prev is None else f"{', '.join(missing)} missing")
    if prev["sql_version"] != spec.sql_version:
        return full("the rules, a condition's SQL or the types evaluated changed")
    ck = con.execute(f"select build_seq, checkpoint_day, as_of, held_types from {CHECKPOINT_TABLE}").fetchall()
    if len(ck) != 1 or ck[0][0] != prev["build_seq"]:
        return full("the walk state does not belong to the last build")
    _, checkpoint, prev_as_of, held = ck[0]
    if held:
        return full(f"the last build held back the events of {held}: they may be older than the window")
    if prev_as_of is None or as_of < prev_as_of:
        return full(f"the as-of day {as_of} is before the last build's ({prev_as_of})")
    if prev["history_start"] is not None and first_day < prev["history_start"]:
        return full(f"the history now starts on {first_day}, before the last build's first day")
    starts, all_since, listing = [], [], []
    for table in UPSTREAM:
        done = incremental.builds(con, table)
        if not done:
            return full(f"{table} has no build record: its changes cannot be bounded")
        since = [b for b in done if b["build_seq"] > prev["build_seq"]]
        if any(b["mode"] != "incremental" or b["start_day"] is None for b in since):
            return full(f"{table} fully rebuilt since the last build")
        starts += [b["start_day"] for b in since]
        all_since += since
        if any(b.get("accounts_rebuilt") for b in since):
            listing.append(table)
    # an incremental health build that rebuilt some accounts on every day (their older inputs changed) changed
    # those accounts' older days: their keys are recomputed and walked over every kept day, the others over the
    # window; full when they are many (incremental.MAX_REBUILT_SHARE of the accounts)
    accounts = tuple(incremental.rebuilt_accounts(con, all_since))
    listed = ""
    if accounts:
        too_many, listed = incremental.rebuilt_share(con, accounts, f"by {', '.join(listing)}", "marts.accounts")
        if too_many:
            return full(too_many)
    fp_day = prev["fingerprint_day"]
    if fp_day is None:
        return full("the last build recorded no fingerprint of its inputs")
    start = min([fp_day, *starts])
    if start <= checkpoint:
        return full(f"the window would start on {start}, not after the last checkpoint {checkpoint}")
    # the last build's fingerprint day and this build's, in one scan of the events, which also leaves each
    # champion's last active day before the window for champion_inactive (LAST_ACTIVE_DAYS) and, with accounts
    # to rebuild, before the history's first day (what champion_inactive reads of their days before the window)
    known.update(input_fingerprints(con, rules, skipped, [fp_day, as_of - timedelta(days=spec.lookback() - 1)],
                                    last_active_before=[start, *([first_day] if accounts else [])]))
    if spec.fingerprint(con, fp_day) != prev["fingerprint"]:
        return full(f"inputs dated before {fp_day} changed since the last build (late or restated events or NPS "
                    "responses, a champion/admin contact changed, the product configuration)")
    return AlertPlan("incremental", start, prev["history_start"], checkpoint,
                     f"conditions from {start} (lookback {spec.lookback()} days, {len(starts)} upstream build(s) "
                     f"since); each key's state carried from {checkpoint}; "
                     + (f"{listed}: their keys walked over every kept day; other " if accounts else "")
                     + "older inputs unchanged", accounts, last_active="champion_inactive" not in skipped)


def _prepare(con, build: AlertPlan) -> None:
    """STATE_IN (the carried state, but the LISTED accounts' keys: they are walked from their first day; empty
    for a full build) and the QUOTABLE view."""
    if build.mode == "incremental":
        con.execute(f"create or replace temp table {STATE_IN} as select alert_type, account_id, first_seen, "
                    f"last_seen, last_raised, severity, reason from {STATE_TABLE} "
                    f"s where not exists (select 1 from {LISTED} l where l.account_id = s.account_id)")
    else:
        con.execute(f"create or replace temp table {STATE_IN} (alert_type varchar, account_id varchar, "
                    "first_seen date, last_seen date, last_raised date, severity varchar, reason varchar)")
    con.execute(f"create or replace temp view {QUOTABLE} as "
                f"select alert_type, account_id, day, severity, reason from {CONDITIONS} "
                f"union all select alert_type, account_id, last_seen, severity, reason from {STATE_IN}")


def compute(con, rules: dict, as_of: date, holds: dict[str, str], skipped: Iterable[str] = (),
            sql_engine=None, build: AlertPlan | None = None, checkpoint: date | None = None
            ) -> tuple[pd.DataFrame, int]:
    """Conditions, episodes and events into DuckDB's temp tables; returns the candidates and the event count.
    ``build`` (default: a full build): an incremental one recomputes the conditions from its start day, takes
    the days between the carried state's day and it from TAIL_TABLE, and starts each key from STATE_TABLE;
    the keys of its ``accounts`` (LISTED) are recomputed on the days before its start day too (from the first
    kept day, as a full build does) and walked from no state. ``checkpoint``: the state at that day is left in
    SNAPSHOT."""
    build = build or AlertPlan("full", None, None, None, "")
    first = build.start_day if build.mode == "incremental" else None
    con.execute(f"create or replace temp table {LISTED} as select unnest(cast(? as varchar[])) as account_id",
                [list(build.accounts)])
    load_conditions(con, rules, as_of, first, skipped=set(skipped), sql_engine=sql_engine,
                    last_active_ready=build.mode == "incremental" and build.last_active)
    if build.mode == "incremental":
        if build.accounts:  # the days before the window of the listed accounts: a condition reads no later day
            load_conditions(con, rules, build.start_day - timedelta(days=1), None, skipped=set(skipped),
                            sql_engine=sql_engine, accounts=build.accounts, last_active_ready=build.last_active)
        con.execute(f"insert into {CONDITIONS} select alert_type, account_id, day, severity, reason "
                    f"from {TAIL_TABLE} t where day > ? and day < ? and not exists "
                    f"(select 1 from {LISTED} l where l.account_id = t.account_id)",
                    [build.carried_from, build.start_day])
    _prepare(con, build)
    latest = walk(con, rules, as_of, build.carried_from, checkpoint)
    events = con.execute(f"select count(*) from {EVENTS}").fetchall()[0][0]
    return candidates(con, latest, rules, as_of, holds), int(events)


def save_state(con, checkpoint: date, as_of: date, held: Iterable[str], seq: int, recent: int = 7) -> dict:
    """The state at the checkpoint (keys whose alert can still matter: open at it, raised within their
    cooldown, or resolved within ``recent`` days of it, the candidates' recent_resolved_days) and the
    condition rows after it, for the next night. Inside the caller's transaction."""
    con.execute(f"""create or replace table {STATE_TABLE} as
        select alert_type, account_id, first_seen, last_seen, last_raised, severity, reason from {SNAPSHOT}
        where not (last_seen < cast($ck as date)
            and date_diff('day', last_raised, cast($ck as date)) + 1 >= cooldown
            and date_diff('day', last_seen, cast($ck as date)) > $recent)
        order by alert_type, account_id""", {"ck": checkpoint, "recent": recent})
    con.execute(f"create or replace table {TAIL_TABLE} as select alert_type, account_id, day, severity, reason "
                f"from {CONDITIONS} where day > ? order by alert_type, account_id, day", [checkpoint])
    con.execute(f"create or replace table {CHECKPOINT_TABLE} (build_seq bigint, checkpoint_day date, as_of date, "
                "held_types varchar)")
    con.execute(f"insert into {CHECKPOINT_TABLE} values (?, ?, ?, ?)",
                [seq, checkpoint, as_of, ", ".join(sorted(held)) or None])
    return {"state_keys": con.execute(f"select count(*) from {STATE_TABLE}").fetchall()[0][0],
            "tail_rows": con.execute(f"select count(*) from {TAIL_TABLE}").fetchall()[0][0]}


def drop_temp_tables(con) -> None:
    con.execute(f"drop view if exists {QUOTABLE}")
    for t in (EVENTS, EPISODES, KEYS, CONDITIONS, STATE_IN, SNAPSHOT, LISTED, LAST_ACTIVE, LAST_ACTIVE_DAYS):
        con.execute(f"drop table if exists {t}")


def run_engine(con, rules: dict, holds: dict[str, str], run_id: str = "manual",
               skipped: Iterable[str] = (), sql_engine=None, full_refresh: bool = False) -> dict:
    """Build alerts.alert_candidates and append to alerts.alert_log; returns counts for metadata.
    ``skipped``: alert types not evaluated at all (their source system is turned off). ``sql_engine``: where
    the condition SQL runs (:func:`load_conditions`); the episodes, the candidates and the log are DuckDB, with
    the walk over the episodes in Python (:func:`walk`). The build is full or, when every input older than a
    bounded window is unchanged, a nightly one over that window (:func:`plan`; ``full_refresh`` forces full);
    either way the walk state at the checkpoint is saved for the next night, with the build's record in
    kpis._build_window."""
    from cs_kpis.defs.health.assets import write_frame

    con.execute("set TimeZone = 'UTC'")
    as_of = as_of_day(con)
    if as_of is None:
        raise ValueError("kpis.account_indicators_daily is empty: nothing to alert on")
    skipped = set(skipped)
    known: dict = {}
    checkpoint = as_of - timedelta(days=tail_days())
    try:
        # inside the try: the plan's scan leaves LAST_ACTIVE, dropped below if the plan fails after it
        build = plan(con, rules, as_of, skipped, full_refresh, known)
        cand, events = compute(con, rules, as_of, holds, skipped, sql_engine, build, checkpoint)
        recomputed, listed_rows = con.execute(
            f"select count(*) filter (where day >= $start), count(*) filter (where day < $start and account_id in "
            f"(select account_id from {LISTED})) from {CONDITIONS}",
            {"start": build.start_day or date(1900, 1, 1)}).fetchall()[0]
        con.execute("create schema if not exists alerts")
        write_frame(con, "alerts.alert_candidates", cand, CANDIDATE_TYPES)
        appended = append_log(con, rules, as_of, set(holds), run_id)
        spec = _spec(rules, skipped, known)
        window = incremental.BuildWindow(build.mode, build.start_day, build.first_day, as_of, spec.sql_version,
                                         build.reason, build.accounts)
        con.execute("begin transaction")
        try:
            incremental.record(con, spec, window)
            seq = incremental.current(con, MODEL)["build_seq"]
            kept = save_state(con, checkpoint, as_of, holds, seq, int(rules.get("recent_resolved_days", 7)))
            con.execute("commit")
        except Exception:
            con.execute("rollback")
            raise
    finally:
        drop_temp_tables(con)
    return {"as_of": as_of, "candidates": cand, "appended": appended, "events": events,
            "build": {"mode": build.mode, "reason": build.reason, "start_day": build.start_day,
                      "first_day": build.first_day, "checkpoint": checkpoint, "conditions_recomputed": int(recomputed),
                      "accounts_rebuilt": len(build.accounts), "conditions_of_rebuilt_accounts": int(listed_rows),
                      **kept}}
