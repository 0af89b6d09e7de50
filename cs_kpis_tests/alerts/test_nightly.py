"""The alerts' nightly build (engine.plan, engine.compute with a carried state) against a full build.

The random history of test_engine_paths.py (every type firing in runs of random length, reasons changing
daily) is built twice on copies of one warehouse: the previous night (the last day held back, a full build),
then the nightly with the last day put back and a few days of the window rewritten (as the health tables'
nightly rebuild does). One copy builds the nightly incrementally (its window starts 7 days before the new
day, each key's walk state carried from the checkpoint 31 days before the previous night), the other with
``full_refresh``; both tables must hold the same rows, log_seq included. A change the window cannot cover
must make the nightly full, and a nightly that loses the carried state must be caught.
"""

import datetime as dt
import shutil

import duckdb
import pandas as pd
import pytest

from cs_kpis.defs.alerts import engine
from cs_kpis.lib import incremental
from cs_kpis_tests.alerts.fixtures import AS_OF, FIRST
from cs_kpis_tests.alerts.test_engine_paths import DAILY, RULES, random_history

PREVIOUS = AS_OF - dt.timedelta(days=1)


def record_upstream(con, mode: str, start: dt.date | None, as_of: dt.date, tables=engine.UPSTREAM,
                    accounts: tuple[str, ...] = ()) -> None:
    """What the health layer records in kpis._build_window when it builds its tables (``accounts``: rebuilt
    on every day because their older inputs changed)."""
    for t in tables:
        incremental.record(con, incremental.Incremental(t, "v1"),
                           incremental.BuildWindow(mode, start, None, as_of, "v1", "test", accounts))


def rewrite_window(con) -> None:
    """The health nightly rewrites its last days: account B turns red (A back to green) on days of the window."""
    con.execute("update kpis.health_scores_daily set band = 'red', score = 31, delta_30d = -44 "
                "where account_id = 'B' and day between ? and ?", [AS_OF - dt.timedelta(days=5), AS_OF - dt.timedelta(days=3)])
    con.execute("update kpis.health_scores_daily set band = 'green', score = 80 "
                "where account_id = 'A' and day = ?", [AS_OF - dt.timedelta(days=2)])


def first_night(path, rules=RULES, events=()):
    """``path``: a warehouse after the previous night's (full) alerts build, the last day held back in *_held
    tables; ``events``: product events added to the random history's."""
    wh = random_history(seed=18)
    wh.events = pd.concat([wh.events, pd.DataFrame(list(events), columns=wh.events.columns)], ignore_index=True)
    wh.build(path).close()
    with duckdb.connect(str(path)) as con:
        for t in DAILY:
            con.execute(f"create table {t}_held as select * from {t} where day = ?", [AS_OF])
            con.execute(f"delete from {t} where day = ?", [AS_OF])
        record_upstream(con, "full", None, PREVIOUS)
        out = engine.run_engine(con, rules, {}, run_id="previous night")
        assert out["build"]["mode"] == "full"
    return path


@pytest.fixture(scope="module")
def after_first_night(tmp_path_factory):
    return first_night(tmp_path_factory.mktemp("nightly") / "first.duckdb")


def nightly(path, tmp_path, name: str, change=None, full_refresh=False, rules=RULES, holds=None,
            upstream=("incremental", AS_OF - dt.timedelta(days=6))) -> tuple[dict, dict]:
    """The nightly on a copy of the first night's warehouse: the day put back, the window rewritten, ``change``."""
    target = tmp_path / f"{name}.duckdb"
    shutil.copy(path, target)
    with duckdb.connect(str(target)) as con:
        for t in DAILY:
            con.execute(f"insert into {t} select * from {t}_held")
        rewrite_window(con)
        if upstream is not None:
            record_upstream(con, upstream[0], upstream[1], AS_OF)
        if change is not None:
            change(con)
        out = engine.run_engine(con, rules, holds or {}, run_id="nightly", full_refresh=full_refresh)
        tables = {"alert_candidates": sorted(con.execute("select * from alerts.alert_candidates").fetchall()),
                  "alert_log": sorted(con.execute("select * exclude (logged_at, run_id) from alerts.alert_log"
                                                  ).fetchall()),
                  "state": sorted(con.execute(f"select * from {engine.STATE_TABLE}").fetchall()),
                  "tail": sorted(con.execute(f"select * from {engine.TAIL_TABLE}").fetchall())}
    return out["build"], tables


def test_nightly_equals_a_full_build_across_the_window_boundary(after_first_night, tmp_path):
    inc_build, inc = nightly(after_first_night, tmp_path, "incremental")
    full_build, full = nightly(after_first_night, tmp_path, "full", full_refresh=True)
    assert full_build["mode"] == "full"
    assert inc_build["mode"] == "incremental", inc_build["reason"]
    start, carried = inc_build["start_day"], PREVIOUS - dt.timedelta(days=engine.tail_days())
    assert start == AS_OF - dt.timedelta(days=7) and inc_build["reason"].endswith("older inputs unchanged")
    # the nightly recomputed the window only, the full build every day
    assert 0 < inc_build["conditions_recomputed"] < full_build["conditions_recomputed"] / 5
    for table in ("alert_candidates", "alert_log", "state", "tail"):
        assert inc[table] == full[table], table  # the same rows both ways (duplicates count), log_seq included

    # the case the carried state exists for: alerts whose cooldown or episode spans the carried day and the
    # window, so that events in the window depend on a raise before it
    log = full["alert_log"]  # (log_seq, event_id, dedup_key, account_id, alert_type, event, event_day, ...)
    by_key: dict[str, list] = {}
    for r in sorted(log, key=lambda r: r[0]):
        by_key.setdefault(r[2], []).append((r[6], r[5]))
    cooldown = {t: RULES["types"][t]["cooldown_days"] for t in engine.ALERT_TYPES}
    spanning, continued = 0, 0
    for key, evs in by_key.items():
        raises = [day for day, ev in evs if ev in ("raised", "reminder") and day <= carried]
        later = [ev for day, ev in evs if day > carried and ev in ("reopened", "reminder")]
        if raises and later and (raises[-1] + dt.timedelta(days=cooldown[key.split(":")[1]]) > carried):
            spanning += 1
        if any(ev == "raised" and day <= carried for day, ev in evs) and not any(
                ev in ("raised", "resolved") and carried < day <= carried + dt.timedelta(days=1) for day, ev in evs):
            continued += 1
    assert spanning >= 3 and continued >= 3
    new_in_window = [r for r in log if r[6] >= start]
    assert {r[5] for r in new_in_window} >= {"raised", "resolved"}


def test_a_lost_carried_state_is_caught(after_first_night, tmp_path, monkeypatch):
    """The comparison can fail: a nightly that walks the window without the carried state gives other rows."""
    real = engine._prepare

    def forget(con, build):
        real(con, build)
        con.execute(f"delete from {engine.STATE_IN}")
    monkeypatch.setattr(engine, "_prepare", forget)
    inc_build, inc = nightly(after_first_night, tmp_path, "incremental")
    monkeypatch.undo()
    _, full = nightly(after_first_night, tmp_path, "full", full_refresh=True)
    assert inc_build["mode"] == "incremental"
    assert inc["alert_log"] != full["alert_log"] and inc["alert_candidates"] != full["alert_candidates"]


def _rules_changed():
    rules = {**RULES, "types": {**RULES["types"], "health_red": {**RULES["types"]["health_red"], "cooldown_days": 61}}}
    return {"rules": rules}


def _late(con, table: str, row: str):
    con.execute(f"insert into {table} {row}")


CASES = {
    "rules changed": (_rules_changed(), "the rules, a condition's SQL"),
    "upstream fully rebuilt": ({"upstream": ("full", None)}, "fully rebuilt since the last build"),
    "upstream rebuilt from before the checkpoint": ({"upstream": ("incremental", AS_OF - dt.timedelta(days=45))},
                                                    "not after the last checkpoint"),
    "upstream rebuilt more than 10% of the accounts on every day": ({"change": lambda con: record_upstream(
        con, "incremental", AS_OF - dt.timedelta(days=6), AS_OF, ("kpis.account_activity_daily",), ("B",))},
        "1 account(s) to rebuild on every day (by kpis.account_activity_daily), more than 10% of the 3"),
    "no upstream record": ({"change": lambda con: con.execute(
        "delete from kpis._build_window where model = 'kpis.account_activity_daily'")}, "has no build record"),
    "late NPS response": ({"change": lambda con: _late(
        con, "staging.stg_nps__survey_responses (response_id, crm_account_id, score, respondent_email, comment, "
        "responded_at)", "values ('late', 'A', 2, 'a@x.com', 'late', timestamptz '2025-02-10 10:00:00+00')")},
        "inputs dated before"),
    "late product event": ({"change": lambda con: _late(
        con, "staging.stg_product__events", "values ('late', 'puB', timestamptz '2025-01-15 12:00:00+00')")},
        "inputs dated before"),
    "champion contact changed": ({"change": lambda con: con.execute(
        "update staging.stg_crm__contacts set role = 'Admin' where contact_id = 'cA'")}, "inputs dated before"),
    "held types last night": ({}, "held back the events of ticket_spike"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_change_the_window_cannot_cover_makes_the_nightly_full(after_first_night, tmp_path, case):
    kwargs, reason = CASES[case]
    path = after_first_night
    if case == "held types last night":  # the first night held a type: its events may predate the window
        path = tmp_path / "held.duckdb"
        shutil.copy(after_first_night, path)
        with duckdb.connect(str(path)) as con:
            engine.run_engine(con, RULES, {"ticket_spike": "input broken"}, run_id="held night")
    build, _ = nightly(path, tmp_path, "nightly", **kwargs)
    assert build["mode"] == "full" and reason in build["reason"], build["reason"]


def restate_b(con):
    """The health nightly rebuilt account B on every day (an old ticket's priority, a remap): B's scores and
    tickets change on days before the checkpoint and between it and the window, where B's keys had state."""
    for first, last, band in ((90, 70, "red"), (60, 50, "green"), (22, 16, "red")):
        con.execute("update kpis.health_scores_daily set band = ?, score = 25 + (day - date '2024-12-01') % 9 "
                    "where account_id = 'B' and day between ? and ?",
                    [band, AS_OF - dt.timedelta(days=first), AS_OF - dt.timedelta(days=last)])
    con.execute("update kpis.account_indicators_daily set open_urgent_high = 3 where account_id = 'B' "
                "and day between ? and ?", [AS_OF - dt.timedelta(days=40), AS_OF - dt.timedelta(days=12)])
    record_upstream(con, "incremental", AS_OF - dt.timedelta(days=6), AS_OF,
                    ("kpis.health_scores_daily", "kpis.account_indicators_daily"), ("B",))


def test_accounts_rebuilt_by_health_keep_the_nightly_incremental_and_equal_to_full(after_first_night, tmp_path,
                                                                                   monkeypatch):
    """Health rebuilt B on every day: the nightly recomputes B's keys over every kept day (walked from no
    state) and the window for A and C (carried), and equals a full build, state and tail included. One
    account of three is 33%: the share is raised so that it counts as few."""
    monkeypatch.setattr(incremental, "MAX_REBUILT_SHARE", 0.5)
    build, inc = nightly(after_first_night, tmp_path, "incremental", change=restate_b)
    _, full = nightly(after_first_night, tmp_path, "full", change=restate_b, full_refresh=True)
    assert build["mode"] == "incremental", build["reason"]
    assert build["accounts_rebuilt"] == 1 and "1 account(s) rebuilt on every day" in build["reason"]
    assert build["conditions_of_rebuilt_accounts"] > 0
    for table in ("alert_candidates", "alert_log", "state", "tail"):
        assert inc[table] == full[table], table
    # the restatement reached the log: B's new events dated before the window (the full build's too)
    prev_log = set(duckdb.connect(str(after_first_night), read_only=True).execute(
        "select event_id from alerts.alert_log").fetchall())
    new_old = [r for r in full["alert_log"] if (r[1],) not in prev_log and r[6] < build["start_day"]]
    assert new_old and {r[3] for r in new_old} == {"B"}


def test_a_new_contact_without_older_activity_keeps_the_nightly_incremental(after_first_night, tmp_path):
    """A new champion (of a new account, say) whose product user has no event before the window cannot change
    an older day: the nightly stays incremental and equal to a full build."""
    def new_contact(con):
        con.execute("insert into staging.stg_crm__contacts (contact_id, account_id, first_name, last_name, role, "
                    "product_user_id, created_at) values ('cNew', 'B', 'Neo', 'B', 'Admin', 'puNew', "
                    "timestamptz '2025-03-30 09:00:00+00')")
        con.execute("insert into staging.stg_product__events values ('mNew', 'puNew', "
                    "timestamptz '2025-03-30 12:00:00+00')")
    build, inc = nightly(after_first_night, tmp_path, "incremental", change=new_contact)
    assert build["mode"] == "incremental", build["reason"]
    _, full = nightly(after_first_night, tmp_path, "full", change=new_contact, full_refresh=True)
    assert inc == full


@pytest.mark.parametrize("name", ["ROLE_CONTACTS_SQL", "LAST_ACTIVE_SQL", "LAST_ACTIVE_DAY_SQL"])
def test_an_edit_of_the_engines_champion_sql_changes_the_build_version(name, monkeypatch):
    # champion_inactive.sql reads LAST_ACTIVE, which the engine's SQL fills: editing that SQL must make the
    # next build full, as editing a .sql file does
    before = engine.build_version(RULES, ())
    monkeypatch.setattr(engine, name, getattr(engine, name) + " -- edited")
    assert engine.build_version(RULES, ()) != before


def test_a_plan_failing_after_its_scan_leaves_no_temp_table(monkeypatch):
    # the plan's scan of the events leaves LAST_ACTIVE: a plan failing after it must not leave it on the connection
    con = duckdb.connect()
    con.execute("create schema kpis; create table kpis.account_indicators_daily as select date '2025-03-31' as day")

    def failing_plan(con, *args, **kwargs):
        con.execute(f"create temp table {engine.LAST_ACTIVE} (user_id varchar, day date)")
        raise RuntimeError("the plan failed after its scan")
    monkeypatch.setattr(engine, "plan", failing_plan)
    with pytest.raises(RuntimeError, match="after its scan"):
        engine.run_engine(con, RULES, {})
    assert con.execute("select count(*) from duckdb_tables() where temporary").fetchall() == [(0,)]


def test_alerts_resolved_long_before_the_checkpoint_stay_candidates_when_recent_resolved_days_is_long(tmp_path):
    """With recent_resolved_days longer than the time from the checkpoint to the next as-of day, an alert
    resolved before the checkpoint and past its cooldown is still a candidate: its key must be carried."""
    rules = {**RULES, "recent_resolved_days": 60}
    path = first_night(tmp_path / "first.duckdb", rules)
    inc_build, inc = nightly(path, tmp_path, "incremental", rules=rules)
    _, full = nightly(path, tmp_path, "full", rules=rules, full_refresh=True)
    assert inc_build["mode"] == "incremental", inc_build["reason"]
    carried = PREVIOUS - dt.timedelta(days=engine.tail_days())
    columns = list(engine.CANDIDATE_TYPES)
    status, last_seen = columns.index("status"), columns.index("last_seen")
    old_resolved = [r for r in full["alert_candidates"]
                    if r[status] == "resolved" and r[last_seen] < carried - dt.timedelta(days=7)]
    assert old_resolved, "the history has no alert resolved long before the checkpoint"
    assert inc["alert_candidates"] == full["alert_candidates"]


@pytest.mark.parametrize("listed", [False, True])
def test_the_window_reads_no_product_event_dated_before_it(after_first_night, tmp_path, monkeypatch, listed):
    """The champions' product events before the window are read once per nightly, by the plan's scan for the
    input fingerprint, which also leaves each champion's last active day before the window and, with accounts
    health rebuilt on every day (``listed``: B, whose champion was last active before the history), before the
    history's first day (LAST_ACTIVE_DAYS), which the listed accounts' earlier days read: with those events
    deleted after the plan (before the window; ``listed``: before the history), the nightly still equals a full
    build of the intact events."""
    real, change, path = engine.compute, restate_b if listed else None, after_first_night
    if listed:
        path = first_night(tmp_path / "first.duckdb", events=[("mB-old", "puB", "2024-10-01 12:00:00+00")])
    monkeypatch.setattr(incremental, "MAX_REBUILT_SHARE", 0.5)

    def events_gone(con, rules, as_of, holds, skipped=(), sql_engine=None, build=None, checkpoint=None):
        assert build.mode == "incremental", build.reason
        gone = con.execute("delete from staging.stg_product__events where occurred_at < ?",
                           [FIRST if listed else build.start_day])
        assert gone.fetchall()[0][0] > 0
        return real(con, rules, as_of, holds, skipped, sql_engine, build, checkpoint)
    monkeypatch.setattr(engine, "compute", events_gone)
    build, inc = nightly(path, tmp_path, "incremental", change=change)
    monkeypatch.undo()
    _, full = nightly(path, tmp_path, "full", change=change, full_refresh=True)
    assert build["mode"] == "incremental" and build["accounts_rebuilt"] == listed
    assert any(r[4] == "champion_inactive" and r[6] >= build["start_day"] for r in full["alert_log"])
    for table in ("alert_candidates", "alert_log", "state", "tail"):
        assert inc[table] == full[table], table
