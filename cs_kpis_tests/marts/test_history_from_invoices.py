"""Revenue history from what Stripe keeps: invoices and the subscriptions list, with events for recent days.

The event ledger of this company begins on 2026-04-10 (Stripe keeps ~30 days of events); everything
before comes from invoice lines and the subscriptions list. Every expected number is worked out by hand
beside its scenario. The data runs to 2026-04-30 (the as-of day).
"""

import datetime as dt
import json

import duckdb
import pytest

from cs_kpis.defs.marts.checks import (
    EVENT_DISCOUNTS_KNOWN,
    HISTORY_MATCHES_INVOICES,
    ITEM_DISCOUNTS_VALID,
    history_check_sql,
    marts_checks,
)
from cs_kpis_tests.check_call import call_check

from .billing_fixtures import Ledger, build_marts, item, month_end_mrr

AS_OF = "2026-04-30"
MONTHS = ("2026-01", "2026-02", "2026-03", "2026-04")


def expanded(d: dict) -> dict:
    """a discount as Stripe lists it expanded: the discount with its coupon, start and end (epoch seconds)"""
    return {"id": d["id"], "object": "discount", "coupon": {
        "id": d["coupon"], "duration": d["duration"], "percent_off": d.get("percent_off"),
        "amount_off": d.get("amount_off"), "currency": d.get("currency")},
        "start": int(at(d["start"]).timestamp()), "end": int(at(d["end"]).timestamp()) if d.get("end") else None}


def at(day: str, hour: int = 12) -> dt.datetime:
    d = dt.date.fromisoformat(day)
    return dt.datetime(d.year, d.month, d.day, hour, tzinfo=dt.UTC)


class Billing:
    """Writes Stripe subscriptions, prices and invoices (with lines) into a Ledger's staging tables."""

    def __init__(self, ledger: Ledger):
        self.L = ledger
        self.n = 0

    def price(self, pid: str, unit: int, interval: str = "month", count: int = 1, tier: str = "growth") -> str:
        self.L.tables["stg_billing__prices"].append({
            "price_id": pid, "plan_tier": tier, "price_name": tier, "unit_amount_minor": unit, "interval": interval,
            "interval_count": count, "usage_type": "licensed", "price_type": "recurring"})
        return pid

    def sub(self, account: str, sid: str, started: str, items: list[tuple[str, int]], ended: str | None = None,
            trial_end: str | None = None, status: str = "active", discounts: list[dict] | None = None,
            item_discounts: dict[str, list[dict]] | None = None) -> str:
        """``discounts``: the subscription's, ``item_discounts``: price id -> that item's own, as the list
        shows them today (expand[]=data.discounts, data.items.data.discounts)"""
        cus = self.L.account(account)
        self.L.tables["stg_billing__subscriptions"].append({
            "subscription_id": sid, "customer_id": cus, "status": status, "currency": "USD",
            "created_at": at(started), "started_at": at(started), "trial_start_at": at(started) if trial_end else None,
            "trial_end_at": at(trial_end) if trial_end else None, "ended_at": at(ended) if ended else None,
            "cancel_at_period_end": False, "extract_day": dt.date.fromisoformat(AS_OF),
            "discounts": json.dumps([expanded(d) for d in discounts or []])})
        prices = {p["price_id"]: p for p in self.L.tables["stg_billing__prices"]}
        for i, (pid, qty) in enumerate(items):
            p = prices[pid]
            self.L.tables["stg_billing__subscription_items"].append({
                "subscription_item_id": f"si_{sid}_{i}", "subscription_id": sid, "price_id": pid,
                "plan_tier": p["plan_tier"], "price_name": p["price_name"], "unit_amount_minor": p["unit_amount_minor"],
                "quantity": qty, "interval": p["interval"], "interval_count": p["interval_count"],
                "usage_type": "licensed",
                "discounts": json.dumps([expanded(d) for d in (item_discounts or {}).get(pid, [])])})
        return sid

    def invoice(self, sid: str, created: str, lines: list[tuple], status: str = "paid", paid: str | None = None,
                attempts: int = 1, uncollectible: str | None = None, discount: dict | None = None,
                discounts: list[dict] | None = None, line_discount_minor: int = 0,
                credits: tuple[int, ...] = ()) -> str:
        """lines: (price_id, quantity, period_start, period_end, amount_minor, is_proration[, the line's own
        discounts]); the discounts are listed expanded, in Stripe's order, as GET
        /v1/invoices?expand[]=data.discounts&expand[]=data.lines.data.discounts gives them;
        ``line_discount_minor``: what they take off each line, at most its amount (its ``discount_amounts``,
        named by the line's own first discount, else the invoice's first);
        ``credits``: the places of the proration lines Stripe marks as credits whatever their amount (their
        ``credited_items``: staging's is_proration_credit), besides every negative one"""
        self.n += 1
        iid = f"in_{self.n:04d}"
        total = sum(line[4] - min(max(line[4], 0), line_discount_minor) for line in lines)
        row = {"invoice_id": iid, "subscription_id": sid, "status": status, "attempt_count": attempts,
               "created_at": at(created), "finalized_at": at(created),
               "paid_at": at(paid or created) if status == "paid" else None,
               "marked_uncollectible_at": at(uncollectible) if uncollectible else None,
               "amount_due_minor": max(total, 0), "currency": "USD"}
        listed = discounts or ([discount] if discount else [])
        if listed:
            first = listed[0]
            row |= {"discount_id": first["id"], "discount_coupon_id": first["coupon"], "discount_duration":
                    first["duration"], "discount_percent_off": first.get("percent_off"),
                    "discount_amount_off_minor": first.get("amount_off"), "discount_start_at": at(first["start"]),
                    "discount_end_at": at(first["end"]) if first.get("end") else None}
        row["discounts"] = json.dumps([expanded(d) for d in listed])
        self.L.tables["stg_billing__invoices"].append(row)
        item_of = {(r["subscription_id"], r["price_id"]): r["subscription_item_id"]
                   for r in self.L.tables["stg_billing__subscription_items"]}
        for j, (pid, qty, ps, pe, amount, proration, *own) in enumerate(lines):
            off = min(max(amount, 0), line_discount_minor)
            named = ((own[0] if own else []) or listed)[:1]
            self.L.tables["stg_billing__invoice_lines"].append({
                "line_id": f"il_{self.n:04d}_{j}", "invoice_id": iid, "subscription_id": sid,
                "subscription_item_id": item_of.get((sid, pid)), "price_id": pid,
                "is_proration": proration, "is_proration_credit": proration and (amount < 0 or j in credits),
                "quantity": qty, "period_start": at(ps), "period_end": at(pe),
                "currency": "USD", "amount_minor": amount,
                "discount_amount_minor": off,
                "discount_amounts": json.dumps([{"amount": off, "discount": d["id"]} for d in named if off]),
                "discounts": json.dumps([expanded(d) for d in (own[0] if own else [])])})
        return iid

    def item(self, sid: str, pid: str, qty: int, ps: str, pe: str, amount: int, invoice: str | None = None,
             credit: bool = False) -> None:
        """a proration invoice item (GET /v1/invoiceitems); pending while ``invoice`` is None; a credit when its
        amount is negative or, at 0, when ``credit`` (its "Unused time on ..." description: staging's
        is_proration_credit)"""
        self.n += 1
        self.L.tables["stg_billing__invoice_items"].append({
            "invoice_item_id": f"ii_{self.n:04d}", "invoice_id": invoice, "is_pending": invoice is None,
            "customer_id": "cus_x", "subscription_id": sid, "price_id": pid, "is_proration": True,
            "is_proration_credit": amount < 0 or credit, "quantity": qty,
            "period_start": at(ps), "period_end": at(pe), "currency": "USD", "amount_minor": amount})

    def monthly(self, sid: str, pid: str, qty: int, unit: int, firsts: list[str], **kw) -> None:
        """one paid cycle invoice per period start in ``firsts`` (each period ends at the next month's same day)"""
        for d in firsts:
            day = dt.date.fromisoformat(d)
            end = dt.date(day.year + (day.month == 12), day.month % 12 + 1, day.day).isoformat()
            self.invoice(sid, d, [(pid, qty, d, end, unit * qty, False)], **kw)


def scenarios() -> Ledger:
    L = Ledger()
    B = Billing(L)
    # the event ledger begins on Apr 10 with a new 30.00 subscription
    c = L.account("A_evt")
    L.state("sub_evt", c, "2026-04-10", [item(3000)], event_type="customer.subscription.created")
    # annual plan paid Dec 10 for a year: 1,200.00 / 12 = 100.00 every month
    B.price("p_year", 120000, "year")
    B.sub("A_inv_annual", "sub_annual", "2025-12-10", [("p_year", 1)])
    B.invoice("sub_annual", "2025-12-10", [("p_year", 1, "2025-12-10", "2026-12-10", 120000, False)])
    # trial Jan 20 .. Feb 3 (a 0.00 invoice), then 2 x 50.00 a month: 0, 100, 100, 100
    B.price("p_50", 5000)
    B.sub("A_inv_trial", "sub_trial", "2026-01-20", [("p_50", 2)], trial_end="2026-02-03")
    B.invoice("sub_trial", "2026-01-20", [("p_50", 2, "2026-01-20", "2026-02-03", 0, False)])
    B.monthly("sub_trial", "p_50", 2, 5000, ["2026-02-03", "2026-03-03", "2026-04-03"])
    # 10 seats x 25.00 from Jan 1; down to 6 seats on Feb 14, credited on the Mar 1 invoice (a pending
    # proration: credit for 10 seats, charge for 6, both from Feb 14): 250, 150, 150, 150
    B.price("p_25", 2500)
    B.sub("A_inv_down", "sub_down", "2026-01-01", [("p_25", 6)])
    B.monthly("sub_down", "p_25", 10, 2500, ["2026-01-01", "2026-02-01"])
    billed = B.invoice("sub_down", "2026-03-01", [("p_25", 10, "2026-02-14", "2026-03-01", -1250, True),
                                         ("p_25", 6, "2026-02-14", "2026-03-01", 750, True),
                                         ("p_25", 6, "2026-03-01", "2026-04-01", 15000, False)])
    B.monthly("sub_down", "p_25", 6, 2500, ["2026-04-01"])
    # ... whose invoice items were billed on Mar 1: already lines, so not counted again
    B.item("sub_down", "p_25", 10, "2026-02-14", "2026-03-01", -1250, invoice=billed)
    B.item("sub_down", "p_25", 6, "2026-02-14", "2026-03-01", 750, invoice=billed)
    # 5 seats x 20.00 from Jan 1, up to 8 seats on Mar 20, invoiced at once: 100, 100, 160, 160
    B.price("p_20", 2000)
    B.sub("A_inv_up", "sub_up", "2026-01-01", [("p_20", 8)])
    B.monthly("sub_up", "p_20", 5, 2000, ["2026-01-01", "2026-02-01", "2026-03-01"])
    B.invoice("sub_up", "2026-03-20", [("p_20", 5, "2026-03-20", "2026-04-01", -387, True),
                                       ("p_20", 8, "2026-03-20", "2026-04-01", 619, True)])
    B.monthly("sub_up", "p_20", 8, 2000, ["2026-04-01"])
    # the Feb 1 invoice is never paid; marked uncollectible and the subscription ended on Mar 10: past due
    # 37 days > 30, churned from Feb 1: 100, 0, 0, 0
    B.price("p_100", 10000)
    B.sub("A_inv_delinquent", "sub_del", "2026-01-01", [("p_100", 1)], ended="2026-03-10", status="canceled")
    B.monthly("sub_del", "p_100", 1, 10000, ["2026-01-01"])
    B.invoice("sub_del", "2026-02-01", [("p_100", 1, "2026-02-01", "2026-03-01", 10000, False)],
              status="uncollectible", uncollectible="2026-03-10")
    # the Feb 1 invoice is paid on the second attempt, Feb 9: 8 days past due, 50.00 throughout
    B.price("p_5000", 5000, tier="starter")
    B.sub("A_inv_late", "sub_late", "2026-01-01", [("p_5000", 1)])
    B.monthly("sub_late", "p_5000", 1, 5000, ["2026-01-01", "2026-03-01", "2026-04-01"])
    B.monthly("sub_late", "p_5000", 1, 5000, ["2026-02-01"], paid="2026-02-09", attempts=2)
    # a 20% repeating discount Jan 5 .. Apr 5 on 100.00: 80, 80, 80, then 100
    disc = {"id": "di_rep", "coupon": "REP20", "duration": "repeating", "percent_off": 20.0,
            "start": "2026-01-05", "end": "2026-04-05"}
    B.sub("A_inv_discount", "sub_disc", "2026-01-05", [("p_100", 1)])
    B.monthly("sub_disc", "p_100", 1, 10000, ["2026-01-05", "2026-02-05", "2026-03-05"], discount=disc)
    B.monthly("sub_disc", "p_100", 1, 10000, ["2026-04-05"])
    # a once coupon never reduces MRR: 100.00 throughout
    once = {"id": "di_once", "coupon": "ONCE50", "duration": "once", "percent_off": 50.0, "start": "2026-01-01"}
    B.sub("A_inv_once", "sub_once", "2026-01-01", [("p_100", 1)])
    B.monthly("sub_once", "p_100", 1, 10000, ["2026-01-01"], discount=once)
    B.monthly("sub_once", "p_100", 1, 10000, ["2026-02-01", "2026-03-01", "2026-04-01"])
    # cancelled: service ended Mar 3 (the subscriptions list's ended_at): 49, 49, 0, 0
    B.price("p_49", 4900, tier="starter")
    B.sub("A_inv_cancel", "sub_cancel", "2026-01-03", [("p_49", 1)], ended="2026-03-03", status="canceled")
    B.monthly("sub_cancel", "p_49", 1, 4900, ["2026-01-03", "2026-02-03"])
    # annual, 10 seats x 120.00 a year = 100.00 a month; today the list shows 5 seats, but no invoice or
    # event says when they went: the change counts from the start of the ledger (Apr 10), so April is
    # 50.00 and the months before keep 100.00 -- and the blocking check names the subscription
    B.price("p_seat_year", 12000, "year")
    B.sub("A_inv_unknown", "sub_unknown", "2025-11-15", [("p_seat_year", 5)])
    B.invoice("sub_unknown", "2025-11-15", [("p_seat_year", 10, "2025-11-15", "2026-11-15", 120000, False)])
    # annual, 10 seats x 120.00 a year from Nov 20; down to 4 seats on Feb 20, credited on the Nov 20
    # renewal, which has not come: no invoice shows the change, but its two proration items are pending
    # (credit for 10 seats, charge for 4, both from Feb 20): 100, 40, 40, 40
    B.sub("A_inv_pending", "sub_pending", "2025-11-20", [("p_seat_year", 4)])
    B.invoice("sub_pending", "2025-11-20", [("p_seat_year", 10, "2025-11-20", "2026-11-20", 120000, False)])
    B.item("sub_pending", "p_seat_year", 10, "2026-02-20", "2026-11-20", -73150)
    B.item("sub_pending", "p_seat_year", 4, "2026-02-20", "2026-11-20", 29260)
    # 5 seats x 20.00 from Jan 1; the Feb 1 invoice fails and is never paid (marked uncollectible, the
    # subscription ended, Mar 12); down to 1 seat on Feb 10, credited on the Mar 1 renewal, whose total is
    # negative: 0.00 due, so Stripe marks it paid, and a paid latest invoice makes the subscription active.
    # Past due Feb 1 .. Mar 1, 28 days, not more than 30: kept (the failed invoice alone would say 39
    # days and churn it from Feb 1): 100, 20, 0, 0
    B.sub("A_inv_zero_renewal", "sub_zero", "2026-01-01", [("p_20", 1)], ended="2026-03-12", status="canceled")
    B.monthly("sub_zero", "p_20", 5, 2000, ["2026-01-01"])
    B.invoice("sub_zero", "2026-02-01", [("p_20", 5, "2026-02-01", "2026-03-01", 10000, False)],
              status="uncollectible", uncollectible="2026-03-12")
    B.invoice("sub_zero", "2026-03-01", [("p_20", 5, "2026-02-10", "2026-03-01", -6786, True),
                                         ("p_20", 1, "2026-02-10", "2026-03-01", 1357, True),
                                         ("p_20", 1, "2026-03-01", "2026-04-01", 2000, False)])
    # the same from Dec 1 with the Jan 1 invoice failing and the 0.00 renewal on Feb 1: past due 31 days,
    # churned from Jan 1; active again from Feb 1 (a reactivation) until the end on Mar 12: 0, 20, 0, 0
    B.sub("A_inv_zero_renewal_31", "sub_zero31", "2025-12-01", [("p_20", 1)], ended="2026-03-12",
          status="canceled")
    B.monthly("sub_zero31", "p_20", 5, 2000, ["2025-12-01"])
    B.invoice("sub_zero31", "2026-01-01", [("p_20", 5, "2026-01-01", "2026-02-01", 10000, False)],
              status="uncollectible", uncollectible="2026-03-12")
    B.invoice("sub_zero31", "2026-02-01", [("p_20", 5, "2026-01-10", "2026-02-01", -7097, True),
                                           ("p_20", 1, "2026-01-10", "2026-02-01", 1419, True),
                                           ("p_20", 1, "2026-02-01", "2026-03-01", 2000, False)])
    # 3 seats x 25.00 with a forever 100.00-off coupon, more than the price: every invoice is 0.00 after
    # discounts (paid), and MRR is 0 (never negative) while the list price is 75.00, then 50.00 from the Mar 7
    # renewal at 2 seats: 0, 0, 0, 0 -- the period splits at the seat change although MRR stays 0, and the
    # blocking check must not call any of it missing history
    free = {"id": "di_free", "coupon": "OFF100", "duration": "forever", "amount_off": 10000, "currency": "usd",
            "start": "2026-01-07"}
    B.sub("A_inv_free", "sub_free", "2026-01-07", [("p_25", 2)])
    L.tables["stg_billing__subscriptions"][-1]["discounts"] = json.dumps([expanded(free)])
    B.monthly("sub_free", "p_25", 3, 2500, ["2026-01-07", "2026-02-07"], discount=free, line_discount_minor=10000)
    B.monthly("sub_free", "p_25", 2, 2500, ["2026-03-07", "2026-04-07"], discount=free, line_discount_minor=10000)
    # the same coupon on two items, 50.00 + 25.00: Stripe spreads it over both lines (50.00 and 25.00 off), and
    # only their sum covers the list price: 0, 0, 0, 0
    B.sub("A_inv_free_two_items", "sub_free2", "2026-01-07", [("p_50", 1), ("p_25", 1)])
    L.tables["stg_billing__subscriptions"][-1]["discounts"] = json.dumps([expanded(free)])
    for d, e in (("2026-01-07", "2026-02-07"), ("2026-02-07", "2026-03-07"), ("2026-03-07", "2026-04-07"),
                 ("2026-04-07", "2026-05-07")):
        B.invoice("sub_free2", d, [("p_50", 1, d, e, 5000, False), ("p_25", 1, d, e, 2500, False)], discount=free,
                  line_discount_minor=10000)
    # item-level discounts (each item's own, applied to it before the subscription's): item A 100.00 with
    # its own 10% forever, item B 50.00 without, then 10.00 forever off the subscription:
    # 100 x 0.90 + 50 - 10 = 130.00 every month, from the invoice lines and, in April, from the list
    item10 = {"id": "di_item10", "coupon": "ITEM10", "duration": "forever", "percent_off": 10.0,
              "start": "2026-01-01"}
    off10 = {"id": "di_off10", "coupon": "OFF10", "duration": "forever", "amount_off": 1000, "currency": "usd",
             "start": "2026-01-01"}
    B.sub("A_item_forever", "sub_item_forever", "2026-01-01", [("p_100", 1), ("p_50", 1)], discounts=[off10],
          item_discounts={"p_100": [item10]})
    for d in ("2026-01-01", "2026-02-01", "2026-03-01", "2026-04-01"):
        end = f"2026-{int(d[5:7]) + 1:02d}-01"
        B.invoice("sub_item_forever", d, [("p_100", 1, d, end, 10000, False, [item10]),
                                          ("p_50", 1, d, end, 5000, False)], discounts=[off10])
    # an item's own once coupon (50% on its first invoice) never reduces MRR: 100.00 throughout
    item_once = {"id": "di_item_once", "coupon": "ITEMONCE50", "duration": "once", "percent_off": 50.0,
                 "start": "2026-01-01"}
    B.sub("A_item_once", "sub_item_once", "2026-01-01", [("p_100", 1)])
    B.invoice("sub_item_once", "2026-01-01", [("p_100", 1, "2026-01-01", "2026-02-01", 10000, False, [item_once])])
    B.monthly("sub_item_once", "p_100", 1, 10000, ["2026-02-01", "2026-03-01", "2026-04-01"])
    # an item's own amount_off coupon of another currency: 20.00 EUR off, with 15.00 USD in its
    # currency_options, repeating Jan 1 .. Mar 1, on a USD item of 100.00: 85.00 in January and February,
    # 100.00 from Mar 1 (the discount's end; the list no longer shows it)
    L.tables["stg_billing__coupons"].append({"coupon_id": "EUR20", "duration": "repeating", "currency": "EUR",
                                             "amount_off_minor": 2000,
                                             "currency_options": json.dumps({"usd": {"amount_off": 1500}})})
    eur20 = {"id": "di_eur20", "coupon": "EUR20", "duration": "repeating", "amount_off": 2000, "currency": "eur",
             "start": "2026-01-01", "end": "2026-03-01"}
    B.sub("A_item_eur_amount", "sub_item_eur", "2026-01-01", [("p_100", 1)])
    B.invoice("sub_item_eur", "2026-01-01", [("p_100", 1, "2026-01-01", "2026-02-01", 10000, False, [eur20])])
    B.invoice("sub_item_eur", "2026-02-01", [("p_100", 1, "2026-02-01", "2026-03-01", 10000, False, [eur20])])
    B.monthly("sub_item_eur", "p_100", 1, 10000, ["2026-03-01", "2026-04-01"])
    # 3 seats x 25.00 from Jan 9; down to 2 seats at the very second the Feb 9 renewal billed 3 (a change at
    # the cycle's instant), credited on the Mar 9 renewal for the whole period (credit for 3 seats, charge
    # for 2, both from Feb 9): 75, 50, 50, 50, and the seats go from 3 to 2 on Feb 9, with the list price
    B.sub("A_inv_cycle_down", "sub_cycle_down", "2026-01-09", [("p_25", 2)])
    B.monthly("sub_cycle_down", "p_25", 3, 2500, ["2026-01-09", "2026-02-09"])
    B.invoice("sub_cycle_down", "2026-03-09", [("p_25", 3, "2026-02-09", "2026-03-09", -7500, True),
                                               ("p_25", 2, "2026-02-09", "2026-03-09", 5000, True),
                                               ("p_25", 2, "2026-03-09", "2026-04-09", 5000, False)])
    B.monthly("sub_cycle_down", "p_25", 2, 2500, ["2026-04-09"])
    # 14 seats x 25.00 from Jan 1; on Mar 20 down to 10 seats and cancelled in the same second: the
    # proration items stay pending (no invoice bills them), and the list shows the 10 seats, cancelled.
    # 350, 350, 0, 0 -- and the blocking check must not call the 10 seats a change no invoice shows
    B.sub("A_inv_end_change", "sub_end_change", "2026-01-01", [("p_25", 10)], ended="2026-03-20",
          status="canceled")
    B.monthly("sub_end_change", "p_25", 14, 2500, ["2026-01-01", "2026-02-01", "2026-03-01"])
    B.item("sub_end_change", "p_25", 14, "2026-03-20", "2026-04-01", -13548)
    B.item("sub_end_change", "p_25", 10, "2026-03-20", "2026-04-01", 9677)
    # 1 x 25.00 with a forever 100.00-off coupon (every invoice 0.00), upgraded to 50.00 on Mar 20 and
    # charged at once: the proration invoice lists no discount (the simulator's, as the large company's
    # sub_WukTkLIg67c3YcRHSRq1n500), and March's paid cycle line took 25.00 off its 25.00. The coupon covers
    # 50.00 as well: 0, 0, 0, 0 -- and the blocking check must not call March's 0 missing history
    L.tables["stg_billing__coupons"].append({"coupon_id": "LOYAL100", "duration": "forever", "currency": "USD",
                                             "amount_off_minor": 10000, "currency_options": None})
    loyal = {"id": "di_loyal", "coupon": "LOYAL100", "duration": "forever", "amount_off": 10000, "currency": "usd",
             "start": "2026-01-07"}
    B.sub("A_inv_free_upgrade", "sub_free_up", "2026-01-07", [("p_50", 1)], discounts=[loyal])
    B.monthly("sub_free_up", "p_25", 1, 2500, ["2026-01-07", "2026-02-07", "2026-03-07"], discount=loyal,
              line_discount_minor=2500)
    B.invoice("sub_free_up", "2026-03-20", [("p_25", 1, "2026-03-20", "2026-04-07", -1452, True),
                                            ("p_50", 1, "2026-03-20", "2026-04-07", 2903, True)])
    B.monthly("sub_free_up", "p_50", 1, 5000, ["2026-04-07"], discount=loyal, line_discount_minor=5000)
    # 2 seats x 25.00 with a forever 60.00-off coupon (every invoice 0.00, MRR 0), up to 4 seats on Mar 16 and
    # charged at once. Stripe's prorations are net of the subscription's discounts: the credit for 2 seats is
    # 0 (50.00 - 60.00 leaves nothing), the charge for 4 seats (100.00 - 60.00) x 16/31 = 20.65. The credit
    # is a credit all the same: Stripe names the line it credits (credited_items). 0, 0, 40, 40 (its sign
    # made it a charge: 50 + 50 + 100 list, 140.00 in March)
    L.tables["stg_billing__coupons"].append({"coupon_id": "OFF60", "duration": "forever", "currency": "USD",
                                             "amount_off_minor": 6000, "currency_options": None})
    off60 = {"id": "di_off60", "coupon": "OFF60", "duration": "forever", "amount_off": 6000, "currency": "usd",
             "start": "2026-01-01"}
    B.sub("A_inv_zero_credit", "sub_zero_credit", "2026-01-01", [("p_25", 4)], discounts=[off60])
    B.monthly("sub_zero_credit", "p_25", 2, 2500, ["2026-01-01", "2026-02-01", "2026-03-01"], discount=off60,
              line_discount_minor=5000)
    B.invoice("sub_zero_credit", "2026-03-16", [("p_25", 2, "2026-03-16", "2026-04-01", 0, True),
                                                ("p_25", 4, "2026-03-16", "2026-04-01", 2065, True)], credits=(0,))
    B.monthly("sub_zero_credit", "p_25", 4, 2500, ["2026-04-01"], discount=off60, line_discount_minor=6000)
    # annual, 2 seats x 120.00 a year with a forever 240.00-off coupon (MRR 0, list 20.00), down to 1 seat on
    # Feb 20, credited on the Dec 15 renewal, which has not come: both pending items are 0 (net of the
    # discount), and the credit says so by its description only ("Unused time on ..."; an invoice item has no
    # credited_items in API 2025-03-31.basil). MRR 0 throughout; the list price 10.00 and 1 seat from Feb 20
    L.tables["stg_billing__coupons"].append({"coupon_id": "OFF240", "duration": "forever", "currency": "USD",
                                             "amount_off_minor": 24000, "currency_options": None})
    off240 = {"id": "di_off240", "coupon": "OFF240", "duration": "forever", "amount_off": 24000, "currency": "usd",
              "start": "2025-12-15"}
    B.sub("A_inv_pending_zero", "sub_pending_zero", "2025-12-15", [("p_seat_year", 1)], discounts=[off240])
    B.invoice("sub_pending_zero", "2025-12-15", [("p_seat_year", 2, "2025-12-15", "2026-12-15", 24000, False)],
              discount=off240, line_discount_minor=24000)
    B.item("sub_pending_zero", "p_seat_year", 2, "2026-02-20", "2026-12-15", 0, credit=True)
    B.item("sub_pending_zero", "p_seat_year", 1, "2026-02-20", "2026-12-15", 0)
    # 3 seats x 25.00 whose item has its own forever 100.00-off coupon (the invoices list no discount of
    # their own: the line's discount_amounts take 75.00 off 75.00), up to 4 seats on Feb 26 and invoiced at
    # once. Both prorations are 0 (net of the discount), on an invoice with no cycle line, and the coupon
    # covers 100.00 as well: 0, 0, 0, 0 -- and the blocking check must not call February's 0 missing history
    # (it valued the 4 seats at 100.00 and could subtract only the 75.00 February's cycle line had off: the
    # large company's sub_O5YCsR8XqHxIWw6Iwt1Hp500)
    loyal_item = {"id": "di_loyal_item", "coupon": "LOYAL100", "duration": "forever", "amount_off": 10000,
                  "currency": "usd", "start": "2026-01-11"}
    B.sub("A_inv_free_seats", "sub_free_seats", "2026-01-11", [("p_25", 4)], item_discounts={"p_25": [loyal_item]})
    for d, e, n in (("2026-01-11", "2026-02-11", 3), ("2026-02-11", "2026-03-11", 3), ("2026-03-11", "2026-04-11", 4),
                    ("2026-04-11", "2026-05-11", 4)):
        B.invoice("sub_free_seats", d, [("p_25", n, d, e, 2500 * n, False, [loyal_item])],
                  line_discount_minor=2500 * n)
        if d == "2026-02-11":
            B.invoice("sub_free_seats", "2026-02-26", [("p_25", 3, "2026-02-26", "2026-03-11", 0, True),
                                                       ("p_25", 4, "2026-02-26", "2026-03-11", 0, True)],
                      credits=(0,))
    return L


EXPECTED = {  # month-end MRR, USD: January, February, March, April
    "A_evt": (0, 0, 0, 30.00),
    "A_inv_annual": (100.00, 100.00, 100.00, 100.00),
    "A_inv_trial": (0, 100.00, 100.00, 100.00),
    "A_inv_down": (250.00, 150.00, 150.00, 150.00),
    "A_inv_up": (100.00, 100.00, 160.00, 160.00),
    "A_inv_delinquent": (100.00, 0, 0, 0),
    "A_inv_late": (50.00, 50.00, 50.00, 50.00),
    "A_inv_discount": (80.00, 80.00, 80.00, 100.00),
    "A_inv_once": (100.00, 100.00, 100.00, 100.00),
    "A_inv_cancel": (49.00, 49.00, 0, 0),
    "A_inv_unknown": (100.00, 100.00, 100.00, 50.00),
    "A_inv_pending": (100.00, 40.00, 40.00, 40.00),
    "A_inv_zero_renewal": (100.00, 20.00, 0, 0),
    "A_inv_zero_renewal_31": (0, 20.00, 0, 0),
    "A_inv_free": (0, 0, 0, 0),
    "A_inv_free_two_items": (0, 0, 0, 0),
    "A_item_forever": (130.00, 130.00, 130.00, 130.00),
    "A_item_once": (100.00, 100.00, 100.00, 100.00),
    "A_item_eur_amount": (85.00, 85.00, 100.00, 100.00),
    "A_inv_cycle_down": (75.00, 50.00, 50.00, 50.00),
    "A_inv_end_change": (350.00, 350.00, 0, 0),
    "A_inv_free_upgrade": (0, 0, 0, 0),
    "A_inv_zero_credit": (0, 0, 40.00, 40.00),
    "A_inv_pending_zero": (0, 0, 0, 0),
    "A_inv_free_seats": (0, 0, 0, 0),
}


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("history") / "wh.duckdb")
    con = duckdb.connect(path)
    scenarios().write(con, AS_OF)
    build_marts(con)
    con.close()
    return path


def _changed_copy(warehouse: str, tmp_path, name: str, *statements: str) -> str:
    """a copy of the scenarios' warehouse with ``statements`` run on it (a check's failing case)"""
    import shutil

    copy = str(tmp_path / f"{name}.duckdb")
    shutil.copy(warehouse, copy)
    with duckdb.connect(copy) as con:
        for statement in statements:
            (changed,) = con.execute(statement).fetchone()
            assert changed > 0, f"changed no row: {statement}"  # a case that changes nothing proves nothing
    return copy


def _free_seats_named(path: str) -> list[tuple[str, str, float, float]]:
    """what the revenue-history check names for sub_free_seats in the warehouse at ``path``: (month, problem,
    expected, found) by month, on UTC days as a check step reads them"""
    with duckdb.connect(path, read_only=True) as con:
        con.execute("set TimeZone = 'UTC'")
        rows = con.execute(f"select cast(month as varchar), problem, expected, found from ({history_check_sql(0.01)}) "
                           "where subscription_id = 'sub_free_seats' order by 1").fetchall()
    return [(m, p, float(e), float(f)) for m, p, e, f in rows]


@pytest.mark.parametrize("account", sorted(EXPECTED))
def test_month_end_mrr_from_invoices_matches_the_hand_computation(warehouse, account):
    with duckdb.connect(warehouse, read_only=True) as con:
        got = month_end_mrr(con)
    assert tuple(got.get((account, m), 0.0) for m in MONTHS) == EXPECTED[account]


def test_states_say_where_they_came_from(warehouse):
    with duckdb.connect(warehouse, read_only=True) as con:
        con.execute("set TimeZone = 'UTC'")
        rows = dict(con.execute("select source, count(*) from marts.subscription_states group by source").fetchall())
        first_event = con.execute("select min(changed_at) from marts.subscription_states where source = 'events'"
                                  ).fetchall()[0][0]
        late_history = con.execute("select count(*) from marts.subscription_states "
                                   "where source = 'invoices' and changed_at >= ?", [first_event]).fetchall()[0][0]
    assert rows["events"] == 1 and rows["invoices"] > 20 and rows["subscriptions"] >= 1
    assert late_history == 0  # from the first loaded event on, the ledger wins


def test_blocking_check_names_the_subscription_whose_change_cannot_be_dated(warehouse):
    check = next(c for c in marts_checks if next(iter(c.check_keys)).name == HISTORY_MATCHES_INVOICES)
    result = call_check(check, warehouse)
    assert not result.passed
    assert result.metadata["violations"].value == 1
    assert "sub_unknown" in result.metadata["sample"].value


def test_blocking_check_takes_a_change_in_the_second_a_subscription_ended_as_shown(warehouse):
    """sub_end_change went from 14 to 10 seats in the very second it was cancelled: the pending prorations
    date the change, and the list's 10 seats are the items at the end (the check compared the list with the
    last state before the end, 14 seats, and named it: the large company, sub_DigQTk6HzSIGBhY1K8rhB000)"""
    check = next(c for c in marts_checks if next(iter(c.check_keys)).name == HISTORY_MATCHES_INVOICES)
    result = call_check(check, warehouse)
    assert "sub_end_change" not in result.metadata["sample"].value
    with duckdb.connect(warehouse, read_only=True) as con:
        con.execute("set TimeZone = 'UTC'")
        ended = con.execute("select status, seats, list_mrr_minor from marts.subscription_states "
                            "where subscription_id = 'sub_end_change' order by changed_at desc limit 1").fetchall()
    assert ended == [("canceled", 10, 25000.0)]


def test_blocking_check_takes_a_coupon_covering_the_price_after_an_upgrade_as_no_mrr(warehouse):
    """sub_free_up: March's cycle line (25.00) had 25.00 off, and the upgrade to 50.00 within the period was
    billed apart without discount; MRR is 0 because the 100.00-off coupon covers 50.00 too (the check compared
    the 50.00 list price with the 25.00 the line had off, and named it)"""
    check = next(c for c in marts_checks if next(iter(c.check_keys)).name == HISTORY_MATCHES_INVOICES)
    result = call_check(check, warehouse)
    assert "sub_free_up" not in result.metadata["sample"].value
    with duckdb.connect(warehouse, read_only=True) as con:
        rows = con.execute("select cast(start_date as varchar), mrr, list_mrr from marts.subscription_periods "
                           "where subscription_id = 'sub_free_up' order by start_date").fetchall()
    assert [(d, float(m), float(lm)) for d, m, lm in rows] == [("2026-01-07", 0.0, 25.0), ("2026-03-20", 0.0, 50.0)]


def test_blocking_check_takes_a_free_proration_as_the_discount_covering_the_new_price(warehouse, tmp_path):
    """sub_free_seats: a seat change invoiced at once on an invoice holding only its two 0.00 prorations (net
    of the item's 100.00-off coupon). The 0.00 charge for 4 seats, worth 42.71 at list price for Feb 26 ..
    Mar 11 (1,123,200 s of an average month's 2,629,746 s), is the evidence that the coupon covers the new price; had it charged 10.00, MRR 0 would be wrong,
    and the check names February"""
    check = next(c for c in marts_checks if next(iter(c.check_keys)).name == HISTORY_MATCHES_INVOICES)
    assert "sub_free_seats" not in call_check(check, warehouse).metadata["sample"].value
    copy = _changed_copy(warehouse, tmp_path, "charged_proration",
                         "update staging.stg_billing__invoice_lines set amount_minor = 1000 "
                         "where subscription_id = 'sub_free_seats' and is_proration and not is_proration_credit")
    result = call_check(check, copy)
    assert not result.passed
    assert "sub_free_seats" in result.metadata["sample"].value
    assert "no MRR in a month its paid invoice covers" in result.metadata["sample"].value
    with duckdb.connect(warehouse, read_only=True) as con:
        rows = con.execute("select cast(start_date as varchar), mrr, list_mrr, seats from marts.subscription_periods "
                           "where subscription_id = 'sub_free_seats' order by start_date").fetchall()
    assert [(d, float(m), float(lm), n) for d, m, lm, n in rows] == [("2026-01-11", 0.0, 75.0, 3),
                                                                      ("2026-02-26", 0.0, 100.0, 4)]


def test_a_free_proration_covers_its_own_item_only(warehouse, tmp_path):
    """the same history with a second item of 50.00 a month on every cycle invoice, never discounted, and a
    revenue history that (wrongly) keeps MRR at 0: the free proration shows the coupon covers the 4 seats'
    100.00, not the 150.00 list price, so February is named (expected 150.00, found 0.00) as January is"""
    check = next(c for c in marts_checks if next(iter(c.check_keys)).name == HISTORY_MATCHES_INVOICES)
    copy = _changed_copy(warehouse, tmp_path, "second_item", """
        insert into staging.stg_billing__invoice_lines
        select * replace (line_id || '_b' as line_id, 'p_50' as price_id, 1 as quantity, 5000 as amount_minor,
                          0 as discount_amount_minor, '[]' as discount_amounts, '[]' as discounts)
        from staging.stg_billing__invoice_lines
        where subscription_id = 'sub_free_seats' and not is_proration""",
                         "update marts.subscription_periods set list_mrr = list_mrr + 50 "
                         "where subscription_id = 'sub_free_seats'")
    assert ("2026-02-01", 150.0, 0.0) in [(m, e, f) for m, _, e, f in _free_seats_named(copy)]
    assert not call_check(check, copy).passed


@pytest.mark.parametrize(("duration", "ended", "named"), [
    # after the seat change (Feb 26), before February's read day (Feb 28): the free proration does not excuse
    # February, nor the cycle lines' 100.00 off March
    ("repeating", "2026-02-27", ["2026-02-01", "2026-03-01"]),
    # before January's read day: nor January's cycle line its 75.00 off
    ("repeating", "2026-01-20", ["2026-01-01", "2026-02-01", "2026-03-01"]),
    # still in force on March 31: a repeating discount excuses the months until its end
    ("repeating", "2026-04-01", []),
    # ending on a read day itself (Feb 28, at noon): not in force that day
    ("repeating", "2026-02-28", ["2026-02-01", "2026-03-01"]),
    # the day's first and last half hour (UTC): the read day is a UTC day
    ("repeating", "2026-03-31 23:30:00", ["2026-03-01"]),
    ("repeating", "2026-04-01 00:30:00", []),
    # a once coupon never lowers MRR
    ("once", None, ["2026-01-01", "2026-02-01", "2026-03-01"]),
])
def test_a_discount_no_longer_in_force_does_not_excuse_a_month_without_mrr(warehouse, tmp_path, duration, ended,
                                                                           named):
    """sub_free_seats as if its item's 100.00-off coupon had been ``duration``, ending on ``ended``
    (marts.discount_objects: the discount's start and end as the lists show it), and the revenue history
    (wrongly) at MRR 0 still: from the read day the discount has ended on, neither what it took off a cycle line
    nor a proration it took to 0 covers the list price, and the month is named (the check looked at neither's
    end, and named none of these months)"""
    end = f"timestamptz '{ended if ' ' in ended else ended + ' 12:00:00'}+00'" if ended else "null"
    copy = _changed_copy(warehouse, tmp_path, "ended_discount",
                         f"update marts.discount_objects set coupon_duration = '{duration}', discount_end = {end} "
                         "where discount_id = 'di_loyal_item'")
    expected = {"2026-01-01": 75.0, "2026-02-01": 100.0, "2026-03-01": 100.0}
    assert _free_seats_named(copy) == [(m, "no MRR in a month its paid invoice covers", expected[m], 0.0)
                                       for m in named]


@pytest.mark.parametrize(("once_minor", "loyal_minor", "loyal_percent", "named"), [
    # the once coupon first, the forever LOYAL100 (100.00 off) the rest: the line at 0 with a discount in force
    # that would take it all alone, MRR 0 right
    (2500, 5000, None, []),
    # the two leave 25.00 to pay: only what the one in force took counts, and January is named (the invoice's
    # 75.00 expected)
    (2500, 2500, None, [("2026-01-01", 75.0)]),
    # a once 100% coupon took it all, a forever 10% one (listed at 0) is in force but would leave 67.50: named
    (7500, 0, 10, [("2026-01-01", 75.0)]),
])
def test_a_once_coupon_applied_before_a_forever_one_that_covers_the_line(warehouse, tmp_path, once_minor,
                                                                         loyal_minor, loyal_percent, named):
    """sub_free_seats' first cycle line (75.00) with a once coupon applied before its forever 100.00-off one:
    Stripe applies them in order, so the forever one shows only what the once one left. A line its discounts
    took to 0 while one of them is in force counts whole (counting only the forever one's share named a
    right MRR of 0, and the check blocks the run)"""
    amounts = json.dumps([{"amount": once_minor, "discount": "di_first_once"},
                          {"amount": loyal_minor, "discount": "di_loyal_item"}])
    copy = _changed_copy(
        warehouse, tmp_path, "once_then_forever",
        "insert into marts.discount_objects by name select * replace ('di_first_once' as discount_id, "
        "'FIRST' as coupon_id, 'once' as coupon_duration, cast(null as timestamptz) as discount_end) "
        "from marts.discount_objects where discount_id = 'di_loyal_item'",
        f"update staging.stg_billing__invoice_lines set discount_amounts = '{amounts}', "
        f"discount_amount_minor = {once_minor + loyal_minor} "
        "where subscription_id = 'sub_free_seats' and not is_proration and period_start < '2026-02-01'",
        *([(f"update marts.discount_objects set coupon_id = 'TEN', percent_off = {loyal_percent}, "
            "amount_off = null where discount_id = 'di_loyal_item'")] if loyal_percent else []))
    got = _free_seats_named(copy)
    assert [(m, e) for m, _, e, _ in got] == named and all(f == 0 for *_, f in got)


def test_a_free_proration_of_an_item_no_line_names_a_discount_of_still_counts(warehouse, tmp_path):
    """sub_free_seats' Feb 26 prorations on a new subscription item (an item swap: the new item's own discount
    on no line yet, as a proration names the subscription's discounts, not its item's): no line of the item
    names a discount, so none can be out of force, and the free charge excuses February as before the in-force
    rule (which named this right MRR of 0)"""
    copy = _changed_copy(warehouse, tmp_path, "swapped_item",
                         "update staging.stg_billing__invoice_lines set subscription_item_id = 'si_swapped' "
                         "where subscription_id = 'sub_free_seats' and is_proration")
    assert _free_seats_named(copy) == []


def _discounts_of_every_month(sql: str) -> str:
    """the check with the discounts looked up for every month, as it did before (issue 18, session 28): it looks
    them up only for the months the history has at MRR 0 with a list price (`to_excuse`), and for the lines of
    their subscriptions (`excused_lines`)"""
    for name, every in (("to_excuse", "select subscription_id, month, read_day from recorded"),
                        ("excused_lines", "select * from lines")):
        start = sql.index(f"\n{name} as (\n") + len(f"\n{name} as (\n")
        sql = sql[:start] + "    " + every + sql[sql.index("\n),\n", start):]
    return sql


@pytest.mark.parametrize("tolerance", [0.01, 0.0, 0.5])
def test_discounts_looked_up_for_the_months_at_mrr_0_only_name_what_every_months_would(warehouse, tmp_path,
                                                                                      tolerance):
    """a history wrong in each way the check looks at (MRR 0 where a price was paid, with discounts that do not
    cover it; MRR and list MRR both 0; list prices 20% too high) is named row for row as with every month's
    discounts looked up, and the months at MRR 0 that the discounts excuse stay excused"""
    copy = _changed_copy(
        warehouse, tmp_path, "wrong_history",
        "update marts.subscription_periods set mrr = 0 "
        "where subscription_id in ('sub_up', 'sub_disc', 'sub_item_forever', 'sub_annual', 'sub_item_eur')",
        "update marts.subscription_periods set mrr = 0, list_mrr = 0 where subscription_id in ('sub_down', 'sub_once')",
        "update marts.subscription_periods set list_mrr = list_mrr * 1.2 where subscription_id = 'sub_cycle_down'")
    with duckdb.connect(copy, read_only=True) as con:
        con.execute("set TimeZone = 'UTC'")
        named = con.execute(history_check_sql(tolerance)).fetchall()
        reference = con.execute(_discounts_of_every_month(history_check_sql(tolerance))).fetchall()
    assert sorted(named, key=repr) == sorted(reference, key=repr)
    subscriptions = {row[0] for row in named}
    assert {"sub_up", "sub_disc", "sub_item_forever", "sub_item_eur", "sub_down", "sub_once", "sub_unknown"} <= subscriptions
    assert ("sub_cycle_down" in subscriptions) == (tolerance < 0.2)  # 20% too high
    # MRR 0 that a 100.00-off coupon covers; sub_free_seats only through its free proration, which counts at a
    # tolerance above 0
    assert not {"sub_free", "sub_free_up"} & subscriptions
    assert ("sub_free_seats" in subscriptions) == (tolerance == 0.0)


def test_a_period_splits_where_seats_change_though_mrr_stays_zero(warehouse):
    with duckdb.connect(warehouse, read_only=True) as con:
        rows = con.execute("select cast(start_date as varchar), mrr, list_mrr, seats from marts.subscription_periods "
                           "where subscription_id = 'sub_free' order by start_date").fetchall()
    assert [(d, float(m), float(lm), n) for d, m, lm, n in rows] == [("2026-01-07", 0.0, 75.0, 3),
                                                                      ("2026-03-07", 0.0, 50.0, 2)]


def test_seats_follow_a_change_at_the_cycles_instant(warehouse):
    """the Feb 9 renewal billed 3 seats and a proration from Feb 9 took them to 2: the seats are 2 from Feb 9,
    as the list price is (the renewal's 3 seats won before, as the larger line, so a seat decrease at a cycle
    kept the old seats until the next renewal, and the revenue-history check, comparing them with the event
    ledger's, named such subscriptions)"""
    with duckdb.connect(warehouse, read_only=True) as con:
        rows = con.execute("select cast(start_date as varchar), mrr, list_mrr, seats from marts.subscription_periods "
                           "where subscription_id = 'sub_cycle_down' order by start_date").fetchall()
        states = con.execute("select cast(changed_at as date), seats, list_mrr_minor from marts.subscription_states "
                             "where subscription_id = 'sub_cycle_down' and changed_at < '2026-03-01' "
                             "order by changed_at").fetchall()
    assert [(d, float(m), float(lm), n) for d, m, lm, n in rows] == [("2026-01-09", 75.0, 75.0, 3),
                                                                      ("2026-02-09", 50.0, 50.0, 2)]
    assert [(str(d), n, float(lm)) for d, n, lm in states] == [("2026-01-09", 3, 7500.0), ("2026-02-09", 2, 5000.0)]


def test_item_discounts_are_stretches_of_constant_discounts(warehouse):
    """marts.subscription_item_discounts: the LOYAL100 item coupon (100.00 off) one stretch from its start;
    the EUR20 item coupon (15.00 USD from its currency_options, repeating Jan 1 .. Mar 1) is one stretch, then none from its end; the item's own 10% forever one stretch;
    the item's once coupon a stretch where nothing counts"""
    with duckdb.connect(warehouse, read_only=True) as con:
        con.execute("set TimeZone = 'UTC'")
        rows = con.execute("""
            select subscription_id, strftime(valid_from, '%Y-%m-%d'), strftime(valid_to, '%Y-%m-%d'),
                   is_discount_end, discounts_in_force, coupon_id, discount_factor, discount_offset_minor
            from marts.subscription_item_discounts where source = 'invoices' order by 1, 2""").fetchall()
    assert rows == [
        ("sub_free_seats", "2026-01-11", None, False, 1, "LOYAL100", 1.0, 10000.0),
        ("sub_item_eur", "2026-01-01", "2026-03-01", False, 1, "EUR20", 1.0, 1500.0),
        ("sub_item_eur", "2026-03-01", None, True, 0, None, 1.0, 0.0),
        ("sub_item_forever", "2026-01-01", None, False, 1, "ITEM10", pytest.approx(0.9), 0.0),
        ("sub_item_once", "2026-01-01", None, False, 0, None, 1.0, 0.0),
    ]


def test_item_discount_check_names_a_stretch_that_would_misprice_an_item(warehouse, tmp_path):
    check = next(c for c in marts_checks if next(iter(c.check_keys)).name == ITEM_DISCOUNTS_VALID)
    assert call_check(check, warehouse).passed
    copy = _changed_copy(warehouse, tmp_path, "bad_factor",
                         "update marts.subscription_item_discounts set discount_factor = 1.5 "
                         "where subscription_id = 'sub_item_forever' and source = 'invoices'")
    result = call_check(check, copy)
    assert not result.passed
    assert result.metadata["violations"].value == 1
    assert "sub_item_forever" in result.metadata["sample"].value


def test_check_fails_when_history_is_missing(warehouse, tmp_path):
    """Events-only history (no invoice-derived states): every month the invoices cover is named."""
    import shutil

    copy = str(tmp_path / "events_only.duckdb")
    shutil.copy(warehouse, copy)
    with duckdb.connect(copy) as con:
        con.execute("delete from marts.subscription_states where source <> 'events'")
        build_marts(con, ("subscription_periods",))
    check = next(c for c in marts_checks if next(iter(c.check_keys)).name == HISTORY_MATCHES_INVOICES)
    result = call_check(check, copy)
    assert not result.passed
    assert result.metadata["violations"].value > 10
    assert "no MRR in a month its paid invoice covers" in result.metadata["sample"].value


def _boundary(as_of: str, past_due_from: str) -> tuple[float, float]:
    L = Ledger()
    c = L.account("A_open_spell")
    L.state("sub_open", c, "2026-01-01", [item(5000)], event_type="customer.subscription.created")
    L.state("sub_open", c, past_due_from, [item(5000)], status="past_due")
    con = duckdb.connect()
    L.write(con, as_of)
    build_marts(con)
    got = month_end_mrr(con)
    return got[("A_open_spell", "2026-03")], got[("A_open_spell", as_of[:7])]


def test_open_past_due_spell_is_delinquent_once_as_of_minus_start_reaches_30_days():
    # past due since Mar 31, data cut Apr 30: at the end of Apr 30 it has lasted more than 30 days
    # (its 31st end of day), so it is churned from Mar 31: March's month-end is already 0
    assert _boundary("2026-04-30", "2026-03-31") == (0, 0)
    # past due since Apr 1: 30 ends of day by Apr 30, not more than 30: still 50.00
    assert _boundary("2026-04-30", "2026-04-01") == (50.00, 50.00)


def test_event_discount_ids_are_valued_from_the_discounts_the_lists_show(tmp_path):
    """Stripe never expands an event's object: a customer.subscription.* event names its discounts, and each
    item's, by id. The ledger values them from the discounts the subscriptions list shows expanded
    (marts.discount_objects): 100.00 with its item's own 20.00 off forever, then 10% forever off the
    subscription: (100 - 20) x 0.90 = 72.00 in April. An id no list shows counts for nothing (50.00), and
    the warning check names it."""
    L = Ledger()
    B = Billing(L)
    B.price("p_100", 10000)
    B.price("p_50", 5000)
    pct10 = {"id": "di_pct10", "coupon": "PCT10", "duration": "forever", "percent_off": 10.0, "start": "2026-04-12"}
    item20 = {"id": "di_item20", "coupon": "ITEM20", "duration": "forever", "amount_off": 2000, "currency": "usd",
              "start": "2026-04-12"}
    B.sub("A_ids", "sub_ids", "2026-04-12", [("p_100", 1)], discounts=[pct10], item_discounts={"p_100": [item20]})
    L.state("sub_ids", "cus_A_ids", "2026-04-12", [{**item(10000), "discounts": ["di_item20"]}],
            discounts=["di_pct10"], event_type="customer.subscription.created")
    B.sub("A_id_nowhere", "sub_id_nowhere", "2026-04-12", [("p_50", 1)])
    L.state("sub_id_nowhere", "cus_A_id_nowhere", "2026-04-12", [item(5000)], discounts=["di_nowhere"],
            event_type="customer.subscription.created")
    path = str(tmp_path / "ids.duckdb")
    con = duckdb.connect(path)
    L.write(con, AS_OF)
    build_marts(con)
    got = month_end_mrr(con)
    con.close()
    assert (got[("A_ids", "2026-04")], got[("A_id_nowhere", "2026-04")]) == (72.00, 50.00)
    check = next(c for c in marts_checks if next(iter(c.check_keys)).name == EVENT_DISCOUNTS_KNOWN)
    result = call_check(check, path)
    assert not result.passed
    assert result.metadata["violations"].value == 1
    assert "di_nowhere" in result.metadata["sample"].value


def test_a_proration_credit_of_zero_is_still_a_credit(warehouse):
    """A proration's amount is net of the subscription's discounts, so a coupon that covers the old price leaves
    a credit of 0: Stripe still marks it a credit (the line it credits; a pending item's "Unused time on ..."
    description), and the old item goes. The sign of the amount took it for a charge: sub_zero_credit had 50 +
    50 + 100 list from Mar 16 (4 seats and 2 seats, counted twice), sub_pending_zero kept 2 seats and 50.00"""
    with duckdb.connect(warehouse, read_only=True) as con:
        rows = {sid: [(d, float(m), float(lm), n) for d, m, lm, n in con.execute(
            "select cast(start_date as varchar), mrr, list_mrr, seats from marts.subscription_periods "
            "where subscription_id = ? order by start_date", [sid]).fetchall()]
            for sid in ("sub_zero_credit", "sub_pending_zero")}
    assert rows["sub_zero_credit"] == [("2026-01-01", 0.0, 50.0, 2), ("2026-03-16", 40.0, 100.0, 4)]
    assert rows["sub_pending_zero"] == [("2025-12-15", 0.0, 20.0, 2), ("2026-02-20", 0.0, 10.0, 1)]
