"""The alert engine as it was before the set-based rewrite (commit b50ffd0), kept as the reference.

Every condition of the history in one pandas frame, episodes walked per (alert type, account) group in pandas,
severities and reasons looked up in a dict of every condition, the log appended from a pandas frame. It took
156 s and 8.7 GB on the large company's year (BENCHMARKS.md, session 10), so cs_kpis/defs/alerts/engine.py
now does the same set-based in DuckDB; test_engine_paths.py builds both on the same warehouses and compares
the alert tables row for row. Only tests import this module.
"""

import hashlib
import itertools
from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd

from cs_kpis.defs.alerts.engine import (
    CANDIDATE_TYPES,
    CSM_ON_EVENT_DAY_SQL,
    LOG_DDL,
    NOTIFY_EVENTS,
    OWNER_SQL,
    as_of_day,
    conditions,
)


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
    return df[list(CANDIDATE_TYPES)].sort_values(["alert_type", "account_id"], ignore_index=True)




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
    return con.execute(OWNER_SQL, {"day": as_of}).df()


def run_reference(con, rules: dict, holds: dict[str, str], run_id: str = "manual", skipped=()) -> dict:
    """The old ``run_engine``: alerts.alert_candidates rebuilt, new events appended to alerts.alert_log."""
    from cs_kpis.defs.health.assets import write_frame

    con.execute("set TimeZone = 'UTC'")
    as_of = as_of_day(con)
    cond = conditions(con, rules, as_of, skipped=set(skipped))
    events, alerts = episodes_to_events(cond, rules, as_of)
    log = log_frame(events)
    cand = candidates(con, cond, alerts, log, rules, as_of, holds)
    con.execute("create schema if not exists alerts")
    write_frame(con, "alerts.alert_candidates", cand, CANDIDATE_TYPES)
    appended = append_log(con, log, owners_frame(con, as_of), rules, as_of, set(holds), run_id)
    return {"as_of": as_of, "candidates": cand, "appended": appended, "events": len(log)}
