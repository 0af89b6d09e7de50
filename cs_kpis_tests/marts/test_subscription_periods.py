"""Subscription periods and daily MRR, pinned on hand-computed Stripe histories.

Every expected number below is worked out by hand in the comment beside it. The company's data runs
to 2026-04-30 (the as-of day), so April's month-end is read on the 30th.
"""

import duckdb
import pytest

from .billing_fixtures import Ledger, build_marts, coupon, item, month_end_mrr, ts

AS_OF = "2026-04-30"
MONTHS = ("2026-01", "2026-02", "2026-03", "2026-04")


def scenarios() -> Ledger:
    L = Ledger()
    # annual plan: 1,200.00 a year -> 100.00 a month
    c = L.account("A_annual")
    L.state("sub_annual", c, "2026-01-15", [item(120000, 1, "year")], event_type="customer.subscription.created")
    # quarterly plan: 300.00 a quarter -> 100.00; weekly: 10.00 x 52 / 12 = 43.333 -> 43.33
    c = L.account("A_quarter")
    L.state("sub_quarter", c, "2026-01-02", [item(30000, 1, "month", 3)], event_type="customer.subscription.created")
    c = L.account("A_week")
    L.state("sub_week", c, "2026-01-02", [item(1000, 1, "week")], event_type="customer.subscription.created")
    # trial from Jan 25, converts Feb 8 at 2 seats x 50.00: 0 in January, new business in February
    c = L.account("A_trial")
    L.state("sub_trial", c, "2026-01-25", [item(5000, 2)], status="trialing", event_type="customer.subscription.created")
    L.state("sub_trial", c, "2026-02-08", [item(5000, 2)])
    # a 20% repeating discount on 100.00 until Apr 5: 80.00, then 100.00 (an expansion of 20.00 in April)
    c = L.account("A_discount")
    L.state("sub_disc", c, "2026-01-05", [item(10000)], discount=coupon("repeating", 20.0),
            event_type="customer.subscription.created")
    L.state("sub_disc", c, "2026-04-05", [item(10000)])
    # seats change mid-month: 10 x 25 = 250, Feb 14 -> 14 seats = 350, Mar 20 -> 12 seats = 300
    c = L.account("A_seats")
    L.state("sub_seats", c, "2026-01-01", [item(2500, 10)], event_type="customer.subscription.created")
    L.state("sub_seats", c, "2026-02-14", [item(2500, 14)])
    L.state("sub_seats", c, "2026-03-20", [item(2500, 12)])
    # cancellation at period end: requested Feb 10 (still 49.00), service ends Mar 3: churn in March
    c = L.account("A_cancel_end")
    L.state("sub_cpe", c, "2026-01-03", [item(4900)], event_type="customer.subscription.created")
    L.state("sub_cpe", c, "2026-02-10", [item(4900)], cancel_at_period_end=True)
    L.state("sub_cpe", c, "2026-03-03", [item(4900)], status="canceled", ended="2026-03-03",
            cancel_at_period_end=True, event_type="customer.subscription.deleted")
    # reactivation: 30.00 from Jan 2, cancelled at once Feb 5, back on Apr 10 with a new 40.00 subscription
    c = L.account("A_react")
    L.state("sub_r1", c, "2026-01-02", [item(3000)], event_type="customer.subscription.created")
    L.state("sub_r1", c, "2026-02-05", [item(3000)], status="canceled", ended="2026-02-05",
            event_type="customer.subscription.deleted")
    L.state("sub_r2", c, "2026-04-10", [item(4000)], event_type="customer.subscription.created")
    # delinquency: past due Feb 1, cancelled Mar 10 (37 days > 30): churned from Feb 1
    c = L.account("A_delinquent")
    L.state("sub_del", c, "2026-01-01", [item(10000)], event_type="customer.subscription.created")
    L.state("sub_del", c, "2026-02-01", [item(10000)], status="past_due")
    L.state("sub_del", c, "2026-03-10", [item(10000)], status="canceled", ended="2026-03-10",
            event_type="customer.subscription.deleted")
    # a short past-due spell (9 days) keeps contributing: 50.00 throughout
    c = L.account("A_late_payer")
    L.state("sub_late", c, "2026-01-01", [item(5000)], event_type="customer.subscription.created")
    L.state("sub_late", c, "2026-02-01", [item(5000)], status="past_due")
    L.state("sub_late", c, "2026-02-10", [item(5000)])
    # EUR: 100.00 EUR at 1.10 (Jan 15) = 110.00 USD; the rate moves to 1.20 on Feb 1 but MRR stays put;
    # 2 seats from Mar 10 = 200 EUR at the Mar 10 rate 1.20 = 240.00
    c = L.account("A_eur")
    L.rates.update({("EUR", "2026-01-01"): 1.10, ("EUR", "2026-02-01"): 1.20})
    L.state("sub_eur", c, "2026-01-15", [item(10000)], currency="eur", event_type="customer.subscription.created")
    L.state("sub_eur", c, "2026-03-10", [item(10000, 2)], currency="eur")
    # GBP, a delinquent spell and the payment that ends it are flags, not amounts: they keep the rate.
    # Rates 1.20 (Jan 1), 1.30 (Feb 20), 1.40 (Mar 1). 100.00 GBP from Jan 10 = 120.00 USD; past due Feb 1,
    # paid Mar 5 (32 days > 30): 0 in February, back on Mar 5 at the Jan 10 rate, 120.00 (not 140.00)
    L.rates.update({("GBP", "2026-01-01"): 1.20, ("GBP", "2026-02-20"): 1.30, ("GBP", "2026-03-01"): 1.40})
    c = L.account("A_gbp_back")
    L.state("sub_gbp_back", c, "2026-01-10", [item(10000)], currency="gbp", event_type="customer.subscription.created")
    L.state("sub_gbp_back", c, "2026-02-01", [item(10000)], currency="gbp", status="past_due")
    L.state("sub_gbp_back", c, "2026-03-05", [item(10000)], currency="gbp")
    # the same spell, and 2 seats -> 1 while past due (Feb 20): the amount, 50.00 GBP, was set on Feb 20,
    # so MRR comes back on Mar 5 at the Feb 20 rate: 50.00 x 1.30 = 65.00 (not 70.00 at the Mar 5 rate)
    c = L.account("A_gbp_seats")
    L.state("sub_gbp_seats", c, "2026-01-10", [item(5000, 2)], currency="gbp",
            event_type="customer.subscription.created")
    L.state("sub_gbp_seats", c, "2026-02-01", [item(5000, 2)], currency="gbp", status="past_due")
    L.state("sub_gbp_seats", c, "2026-02-20", [item(5000, 1)], currency="gbp", status="past_due")
    L.state("sub_gbp_seats", c, "2026-03-05", [item(5000, 1)], currency="gbp")
    # CHF, a discount ending during a delinquent spell sets the amount, and so the rate. Rates 1.10 (Jan 1),
    # 1.15 (Feb 20), 1.25 (Mar 1). 100.00 CHF with 25% off until Feb 20, from Jan 10: 75.00 x 1.10 = 82.50
    # (list 100.00 x 1.10 = 110.00); past due Feb 1; the discount ends on Feb 20 with no event (the ledger
    # adds the state), still past due; paid Mar 5 (32 days > 30): delinquent from Feb 1. The amount,
    # 100.00 CHF, was set on Feb 20, so MRR comes back on Mar 5 at 100.00 x 1.15 = 115.00 (not 82.50 or
    # 110.00 at the Jan 10 rate, nor 125.00 at the Mar 5 rate)
    L.rates.update({("CHF", "2026-01-01"): 1.10, ("CHF", "2026-02-20"): 1.15, ("CHF", "2026-03-01"): 1.25})
    c = L.account("A_chf_disc_late")
    chf25 = coupon("repeating", 25.0, end="2026-02-20")
    L.state("sub_chf", c, "2026-01-10", [item(10000)], currency="chf", discount=chf25,
            event_type="customer.subscription.created")
    L.state("sub_chf", c, "2026-02-01", [item(10000)], currency="chf", discount=chf25, status="past_due")
    L.state("sub_chf", c, "2026-03-05", [item(10000)], currency="chf")
    # AUD, the same story with a rate move too small to show in the cents: rates 0.6500 (Jan 1), 0.6502
    # (Feb 20), 0.6600 (Mar 1). 20.00 AUD with 50% off until Feb 20, from Jan 10: 10.00 x 0.65 = 6.50 (list
    # 20.00 x 0.65 = 13.00); past due Feb 1, the discount ends Feb 20, paid Mar 5: MRR 0 from Feb 1, and the
    # list at the Feb 20 rate is 20.00 x 0.6502 = 13.004 -> 13.00, the same cents as before. MRR comes back
    # on Mar 5 at the Feb 20 rate: 13.004 -> 13.00 (13.20 at the Mar 5 rate)
    L.rates.update({("AUD", "2026-01-01"): 0.65, ("AUD", "2026-02-20"): 0.6502, ("AUD", "2026-03-01"): 0.66})
    c = L.account("A_aud_hair")
    aud50 = coupon("repeating", 50.0, end="2026-02-20")
    L.state("sub_aud", c, "2026-01-10", [item(2000)], currency="aud", discount=aud50,
            event_type="customer.subscription.created")
    L.state("sub_aud", c, "2026-02-01", [item(2000)], currency="aud", discount=aud50, status="past_due")
    L.state("sub_aud", c, "2026-03-05", [item(2000)], currency="aud")
    # CAD, a trial converting sets the amount at that day's rate: rates 0.70 (Jan 1), 0.75 (Feb 1), 0.80
    # (Mar 1). Trial from Jan 25, 2 seats x 50.00 CAD, converts Feb 8: 0 in January, then 100.00 x 0.75 =
    # 75.00 (not 70.00 at the trial start's rate), kept through the Mar 1 move (not 80.00)
    L.rates.update({("CAD", "2026-01-01"): 0.70, ("CAD", "2026-02-01"): 0.75, ("CAD", "2026-03-01"): 0.80})
    c = L.account("A_cad_trial")
    L.state("sub_cad", c, "2026-01-25", [item(5000, 2)], currency="cad", status="trialing",
            event_type="customer.subscription.created")
    L.state("sub_cad", c, "2026-02-08", [item(5000, 2)], currency="cad")
    # two overlapping subscriptions: 100 from Jan 1, + add-on 50 Feb 15 .. Mar 20: 100, 150, 100, 100
    c = L.account("A_two_subs")
    L.state("sub_main", c, "2026-01-01", [item(10000)], event_type="customer.subscription.created")
    L.state("sub_addon", c, "2026-02-15", [item(5000, 1, tier="addon")], event_type="customer.subscription.created")
    L.state("sub_addon", c, "2026-03-20", [item(5000, 1, tier="addon")], status="canceled", ended="2026-03-20",
            event_type="customer.subscription.deleted")
    # a metered item is not MRR: 20.00 licensed + metered usage = 20.00
    c = L.account("A_metered")
    L.state("sub_meter", c, "2026-01-01", [item(2000), item(1, None, usage="metered")],
            event_type="customer.subscription.created")
    # amount-off forever: 200.00 - 50.00 = 150.00; a once coupon does not reduce MRR: 100.00
    c = L.account("A_amount_off")
    L.state("sub_off", c, "2026-01-01", [item(20000)], discount=coupon("forever", amount_off=5000),
            event_type="customer.subscription.created")
    c = L.account("A_once")
    L.state("sub_once", c, "2026-01-01", [item(10000)], discount=coupon("once", 50.0),
            event_type="customer.subscription.created")
    # a repeating 25% discount on 80.00 that ends on Mar 10 with no event saying so (its `end`): 60.00,
    # 60.00, then 80.00 from Mar 10
    c = L.account("A_discount_end")
    ends = {"id": "di_end", "end": ts("2026-03-10"),
            "coupon": {"id": "REP25", "duration": "repeating", "percent_off": 25.0, "amount_off": None}}
    L.state("sub_disc_end", c, "2026-01-01", [item(8000)], discount=ends, event_type="customer.subscription.created")
    # the deletion is reported on Mar 2, but service ended on Feb 27 (its ended_at): 70.00, then 0 from
    # Feb 27, so February's month-end is already 0
    c = L.account("A_late_delete")
    L.state("sub_late_delete", c, "2026-01-01", [item(7000)], event_type="customer.subscription.created")
    L.state("sub_late_delete", c, "2026-03-02", [item(7000)], status="canceled", ended="2026-02-27",
            event_type="customer.subscription.deleted")
    # Stripe bills nothing while a subscription is unpaid (retries exhausted) or paused: 60.00 until
    # Mar 5, then 0 (a churn in March); paused Feb 10 .. Apr 2: 40, 0, 0, 40 (a reactivation in April)
    c = L.account("A_unpaid")
    L.state("sub_unpaid", c, "2026-01-01", [item(6000)], event_type="customer.subscription.created")
    L.state("sub_unpaid", c, "2026-03-05", [item(6000)], status="unpaid")
    c = L.account("A_paused")
    L.state("sub_paused", c, "2026-01-01", [item(4000)], event_type="customer.subscription.created")
    L.state("sub_paused", c, "2026-02-10", [item(4000)], status="paused")
    L.state("sub_paused", c, "2026-04-02", [item(4000)])
    # a billing customer with no CRM account: its periods exist, with no account
    L.customers["cus_selfserve"] = None
    L.state("sub_self", "cus_selfserve", "2026-01-01", [item(9900)], event_type="customer.subscription.created")
    return L


EXPECTED = {  # month-end MRR, USD: January, February, March, April
    "A_annual": (100.00, 100.00, 100.00, 100.00),
    "A_quarter": (100.00, 100.00, 100.00, 100.00),
    "A_week": (43.33, 43.33, 43.33, 43.33),
    "A_trial": (0, 100.00, 100.00, 100.00),
    "A_discount": (80.00, 80.00, 80.00, 100.00),
    "A_seats": (250.00, 350.00, 300.00, 300.00),
    "A_cancel_end": (49.00, 49.00, 0, 0),
    "A_react": (30.00, 0, 0, 40.00),
    "A_delinquent": (100.00, 0, 0, 0),
    "A_late_payer": (50.00, 50.00, 50.00, 50.00),
    "A_eur": (110.00, 110.00, 240.00, 240.00),
    "A_gbp_back": (120.00, 0, 120.00, 120.00),
    "A_gbp_seats": (120.00, 0, 65.00, 65.00),
    # A_chf_disc_late and A_cad_trial pass on the SQL before a period ended at every rate change too: they pin
    # documented behaviour (marts/README.md), they do not test that split (A_aud_hair does)
    "A_chf_disc_late": (82.50, 0, 115.00, 115.00),
    "A_aud_hair": (6.50, 0, 13.00, 13.00),
    "A_cad_trial": (0, 75.00, 75.00, 75.00),
    "A_two_subs": (100.00, 150.00, 100.00, 100.00),
    "A_metered": (20.00, 20.00, 20.00, 20.00),
    "A_amount_off": (150.00, 150.00, 150.00, 150.00),
    "A_once": (100.00, 100.00, 100.00, 100.00),
    "A_discount_end": (60.00, 60.00, 80.00, 80.00),
    "A_late_delete": (70.00, 0, 0, 0),
    "A_unpaid": (60.00, 60.00, 0, 0),
    "A_paused": (40.00, 0, 0, 40.00),
}


@pytest.fixture(scope="module")
def marts(tmp_path_factory) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(tmp_path_factory.mktemp("marts") / "wh.duckdb"))
    scenarios().write(con, AS_OF)
    build_marts(con)
    return con


@pytest.mark.parametrize("account", sorted(EXPECTED))
def test_month_end_mrr_matches_the_hand_computation(marts, account):
    got = month_end_mrr(marts)
    assert tuple(got[(account, m)] for m in MONTHS) == EXPECTED[account]


def _periods(con, sub):
    return con.execute(
        "select strftime(start_date, '%m-%d'), strftime(end_date, '%m-%d'), cast(mrr as double), is_trial, "
        "is_delinquent from marts.subscription_periods where subscription_id = ? order by start_date", [sub]
    ).fetchall()


def test_trial_is_its_own_zero_period(marts):
    assert _periods(marts, "sub_trial") == [("01-25", "02-08", 0.0, True, False), ("02-08", None, 100.0, False, False)]


def test_discount_expiry_starts_a_new_period(marts):
    assert _periods(marts, "sub_disc") == [("01-05", "04-05", 80.0, False, False), ("04-05", None, 100.0, False, False)]


def test_cancel_at_period_end_keeps_revenue_until_service_ends(marts):
    # the Feb 10 request changes neither MRR nor flags: one period, ending the day service ended
    assert _periods(marts, "sub_cpe") == [("01-03", "03-03", 49.0, False, False)]


def test_delinquent_spell_is_churn_from_the_day_it_went_past_due(marts):
    assert _periods(marts, "sub_del") == [("01-01", "02-01", 100.0, False, False), ("02-01", "03-10", 0.0, False, True)]
    assert _periods(marts, "sub_late") == [("01-01", None, 50.0, False, False)]


def test_fx_rate_is_fixed_when_the_amount_is_set(marts):
    rows = marts.execute("select strftime(start_date, '%m-%d'), cast(fx_rate as double), cast(mrr as double), currency "
                         "from marts.subscription_periods where subscription_id = 'sub_eur' order by 1").fetchall()
    assert rows == [("01-15", 1.1, 110.0, "EUR"), ("03-10", 1.2, 240.0, "EUR")]


def test_fx_rate_is_kept_through_a_delinquent_spell_and_the_payment_ending_it(marts):
    # start, fx rate, MRR, list MRR, delinquent: the spell's periods keep the rate of the amount in force
    # (list MRR 120.00, then 65.00 from the seat change on Feb 20), and so does the period after the payment
    rows = marts.execute("select strftime(start_date, '%m-%d'), cast(fx_rate as double), cast(mrr as double), "
                         "cast(list_mrr as double), is_delinquent from marts.subscription_periods "
                         "where subscription_id = 'sub_gbp_seats' order by 1").fetchall()
    assert rows == [("01-10", 1.2, 120.0, 120.0, False), ("02-01", 1.2, 0.0, 120.0, True),
                    ("02-20", 1.3, 0.0, 65.0, True), ("03-05", 1.3, 65.0, 65.0, False)]


# the foreign-currency periods hand-computed in scenarios(): start, end, fx rate, MRR, list MRR, delinquent
# (cs_kpis_tests/portability/test_fx_periods_on_spark.py checks them on Spark too)
FX_PERIODS = {
    # from Feb 20 the delinquent spell is at the rate its new amount was set at, 0.6502, though MRR (0) and list
    # MRR (13.00) show the same cents at 0.65: one period Feb 1 .. Mar 5 would report one rate for both halves
    "sub_aud": [("01-10", "02-01", 0.65, 6.5, 13.0, False), ("02-01", "02-20", 0.65, 0.0, 13.0, True),
                ("02-20", "03-05", 0.6502, 0.0, 13.0, True), ("03-05", None, 0.6502, 13.0, 13.0, False)],
    # 82.50, delinquent from Feb 1 (0), the discount's end on Feb 20 sets 100.00 CHF at 1.15, and the payment
    # on Mar 5 brings back 115.00 at that rate
    "sub_chf": [("01-10", "02-01", 1.1, 82.5, 110.0, False), ("02-01", "02-20", 1.1, 0.0, 110.0, True),
                ("02-20", "03-05", 1.15, 0.0, 115.0, True), ("03-05", None, 1.15, 115.0, 115.0, False)],
    # 0 while trialing (list 100.00 CAD x 0.70 = 70.00), then 100.00 x 0.75 = 75.00 from the conversion on
    # Feb 8, through the Mar 1 move to 0.80
    "sub_cad": [("01-25", "02-08", 0.7, 0.0, 70.0, False), ("02-08", None, 0.75, 75.0, 75.0, False)],
}


def _fx_periods(con, sub):
    return con.execute("select strftime(start_date, '%m-%d'), strftime(end_date, '%m-%d'), cast(fx_rate as double), "
                       "cast(mrr as double), cast(list_mrr as double), is_delinquent from marts.subscription_periods "
                       "where subscription_id = ? order by start_date", [sub]).fetchall()


def test_a_period_ends_where_the_rate_changes_even_when_the_cents_do_not(marts):
    assert _fx_periods(marts, "sub_aud") == FX_PERIODS["sub_aud"]


def test_a_discount_ending_in_a_delinquent_spell_sets_the_rate_of_the_recovery(marts):
    """A regression pin of documented behaviour: it passes on the SQL before a period ended at every rate change
    (its rates move the cents); the split itself is tested by the sub_aud case."""
    assert _fx_periods(marts, "sub_chf") == FX_PERIODS["sub_chf"]


def test_a_trial_converting_in_a_foreign_currency_takes_that_days_rate(marts):
    """A regression pin of documented behaviour: it passes on the SQL before a period ended at every rate change;
    the split itself is tested by the sub_aud case."""
    assert _fx_periods(marts, "sub_cad") == FX_PERIODS["sub_cad"]
    assert _periods(marts, "sub_cad") == [("01-25", "02-08", 0.0, True, False), ("02-08", None, 75.0, False, False)]


def test_list_mrr_takes_the_rate_of_the_mrr_beside_it(marts):
    # The list amount is not re-anchored on its own: it is converted at the period's fx_rate, the MRR's. So
    # list MRR - MRR is the discount at one rate and, without a discount, list MRR = MRR; the price is that
    # the list figure moves with the rate when only the MRR's amount changes. sub_chf: 100.00 CHF throughout,
    # 110.00 at 1.10, then 115.00 at 1.15 from the discount's end (with a rate of its own, fixed on Jan 10,
    # it would stay 110.00, below the 115.00 MRR after Mar 5). sub_cad: 100.00 CAD throughout, 70.00 at the
    # trial start's 0.70, then 75.00 = MRR from the conversion (70.00 with its own rate)
    rows = marts.execute("select subscription_id, strftime(start_date, '%m-%d'), cast(list_mrr as double), "
                         "cast(round(list_mrr / fx_rate, 2) as double), cast(mrr as double) "
                         "from marts.subscription_periods where subscription_id in ('sub_chf', 'sub_cad') "
                         "and start_date >= date '2026-02-08' order by 1, 2").fetchall()
    assert rows == [("sub_cad", "02-08", 75.0, 100.0, 75.0),
                    ("sub_chf", "02-20", 115.0, 100.0, 0.0), ("sub_chf", "03-05", 115.0, 100.0, 115.0)]
    # and list MRR is never below MRR, anywhere in these histories
    assert marts.execute("select count(*) from marts.subscription_periods where list_mrr < mrr").fetchall() == [(0,)]


def test_list_mrr_is_kept_beside_the_discounted_mrr(marts):
    row = marts.execute("select cast(mrr as double), cast(list_mrr as double) from marts.subscription_periods "
                        "where subscription_id = 'sub_off'").fetchall()
    assert row == [(150.0, 200.0)]


def test_unmatched_customer_keeps_its_periods_without_an_account(marts):
    rows = marts.execute("select account_id, cast(mrr as double) from marts.subscription_periods "
                         "where customer_id = 'cus_selfserve'").fetchall()
    assert rows == [(None, 99.0)]
    assert marts.execute("select count(*) from marts.mrr_daily_changes where account_id is null").fetchall() == [(0,)]


def test_daily_view_shows_every_positive_day_and_each_change(marts):
    # A_react: 30.00 on Jan 2 .. Feb 4 (34 days), 0 on Feb 5 (the change), 40.00 on Apr 10 .. Apr 30 (21 days)
    rows = marts.execute("select count(*) filter (where mrr > 0), count(*) filter (where mrr = 0) "
                         "from marts.mrr_daily where account_id = 'A_react'").fetchall()
    assert rows == [(34 + 21, 1)]
    assert marts.execute("select cast(mrr as double) from marts.mrr_daily where account_id = 'A_seats' "
                         "and day = date '2026-02-13'").fetchall() == [(250.0,)]
    assert marts.execute("select cast(mrr as double) from marts.mrr_daily where account_id = 'A_seats' "
                         "and day = date '2026-02-14'").fetchall() == [(350.0,)]


def test_rebuilding_gives_identical_tables(marts):
    before = marts.execute("select * from marts.subscription_periods order by all").fetchall()
    build_marts(marts)
    assert marts.execute("select * from marts.subscription_periods order by all").fetchall() == before
