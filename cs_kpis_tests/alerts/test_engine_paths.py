"""The set-based engine (engine.py) against the pandas engine it replaced (reference_engine.py), row for row.

A seeded random history on the hand-built warehouse (fixtures.py) makes every type fire in runs of random
length and spacing (so raises, silent reopens inside the cooldown, reminders and resolutions all occur) with a
reason that changes from day to day (so an event quoting the wrong day's reason differs). Both engines build
alerts.alert_candidates and alerts.alert_log on copies of the same warehouse, first as of the day before the
last (the previous night), then with the last day added (the nightly), and the tables must be equal, log_seq
included (only logged_at and run_id are stamped by the run). A deliberately broken variant must be caught.
"""

import copy
import datetime as dt
import shutil
from types import SimpleNamespace

import duckdb
import numpy as np
import pandas as pd
import pytest

from cs_kpis.defs.alerts import engine
from cs_kpis_tests.alerts import reference_engine
from cs_kpis_tests.alerts.fixtures import ACCOUNTS, AS_OF, DAYS, Warehouse, set_cells

RULES = engine.load_rules()
DAILY = ("kpis.account_indicators_daily", "kpis.health_scores_daily", "kpis.health_score_changes",
         "kpis.account_activity_daily")


def _runs(rng: np.random.Generator, n: int) -> list[tuple[dt.date, dt.date]]:
    """``n`` random runs of 1-80 days (they may touch or overlap: longer runs, more reminders)."""
    out = []
    for _ in range(n):
        start = int(rng.integers(0, len(DAYS)))
        end = min(len(DAYS) - 1, start + int(rng.integers(0, 80)))
        out.append((DAYS[start], DAYS[end]))
    return out


def random_history(seed: int) -> Warehouse:
    rng = np.random.default_rng(seed)
    wh = Warehouse()
    n_days = len(DAYS)
    for acc in ACCOUNTS:
        for s, e in _runs(rng, 4):  # health_red: score changes daily (the reason quotes it)
            set_cells(wh.scores, acc, str(s), str(e), band="red", delta_30d=-40.0)
        for s, e in _runs(rng, 3):  # usage_drop (7 days running)
            set_cells(wh.indicators, acc, str(s), str(e), events_prior_30d=100, events_30d=40, usage_trend=-0.6)
        for s, e in _runs(rng, 5):  # ticket_spike: cooldown 7, so reminders
            set_cells(wh.indicators, acc, str(s), str(e), open_urgent_high=2)
        for s, e in _runs(rng, 2):  # renewal_risk: critical arm
            set_cells(wh.indicators, acc, str(s), str(e), cancellation_scheduled=1)
        for s, e in _runs(rng, 3):  # expansion_opportunity: full adoption while green
            set_cells(wh.indicators, acc, str(s), str(e), feature_adoption=1.0)
        for s, e in _runs(rng, 2):  # low_nps_high_value needs ARR > 50,000 on the response day
            set_cells(wh.indicators, acc, str(s), str(e), arr=60000.0)
    # day-to-day variation of what the reasons quote
    wh.scores["score"] = np.where(wh.scores["band"] == "red", rng.integers(5, 39, len(wh.scores)), 80).astype(float)
    wh.indicators["open_urgent_high"] = wh.indicators["open_urgent_high"] * rng.integers(1, 4, len(wh.indicators))
    wh.indicators["usage_trend"] = np.where(wh.indicators["usage_trend"] < 0,
                                            -rng.uniform(0.3, 0.9, len(wh.indicators)), 0.0)
    # C enters red on the as-of day only: a raise on the day itself (status new)
    set_cells(wh.scores, "C", str(DAYS[0]), str(AS_OF), band="green", delta_30d=0.0)
    set_cells(wh.scores, "C", str(AS_OF), str(AS_OF), band="red", delta_30d=-40.0)
    # health_drop: 30-day changes of -20 .. -40 points on random days
    picks = rng.random((len(ACCOUNTS), n_days)) < 0.15
    wh.changes = pd.DataFrame(
        [(DAYS[j], acc, 30, -float(rng.integers(20, 41)), f"drop on day {j}", -5.0, 0.0, 0.0, 0.0, 0.0)
         for i, acc in enumerate(ACCOUNTS) for j in range(n_days) if picks[i, j]],
        columns=wh.changes.columns)
    # NPS detractors on random days
    wh.nps = pd.DataFrame(
        [(f"r{acc}{j}", acc, int(rng.integers(0, 7)), f"{acc}@x.com", f"comment {j}", f"{DAYS[j]} 10:00:00+00")
         for acc in ACCOUNTS for j in rng.choice(n_days, 6, replace=False)], columns=wh.nps.columns)
    # a champion per account whose product activity stops and starts (champion_inactive)
    wh.contacts = pd.DataFrame([(f"c{acc}", acc, "Ann", acc, "Champion", f"pu{acc}", "2024-01-01 00:00:00+00")
                                for acc in ACCOUNTS], columns=wh.contacts.columns)
    wh.events = pd.DataFrame(
        [(f"m{acc}{j}", f"pu{acc}", f"{DAYS[j]} 12:00:00+00") for acc in ACCOUNTS
         for j in sorted(rng.choice(n_days, 12, replace=False))], columns=wh.events.columns)
    return wh


def _tables(con) -> dict[str, list[tuple]]:
    cand = con.execute("select * from alerts.alert_candidates order by dedup_key").fetchall()
    log = con.execute("select * exclude (logged_at, run_id) from alerts.alert_log order by log_seq").fetchall()
    return {"alert_candidates": cand, "alert_log": log}


def build_both(tmp_path, wh: Warehouse, rules: dict, holds: tuple[dict, dict] = ({}, {}), run=None
               ) -> tuple[dict, dict]:
    """The alert tables of the reference engine and of ``run`` (engine.run_engine), each on its own copy of
    the warehouse, after the previous night (the last day held back) and the nightly (the day put back), with
    the types ``holds`` holds on each night."""
    run = run or engine.run_engine
    wh.build(tmp_path / "base.duckdb").close()
    out = {}
    for name, build in (("reference", reference_engine.run_reference), ("engine", run)):
        shutil.copy(tmp_path / "base.duckdb", tmp_path / f"{name}.duckdb")
        with duckdb.connect(str(tmp_path / f"{name}.duckdb")) as con:
            for t in DAILY:
                con.execute(f"create table {t}_held as select * from {t} where day = ?", [AS_OF])
                con.execute(f"delete from {t} where day = ?", [AS_OF])
            build(con, rules, holds[0], run_id="previous night")
            previous = _tables(con)
            for t in DAILY:
                con.execute(f"insert into {t} select * from {t}_held")
            build(con, rules, holds[1], run_id="nightly")
            out[name] = {**_tables(con), **{f"previous {k}": v for k, v in previous.items()}}
    return out["reference"], out["engine"]


def test_set_based_engine_equals_the_pandas_engine_row_for_row(tmp_path):
    wh = random_history(seed=18)
    # the previous night holds a type: its events wait and are appended (in log order) the next night
    ref, new = build_both(tmp_path, wh, RULES, ({"ticket_spike": "input broken"}, {"usage_drop": "stale input"}))
    # the history is rich enough to mean something: every kind of event and status, alerts of every type
    assert {r[5] for r in ref["alert_log"]} == {"raised", "reopened", "reminder", "resolved"}
    assert {r[5] for r in ref["alert_candidates"]} == {"new", "open", "resolved", "held"}
    assert {r[4] for r in ref["alert_log"]} == set(engine.ALERT_TYPES)
    assert len(ref["alert_log"]) >= 150 and len(ref["previous alert_log"]) >= 150
    for table in ("previous alert_candidates", "previous alert_log", "alert_candidates", "alert_log"):
        assert new[table] == ref[table], table


def test_a_broken_walk_is_caught(tmp_path, monkeypatch):
    """The comparison can fail: a cooldown one day longer (reminders and raises move) gives other rows."""
    wh = random_history(seed=18)
    real = engine._cooldown_sql
    monkeypatch.setattr(engine, "_cooldown_sql", lambda rules: f"({real(rules)}) + 1")
    ref, new = build_both(tmp_path, wh, RULES)
    assert new["alert_log"] != ref["alert_log"]


def test_another_history_with_short_cooldowns(tmp_path):
    rules = copy.deepcopy(RULES)
    for t in engine.ALERT_TYPES:  # short cooldowns: more reminders and raises than reopens
        rules["types"][t]["cooldown_days"] = 4
    ref, new = build_both(tmp_path, random_history(2), rules)
    assert len(ref["alert_log"]) > 100
    assert new == ref


class _FetchingEngine:
    """A condition engine other than DuckDB (as Spark is): each type's rows come back as a pandas frame."""

    def __init__(self, repeat: int = 1):
        self.calls, self.repeat = 0, repeat

    def settings(self):
        return SimpleNamespace(engine="spark")

    def query(self, con, sql, params):
        self.calls += 1
        df = con.execute(sql, params).df()
        return pd.concat([df] * self.repeat, ignore_index=True)


def test_conditions_fetched_from_another_engine_are_inserted_alike(tmp_path):
    con = random_history(seed=18).build(tmp_path / "wh.duckdb")
    as_of = engine.as_of_day(con)
    n = engine.load_conditions(con, RULES, as_of)
    direct = con.execute(f"select * from {engine.CONDITIONS} order by all").fetchall()
    fetching = _FetchingEngine()
    assert engine.load_conditions(con, RULES, as_of, skipped={"ticket_spike"}, sql_engine=fetching) < n
    assert fetching.calls == len(engine.ALERT_TYPES) - 1
    assert engine.load_conditions(con, RULES, as_of, sql_engine=_FetchingEngine()) == n > 0
    assert con.execute(f"select * from {engine.CONDITIONS} order by all").fetchall() == direct
    # a nightly's rebuilt accounts, appended: on either engine, their rows only
    con.execute(f"delete from {engine.CONDITIONS}")
    engine.load_conditions(con, RULES, as_of, sql_engine=_FetchingEngine(), accounts=["B", "none"])
    engine.load_conditions(con, RULES, as_of, accounts=["C"])
    expected = [r for r in direct if r[1] in ("B", "C")]
    assert {r[1] for r in expected} == {"B", "C"}  # both accounts have conditions: the filter is really tested
    assert con.execute(f"select * from {engine.CONDITIONS} order by all").fetchall() == expected
    # a rule giving two rows for one account and day is an error, not a silently doubled alert
    with pytest.raises(ValueError, match="more than one row for an"):
        engine.load_conditions(con, RULES, as_of, sql_engine=_FetchingEngine(repeat=2))
