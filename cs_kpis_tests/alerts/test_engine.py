"""Each alert type on a hand-built warehouse (fixtures.py), with the expected rows worked out by hand."""

import copy
import datetime as dt
import hashlib
import json

import pandas as pd
import pytest

from cs_kpis.defs.alerts import engine
from cs_kpis.lib.sql import table_metadata
from cs_kpis_tests.alerts.fixtures import AS_OF, FIRST, Warehouse, d, set_cells

RULES = engine.load_rules()


def run(tmp_path, wh: Warehouse, rules=None, holds=None):
    con = wh.build(tmp_path / "wh.duckdb")
    out = engine.run_engine(con, rules or RULES, holds or {}, run_id="test")
    log = con.execute("select * from alerts.alert_log order by log_seq").df()
    return con, out["candidates"], log


def only(cand: pd.DataFrame, alert_type: str) -> pd.DataFrame:
    return cand[cand["alert_type"] == alert_type].reset_index(drop=True)


def events(log: pd.DataFrame, key: str) -> list[tuple[str, str]]:
    rows = log[log["dedup_key"] == key]
    return [(e, str(pd.Timestamp(day).date())) for e, day in zip(rows["event"], rows["event_day"], strict=True)]


def test_nothing_fires_on_the_quiet_baseline(tmp_path):
    _, cand, log = run(tmp_path, Warehouse())
    assert cand.empty and log.empty


def candidate_schema(con) -> list[tuple[str, str]]:
    """alerts.alert_candidates' (column, type) as Dagster's column schema shows them."""
    meta = table_metadata(con, "alerts", "alert_candidates")["dagster/column_schema"]
    return [(c.name, c.type) for c in meta.columns]


CANDIDATE_SCHEMA = [("dedup_key", "VARCHAR"), ("account_id", "VARCHAR"), ("account_name", "VARCHAR"),
                    ("alert_type", "VARCHAR"), ("severity", "VARCHAR"), ("status", "VARCHAR"),
                    ("hold_reason", "VARCHAR"), ("owner_id", "VARCHAR"), ("owner_name", "VARCHAR"),
                    ("owner_email", "VARCHAR"), ("arr", "DOUBLE"), ("reason", "VARCHAR"), ("first_seen", "DATE"),
                    ("last_seen", "DATE"), ("last_raised", "DATE"), ("as_of_day", "DATE")]
"""alerts.alert_candidates' columns and types when alerts exist (test_usage_drop_reason_owner_arr checks it)"""


def test_candidates_keep_their_column_types_when_no_alert_fires(tmp_path):
    """A fresh warehouse where no rule fires: alerts.alert_candidates is empty but typed as when alerts exist
    (no NULL-typed column), and Dagster's column schema says so."""
    con, cand, _ = run(tmp_path, Warehouse())
    assert cand.empty
    assert candidate_schema(con) == CANDIDATE_SCHEMA


def test_usage_drop_reason_owner_arr(tmp_path):
    wh = Warehouse()
    # A: 412 -> 272 events: 272/412 - 1 = -0.3398 -> "down 34%", from 03-20 to the as-of day; it must hold
    # on each of the last min_days 7 days, so the first firing day is 03-26 (03-20 .. 03-26)
    set_cells(wh.indicators, "A", "2025-03-20", "2025-03-31", events_prior_30d=412, events_30d=272,
              usage_trend=272 / 412 - 1, arr=60000.0)
    # B: -50% but only 10 events before (< min_prior_events 20): too small to mean anything
    set_cells(wh.indicators, "B", "2025-03-01", "2025-03-31", events_prior_30d=10, events_30d=5, usage_trend=-0.5)
    # C: -50% for 6 days only (03-01 .. 03-06), then back to flat: a flicker, not a sustained drop
    set_cells(wh.indicators, "C", "2025-03-01", "2025-03-06", events_prior_30d=100, events_30d=50, usage_trend=-0.5)
    # ... and exactly at the -30% line on 7 days (03-10 .. 03-16): <= -0.30 fires, on the 7th day
    set_cells(wh.indicators, "C", "2025-03-10", "2025-03-16", events_prior_30d=100, events_30d=70, usage_trend=-0.3)
    con, cand, log = run(tmp_path, wh)
    assert candidate_schema(con) == CANDIDATE_SCHEMA
    c = only(cand, "usage_drop")
    assert c["account_id"].tolist() == ["A"]
    row = c.iloc[0]
    assert row["dedup_key"] == "A:usage_drop" and row["severity"] == "medium"
    assert row["reason"] == "product usage down 34%: 412 → 272 events in 30 days"
    assert (row["owner_id"], row["owner_name"], row["arr"]) == ("u_csm1", "Cara Smith", 60000.0)
    assert (row["first_seen"], row["last_seen"], row["status"]) == (d("2025-03-26"), AS_OF, "open")
    assert events(log, "A:usage_drop") == [("raised", "2025-03-26")]
    # C fired on 03-16 only and resolved on 03-17, more than recent_resolved_days (7) ago: in the log only
    assert events(log, "C:usage_drop") == [("raised", "2025-03-16"), ("resolved", "2025-03-17")]


def test_persisting_condition_is_reminded_after_the_cooldown_only(tmp_path):
    wh = Warehouse()
    set_cells(wh.indicators, "A", "2025-03-11", "2025-03-31", events_prior_30d=100, events_30d=50, usage_trend=-0.5)
    rules = copy.deepcopy(RULES)
    rules["types"]["usage_drop"]["cooldown_days"] = 7
    _, cand, log = run(tmp_path, wh, rules)
    # first fires 03-17 (7 days 03-11 .. 03-17); still firing after 7 days -> reminders 03-24 and 03-31 (the
    # as-of day: status new)
    assert events(log, "A:usage_drop") == [("raised", "2025-03-17"), ("reminder", "2025-03-24"),
                                           ("reminder", "2025-03-31")]
    row = only(cand, "usage_drop").iloc[0]
    assert (row["status"], row["first_seen"], row["last_raised"]) == ("new", d("2025-03-17"), AS_OF)


def test_health_red_cooldown_reopen_resolution_and_new(tmp_path):
    wh = Warehouse()
    # A: red 03-10..03-15, resolved 03-16; 16 days before the as-of day (> recent_resolved_days 7): log only
    set_cells(wh.scores, "A", "2025-03-10", "2025-03-15", band="red", score=30.0, delta_30d=-50.0)
    # B: enters red on the as-of day: new
    set_cells(wh.scores, "B", "2025-03-31", "2025-03-31", band="red", score=35.4, delta_30d=-44.6)
    # C: red 01-30..02-03, back to red 03-20: within the 60-day cooldown of the 01-30 raise, so reopened
    set_cells(wh.scores, "C", "2025-01-30", "2025-02-03", band="red", score=20.0, delta_30d=-60.0)
    set_cells(wh.scores, "C", "2025-03-20", "2025-03-31", band="red", score=25.0, delta_30d=float("nan"))
    _, cand, log = run(tmp_path, wh)
    assert events(log, "A:health_red") == [("raised", "2025-03-10"), ("resolved", "2025-03-16")]
    # ... and still red on 03-31, 60 days after its raise: the cooldown is over, so it is reminded (new)
    assert RULES["types"]["health_red"]["cooldown_days"] == 60
    assert events(log, "C:health_red") == [("raised", "2025-01-30"), ("resolved", "2025-02-04"),
                                           ("reopened", "2025-03-20"), ("reminder", "2025-03-31")]
    c = only(cand, "health_red").set_index("account_id")
    assert list(c.index) == ["B", "C"]
    assert c.loc["B", "status"] == "new" and c.loc["B", "severity"] == "high"
    assert c.loc["B", "reason"] == "health 35 is red (was 80 30 days ago); components present: usage,support"
    assert (c.loc["C", "status"], c.loc["C", "first_seen"]) == ("new", d("2025-01-30"))
    assert c.loc["C", "reason"] == "health 25 is red; components present: usage,support"
    # only raises and reminders notify, and only recent ones (notify_max_age_days 3): B's raise on 03-31
    assert sorted(log[log["notify"]]["dedup_key"]) == ["B:health_red", "C:health_red"]


def test_recently_resolved_alert_stays_a_candidate(tmp_path):
    wh = Warehouse()
    set_cells(wh.scores, "A", "2025-03-20", "2025-03-27", band="red", score=30.0, delta_30d=-50.0)
    _, cand, log = run(tmp_path, wh)
    row = only(cand, "health_red").iloc[0]
    assert (row["status"], row["last_seen"]) == ("resolved", d("2025-03-27"))
    assert events(log, "A:health_red") == [("raised", "2025-03-20"), ("resolved", "2025-03-28")]


def test_health_drop_uses_the_30_day_change_and_its_reason(tmp_path):
    wh = Warehouse()
    #            usage  adoption  support  sentiment  billing
    zero = [0.0, 0.0, 0.0, 0.0, 0.0]
    wh.changes = pd.DataFrame([
        (d("2025-03-31"), "A", 30, -25.0, "health 80 → 55 (−25 in 30 d): usage −20 (90 → 40)",
         -20.0, 0.0, -5.0, 0.0, 0.0),
        (d("2025-03-31"), "B", 30, -15.0, "health 80 → 65 (−15 in 30 d): support −15", *zero),  # < 20 points
        (d("2025-03-31"), "C", 7, -30.0, "health 80 → 50 (−30 in 7 d): billing −30", *zero),   # 7-day window
    ], columns=wh.changes.columns)
    _, cand, _ = run(tmp_path, wh)
    c = only(cand, "health_drop")
    assert c["account_id"].tolist() == ["A"]
    assert c.iloc[0]["reason"] == "health 80 → 55 (−25 in 30 d): usage −20 (90 → 40)"
    assert c.iloc[0]["status"] == "new"


def test_health_drop_ignores_points_from_a_component_that_just_got_data(tmp_path):
    wh = Warehouse()
    # A: -25 in 30 days, but -22 of it comes from sentiment, which had no data 30 days before (03-01):
    # comparable drop -3 -> no alert. B: -24 of which -6 from sentiment present both times -> alert.
    set_cells(wh.scores, "A", "2025-03-31", "2025-03-31", components_present="usage,support,sentiment")
    set_cells(wh.scores, "B", "2025-03-01", "2025-03-31", components_present="usage,support,sentiment")
    wh.changes = pd.DataFrame([
        (d("2025-03-31"), "A", 30, -25.0, "health 80 → 55: sentiment −22 (n/a → 0)", -3.0, 0.0, 0.0, -22.0, 0.0),
        (d("2025-03-31"), "B", 30, -24.0, "health 80 → 56: usage −18", -18.0, 0.0, 0.0, -6.0, 0.0),
    ], columns=wh.changes.columns)
    _, cand, _ = run(tmp_path, wh)
    assert only(cand, "health_drop")["account_id"].tolist() == ["B"]
    rules = copy.deepcopy(RULES)
    rules["types"]["health_drop"]["ignore_coverage_changes"] = False
    (tmp_path / "plain").mkdir()
    _, cand, _ = run(tmp_path / "plain", wh, rules)
    assert only(cand, "health_drop")["account_id"].tolist() == ["A", "B"]


def test_champion_inactive(tmp_path):
    wh = Warehouse()
    wh.contacts = pd.DataFrame([
        ("c1", "A", "Ann", "Lee", "Champion", "pu1", "2024-01-01 00:00:00+00"),
        ("c2", "A", "Bo", "Ray", "User", "pu2", "2024-01-01 00:00:00+00"),   # not champion/admin
        ("c3", "B", "Cy", "Fox", "Admin", "pu3", "2024-01-01 00:00:00+00"),  # active yesterday
    ], columns=wh.contacts.columns)
    wh.events = pd.DataFrame([
        ("m1", "pu1", "2025-03-10 12:00:00+00"), ("m2", "pu3", "2025-03-30 08:00:00+00"),
        ("m3", "pu3", "2025-03-01 08:00:00+00"), ("m4", "pu3", "2025-03-14 08:00:00+00"),
    ], columns=wh.events.columns)
    _, cand, log = run(tmp_path, wh)
    c = only(cand, "champion_inactive")
    assert c[["account_id", "status"]].values.tolist() == [["A", "open"], ["B", "resolved"]]
    # last activity 03-10: 14 days later, 03-24, it fires; on 03-31 it is 21 days
    assert c.iloc[0]["reason"] == "Champion Ann Lee inactive for 21 days (last activity 2025-03-10)"
    assert c.iloc[0]["first_seen"] == d("2025-03-24")
    # Cy Fox (B) is first seen on 03-01 (before, never active: not considered, include_never_active false);
    # inactive 03-15..03-29 (15 days): 03-28 and 03-29 fired (>= 14 days since 03-14),
    # then resolved on 03-30 when the user was active again: within 7 days, so a resolved candidate
    assert events(log, "B:champion_inactive")[-2:] == [("raised", "2025-03-28"), ("resolved", "2025-03-30")]


def _plan_nodes(con, sql: str, params: dict) -> list[dict]:
    """Every operator of DuckDB's physical plan of ``sql`` (EXPLAIN in JSON)."""
    out, todo = [], json.loads(con.execute(f"explain (format json) {sql}", params).fetchall()[0][1])
    while todo:
        node = todo.pop()
        out.append(node)
        todo.extend(node.get("children", []))
    return out


def test_champion_inactive_filters_the_windows_events_as_it_scans_them(tmp_path):
    """The events from $first_day on are picked by their timestamp against the day (its midnight in the session's
    time zone: the same events as their day against it), a filter DuckDB applies inside its scan of the events,
    not by casting every event's timestamp to a day first (60 M events on the large company: 5-7 CPU s of its
    nightly, BENCHMARKS.md "Alerts' nightly on the large warehouse")."""
    wh = Warehouse()
    wh.contacts = pd.DataFrame([("c1", "A", "Ann", "Lee", "Champion", "pu1", "2024-01-01 00:00:00+00")],
                               columns=wh.contacts.columns)
    # one event before the first day evaluated, one on it: the filter is not true of every event
    wh.events = pd.DataFrame([("m1", "pu1", "2024-11-30 23:59:59+00"), ("m2", "pu1", "2025-03-10 12:00:00+00")],
                             columns=wh.events.columns)
    con = wh.build(tmp_path / "wh.duckdb")
    first = d("2025-03-01")
    rule = RULES["types"]["champion_inactive"]
    engine.load_last_active(con, rule, first)
    sql, params = engine.condition_sql("champion_inactive", rule, first, AS_OF)
    nodes = _plan_nodes(con, sql, params)
    scans = [str(n["extra_info"].get("Filters", "")) for n in nodes
             if str(n.get("extra_info", {}).get("Table", "")).endswith("stg_product__events")]
    # the scan's own filter (not an "optional:" zone-map bound with the exact test left to a FILTER above it)
    assert scans and all(f.startswith("(occurred_at >= ") for f in scans), scans
    casts = [n["extra_info"] for n in nodes if "CAST(occurred_at AS DATE)" in json.dumps(n.get("extra_info", {}))]
    assert not casts, casts


def _active_until(user: str, last: str) -> list[tuple]:
    """Weekly product events from 2024-11-24 (before the first day) and a last one on ``last``."""
    days = [d("2024-11-24") + pd.Timedelta(days=7 * k).to_pytimedelta() for k in range(30)]
    days = [x for x in days if x < d(last)] + [d(last)]
    return [(f"{user}-{x}", user, f"{x} 12:00:00+00") for x in days]


def _champions() -> Warehouse:
    wh = Warehouse()
    wh.contacts = pd.DataFrame([
        ("a1", "A", "Ann", "Lee", "Champion", "pa1", "2024-01-01 00:00:00+00"),   # quiet since 03-10
        ("a2", "A", "Al", "Moe", "Admin", "pa2", "2024-01-01 00:00:00+00"),       # active 03-30
        ("b1", "B", "Bea", "Cole", "Champion", "pb1", "2024-01-01 00:00:00+00"),  # quiet since 03-01
        ("b2", "B", "Ben", "Dale", "Admin", "pb2", "2024-01-01 00:00:00+00"),     # quiet since 03-12
        ("c1", "C", "Cal", "Hill", "Champion", "pc1", "2024-01-01 00:00:00+00"),  # never active
        ("c2", "C", "Cid", "Hart", "Admin", "pc2", "2024-01-01 00:00:00+00"),     # quiet since 03-05
    ], columns=wh.contacts.columns)
    wh.events = pd.DataFrame(
        _active_until("pa1", "2025-03-10") + _active_until("pa2", "2025-03-30") + _active_until("pb1", "2025-03-01")
        + _active_until("pb2", "2025-03-12") + _active_until("pc2", "2025-03-05"), columns=wh.events.columns)
    return wh


def test_champion_inactive_all_any_and_never_active(tmp_path):
    # default (match all): every champion/admin that ever used the product has been quiet >= 14 days.
    # A: Al is active -> nothing. B: Bea >= 14 days from 03-15, Ben from 03-26 -> fires from 03-26.
    # C: Cal never used the product (not considered); Cid >= 14 days from 03-19 -> fires from 03-19.
    assert RULES["types"]["champion_inactive"]["match"] == "all"
    _, cand, log = run(tmp_path, _champions())
    c = only(cand, "champion_inactive").set_index("account_id")
    assert list(c.index) == ["B", "C"]
    assert (c.loc["B", "first_seen"], c.loc["C", "first_seen"]) == (d("2025-03-26"), d("2025-03-19"))
    assert c.loc["B", "reason"] == ("no champion/admin active for 14+ days: Champion Bea Cole inactive for 30 days "
                                    "(last activity 2025-03-01); Admin Ben Dale inactive for 19 days "
                                    "(last activity 2025-03-12)")
    assert c.loc["C", "reason"] == "Admin Cid Hart inactive for 26 days (last activity 2025-03-05)"
    assert events(log, "B:champion_inactive") == [("raised", "2025-03-26")]

    # match any (the literal per-contact reading): A fires too (Ann, from 03-24), B from 03-15 (Bea)
    rules = copy.deepcopy(RULES)
    rules["types"]["champion_inactive"]["match"] = "any"
    (tmp_path / "any").mkdir()
    _, cand, _ = run(tmp_path / "any", _champions(), rules)
    c = only(cand, "champion_inactive").set_index("account_id")
    assert list(c.index) == ["A", "B", "C"]
    assert c.loc["A", "reason"] == "Champion Ann Lee inactive for 21 days (last activity 2025-03-10)"
    assert (c.loc["A", "first_seen"], c.loc["B", "first_seen"]) == (d("2025-03-24"), d("2025-03-15"))

    # include_never_active: Cal counts from his creation (2024-01-01: 455 days on 03-31), so C needs both
    rules = copy.deepcopy(RULES)
    rules["types"]["champion_inactive"]["include_never_active"] = True
    (tmp_path / "never").mkdir()
    _, cand, _ = run(tmp_path / "never", _champions(), rules)
    c = only(cand, "champion_inactive").set_index("account_id")
    assert c.loc["C", "reason"] == ("no champion/admin active for 14+ days: Champion Cal Hill inactive for 455 days "
                                    "(never active); Admin Cid Hart inactive for 26 days (last activity 2025-03-05)")
    assert c.loc["C", "first_seen"] == d("2025-03-19")


def test_ticket_spike_urgent_or_three_times_weekly_average(tmp_path):
    wh = Warehouse()
    set_cells(wh.indicators, "A", "2025-03-31", "2025-03-31", open_urgent_high=2)
    # B: one ticket a week for 12 weeks (01-01 .. 03-19): weekly average 1.0; then 3 tickets on 03-30
    weekly = [("B", d("2025-01-01") + pd.Timedelta(days=7 * k).to_pytimedelta(), 1) for k in range(12)]
    # C: 2 tickets in 7 days with no history: 3 x 0 is exceeded, but fewer than min_tickets_7d 3
    wh.activity = pd.DataFrame(weekly + [("B", d("2025-03-30"), 3), ("C", d("2025-03-31"), 2)],
                               columns=["account_id", "day", "tickets_created"])
    _, cand, _ = run(tmp_path, wh)
    c = only(cand, "ticket_spike").set_index("account_id")
    assert list(c.index) == ["A", "B"]
    assert c.loc["A", "reason"] == "2 open urgent/high tickets"
    assert c.loc["B", "reason"] == "3 tickets in 7 days vs a weekly average of 1.0"
    assert c.loc["B", "first_seen"] == d("2025-03-30")


def test_low_nps_high_value(tmp_path):
    wh = Warehouse()
    for acc in ("A", "C"):
        set_cells(wh.indicators, acc, "2025-03-01", "2025-03-31", arr=60000.0)
    wh.nps = pd.DataFrame([
        ("r1", "A", 4, "pat@a.com", "too slow", "2025-03-25 09:00:00+00"),
        ("r2", "B", 2, "x@b.com", None, "2025-03-25 09:00:00+00"),    # ARR 12,000 <= 50,000
        ("r3", "C", 7, "y@c.com", None, "2025-03-25 09:00:00+00"),    # passive, not <= 6
    ], columns=wh.nps.columns)
    _, cand, _ = run(tmp_path, wh)
    c = only(cand, "low_nps_high_value")
    assert c["account_id"].tolist() == ["A"]
    assert c.iloc[0]["reason"] == 'NPS 4 from pat@a.com on 2025-03-25 (ARR 60000 USD): "too slow"'
    assert (c.iloc[0]["first_seen"], c.iloc[0]["severity"]) == (d("2025-03-25"), "high")


def test_renewal_risk(tmp_path):
    # the renewal is kpis.account_indicators_daily.days_to_renewal (its definition is tested with the
    # indicators: cs_kpis_tests/health/test_indicators_sql.py, test_renewal.py); the rule reads it as it is
    wh = Warehouse()
    # A: its annual term ends 2025-06-01, yellow all March: the renewal is <= 90 days away from 03-03 (90
    # days) on; on 03-31 it is 62 days away
    wh.set_renewal("A", "2025-06-01")
    set_cells(wh.scores, "A", "2025-03-01", "2025-03-31", band="yellow", score=55.0)
    # B: a cancellation is scheduled: critical, whatever the band and the renewal
    set_cells(wh.indicators, "B", "2025-03-30", "2025-03-31", cancellation_scheduled=1)
    # C: red, but month-to-month: no term, no renewal (null), so no renewal_risk
    wh.set_renewal("C", None)
    set_cells(wh.scores, "C", "2025-03-01", "2025-03-31", band="red", score=30.0)
    _, cand, _ = run(tmp_path, wh)
    c = only(cand, "renewal_risk").set_index("account_id")
    assert list(c.index) == ["A", "B"]
    assert (c.loc["A", "severity"], c.loc["A", "reason"]) == ("high",
                                                            "contract renews in 62 days with health 55 (yellow)")
    assert c.loc["A", "first_seen"] == d("2025-03-03")
    assert (c.loc["B", "severity"], c.loc["B", "reason"]) == ("critical", "cancellation scheduled")
    # a green account with its renewal inside 90 days does not fire
    wh2 = Warehouse()
    wh2.set_renewal("A", "2025-06-01")
    (tmp_path / "green").mkdir()
    _, cand, _ = run(tmp_path / "green", wh2)
    assert only(cand, "renewal_risk").empty


def test_expansion_opportunity(tmp_path):
    wh = Warehouse()
    # A: 19 of 20 seats active (95% >= 90%, 20 seats >= min_seats 10) on growth (not the top plan)
    set_cells(wh.indicators, "A", "2025-03-31", "2025-03-31", seat_utilisation=0.95, active_users_30d=19, seats=20)
    # B: flat starter plan (1 seat: "utilisation" 700%) but every starter key feature used: adoption 100%
    set_cells(wh.indicators, "B", "2025-03-31", "2025-03-31", plan="starter", seats=1, active_users_30d=7,
              seat_utilisation=7.0, feature_adoption=1.0)
    # C: flat plan, adoption 80% (< 100%): no lead
    set_cells(wh.indicators, "C", "2025-03-31", "2025-03-31", plan="starter", seats=1, active_users_30d=3,
              seat_utilisation=3.0, feature_adoption=0.8)
    _, cand, _ = run(tmp_path, wh)
    c = only(cand, "expansion_opportunity").set_index("account_id")
    assert list(c.index) == ["A", "B"]
    assert c.loc["A", "reason"] == "seat utilisation 95% (19 of 20 seats active in 30 days) on plan growth"
    assert c.loc["B", "reason"] == "feature adoption 100% of the key features on plan starter"
    assert c.loc["A", "severity"] == "info"

    wh = Warehouse()
    # A: 9 of 9 seats (< min_seats 10); B: adoption 100% on the top plan; C: adoption 100% but health yellow
    set_cells(wh.indicators, "A", "2025-03-31", "2025-03-31", seat_utilisation=1.0, active_users_30d=9, seats=9)
    set_cells(wh.indicators, "B", "2025-03-31", "2025-03-31", feature_adoption=1.0, plan="enterprise")
    set_cells(wh.indicators, "C", "2025-03-31", "2025-03-31", feature_adoption=1.0)
    set_cells(wh.scores, "C", "2025-03-31", "2025-03-31", band="yellow", score=60.0)
    (tmp_path / "none").mkdir()
    _, cand, _ = run(tmp_path / "none", wh)
    assert only(cand, "expansion_opportunity").empty


def test_expansion_opportunity_reads_only_the_listed_accounts_scores(tmp_path):
    """A nightly recomputes the accounts a health table rebuilt on every day over every kept day, their list
    bound as $accounts; the engine's filter on the result reaches the indicators only, so the SQL itself reads
    only their scores (else a year of every account's scores is joined: 3-5 CPU s of the large company's
    nightly, BENCHMARKS.md "Alerts' nightly on the large warehouse")."""
    wh = Warehouse()
    for a in ("A", "B"):
        set_cells(wh.indicators, a, "2025-03-31", "2025-03-31", feature_adoption=1.0)
    con = wh.build(tmp_path / "wh.duckdb")
    rule = RULES["types"]["expansion_opportunity"]

    def rows(accounts):
        sql, params = engine.condition_sql("expansion_opportunity", rule, FIRST, AS_OF, accounts)
        return sorted(r[0] for r in con.execute(f"select account_id from ({sql}) as c", params).fetchall())
    assert rows(None) == ["A", "B"]
    assert rows(["B"]) == ["B"]


def test_rerun_appends_nothing_and_log_is_append_only(tmp_path):
    wh = Warehouse()
    set_cells(wh.scores, "A", "2025-03-30", "2025-03-31", band="red", score=30.0, delta_30d=-50.0)
    con, _, log = run(tmp_path, wh)
    assert len(log) == 1
    out = engine.run_engine(con, RULES, {}, run_id="again")
    assert out["appended"] == 0
    assert con.execute("select count(*) from alerts.alert_log").fetchall()[0][0] == 1


def test_held_type_is_marked_and_not_logged(tmp_path):
    wh = Warehouse()
    set_cells(wh.scores, "A", "2025-03-30", "2025-03-31", band="red", score=30.0, delta_30d=-50.0)
    _, cand, log = run(tmp_path, wh, holds={"health_red": "input broken"})
    row = only(cand, "health_red").iloc[0]
    assert (row["status"], row["hold_reason"]) == ("held", "input broken")
    assert log.empty


def test_rules_file_covers_every_type():
    assert set(RULES["types"]) == set(engine.ALERT_TYPES)
    for rule in RULES["types"].values():
        assert rule["cooldown_days"] >= 1 and rule["inputs"]


@pytest.mark.parametrize("alert_type", engine.ALERT_TYPES)
def test_every_type_has_a_documented_sql_file(alert_type):
    text = (engine.SQL_DIR / f"{alert_type}.sql").read_text()
    assert text.startswith(f"-- {alert_type}:")


def test_csm_routing_follows_the_crm_history(tmp_path):
    """C moved from Cara (u_csm1) to Dev (u_csm2) on 03-01 (marts.account_states, rebuilt from Salesforce's
    field history before the first load): the log names the CSM in charge on each event's day, and the
    candidate (the digest) goes to the CSM in charge on the as-of day."""
    wh = Warehouse()
    wh.account_states = wh.account_states[wh.account_states["account_id"] != "C"]
    wh.account_states.loc[len(wh.account_states)] = ["C", "2020-01-01", "2025-03-01", "u_csm1", False]
    wh.account_states.loc[len(wh.account_states)] = ["C", "2025-03-01", None, "u_csm2", False]
    set_cells(wh.scores, "C", "2025-01-30", "2025-02-03", band="red", score=20.0, delta_30d=-60.0)
    set_cells(wh.scores, "C", "2025-03-20", "2025-03-31", band="red", score=25.0, delta_30d=float("nan"))
    _, cand, log = run(tmp_path, wh)
    rows = log[log["dedup_key"] == "C:health_red"]
    owners = dict(zip(rows["event"], zip(rows["owner_id"], rows["owner_name"], strict=True), strict=True))
    assert owners["raised"] == ("u_csm1", "Cara Smith")  # 01-30: before the change
    assert owners["resolved"] == ("u_csm1", "Cara Smith")  # 02-04
    assert owners["reopened"] == ("u_csm2", "Dev Patel")  # 03-20: after it
    c = only(cand, "health_red").set_index("account_id")
    assert (c.loc["C", "owner_id"], c.loc["C", "owner_name"]) == ("u_csm2", "Dev Patel")


TICKET_SPIKE_EVERY_ACCOUNT = """
with daily as (
    select i.account_id, i.day, i.open_urgent_high, coalesce(a.tickets_created, 0) as created
    from kpis.account_indicators_daily as i
    left join kpis.account_activity_daily as a
        on a.account_id = i.account_id and a.day = i.day
    where i.day between cast(cast($first_day as date) - interval 90 day as date) and cast($as_of as date)
),
windows as (
    select account_id, day, open_urgent_high,
        sum(created) over (partition by account_id order by day
            range between interval 6 day preceding and current row) as tickets_7d,
        coalesce(sum(created) over (partition by account_id order by day
            range between interval 90 day preceding and interval 7 day preceding), 0) / 12.0 as weekly_avg
    from daily
),
firing as (
    select *,
        open_urgent_high >= $min_open_urgent_high as urgent,
        tickets_7d >= $min_tickets_7d and tickets_7d >= $spike_ratio * weekly_avg as spike
    from windows
    where day >= cast($first_day as date)
)
select account_id, day, $severity as severity,
    concat_ws('; ',
        case when urgent then open_urgent_high || ' open urgent/high tickets' end,
        case when spike then tickets_7d || ' tickets in 7 days vs a weekly average of '
            || cast(round(weekly_avg, 1) as varchar) end) as reason
from firing
where urgent or spike
"""
"""ticket_spike.sql as it was before it windowed only the accounts with a ticket in the 7 days up to a day
evaluated: every account's 90 days before the first day windowed. The shipped SQL must give its rows."""


@pytest.mark.parametrize("min_tickets_7d", [3, 0])
def test_ticket_spike_windows_only_accounts_with_recent_tickets_and_gives_every_accounts_rows(tmp_path,
                                                                                             min_tickets_7d):
    wh = Warehouse()
    # A: urgent tickets on two runs, tickets created only in December (no spike can reach a late window)
    set_cells(wh.indicators, "A", "2025-01-10", "2025-01-20", open_urgent_high=2)
    set_cells(wh.indicators, "A", "2025-03-20", "2025-03-31", open_urgent_high=3)
    # B: a ticket a week, then bursts; C: tickets every few days and urgent on some of them
    weekly = [("B", d("2024-12-02") + dt.timedelta(days=7 * k), 1) for k in range(15)]
    bursts = [("B", d(day), n) for day, n in (("2025-02-10", 4), ("2025-03-27", 3), ("2025-03-30", 2))]
    early = [("A", d("2024-12-05"), 5), ("A", d("2024-12-06"), 1)]
    steady = [("C", FIRST + dt.timedelta(days=k), 1 + k % 3) for k in range(0, 121, 4)]
    set_cells(wh.indicators, "C", "2025-02-01", "2025-02-03", open_urgent_high=2)
    # D: exactly min_tickets_7d (3) tickets, on one day, its only ones: a spike; E: two tickets, urgent (windowed
    # or not, the same rows: only accounts with min_tickets_7d tickets from 6 days before the first day are)
    once = [("D", d("2025-03-29"), 3), ("E", d("2025-03-28"), 1), ("E", d("2025-03-30"), 1)]
    a_rows = wh.indicators[wh.indicators["account_id"] == "A"]
    wh.indicators = pd.concat([wh.indicators, a_rows.assign(account_id="D"), a_rows.assign(account_id="E")],
                              ignore_index=True)
    set_cells(wh.indicators, "E", "2025-03-29", "2025-03-31", open_urgent_high=2)
    wh.activity = pd.DataFrame(weekly + bursts + early + steady + once,
                               columns=["account_id", "day", "tickets_created"])
    con = wh.build(tmp_path / "wh.duckdb")
    rule = {**RULES["types"]["ticket_spike"], "min_tickets_7d": min_tickets_7d}
    fired = set()
    for first in (FIRST, d("2025-02-05"), AS_OF - dt.timedelta(days=6), AS_OF):
        sql, params = engine.condition_sql("ticket_spike", rule, first, AS_OF)
        got = sorted(con.execute(sql, params).fetchall())
        assert got == sorted(con.execute(TICKET_SPIKE_EVERY_ACCOUNT, params).fetchall()), first
        fired |= {(r[0], "spike" if "tickets in 7 days" in r[3] else "urgent") for r in got}
    assert {("A", "urgent"), ("B", "spike"), ("C", "spike"), ("C", "urgent"), ("D", "spike")} <= fired
    assert (("E", "urgent") in fired and ("E", "spike") not in fired) if min_tickets_7d else ("E", "spike") in fired


def _fingerprints_by_filtered_aggregates(con, rule: dict, days: list, la_days: list):
    """The champions' part of the input fingerprints and their last active days as the engine computed them
    before its scan cut the events into ranges: one filtered aggregate per day over the champions' events."""
    per_day = ", ".join(f"count(*) filter (where occurred_at < cast('{x}' as date)) as n{i}, "
                        f"bit_xor(hash(message_id)) filter (where occurred_at < cast('{x}' as date)) as x{i}"
                        for i, x in enumerate(days))
    la = "".join(f", cast(max(occurred_at) filter (where occurred_at < cast('{x}' as date)) as date) as la{j}"
                 for j, x in enumerate(la_days))
    roles = [str(r) for r in rule["roles"]]
    con.execute(f"create or replace temp table ref_ev as select user_id, min(occurred_at) as first_at{la}, {per_day} "
                f"from staging.stg_product__events where occurred_at < cast('{max(days)}' as date) and user_id in "
                f"(select product_user_id from ({engine.ROLE_CONTACTS_SQL}) as c) group by user_id", {"roles": roles})
    totals = {x: con.execute(
        f"with role as ({engine.ROLE_CONTACTS_SQL}) select (select coalesce(sum(n{i}), 0) from ref_ev), "
        f"(select coalesce(bit_xor(x{i}), 0) from ref_ev), (select count(*) from role where product_user_id in "
        f"(select user_id from ref_ev where first_at < cast('{x}' as date))), (select coalesce(bit_xor(hash("
        f"contact_id, account_id, role, product_user_id, first_name, last_name, created_at)), 0) from role where "
        f"product_user_id in (select user_id from ref_ev where first_at < cast('{x}' as date)))",
        {"roles": roles}).fetchall()[0] for i, x in enumerate(days)}
    last = {x: sorted(con.execute(f"select user_id, la{j} from ref_ev where la{j} is not null").fetchall())
            for j, x in enumerate(la_days)}
    return totals, last


def test_the_fingerprint_scan_cut_into_ranges_gives_the_filtered_aggregates(tmp_path, monkeypatch):
    """The plan's scan cuts the events at every fingerprint and last active day and aggregates each range
    without filters (BENCHMARKS.md "Alerts' nightly: the events cut at the fingerprint days"): each day's counts
    and hashes, the contacts active before it and each user's last active day before each last active day are
    those of filtered aggregates over every event, events at midnight of a cut day included (on its side), a
    user with events in one range only and one (not a champion's) left out."""
    wh = Warehouse()
    wh.contacts = pd.DataFrame([
        ("c1", "A", "Ann", "Lee", "Champion", "pu1", "2024-01-01 00:00:00+00"),
        ("c2", "B", "Bo", "Ray", "Admin", "pu2", "2024-01-01 00:00:00+00"),
        ("c3", "B", "Cy", "Oz", "Champion", "pu3", "2024-01-01 00:00:00+00"),
        ("c4", "C", "Di", "Um", "User", "pu4", "2024-01-01 00:00:00+00"),
    ], columns=wh.contacts.columns)
    wh.events = pd.DataFrame([
        ("m1", "pu1", "2024-12-01 10:00:00+00"), ("m2", "pu1", "2025-03-20 00:00:00+00"),
        ("m3", "pu1", "2025-03-24 23:59:59.999+00"), ("m4", "pu1", "2025-03-25 00:00:00+00"),
        ("m5", "pu2", "2025-03-21 08:00:00+00"), ("m6", "pu2", "2025-03-19 23:59:59+00"),
        ("m7", "pu3", "2025-03-25 12:00:00+00"), ("m8", "pu4", "2025-01-05 00:00:00+00"),
        ("m9", "pu1", "2025-03-26 00:00:00+00"),
    ], columns=wh.events.columns)
    con = wh.build(tmp_path / "wh.duckdb")
    rule = RULES["types"]["champion_inactive"]
    days, la_days = [d("2025-03-25"), d("2025-03-20")], [d("2025-03-20"), d("2025-03-21")]
    totals, last = _fingerprints_by_filtered_aggregates(con, rule, days, la_days)
    seen, sha256 = [], hashlib.sha256
    monkeypatch.setattr(engine.hashlib, "sha256", lambda b: seen.append(b) or sha256(b))
    engine.input_fingerprints(con, RULES, ["low_nps_high_value", "expansion_opportunity"], days, la_days)
    monkeypatch.undo()
    assert seen == [repr([totals[x]]).encode() for x in sorted(days)]
    assert totals[d("2025-03-25")][0] == 5 and totals[d("2025-03-20")][0] == 2   # m1 m2 m3 m5 m6; m1 m6
    for x in la_days:
        got = con.execute(f"select user_id, day from {engine.LAST_ACTIVE_DAYS} where before = ? and day is not null",
                          [x]).fetchall()
        assert sorted(got) == last[x]
    assert last[d("2025-03-20")] == [("pu1", d("2024-12-01")), ("pu2", d("2025-03-19"))]
    # what champion_inactive reads, for every account or some: as load_last_active leaves it from the events
    for accounts in (None, ["B"]):
        assert engine.copy_last_active(con, rule, d("2025-03-21"), accounts)
        copied = sorted(con.execute(f"select * from {engine.LAST_ACTIVE}").fetchall())
        engine.load_last_active(con, rule, d("2025-03-21"), accounts)
        assert copied == sorted(con.execute(f"select * from {engine.LAST_ACTIVE}").fetchall()) and copied
    assert not engine.copy_last_active(con, rule, d("2025-03-22"))   # a day the scan was not asked for
