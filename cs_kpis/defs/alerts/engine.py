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
import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import yaml

from cs_kpis import tuning

HERE = Path(__file__).parent
SQL_DIR = HERE / "sql"
RULES_PATH = HERE / "alert_rules.yaml"
ENV_RULES = tuning.SETTINGS["alerts.rules_file"].env
ALERT_TYPES = ("health_drop", "health_red", "usage_drop", "champion_inactive", "ticket_spike",
               "low_nps_high_value", "renewal_risk", "expansion_opportunity")
NOTIFY_EVENTS = ("raised", "reminder")
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
            _check_value(t, key, value, path)
            default = shipped["types"][t].get(key)
            if default is not None and _kind(value) != _kind(default):
                raise ValueError(f"alert rules ({path}): types.{t}.{key} = {value!r}: {_kind(default)} is expected")
    return rules


_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
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


def condition_sql(alert_type: str, rule: dict, first_day: date, as_of: date) -> tuple[str, dict]:
    """The type's SQL and its bound parameters. Rule values never become SQL text: the SQL refers to them as
    DuckDB named parameters (``$min_days``), and only the names the SQL uses are bound."""
    sql = (SQL_DIR / f"{alert_type}.sql").read_text()
    code = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    used = set(_PARAM.findall(code))
    values = {k: v for k, v in rule.items() if k != "inputs"}
    values.update(first_day=first_day.isoformat(), as_of=as_of.isoformat())
    missing = sorted(used - set(values))
    if missing:
        raise ValueError(f"alert rules ({rules_path()}): types.{alert_type} has no {', '.join(missing)}")
    return sql, {k: _check_value(alert_type, k, values[k]) for k in sorted(used)}


def as_of_day(con) -> date | None:
    return con.execute("select max(day) from kpis.account_indicators_daily").fetchall()[0][0]


def conditions(con, rules: dict, as_of: date, first_day: date | None = None,
               skipped: Iterable[str] = (), sql_engine=None) -> pd.DataFrame:
    """Every (alert_type, account_id, day) on which a condition holds, with severity and reason; the
    ``skipped`` types (their source system is off, cs_kpis/lib/systems.py) are not evaluated.

    Each condition runs on ``sql_engine`` (cs_kpis/lib/engine.py: DuckDB by default, or Spark, with the rule
    values bound as parameters on either); without one, on ``con``."""
    first_day = first_day or con.execute("select min(day) from kpis.account_indicators_daily").fetchall()[0][0]
    frames = []
    for t in ALERT_TYPES:
        if t in skipped:
            continue
        sql, params = condition_sql(t, rules["types"][t], first_day, as_of)
        df = sql_engine.query(con, sql, params) if sql_engine is not None else con.execute(sql, params).df()
        df.insert(0, "alert_type", t)
        frames.append(df)
    out = pd.concat(frames, ignore_index=True)
    out["day"] = pd.to_datetime(out["day"]).dt.date
    return out.sort_values(["alert_type", "account_id", "day"], ignore_index=True)


@dataclass
class Alert:
    dedup_key: str
    account_id: str
    alert_type: str
    first_seen: date
    last_seen: date
    last_raised: date


def _event(key, account, alert_type, event, day, severity, reason) -> dict:
    eid = hashlib.sha1(f"{key}|{event}|{day.isoformat()}".encode()).hexdigest()[:16]
    return {"event_id": eid, "dedup_key": key, "account_id": account, "alert_type": alert_type,
            "event": event, "event_day": day, "severity": severity, "reason": reason}


def episodes_to_events(cond: pd.DataFrame, rules: dict, as_of: date) -> tuple[list[dict], list[Alert]]:
    """Walk each dedup key's firing days: log events and the alert each key currently has (latest one)."""
    events, alerts = [], []
    one = timedelta(days=1)
    for (alert_type, account), g in cond.groupby(["alert_type", "account_id"], sort=True):
        cooldown = timedelta(days=max(1, int(rules["types"][alert_type]["cooldown_days"])))
        key = f"{account}:{alert_type}"
        days = list(g["day"])
        sev = dict(zip(days, g["severity"], strict=True))
        why = dict(zip(days, g["reason"], strict=True))
        # episodes: runs of consecutive days
        runs, start = [], days[0]
        for prev, cur in itertools.pairwise(days):
            if cur - prev > one:
                runs.append((start, prev))
                start = cur
        runs.append((start, days[-1]))
        alert = None
        for s, e in runs:
            if alert is None or s - alert.last_raised >= cooldown:
                alert = Alert(key, account, alert_type, s, e, s)
                alerts.append(alert)
                events.append(_event(key, account, alert_type, "raised", s, sev[s], why[s]))
            else:
                alert.last_seen = e
                events.append(_event(key, account, alert_type, "reopened", s, sev[s], why[s]))
            while alert.last_raised + cooldown <= e:  # persisting past the cooldown: remind
                alert.last_raised += cooldown
                t = alert.last_raised
                events.append(_event(key, account, alert_type, "reminder", t, sev[t], why[t]))
            alert.last_seen = e
            if e < as_of:
                events.append(_event(key, account, alert_type, "resolved", e + one, sev[e], why[e]))
    return events, alerts


def log_frame(events: list[dict]) -> pd.DataFrame:
    cols = ["event_id", "dedup_key", "account_id", "alert_type", "event", "event_day", "severity", "reason"]
    order = {"resolved": 0, "raised": 1, "reopened": 2, "reminder": 3}
    df = pd.DataFrame(events, columns=cols)
    if len(df):
        df["_o"] = df["event"].map(order)
        df = df.sort_values(["event_day", "_o", "dedup_key"], ignore_index=True).drop(columns="_o")
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


def candidates(con, cond: pd.DataFrame, alerts: list[Alert], events: pd.DataFrame, rules: dict, as_of: date,
               holds: dict[str, str]) -> pd.DataFrame:
    """One row per dedup key whose latest alert fires on the as-of day or resolved recently."""
    recent = timedelta(days=int(rules.get("recent_resolved_days", 7)))
    new_within = timedelta(days=int(rules.get("new_within_days", 1)))
    # (alert type, account, day) -> (severity, reason): one dict, not a pandas lookup per alert (on the large
    # company's year of conditions the per-alert ``.loc`` on a MultiIndex took minutes)
    found = dict(zip(zip(cond["alert_type"], cond["account_id"], cond["day"]),
                     zip(cond["severity"], cond["reason"]), strict=True))
    if len(found) != len(cond):
        raise ValueError("alert conditions hold more than one row for an (alert type, account, day): "
                         "each rule must give at most one row per account and day")
    latest: dict[str, Alert] = {}
    for a in alerts:
        latest[a.dedup_key] = a
    raises = events[events["event"].isin(NOTIFY_EVENTS)].groupby("dedup_key")["event_day"].max().to_dict() \
        if len(events) else {}
    rows = []
    for a in latest.values():
        if a.last_seen < as_of and as_of - a.last_seen > recent:
            continue
        sev, reason = found[(a.alert_type, a.account_id, a.last_seen)]
        if a.last_seen < as_of:
            status = "resolved"
        elif as_of - raises.get(a.dedup_key, a.first_seen) < new_within:
            status = "new"
        else:
            status = "open"
        hold = holds.get(a.alert_type)
        rows.append({"dedup_key": a.dedup_key, "account_id": a.account_id, "alert_type": a.alert_type,
                     "severity": sev, "status": "held" if hold and status != "resolved" else status,
                     "hold_reason": hold if hold and status != "resolved" else None,
                     "reason": reason, "first_seen": a.first_seen, "last_seen": a.last_seen,
                     "last_raised": a.last_raised, "as_of_day": as_of})
    cols = ["dedup_key", "account_id", "alert_type", "severity", "status", "hold_reason", "reason",
            "first_seen", "last_seen", "last_raised", "as_of_day"]
    df = pd.DataFrame(rows, columns=cols)
    owners = owners_frame(con, as_of)
    df = df.merge(owners, on="account_id", how="left")
    order = ["dedup_key", "account_id", "account_name", "alert_type", "severity", "status", "hold_reason",
             "owner_id", "owner_name", "owner_email", "arr", "reason", "first_seen", "last_seen", "last_raised",
             "as_of_day"]
    return df[order].sort_values(["alert_type", "account_id"], ignore_index=True)


CANDIDATE_CASTS = {"first_seen": "date", "last_seen": "date", "last_raised": "date", "as_of_day": "date",
                   "arr": "double", "hold_reason": "varchar", "owner_name": "varchar", "owner_email": "varchar",
                   "owner_id": "varchar", "account_name": "varchar"}

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


def append_log(con, events: pd.DataFrame, owners: pd.DataFrame, rules: dict, as_of: date,
               held_types: set[str], run_id: str) -> int:
    """Append the events not logged yet (types on hold wait: they are appended once the hold lifts)."""
    con.execute("create schema if not exists alerts")
    con.execute(LOG_DDL)
    ev = events[~events["alert_type"].isin(sorted(held_types))] if len(events) else events
    if not len(ev):
        return 0
    max_age = timedelta(days=int(rules.get("notify_max_age_days", 3)))
    ev = ev.merge(owners[["account_id", "owner_id", "owner_name", "arr"]], on="account_id", how="left")
    # an event of a past day (a first run, a backfill) names the CSM of that day, where the CRM history knows it
    con.register("_alert_event_days", ev[["account_id", "event_day"]])
    try:
        on_day = con.execute(CSM_ON_EVENT_DAY_SQL).df()
    finally:
        con.unregister("_alert_event_days")
    if len(on_day):
        on_day["event_day"] = pd.to_datetime(on_day["event_day"]).dt.date
        ev = ev.merge(on_day, on=["account_id", "event_day"], how="left")
        known = ev["day_owner_id"].notna()
        ev.loc[known, "owner_id"] = ev.loc[known, "day_owner_id"]
        ev.loc[known, "owner_name"] = ev.loc[known, "day_owner_name"]
        ev = ev.drop(columns=["day_owner_id", "day_owner_name"])
    ev["notify"] = ev["event"].isin(NOTIFY_EVENTS) & (ev["event_day"].map(lambda d: as_of - d <= max_age))
    ev["run_id"] = run_id
    ev["_ord"] = range(len(ev))
    con.register("_alert_events", ev)
    try:
        before = con.execute("select count(*) from alerts.alert_log").fetchall()[0][0]
        con.execute("""
            insert into alerts.alert_log
            select coalesce((select max(log_seq) from alerts.alert_log), 0)
                    + row_number() over (order by e._ord),
                e.event_id, e.dedup_key, e.account_id, e.alert_type, e.event, cast(e.event_day as date),
                e.severity, e.reason, e.owner_id, e.owner_name, cast(e.arr as double), e.notify,
                current_timestamp, e.run_id
            from _alert_events as e
            where e.event_id not in (select event_id from alerts.alert_log)
        """)
        after = con.execute("select count(*) from alerts.alert_log").fetchall()[0][0]
    finally:
        con.unregister("_alert_events")
    return int(after - before)


def owners_frame(con, as_of: date) -> pd.DataFrame:
    """Who an account's alerts go to on ``as_of``: its CSM in charge that day, with name, e-mail and ARR."""
    return con.execute(OWNER_SQL, {"day": as_of}).df()


def run_engine(con, rules: dict, holds: dict[str, str], run_id: str = "manual",
               skipped: Iterable[str] = (), sql_engine=None) -> dict:
    """Build alerts.alert_candidates and append to alerts.alert_log; returns counts for metadata.
    ``skipped``: alert types not evaluated at all (their source system is turned off). ``sql_engine``: where
    the condition SQL runs (:func:`conditions`); the episodes, the candidates and the log are Python and DuckDB."""
    from cs_kpis.defs.health.assets import write_frame

    con.execute("set TimeZone = 'UTC'")
    as_of = as_of_day(con)
    if as_of is None:
        raise ValueError("kpis.account_indicators_daily is empty: nothing to alert on")
    cond = conditions(con, rules, as_of, skipped=set(skipped), sql_engine=sql_engine)
    events, alerts = episodes_to_events(cond, rules, as_of)
    log = log_frame(events)
    cand = candidates(con, cond, alerts, log, rules, as_of, holds)
    con.execute("create schema if not exists alerts")
    write_frame(con, "alerts.alert_candidates", cand, CANDIDATE_CASTS)
    appended = append_log(con, log, owners_frame(con, as_of), rules, as_of, set(holds), run_id)
    return {"as_of": as_of, "candidates": cand, "appended": appended, "events": len(log)}
