"""The leading-indicator SQL on the hand-built warehouse of fixtures.py, every number worked out by hand.

acc_a's product events (user, day): u1 01-05 (Report Created), u1 02-10, u2 02-20 (Dashboard Shared),
u2 03-01 (twice), u3 03-10. As of 2025-03-15 the 30-day window is 02-14 .. 03-15 and the prior 30 days
01-15 .. 02-13.
"""

import datetime as dt

import pytest

DAY = dt.date(2025, 3, 15)


def row(con, day=DAY, account="acc_a") -> dict:
    cur = con.execute("select * from kpis.account_indicators_daily where account_id = ? and day = ?", [account, day])
    cols = [d[0] for d in cur.description]
    rows = cur.fetchall()
    assert len(rows) == 1
    return dict(zip(cols, rows[0]))


def test_one_row_per_account_day_from_first_subscription_day(warehouse):
    con, _ = warehouse
    got = con.execute("select account_id, count(*), min(day), max(day) from kpis.account_indicators_daily "
                      "group by account_id order by account_id").fetchall()
    # acc_b starts 03-01: no rows before (61 days to 04-30); acc_c keeps its rows after churning
    assert got == [("acc_a", 120, dt.date(2025, 1, 1), dt.date(2025, 4, 30)),
                   ("acc_b", 61, dt.date(2025, 3, 1), dt.date(2025, 4, 30)),
                   ("acc_c", 120, dt.date(2025, 1, 1), dt.date(2025, 4, 30))]
    assert con.execute("select count(*) from (select account_id, day from kpis.account_indicators_daily "
                       "group by all having count(*) > 1) as d").fetchall()[0][0] == 0


def test_active_users_and_stickiness(warehouse):
    con, _ = warehouse
    r = row(con)
    assert r["active_users_30d"] == 2   # u2 (02-20, 03-01) and u3 (03-10); u1's 02-10 is outside
    assert r["active_users_7d"] == 1    # 03-09 .. 03-15: u3
    # daily actives in the window: 02-20 1, 03-01 1 (u2 twice is one user), 03-10 1 -> 3 / 30 / 2
    assert r["stickiness"] == pytest.approx(3 / 30 / 2)
    assert r["seat_utilisation"] == pytest.approx(2 / 4)
    # distinct users, not events: on 03-31 the window 03-02 .. 03-31 holds u3 only
    assert row(con, dt.date(2025, 3, 31))["active_users_30d"] == 1
    # u1's 01-05 stays in the 30-day count through 02-03 and leaves on 02-04
    assert row(con, dt.date(2025, 2, 3))["active_users_30d"] == 1
    assert row(con, dt.date(2025, 2, 4))["active_users_30d"] == 0


def test_usage_trend(warehouse):
    con, _ = warehouse
    r = row(con)
    assert r["events_30d"] == 4          # 02-20, 03-01 x2, 03-10 (the group call is not a tracked event)
    assert r["events_prior_30d"] == 1    # 02-10
    assert r["usage_trend"] == pytest.approx(4 / 1 - 1)
    assert r["events_per_active_user_30d"] == pytest.approx(4 / 2)
    # before 60 days of history the prior window is incomplete: no trend
    assert row(con, dt.date(2025, 2, 27))["usage_trend"] is None


def test_adoption_and_activation(warehouse):
    con, _ = warehouse
    r = row(con)
    assert r["key_features_30d"] == 1 and r["plan_features"] == 5   # Dashboard Shared; growth has 5
    assert r["feature_adoption"] == pytest.approx(1 / 5)
    assert r["onboarding_completion"] == pytest.approx(2 / 4)       # Report Created, Dashboard Shared
    assert r["is_activated"] == 1
    assert r["ttfv_days"] == pytest.approx(4.0)                     # 01-05 10:00 - 01-01 10:00
    before = row(con, dt.date(2025, 1, 4))
    assert before["is_activated"] == 0 and before["ttfv_days"] is None
    assert before["onboarding_completion"] == 0


def test_nps_90_days(warehouse):
    con, _ = warehouse
    # 01-20: one response (10) -> 100; 02-01: 10 and 3 -> 0; 03-15: 10, 3, 8, 9 -> (2 - 1) / 4 = 25
    assert row(con, dt.date(2025, 1, 20))["nps_90d"] == pytest.approx(100.0)
    assert row(con, dt.date(2025, 2, 1))["nps_90d"] == pytest.approx(0.0)
    r = row(con)
    assert r["nps_90d"] == pytest.approx(25.0) and r["nps_responses_90d"] == 4
    # 01-10 + 89 days = 04-09 is the last day the first response counts: 3, 8, 9 -> (1 - 1) / 3 = 0
    assert row(con, dt.date(2025, 4, 9))["nps_90d"] == pytest.approx(25.0)
    assert row(con, dt.date(2025, 4, 10))["nps_90d"] == pytest.approx(0.0)
    assert row(con, dt.date(2025, 1, 4))["nps_90d"] is None  # no response yet: missing, not 0


def test_csat_90_days_excludes_offered(warehouse):
    con, _ = warehouse
    assert row(con, dt.date(2025, 2, 1))["csat_90d"] == pytest.approx(1.0)   # ticket 1 good
    r = row(con)
    assert r["csat_90d"] == pytest.approx(1 / 2)                             # good + bad; offered left out
    assert r["csat_responses_90d"] == 2
    assert row(con, dt.date(2025, 1, 4))["csat_90d"] is None


def test_support_load(warehouse):
    con, _ = warehouse
    r = row(con)
    assert r["tickets_30d"] == 2                       # tickets 2 and 3
    assert r["open_urgent_high"] == 1                  # ticket 2 (urgent, open); ticket 1 solved 01-04
    assert row(con, dt.date(2025, 1, 3))["open_urgent_high"] == 1
    assert row(con, dt.date(2025, 1, 4))["open_urgent_high"] == 0
    assert r["median_first_reply_minutes"] == pytest.approx(60)   # created in 90 days: 30, 60, 90
    assert r["median_resolution_minutes"] == pytest.approx(1020)  # solved in 90 days: 1440, 600
    assert r["first_contact_resolution"] == pytest.approx(1 / 2)  # ticket 3 had two replies


def test_billing_and_sentiment(warehouse):
    con, _ = warehouse
    r = row(con)
    assert r["failed_payments_90d"] == 1
    assert r["max_days_past_due"] == 5          # in_2 created 03-10, unpaid
    # the renewal is the annual term's end 07-01, not the monthly period's 04-01 (17 days away)
    assert r["days_to_renewal"] == (dt.date(2025, 7, 1) - DAY).days == 108
    assert row(con, dt.date(2025, 4, 19))["days_to_renewal"] == 73
    assert row(con, dt.date(2025, 4, 20))["days_to_renewal"] is None  # the annual add-on is set to cancel
    assert r["cancellation_scheduled"] == 1     # requested 03-12
    assert row(con, dt.date(2025, 3, 11))["cancellation_scheduled"] == 0
    assert r["csm_sentiment"] == "Yellow"
    assert row(con, dt.date(2025, 2, 27))["csm_sentiment"] is None  # the CRM state starts 03-01
    assert (r["csm_id"], r["segment"]) == ("005csm_a", "SMB")  # CSM and segment as of the day, likewise
    assert row(con, dt.date(2025, 2, 27))["csm_id"] is None
    assert r["mrr"] == 100 and r["arr"] == 1200 and r["is_active"]
    churned = row(con, dt.date(2025, 3, 1), "acc_c")
    assert churned["mrr"] == 0 and not churned["is_active"] and churned["plan"] is None


def test_engagement_monthly(warehouse):
    con, _ = warehouse
    cur = con.execute("select * from kpis.engagement_monthly order by month")
    cols = [d[0] for d in cur.description]
    months = {r[0]: dict(zip(cols, r)) for r in cur.fetchall()}
    jan, feb, mar = (months[dt.date(2025, m, 1)] for m in (1, 2, 3))
    assert jan["activation_rate"] == pytest.approx(1.0) and jan["median_ttfv_days"] == pytest.approx(4.0)
    assert feb["activation_rate"] == pytest.approx(0.0)      # acc_b created 02-20, never activated
    assert mar["tickets_created"] == 2 and mar["tickets_solved"] == 1
    assert mar["mean_resolution_minutes"] == pytest.approx(600)
    assert mar["csat"] == pytest.approx(0.0)                 # the bad rating of 03-07
    assert mar["nps"] == pytest.approx(50.0)                 # 8 (passive) and 9 (promoter)
    assert feb["nps"] == pytest.approx(-100.0)
