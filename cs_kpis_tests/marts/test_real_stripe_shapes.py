"""Stripe shapes real accounts have and the demo company makes only rarely, worked out by hand.

- several discounts on one subscription, and discounts on one item: item discounts first, then the
  subscription's, each list in its order, each applied to what the ones before it left;
- an amount_off coupon has its own currency: it counts only on a subscription in that currency (Stripe
  does not apply it to another), or in a currency its ``currency_options`` give an amount for (read from the
  coupons list, expanded: a discount's own coupon never carries them);
- events of one subscription in the same second are ordered by type (created, updated, deleted), not by
  their random ids, and leave one state per second;
- prices that are not a whole number of cents per unit: graduated and volume tiers (their tiers come from
  the prices list, expanded), unit_amount_decimal (fractions of a cent) and transform_quantity (packs).

Both paths are tested: the event ledger (a ledger starting on Jan 1) and the history rebuilt from invoices
and the subscriptions list (a ledger starting on Apr 10). The data runs to 2026-04-30.
"""

import json

import duckdb
import pytest

from .billing_fixtures import Ledger, build_marts, coupon, item, month_end_mrr, ts
from .test_history_from_invoices import AS_OF, MONTHS, Billing, expanded

CREATED = "customer.subscription.created"


def _discount(did: str, duration: str, percent_off: float | None = None, amount_off: int | None = None,
              currency: str | None = None, end: str | None = None) -> dict:
    return {"id": did, "object": "discount", "end": ts(end) if end else None, "coupon": {
        "id": did.upper(), "duration": duration, "percent_off": percent_off, "amount_off": amount_off,
        "currency": currency}}


GRADUATED = [{"up_to": 10, "unit_amount": 2500, "unit_amount_decimal": "2500", "flat_amount": None},
             {"up_to": 50, "unit_amount": 2000, "unit_amount_decimal": "2000", "flat_amount": None},
             {"up_to": None, "unit_amount": 1500, "unit_amount_decimal": "1500", "flat_amount": None}]
VOLUME = [{"up_to": 20, "unit_amount": 2600, "flat_amount": 0},
          {"up_to": None, "unit_amount": 2200, "flat_amount": 5000, "flat_amount_decimal": "5000"}]


def listed_price(L: Ledger, pid: str, unit: int | None = None, tiers_mode: str | None = None, tiers=None,
                 decimal: float | None = None, packs: tuple[int, str] | None = None) -> None:
    """a price as GET /v1/prices?expand[]=data.tiers lists it (staging columns)"""
    L.tables["stg_billing__prices"].append({
        "price_id": pid, "plan_tier": "growth", "price_name": pid, "unit_amount_minor": unit, "interval": "month",
        "interval_count": 1, "usage_type": "licensed", "price_type": "recurring",
        "billing_scheme": "tiered" if tiers_mode else "per_unit", "tiers_mode": tiers_mode,
        "tiers": json.dumps(tiers) if tiers else None, "unit_amount_decimal": decimal,
        "transform_divide_by": packs[0] if packs else None, "transform_round": packs[1] if packs else None})


def priced_item(pid: str, quantity: int, tiered: bool = False, unit: int | None = None,
                decimal: str | None = None, packs: tuple[int, str] | None = None) -> dict:
    """an item as an event carries it: the price without its tiers (Stripe includes them only on request)"""
    it = item(unit, quantity)
    it["price"] |= {"id": pid, "billing_scheme": "tiered" if tiered else "per_unit", "unit_amount_decimal": decimal,
                    "transform_quantity": {"divide_by": packs[0], "round": packs[1]} if packs else None}
    return it


def event_scenarios() -> Ledger:
    L = Ledger()
    listed_price(L, "p_grad", tiers_mode="graduated", tiers=GRADUATED)
    listed_price(L, "p_vol", tiers_mode="volume", tiers=VOLUME)
    # graduated, 12 seats: 10 x 25.00 + 2 x 20.00 = 290.00
    c = L.account("E_graduated")
    L.state("sub_grad", c, "2026-01-01", [priced_item("p_grad", 12, tiered=True)], event_type=CREATED)
    # volume, 25 seats: all at the second tier, 25 x 22.00 + 50.00 flat = 600.00; down to 18 on Feb 10:
    # all at the first tier, 18 x 26.00 = 468.00
    c = L.account("E_volume")
    L.state("sub_vol", c, "2026-01-01", [priced_item("p_vol", 25, tiered=True)], event_type=CREATED)
    L.state("sub_vol", c, "2026-02-10", [priced_item("p_vol", 18, tiered=True)])
    # unit_amount_decimal 2499.5 (fractions of a cent; unit_amount null), 3 seats: 7,498.5 cents = 74.99
    c = L.account("E_decimal")
    L.state("sub_dec", c, "2026-01-01", [priced_item("p_dec", 3, decimal="2499.5")], event_type=CREATED)
    # 120.00 a pack of 5, 7 seats: 2 packs (round up) = 240.00; rounded down, 1 pack = 120.00
    c = L.account("E_packs_up")
    L.state("sub_up", c, "2026-01-01", [priced_item("p_up", 7, unit=12000, packs=(5, "up"))], event_type=CREATED)
    c = L.account("E_packs_down")
    L.state("sub_down", c, "2026-01-01", [priced_item("p_dn", 7, unit=12000, packs=(5, "down"))],
            event_type=CREATED)
    # two subscription discounts: 10% forever, then 25% repeating until Mar 10 (no event then):
    # 100.00 x 0.90 x 0.75 = 67.50 until Mar 9, 90.00 from Mar 10
    c = L.account("E_stacked")
    L.state("sub_stacked", c, "2026-01-01", [item(10000)], event_type=CREATED,
            discounts=[_discount("di_p10", "forever", 10.0), _discount("di_r25", "repeating", 25.0, end="2026-03-10")])
    # the order matters when an amount_off is in the list: (200.00 - 50.00) x 0.90 = 135.00, not
    # 200.00 x 0.90 - 50.00 = 130.00
    c = L.account("E_order")
    L.state("sub_order", c, "2026-01-01", [item(20000)], event_type=CREATED,
            discounts=[_discount("di_a50", "forever", amount_off=5000, currency="usd"),
                       _discount("di_p10b", "forever", 10.0)])
    # an item's own discount comes first: item 1 is 100.00 at 50% off = 50.00, item 2 is 40.00; then the
    # subscription's 10.00 off: 50.00 + 40.00 - 10.00 = 80.00. A once coupon on item 2 never counts
    c = L.account("E_item")
    first = item(10000) | {"discounts": [_discount("di_item50", "forever", 50.0)]}
    second = item(4000, tier="addon") | {"discounts": [_discount("di_item_once", "once", 100.0)]}
    L.state("sub_item", c, "2026-01-01", [first, second], event_type=CREATED,
            discounts=[_discount("di_a10", "forever", amount_off=1000, currency="usd")])
    # an amount_off coupon in EUR on a USD subscription cannot apply (Stripe refuses it): 100.00
    c = L.account("E_foreign")
    L.state("sub_foreign", c, "2026-01-01", [item(10000)], event_type=CREATED,
            discounts=[coupon("forever", amount_off=2000, currency="eur")])
    # a EUR subscription with a USD 20.00-off coupon whose currency_options (coupons list) give 15.00 in EUR:
    # 100.00 - 15.00 = 85.00 EUR (at the fixture's rate of 1.0). The event's coupon carries no options
    c = L.account("E_currency_options")
    L.state("sub_options", c, "2026-01-01", [item(10000)], event_type=CREATED, currency="eur",
            discounts=[_discount("di_loyal", "forever", amount_off=2000, currency="usd")])
    _loyal_coupon(L, "DI_LOYAL")
    # created (status incomplete) and updated to active in the same second, the update's id sorting first:
    # by type the active state is the one in force: 30.00 from Jan 1
    c = L.account("E_same_second")
    L.state("sub_same", c, "2026-01-01", [item(3000)], status="incomplete", event_type=CREATED, event_id="evt_zzzz")
    L.state("sub_same", c, "2026-01-01", [item(3000)], event_id="evt_aaaa")
    # updated and deleted in the same second on Mar 5, the deletion's id sorting first: it ended then;
    # 45.00 in January and February, 0 from March
    c = L.account("E_same_end")
    L.state("sub_same_end", c, "2026-01-01", [item(4500)], event_type=CREATED)
    L.state("sub_same_end", c, "2026-03-05", [item(4500)], status="canceled", ended="2026-03-05",
            event_type="customer.subscription.deleted", event_id="evt_aaab")
    L.state("sub_same_end", c, "2026-03-05", [item(4500)], cancel_at_period_end=True, event_id="evt_zzzy")
    # the last event loaded is on Apr 20 (a discount's end is placed only up to it)
    c = L.account("E_late")
    L.state("sub_late", c, "2026-04-20", [item(1000)], event_type=CREATED)
    return L


EVENT_EXPECTED = {  # month-end MRR, USD: January, February, March, April
    "E_stacked": (67.50, 67.50, 90.00, 90.00),
    "E_order": (135.00, 135.00, 135.00, 135.00),
    "E_item": (80.00, 80.00, 80.00, 80.00),
    "E_foreign": (100.00, 100.00, 100.00, 100.00),
    "E_currency_options": (85.00, 85.00, 85.00, 85.00),
    "E_same_second": (30.00, 30.00, 30.00, 30.00),
    "E_same_end": (45.00, 45.00, 0, 0),
    "E_late": (0, 0, 0, 10.00),
    "E_graduated": (290.00, 290.00, 290.00, 290.00),
    "E_volume": (600.00, 468.00, 468.00, 468.00),
    "E_decimal": (74.99, 74.99, 74.99, 74.99),
    "E_packs_up": (240.00, 240.00, 240.00, 240.00),
    "E_packs_down": (120.00, 120.00, 120.00, 120.00),
}


def invoice_scenarios() -> Ledger:
    L = Ledger()
    B = Billing(L)
    c = L.account("A_evt")
    L.state("sub_evt", c, "2026-04-10", [item(3000)], event_type=CREATED)
    B.price("p_100", 10000)
    # the invoices list two discounts: 10% forever and 25% repeating Jan 1 .. Mar 1:
    # 100.00 x 0.90 x 0.75 = 67.50 in January and February, 90.00 from Mar 1
    p10 = {"id": "di_p10", "coupon": "P10", "duration": "forever", "percent_off": 10.0, "start": "2026-01-01"}
    r25 = {"id": "di_r25", "coupon": "R25", "duration": "repeating", "percent_off": 25.0, "start": "2026-01-01",
           "end": "2026-03-01"}
    B.sub("A_inv_stacked", "sub_inv_stacked", "2026-01-01", [("p_100", 1)])
    B.monthly("sub_inv_stacked", "p_100", 1, 10000, ["2026-01-01", "2026-02-01"], discounts=[p10, r25])
    B.monthly("sub_inv_stacked", "p_100", 1, 10000, ["2026-03-01", "2026-04-01"], discounts=[p10])
    _listed(L, [p10])
    # 20.00 off in USD counts; 20.00 off in EUR cannot apply to a USD subscription: 80.00
    usd = {"id": "di_usd", "coupon": "USD20", "duration": "forever", "amount_off": 2000, "currency": "usd",
           "start": "2026-01-01"}
    eur = {"id": "di_eur", "coupon": "EUR20", "duration": "forever", "amount_off": 2000, "currency": "eur",
           "start": "2026-01-01"}
    B.sub("A_inv_currency", "sub_inv_currency", "2026-01-01", [("p_100", 1)])
    B.monthly("sub_inv_currency", "p_100", 1, 10000, ["2026-01-01", "2026-02-01", "2026-03-01", "2026-04-01"],
              discounts=[usd, eur])
    _listed(L, [usd, eur])
    # a EUR subscription whose invoices list a USD 20.00-off coupon; the coupons list gives it 15.00 in EUR
    # (currency_options): 100.00 - 15.00 = 85.00. The same coupon shown only by the subscriptions list today
    # on another EUR subscription: 100.00 until the ledger starts on Apr 10, 85.00 from then
    loyal = {"id": "di_loyal", "coupon": "LOYAL", "duration": "forever", "amount_off": 2000, "currency": "usd",
             "start": "2026-01-01"}
    _loyal_coupon(L, "LOYAL")
    B.sub("A_inv_options", "sub_inv_options", "2026-01-01", [("p_100", 1)])
    L.tables["stg_billing__subscriptions"][-1]["currency"] = "EUR"
    B.monthly("sub_inv_options", "p_100", 1, 10000, ["2026-01-01", "2026-02-01", "2026-03-01", "2026-04-01"],
              discounts=[loyal])
    _listed(L, [loyal])
    B.sub("A_list_options", "sub_list_options", "2026-01-01", [("p_100", 1)])
    L.tables["stg_billing__subscriptions"][-1]["currency"] = "EUR"
    B.monthly("sub_list_options", "p_100", 1, 10000, ["2026-01-01", "2026-02-01", "2026-03-01"])
    _listed(L, [loyal | {"id": "di_loyal2", "start": "2026-04-01"}])
    # the subscriptions list (no event mentions it) shows two discounts today: 10% forever and 50.00 off
    # forever on 300.00: (300.00 x 0.90) - 50.00 = 220.00 from the ledger's start; the invoices before
    # listed only the 10%: 270.00
    B.price("p_300", 30000)
    B.sub("A_list_stacked", "sub_list_stacked", "2026-01-01", [("p_300", 1)])
    p10b = p10 | {"id": "di_p10b"}
    a50 = {"id": "di_a50", "coupon": "A50", "duration": "forever", "amount_off": 5000, "currency": "usd",
           "start": "2026-04-01"}
    B.monthly("sub_list_stacked", "p_300", 1, 30000, ["2026-01-01", "2026-02-01", "2026-03-01"], discounts=[p10b])
    _listed(L, [p10b, a50])
    # the same prices on the invoice path: the lines say price and quantity, the prices list the tiers
    listed_price(L, "p_grad", tiers_mode="graduated", tiers=GRADUATED)
    listed_price(L, "p_vol", tiers_mode="volume", tiers=VOLUME)
    listed_price(L, "p_dec", decimal=2499.5)
    listed_price(L, "p_up", unit=12000, packs=(5, "up"))
    # graduated, 12 seats: 290.00; 60 seats from Mar 1: 10 x 25 + 40 x 20 + 10 x 15 = 1,200.00
    B.sub("A_inv_graduated", "sub_inv_grad", "2026-01-01", [("p_grad", 60)])
    _cycles(B, "sub_inv_grad", "p_grad", 12, 29000, ["2026-01-01", "2026-02-01"])
    _cycles(B, "sub_inv_grad", "p_grad", 60, 120000, ["2026-03-01", "2026-04-01"])
    # volume, 25 seats: 600.00
    B.sub("A_inv_volume", "sub_inv_vol", "2026-01-01", [("p_vol", 25)])
    _cycles(B, "sub_inv_vol", "p_vol", 25, 60000, ["2026-01-01", "2026-02-01", "2026-03-01", "2026-04-01"])
    # 3 x 2499.5 cents: 74.99; 7 seats in packs of 5, rounded up: 240.00
    B.sub("A_inv_decimal", "sub_inv_dec", "2026-01-01", [("p_dec", 3)])
    _cycles(B, "sub_inv_dec", "p_dec", 3, 7499, ["2026-01-01", "2026-02-01", "2026-03-01", "2026-04-01"])
    B.sub("A_inv_packs", "sub_inv_packs", "2026-01-01", [("p_up", 7)])
    _cycles(B, "sub_inv_packs", "p_up", 7, 24000, ["2026-01-01", "2026-02-01", "2026-03-01", "2026-04-01"])
    return L


def _cycles(B: Billing, sid: str, pid: str, qty: int, amount: int, firsts: list[str]) -> None:
    """paid monthly cycle invoices whose line bills ``qty`` of the price for ``amount`` (what Stripe charged)"""
    for d in firsts:
        y, m = int(d[:4]), int(d[5:7])
        end = f"{y + (m == 12)}-{m % 12 + 1:02d}-{d[8:]}"
        B.invoice(sid, d, [(pid, qty, d, end, amount, False)])


def _loyal_coupon(L: Ledger, coupon_id: str) -> None:
    """the coupons list's entry (GET /v1/coupons?expand[]=data.currency_options): 20.00 off in USD, 15.00 in EUR"""
    L.tables["stg_billing__coupons"].append({
        "coupon_id": coupon_id, "duration": "forever", "currency": "USD", "amount_off_minor": 2000,
        "currency_options": json.dumps({"eur": {"amount_off": 1500}})})


def _listed(L: Ledger, discounts: list[dict]) -> None:
    """the discounts the subscriptions list shows on the last subscription (expanded, in order)"""
    L.tables["stg_billing__subscriptions"][-1]["discounts"] = json.dumps([expanded(d) for d in discounts])


INVOICE_EXPECTED = {
    "A_inv_stacked": (67.50, 67.50, 90.00, 90.00),
    "A_inv_currency": (80.00, 80.00, 80.00, 80.00),
    "A_inv_options": (85.00, 85.00, 85.00, 85.00),
    "A_list_options": (100.00, 100.00, 100.00, 85.00),
    "A_list_stacked": (270.00, 270.00, 270.00, 220.00),
    "A_inv_graduated": (290.00, 290.00, 1200.00, 1200.00),
    "A_inv_volume": (600.00, 600.00, 600.00, 600.00),
    "A_inv_decimal": (74.99, 74.99, 74.99, 74.99),
    "A_inv_packs": (240.00, 240.00, 240.00, 240.00),
}


def _build(tmp_path_factory, name, ledger) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(tmp_path_factory.mktemp(name) / "wh.duckdb"))
    ledger.write(con, AS_OF)
    build_marts(con)
    return con


@pytest.fixture(scope="module")
def events_wh(tmp_path_factory):
    return _build(tmp_path_factory, "shapes_events", event_scenarios())


@pytest.fixture(scope="module")
def invoices_wh(tmp_path_factory):
    return _build(tmp_path_factory, "shapes_invoices", invoice_scenarios())


@pytest.mark.parametrize("account", sorted(EVENT_EXPECTED))
def test_event_ledger_month_end_mrr(events_wh, account):
    got = month_end_mrr(events_wh)
    assert tuple(got[(account, m)] for m in MONTHS) == EVENT_EXPECTED[account]


@pytest.mark.parametrize("account", sorted(INVOICE_EXPECTED))
def test_history_month_end_mrr(invoices_wh, account):
    got = month_end_mrr(invoices_wh)
    assert tuple(got[(account, m)] for m in MONTHS) == INVOICE_EXPECTED[account]


def test_same_second_events_leave_one_state_per_second(events_wh):
    # the ledger's grain (subscription_id, changed_at) holds, and the state kept is the later type
    dupes = events_wh.execute("""select subscription_id, changed_at, count(*) from marts.subscription_states
                                 group by all having count(*) > 1""").fetchall()
    assert dupes == []
    kept = events_wh.execute("""select event_type, status from marts.subscription_states
                                where subscription_id = 'sub_same_end' order by changed_at""").fetchall()
    assert kept == [(CREATED, "active"), ("customer.subscription.deleted", "canceled")]


def test_discount_end_is_a_state_of_its_own(events_wh):
    # Mar 10: the 25% discount ends with no event; the ledger adds the state, list MRR unchanged
    rows = events_wh.execute("""select event_type, round(mrr_minor, 6), coupon_id from marts.subscription_states
                                where subscription_id = 'sub_stacked' order by changed_at""").fetchall()
    assert rows == [(CREATED, 6750.0, "DI_P10"), ("discount.end", 9000.0, "DI_P10")]
