"""Each alert type on a hand-built warehouse (fixtures.py), with the expected rows worked out by hand."""

import copy

import pandas as pd
import pytest

from cs_kpis.defs.alerts import engine
from cs_kpis_tests.alerts.fixtures import AS_OF, Warehouse, d, set_cells

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


def test_usage_drop_reason_owner_arr(tmp_path):
    wh = Warehouse()
    # A: 412 -> 272 events: 272/412 - 1 = -0.3398 -> "down 34%", from 03-20 to the as-of day
    set_cells(wh.indicators, "A", "2025-03-20", "2025-03-31", events_prior_30d=412, events_30d=272,
              usage_trend=272 / 412 - 1, arr=60000.0)
    # B: -50% but only 10 events before (< min_prior_events 20): too small to mean anything
    set_cells(wh.indicators, "B", "2025-03-01", "2025-03-31", events_prior_30d=10, events_30d=5, usage_trend=-0.5)
    _, cand, log = run(tmp_path, wh)
    c = only(cand, "usage_drop")
    assert len(c) == 1
    row = c.iloc[0]
    assert row["dedup_key"] == "A:usage_drop" and row["severity"] == "medium"
    assert row["reason"] == "product usage down 34%: 412 → 272 events in 30 days"
    assert (row["owner_id"], row["owner_name"], row["arr"]) == ("u_csm1", "Cara Smith", 60000.0)
    assert (row["first_seen"], row["last_seen"], row["status"]) == (d("2025-03-20"), AS_OF, "open")
    assert events(log, "A:usage_drop") == [("raised", "2025-03-20")]


def test_persisting_condition_is_reminded_after_the_cooldown_only(tmp_path):
    wh = Warehouse()
    set_cells(wh.indicators, "A", "2025-03-10", "2025-03-31", events_prior_30d=100, events_30d=50, usage_trend=-0.5)
    rules = copy.deepcopy(RULES)
    rules["types"]["usage_drop"]["cooldown_days"] = 7
    _, cand, log = run(tmp_path, wh, rules)
    # raised 03-10; still firing after 7 days -> reminders 03-17, 03-24, 03-31 (the as-of day: status new)
    assert events(log, "A:usage_drop") == [("raised", "2025-03-10"), ("reminder", "2025-03-17"),
                                           ("reminder", "2025-03-24"), ("reminder", "2025-03-31")]
    row = only(cand, "usage_drop").iloc[0]
    assert (row["status"], row["first_seen"], row["last_raised"]) == ("new", d("2025-03-10"), AS_OF)


def test_health_red_cooldown_reopen_resolution_and_new(tmp_path):
    wh = Warehouse()
    # A: red 03-10..03-15, resolved 03-16; 16 days before the as-of day (> recent_resolved_days 7): log only
    set_cells(wh.scores, "A", "2025-03-10", "2025-03-15", band="red", score=30.0, delta_30d=-50.0)
    # B: enters red on the as-of day: new
    set_cells(wh.scores, "B", "2025-03-31", "2025-03-31", band="red", score=35.4, delta_30d=-44.6)
    # C: red 03-01..03-05, back to red 03-20: within the 30-day cooldown of the 03-01 raise, so reopened
    set_cells(wh.scores, "C", "2025-03-01", "2025-03-05", band="red", score=20.0, delta_30d=-60.0)
    set_cells(wh.scores, "C", "2025-03-20", "2025-03-31", band="red", score=25.0, delta_30d=float("nan"))
    _, cand, log = run(tmp_path, wh)
    assert events(log, "A:health_red") == [("raised", "2025-03-10"), ("resolved", "2025-03-16")]
    # ... and still red on 03-31, 30 days after its raise: the cooldown is over, so it is reminded (new)
    assert events(log, "C:health_red") == [("raised", "2025-03-01"), ("resolved", "2025-03-06"),
                                           ("reopened", "2025-03-20"), ("reminder", "2025-03-31")]
    c = only(cand, "health_red").set_index("account_id")
    assert list(c.index) == ["B", "C"]
    assert c.loc["B", "status"] == "new" and c.loc["B", "severity"] == "high"
    assert c.loc["B", "reason"] == "health 35 is red (was 80 30 days ago); components present: usage,support"
    assert (c.loc["C", "status"], c.loc["C", "first_seen"]) == ("new", d("2025-03-01"))
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
    # Cy Fox (B) was inactive 03-15..03-29 (15 days): 03-28 and 03-29 fired (>= 14 days since 03-14),
    # then resolved on 03-30 when the user was active again: within 7 days, so a resolved candidate
    assert events(log, "B:champion_inactive")[-2:] == [("raised", "2025-03-28"), ("resolved", "2025-03-30")]


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
    wh = Warehouse()
    set_cells(wh.indicators, "A", "2025-03-31", "2025-03-31", days_to_renewal=60)
    set_cells(wh.scores, "A", "2025-03-31", "2025-03-31", band="yellow", score=55.0)
    set_cells(wh.indicators, "B", "2025-03-30", "2025-03-31", cancellation_scheduled=1)
    set_cells(wh.indicators, "C", "2025-03-31", "2025-03-31", days_to_renewal=60)  # green: fine
    _, cand, _ = run(tmp_path, wh)
    c = only(cand, "renewal_risk").set_index("account_id")
    assert list(c.index) == ["A", "B"]
    assert (c.loc["A", "severity"], c.loc["A", "reason"]) == ("high", "renewal in 60 days with health 55 (yellow)")
    assert (c.loc["B", "severity"], c.loc["B", "reason"]) == ("critical", "cancellation scheduled")


def test_expansion_opportunity(tmp_path):
    wh = Warehouse()
    set_cells(wh.indicators, "A", "2025-03-31", "2025-03-31", seat_utilisation=0.95, active_users_30d=19, seats=20)
    set_cells(wh.indicators, "B", "2025-03-31", "2025-03-31", seat_utilisation=1.0, plan="enterprise")  # top plan
    set_cells(wh.indicators, "C", "2025-03-31", "2025-03-31", feature_adoption=0.85, is_trial=True)   # trial
    _, cand, _ = run(tmp_path, wh)
    c = only(cand, "expansion_opportunity")
    assert c["account_id"].tolist() == ["A"]
    assert c.iloc[0]["reason"] == "seat utilisation 95% (19 of 20 seats active in 30 days) on plan growth"
    assert c.iloc[0]["severity"] == "info"


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
