"""Build a small landing folder (docs/LANDING.md layout) for the API-reader tests.

A handful of objects per entity, shaped like real vendor payloads (cs_kpis_tests/simulator/real_payloads), over two extract
days: a snapshot, then an increment that changes some objects and adds others (so the fake server's
merge by id matters). :func:`expected` gives the merged objects per entity. The folder is written by the
simulator's own writer (cs_kpis_tests/landing_builder.py, cs_kpis/simulator/landing.py).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from cs_kpis_tests.landing_builder import History, final_snapshot, write_landing

DAY1, DAY2 = "2025-06-01", "2025-06-02"
T0 = 1_748_736_000  # 2025-06-01T00:00:00Z

ACCOUNT_IDS = [f"001FAKE0000000{n:03d}A" for n in range(1, 6)]  # 18 chars
USER_IDS = [f"005FAKE0000000{n:03d}A" for n in range(1, 4)]


def _iso_z(ts: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sf_dt(ts: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


# ------------------------------------------------------------------------------------------------ stripe


def _customer(n: int, created: int, email: str | None = None) -> dict[str, Any]:
    return {
        "id": f"cus_T{n:04d}",
        "object": "customer",
        "address": None,
        "balance": 0,
        "created": created,
        "currency": "usd",
        "default_source": None,
        "delinquent": n == 3,
        "description": None,
        "email": email or f"billing{n}@example.com",
        "invoice_prefix": f"INV{n:04d}",
        "livemode": False,
        "metadata": {"salesforce_account_id": ACCOUNT_IDS[n - 1]} if n != 4 else {},
        "name": f"Customer {n}",
        "preferred_locales": [],
        "tax_exempt": "none",
    }


def _price(n: int, product: str, unit_amount: int, interval: str = "month") -> dict[str, Any]:
    return {
        "id": f"price_T{n:04d}",
        "object": "price",
        "active": True,
        "billing_scheme": "per_unit",
        "created": T0 - 90_000 + n,
        "currency": "usd",
        "livemode": False,
        "lookup_key": None,
        "metadata": {"plan_tier": ["starter", "growth", "enterprise"][n % 3]},
        "nickname": f"Plan {n}",
        "product": product,
        "recurring": {"interval": interval, "interval_count": 1, "meter": None, "usage_type": "licensed"},
        "tax_behavior": "unspecified",
        "tiers_mode": None,
        "type": "recurring",
        "unit_amount": unit_amount,
        "unit_amount_decimal": str(unit_amount),
    }


def _product(n: int) -> dict[str, Any]:
    return {
        "id": f"prod_T{n:04d}",
        "object": "product",
        "active": True,
        "created": T0 - 100_000 + n,
        "description": None,
        "livemode": False,
        "metadata": {},
        "name": f"Product {n}",
        "type": "service",
        "updated": T0 - 100_000 + n,
    }


def _coupon(n: int, **kw: Any) -> dict[str, Any]:
    base = {
        "id": f"COUPON{n}",
        "object": "coupon",
        "amount_off": None,
        "created": T0 - 80_000 + n,
        "currency": None,
        "duration": "repeating",
        "duration_in_months": 3,
        "livemode": False,
        "max_redemptions": None,
        "metadata": {},
        "name": f"Coupon {n}",
        "percent_off": 20.0,
        "redeem_by": None,
        "times_redeemed": 1,
        "valid": True,
    }
    base.update(kw)
    return base


def _subscription(n: int, customer: str, created: int, items: list[tuple[dict[str, Any], int]], **kw: Any):
    sub_id = f"sub_T{n:04d}"
    data = [
        {
            "id": f"si_T{n:02d}{i:02d}",
            "object": "subscription_item",
            "created": created,
            "current_period_end": created + 30 * 86400,
            "current_period_start": created,
            "discounts": [],
            "metadata": {},
            "price": price,
            "quantity": qty,
            "subscription": sub_id,
            "tax_rates": [],
        }
        for i, (price, qty) in enumerate(items)
    ]
    base = {
        "id": sub_id,
        "object": "subscription",
        "billing_cycle_anchor": created,
        "cancel_at": None,
        "cancel_at_period_end": False,
        "canceled_at": None,
        "cancellation_details": {"comment": None, "feedback": None, "reason": None},
        "collection_method": "charge_automatically",
        "created": created,
        "currency": "usd",
        "customer": customer,
        "discounts": [],
        "ended_at": None,
        "items": {
            "object": "list",
            "data": data,
            "has_more": False,
            "url": f"/v1/subscription_items?subscription={sub_id}",
        },
        "latest_invoice": None,
        "livemode": False,
        "metadata": {},
        "start_date": created,
        "status": "active",
        "trial_end": None,
        "trial_start": None,
    }
    base.update(kw)
    return base


def _invoice(n: int, customer: str, sub: str, created: int, lines: list[int], **kw: Any) -> dict[str, Any]:
    inv_id = f"in_T{n:04d}"
    data = [
        {
            "id": f"il_T{n:02d}{i:02d}",
            "object": "line_item",
            "amount": amount,
            "currency": "usd",
            "description": f"line {i}",
            "invoice": inv_id,
            "livemode": False,
            "metadata": {},
            "parent": {
                "type": "subscription_item_details",
                "subscription_item_details": {
                    "invoice_item": None,
                    "proration": i == 2,
                    "subscription": sub,
                    "subscription_item": f"si_T0{n}00",
                },
            },
            "period": {"end": created + 30 * 86400, "start": created},
            "pricing": {
                "type": "price_details",
                "price_details": {"price": "price_T0001", "product": "prod_T0001"},
            },
            "quantity": 1,
        }
        for i, amount in enumerate(lines)
    ]
    total = sum(lines)
    base = {
        "id": inv_id,
        "object": "invoice",
        "amount_due": total,
        "amount_paid": total,
        "amount_remaining": 0,
        "attempt_count": 1,
        "billing_reason": "subscription_cycle",
        "created": created,
        "currency": "usd",
        "customer": customer,
        "due_date": None,
        "lines": {"object": "list", "data": data, "has_more": False, "url": f"/v1/invoices/{inv_id}/lines"},
        "parent": {
            "type": "subscription_details",
            "subscription_details": {"metadata": {}, "subscription": sub},
        },
        "period_end": created,
        "period_start": created - 30 * 86400,
        "status": "paid",
        "status_transitions": {"finalized_at": created, "paid_at": created + 60},
        "subtotal": total,
        "total": total,
    }
    base.update(kw)
    return base


def _invoice_item(n: int, customer: str, sub: str, date: int, amount: int, quantity: int,
                  invoice: str | None = None) -> dict[str, Any]:
    """a proration invoice item as GET /v1/invoiceitems lists it (API 2025-03-31.basil)"""
    return {
        "id": f"ii_T{n:04d}", "object": "invoiceitem", "amount": amount, "currency": "usd", "customer": customer,
        "date": date, "description": "Unused time" if amount < 0 else "Remaining time", "discountable": False,
        "discounts": [], "invoice": invoice, "livemode": False, "metadata": {},
        "parent": {"type": "subscription_details",
                   "subscription_details": {"subscription": sub, "subscription_item": f"si_T0{n}00"}},
        "period": {"end": date + 20 * 86400, "start": date},
        "pricing": {"type": "price_details", "price_details": {"price": "price_T0001", "product": "prod_T0001"},
                    "unit_amount_decimal": str(amount // quantity)},
        "proration": True, "quantity": quantity, "tax_rates": [], "test_clock": None,
    }  # fmt: skip


def _event(n: int, type_: str, created: int, obj: dict[str, Any], prev: dict[str, Any] | None = None):
    data: dict[str, Any] = {"object": copy.deepcopy(obj)}
    if prev is not None:
        data["previous_attributes"] = prev
    return {
        "id": f"evt_T{n:04d}",
        "object": "event",
        "api_version": "2025-03-31.basil",
        "created": created,
        "data": data,
        "livemode": False,
        "pending_webhooks": 0,
        "request": {"id": None, "idempotency_key": None},
        "type": type_,
    }


def _billing() -> dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
    """entity -> (day-1 snapshot, day-2 increment)"""
    customers = [_customer(n, T0 - 50_000 + n * 100) for n in range(1, 5)]
    customers_d2 = [
        _customer(2, T0 - 50_000 + 200, email="new-billing2@example.com"),
        _customer(5, T0 + 3_600),
    ]
    products = [_product(n) for n in range(1, 4)]
    prices = [
        _price(1, "prod_T0001", 2000),
        _price(2, "prod_T0002", 50000, "year"),
        _price(3, "prod_T0003", 900),
    ]
    coupons = [_coupon(1), _coupon(2, percent_off=None, amount_off=500, currency="usd", duration="forever",
                                   duration_in_months=None, currency_options={"eur": {"amount_off": 450}}), _coupon(3, duration="once", duration_in_months=None)]  # fmt: skip
    discount = {
        "id": "di_T0001",
        "object": "discount",
        "coupon": coupons[0],
        "customer": "cus_T0001",
        "end": T0 + 90 * 86400,
        "start": T0 - 40_000,
        "subscription": "sub_T0001",
    }
    subs = [
        _subscription(1, "cus_T0001", T0 - 40_000, [(prices[0], 5)], discounts=[discount]),
        # three items: more than the fake's nested page size, so items.has_more must be followed
        _subscription(2, "cus_T0002", T0 - 39_000, [(prices[0], 10), (prices[1], 1), (prices[2], 3)]),
        _subscription(3, "cus_T0003", T0 - 38_000, [(prices[2], 2)], status="canceled",
                      canceled_at=T0 - 1_000, ended_at=T0 - 1_000),
        _subscription(4, "cus_T0004", T0 - 37_000, [(prices[0], 1)], status="trialing",
                      trial_start=T0 - 37_000, trial_end=T0 + 1_000_000),
    ]  # fmt: skip
    subs_d2 = [
        _subscription(2, "cus_T0002", T0 - 39_000, [(prices[0], 12), (prices[1], 1), (prices[2], 3)]),
        _subscription(5, "cus_T0005", T0 + 3_700, [(prices[0], 2)]),
    ]
    # an item's own discount (API 2025-03-31.basil: items.data[].discounts), on the third item, which the
    # fake serves only from /v1/subscription_items (nested page size 2), and on the line that bills it
    item_discount = {
        "id": "di_T0002",
        "object": "discount",
        "coupon": coupons[1],
        "customer": "cus_T0002",
        "end": None,
        "start": T0 - 39_000,
        "subscription": "sub_T0002",
        "subscription_item": "si_T0202",
    }
    for sub in (subs[1], subs_d2[0]):
        sub["items"]["data"][2]["discounts"] = [item_discount]
    invoices = [
        _invoice(1, "cus_T0001", "sub_T0001", T0 - 40_000, [10000]),
        _invoice(2, "cus_T0002", "sub_T0002", T0 - 39_000, [24000, 50000, 2700]),  # lines.has_more
        _invoice(3, "cus_T0003", "sub_T0003", T0 - 38_000, [1800], status="void", amount_paid=0),
    ]
    # the line of invoice 2 that bills the discounted item lists the item's discount and its amount
    invoices[1]["lines"]["data"][1] |= {"discounts": [item_discount],
                                        "discount_amounts": [{"amount": 500, "discount": "di_T0002"}]}
    invoices_d2 = [_invoice(4, "cus_T0005", "sub_T0005", T0 + 3_700, [4000], status="open", amount_paid=0,
                            amount_remaining=4000)]  # fmt: skip
    events = [
        _event(1, "customer.subscription.created", T0 - 40_000, subs[0]),
        _event(2, "invoice.paid", T0 - 39_900, invoices[0]),
        _event(3, "customer.subscription.deleted", T0 - 1_000, subs[2]),
        _event(4, "customer.updated", T0 - 900, customers[1]),  # a type the reader does not ask for
    ]
    events_d2 = [
        _event(5, "customer.subscription.updated", T0 + 3_000, subs_d2[0],
               {"items": {"data": [{"id": "si_T0200", "quantity": 10}]}}),
        _event(6, "customer.subscription.created", T0 + 3_700, subs_d2[1]),
        _event(7, "invoice.payment_failed", T0 + 3_800, invoices_d2[0]),
    ]  # fmt: skip
    return {
        "customers": (customers, customers_d2),
        "products": (products, []),
        "prices": (prices, []),
        "coupons": (coupons, []),
        "subscriptions": (subs, subs_d2),
        "invoices": (invoices, invoices_d2),
        "events": (events, events_d2),
        "invoiceitems": (
            # a seat decrease credited on the next invoice: pending (invoice null); an earlier one, billed
            [_invoice_item(1, "cus_T0002", "sub_T0002", T0 - 20_000, -4000, 10),
             _invoice_item(2, "cus_T0002", "sub_T0002", T0 - 20_000, 3200, 8),
             _invoice_item(3, "cus_T0001", "sub_T0001", T0 - 39_500, -500, 5, invoice="in_T0001")],
            [],
        ),
    }


# ------------------------------------------------------------------------------------------------ salesforce


def _attrs(obj: str, id_: str) -> dict[str, str]:
    return {"type": obj, "url": f"/services/data/v62.0/sobjects/{obj}/{id_}"}


def _account(n: int, stamp: int, **kw: Any) -> dict[str, Any]:
    id_ = ACCOUNT_IDS[n - 1]
    rec = {
        "attributes": _attrs("Account", id_),
        "Id": id_,
        "Name": f"Account {n}",
        "ParentId": ACCOUNT_IDS[0] if n == 2 else None,
        "OwnerId": USER_IDS[1],
        "CSM__c": USER_IDS[0],
        "Segment__c": ["SMB", "Mid-Market", "Enterprise"][n % 3],
        "Industry": "Software",
        "BillingCountry": "US",
        "Type": "Customer",
        "CSM_Sentiment__c": [None, "Green", "Yellow", "Red"][n % 4],
        "Product_Workspace_Id__c": f"ws_{n:04d}",
        "CreatedDate": _sf_dt(T0 - 200_000 + n),
        "LastModifiedDate": _sf_dt(stamp),
        "SystemModstamp": _sf_dt(stamp),
        "IsDeleted": False,
    }
    rec.update(kw)
    return rec


def _user(n: int, stamp: int) -> dict[str, Any]:
    id_ = USER_IDS[n - 1]
    return {
        "attributes": _attrs("User", id_),
        "Id": id_,
        "Name": f"User {n}",
        "Email": f"user{n}@vendor.example",
        "Title": "CSM" if n == 1 else "AE",
        "UserRoleName__c": "CSM" if n == 1 else "AE",
        "IsActive": n != 3,
        "CreatedDate": _sf_dt(T0 - 300_000),
        "SystemModstamp": _sf_dt(stamp),
    }


def _contact(n: int, stamp: int) -> dict[str, Any]:
    id_ = f"003FAKE0000000{n:03d}A"
    return {
        "attributes": _attrs("Contact", id_),
        "Id": id_,
        "AccountId": ACCOUNT_IDS[n - 1],
        "FirstName": f"First{n}",
        "LastName": f"Last{n}",
        "Email": f"contact{n}@customer{n}.example",
        "Title": "VP Ops",
        "Role__c": ["Champion", "Admin", None][n % 3],
        "Product_User_Id__c": f"usr_{n:04d}",
        "CreatedDate": _sf_dt(T0 - 150_000 + n),
        "SystemModstamp": _sf_dt(stamp),
        "IsDeleted": False,
    }


def _opportunity(n: int, stamp: int, **kw: Any) -> dict[str, Any]:
    id_ = f"006FAKE0000000{n:03d}A"
    rec = {
        "attributes": _attrs("Opportunity", id_),
        "Id": id_,
        "AccountId": ACCOUNT_IDS[n - 1],
        "Name": f"Renewal {n}",
        "Type": ["New Business", "Renewal", "Expansion"][n % 3],
        "StageName": "Closed Won",
        "IsClosed": True,
        "IsWon": True,
        "CloseDate": "2025-05-30",
        "Amount": 12000.0 * n,
        "CurrencyIsoCode": "USD",
        "OwnerId": USER_IDS[1],
        "CreatedDate": _sf_dt(T0 - 100_000 + n),
        "SystemModstamp": _sf_dt(stamp),
        "IsDeleted": False,
    }
    rec.update(kw)
    return rec


def _crm() -> dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
    return {
        "Account": (
            [_account(n, T0 - 10_000 + n * 100) for n in range(1, 5)],
            [
                _account(3, T0 + 5_000, CSM_Sentiment__c="Red"),
                _account(4, T0 + 5_100, IsDeleted=True),
                _account(5, T0 + 5_200),
            ],
        ),
        "User": ([_user(n, T0 - 20_000 + n) for n in range(1, 4)], []),
        "Contact": ([_contact(n, T0 - 15_000 + n) for n in range(1, 4)], [_contact(2, T0 + 6_000)]),
        "Opportunity": (
            [_opportunity(n, T0 - 12_000 + n) for n in range(1, 4)],
            [_opportunity(3, T0 + 7_000, StageName="Closed Lost", IsWon=False)],
        ),
    }


# ------------------------------------------------------------------------------------------------ zendesk


def _organization(n: int, updated: int) -> dict[str, Any]:
    return {
        "url": f"https://fake.zendesk.com/api/v2/organizations/{360000000000 + n}.json",
        "id": 360000000000 + n,  # past 2**31 on purpose
        "name": f"Account {n}",
        "shared_tickets": False,
        "shared_comments": False,
        "external_id": ACCOUNT_IDS[n - 1] if n != 5 else None,
        "created_at": _iso_z(T0 - 300_000 + n),
        "updated_at": _iso_z(updated),
        "domain_names": [f"customer{n}.example"],
        "details": None,
        "notes": None,
        "group_id": None,
        "tags": [],
        "organization_fields": {},
    }


def _ticket(n: int, updated: int, status: str = "open", score: str = "unoffered") -> dict[str, Any]:
    return {
        "url": f"https://fake.zendesk.com/api/v2/tickets/{n}.json",
        "id": n,
        "external_id": None,
        "via": {"channel": ["web", "email", "api"][n % 3], "source": {"from": {}, "to": {}, "rel": None}},
        "created_at": _iso_z(T0 - 60_000 + n),
        "updated_at": _iso_z(updated),
        "type": "incident" if n % 2 else "question",
        "subject": f"Ticket {n}",
        "priority": ["low", "normal", "high", "urgent"][n % 4],
        "status": status,
        "requester_id": 20014182 + n,
        "submitter_id": 20014182 + n,
        "assignee_id": 20014190,
        "organization_id": 360000000000 + (n % 5) + 1,
        "group_id": 20001662,
        "tags": ["billing"] if n % 2 else [],
        "custom_fields": [],
        "satisfaction_rating": {"score": score},
        "generated_timestamp": updated,
    }


def _ticket_metric(n: int, solved: int | None) -> dict[str, Any]:
    return {
        "url": f"https://fake.zendesk.com/api/v2/ticket_metrics/{26211100 + n}.json",
        "id": 26211100 + n,
        "ticket_id": n,
        "created_at": _iso_z(T0 - 60_000 + n),
        "updated_at": _iso_z(solved or T0 - 50_000),
        "group_stations": 1,
        "assignee_stations": 1,
        "reopens": n % 2,
        "replies": n,
        "solved_at": _iso_z(solved) if solved else None,
        "reply_time_in_minutes": {"calendar": 30 * n, "business": 20 * n},
        "full_resolution_time_in_minutes": {"calendar": 300 * n, "business": 200 * n}
        if solved
        else {"calendar": None, "business": None},
    }


def _rating(n: int, created: int, score: str) -> dict[str, Any]:
    return {
        "url": f"https://fake.zendesk.com/api/v2/satisfaction_ratings/{20001900 + n}.json",
        "id": 20001900 + n,
        "assignee_id": 20014190,
        "group_id": 20001662,
        "requester_id": 20014182 + n,
        "ticket_id": n,
        "score": score,
        "created_at": _iso_z(created),
        "updated_at": _iso_z(created),
        "comment": "Thanks!" if score == "good" else None,
    }


def _support() -> dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
    same = T0 - 5_000  # several organizations share one updated_at: pages must not lose or repeat any
    return {
        "organizations": (
            [
                _organization(1, same),
                _organization(2, same),
                _organization(3, same),
                _organization(4, T0 - 4_000),
            ],
            [_organization(2, T0 + 8_000), _organization(5, T0 + 8_100)],
        ),
        "tickets": (
            [_ticket(n, T0 - 30_000 + n * 10) for n in range(1, 5)],
            [
                _ticket(2, T0 + 9_000, "solved", "good"),
                _ticket(5, T0 + 9_100),
                _ticket(6, T0 + 9_200, "deleted"),
            ],
        ),
        "ticket_metrics": (
            [_ticket_metric(1, None), _ticket_metric(3, T0 - 20_000), _ticket_metric(4, None)],
            [_ticket_metric(2, T0 + 9_000), _ticket_metric(5, None)],
        ),
        "satisfaction_ratings": (
            [_rating(1, T0 - 25_000, "bad"), _rating(3, T0 - 24_000, "offered")],
            [_rating(2, T0 + 9_000, "good"), _rating(4, T0 + 9_300, "good")],
        ),
    }


# ------------------------------------------------------------------------------------------------ delighted


def _response(n: int, created: int, score: int, updated: int | None = None) -> dict[str, Any]:
    return {
        "id": str(100 + n),
        "person": str(5000 + n),
        "survey_type": "nps",
        "score": score,
        "comment": None if score > 8 else "slow support",
        "permalink": f"https://delighted.com/r/{100 + n}",
        "created_at": created,
        "updated_at": updated or created,
        "person_properties": {"salesforce_account_id": ACCOUNT_IDS[(n - 1) % 5], "Company": f"Account {n}"},
        "notes": [],
        "tags": [],
        "additional_answers": [],
    }


def _nps() -> dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
    return {
        "survey_responses": (
            [_response(n, T0 - 40_000 + n * 100, [10, 9, 3, 7][n - 1]) for n in range(1, 5)],
            [_response(3, T0 - 40_000 + 300, 6, updated=T0 + 10_000), _response(5, T0 + 10_100, 0)],
        )
    }


# ------------------------------------------------------------------------------------------------ writing

SYSTEMS = {"billing": _billing, "crm": _crm, "support": _support, "nps": _nps}


def history() -> History:
    """The two extract days as a history (an entity unchanged on day 2 has no increment folder)."""
    out: History = {DAY1: {}, DAY2: {}}
    for system, build in SYSTEMS.items():
        for entity, days in build().items():
            for day, objects in zip((DAY1, DAY2), days, strict=True):
                if objects or day == DAY1:
                    out[day][(system, entity)] = objects
    return out


def build_landing(landing: Path) -> Path:
    """Write the test landing folder under ``landing`` (through the simulator's writer) and return it."""
    return write_landing(landing, history())


def expected(system: str, entity: str) -> list[dict[str, Any]]:
    """The merged objects of one entity (snapshot, then increment; latest wins)."""
    return final_snapshot(history())[DAY2][(system, entity)]
