"""The tiny company of the files-reader tests: hand-made objects shaped like real vendor payloads.

``tiny_company()`` describes three extract days: a snapshot on day 1, then increments holding only the
objects that changed. cs_kpis_tests/landing_builder.py writes such a history through the simulator's own
writer (``write_landing``) and turns it into the single snapshot a vendor would export on the last day
(``final_snapshot``), which the incremental load must reproduce.
"""

from collections.abc import Iterable
from typing import Any

from cs_kpis_tests.landing_builder import History

DAYS = ("2026-01-01", "2026-01-02", "2026-01-03")


def sf_id(prefix: str, n: int) -> str:
    """An 18-character Salesforce id with the object's key prefix."""
    return f"{prefix}{n:012d}AAA"


def sf_ts(day: str, hour: int = 12) -> str:
    """A Salesforce datetime with the ``+0000`` offset."""
    return f"{day}T{hour:02d}:05:30.000+0000"


def unix(day: str, hour: int = 12) -> int:
    """Unix seconds of a day and hour, UTC."""
    from datetime import UTC, datetime

    return int(datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC).timestamp())


def account(n: int, day: str, *, owner: int = 1, segment: str = "SMB", **extra: Any) -> dict[str, Any]:
    return {
        "attributes": {"type": "Account", "url": f"/services/data/v62.0/sobjects/Account/{sf_id('001', n)}"},
        "Id": sf_id("001", n),
        "Name": f"Account {n}",
        "ParentId": None,
        "OwnerId": sf_id("005", owner),
        "CSM__c": sf_id("005", 2),
        "Segment__c": segment,
        "Industry": "Software",
        "BillingCountry": "US",
        "Type": "Customer",
        "CSM_Sentiment__c": "Green",
        "Product_Workspace_Id__c": f"ws_{n:05d}",
        "CreatedDate": sf_ts("2025-06-01"),
        "LastModifiedDate": sf_ts(day),
        "SystemModstamp": sf_ts(day),
        "IsDeleted": False,
        **extra,
    }


def user(n: int, day: str, role: str = "CSM") -> dict[str, Any]:
    return {
        "attributes": {"type": "User", "url": f"/services/data/v62.0/sobjects/User/{sf_id('005', n)}"},
        "Id": sf_id("005", n),
        "Name": f"User {n}",
        "Email": f"user{n}@example.com",
        "Title": role,
        "UserRoleName__c": role,
        "IsActive": True,
        "CreatedDate": sf_ts("2025-01-01"),
        "SystemModstamp": sf_ts(day),
    }


def contact(n: int, acct: int, day: str) -> dict[str, Any]:
    return {
        "attributes": {"type": "Contact", "url": f"/services/data/v62.0/sobjects/Contact/{sf_id('003', n)}"},
        "Id": sf_id("003", n),
        "AccountId": sf_id("001", acct),
        "FirstName": "Peter",
        "LastName": f"Gibbons{n}",
        "Email": f"c{n}@example.com",
        "Title": "Manager",
        "Role__c": "Champion",
        "Product_User_Id__c": f"u_{n:06d}",
        "CreatedDate": sf_ts("2025-06-02"),
        "SystemModstamp": sf_ts(day),
    }


def opportunity(
    n: int, acct: int, day: str, *, stage: str = "Prospecting", amount: float = 12000.0, currency: str = "USD"
) -> dict[str, Any]:
    return {
        "attributes": {
            "type": "Opportunity",
            "url": f"/services/data/v62.0/sobjects/Opportunity/{sf_id('006', n)}",
        },
        "Id": sf_id("006", n),
        "AccountId": sf_id("001", acct),
        "Name": f"Renewal {n}",
        "Type": "Renewal",
        "StageName": stage,
        "IsClosed": stage.startswith("Closed"),
        "IsWon": stage == "Closed Won",
        "CloseDate": "2026-03-31",
        "Amount": amount,
        "CurrencyIsoCode": currency,
        "OwnerId": sf_id("005", 1),
        "CreatedDate": sf_ts("2025-12-01"),
        "SystemModstamp": sf_ts(day),
    }


def customer(n: int, acct: int | None, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"cus_{n:014d}",
        "object": "customer",
        "name": f"Account {n}",
        "email": f"billing{n}@example.com",
        "currency": "usd",
        "created": unix("2025-06-01"),
        "delinquent": False,
        "livemode": False,
        "metadata": {"salesforce_account_id": sf_id("001", acct)} if acct else {},
        **extra,
    }


def price(n: int, amount: int = 2000, currency: str = "usd") -> dict[str, Any]:
    return {
        "id": f"price_{n:014d}",
        "object": "price",
        "active": True,
        "billing_scheme": "per_unit",
        "created": unix("2025-01-01"),
        "currency": currency,
        "product": f"prod_{n:014d}",
        "nickname": None,
        "recurring": {"interval": "month", "interval_count": 1, "usage_type": "licensed", "meter": None},
        "type": "recurring",
        "unit_amount": amount,
        "unit_amount_decimal": str(amount),
        "metadata": {"plan_tier": "pro"},
    }


def product(n: int) -> dict[str, Any]:
    return {
        "id": f"prod_{n:014d}",
        "object": "product",
        "active": True,
        "name": f"Plan {n}",
        "created": unix("2025-01-01"),
        "updated": unix("2025-01-01"),
        "metadata": {},
    }


def coupon(code: str, percent_off: float = 20.0) -> dict[str, Any]:
    return {
        "id": code,
        "object": "coupon",
        "percent_off": percent_off,
        "amount_off": None,
        "currency": None,
        "duration": "repeating",
        "duration_in_months": 3,
        "created": unix("2025-01-01"),
        "valid": True,
    }


def subscription(
    n: int,
    cust: int,
    day: str,
    *,
    quantity: int = 5,
    status: str = "active",
    currency: str = "usd",
    items: Iterable[tuple[int, int]] | None = None,
) -> dict[str, Any]:
    """A basil-shaped subscription with expanded prices; ``items`` is (item n, quantity) pairs."""
    items = list(items) if items is not None else [(n * 10 + 1, quantity)]
    start, end = unix("2026-01-01", 0), unix("2026-02-01", 0)
    return {
        "id": f"sub_{n:014d}",
        "object": "subscription",
        "customer": f"cus_{cust:014d}",
        "status": status,
        "created": unix("2025-06-01"),
        "start_date": unix("2025-06-01"),
        "currency": currency,
        "trial_start": None,
        "trial_end": None,
        "cancel_at_period_end": False,
        "cancel_at": None,
        "canceled_at": unix(day) if status == "canceled" else None,
        "ended_at": unix(day) if status == "canceled" else None,
        "items": {
            "object": "list",
            "has_more": False,
            "url": f"/v1/subscription_items?subscription=sub_{n:014d}",
            "data": [
                {
                    "id": f"si_{i:014d}",
                    "object": "subscription_item",
                    "created": unix("2025-06-01"),
                    "current_period_start": start,
                    "current_period_end": end,
                    "quantity": q,
                    "subscription": f"sub_{n:014d}",
                    "price": price(1),
                    "metadata": {},
                }
                for i, q in items
            ],
        },
        "discounts": [],
        "metadata": {},
        "livemode": False,
    }


def invoice(
    n: int,
    cust: int,
    sub: int,
    day: str,
    *,
    amount_due: int = 10000,
    status: str = "paid",
    currency: str = "usd",
) -> dict[str, Any]:
    start, end = unix("2026-01-01", 0), unix("2026-02-01", 0)
    return {
        "id": f"in_{n:014d}",
        "object": "invoice",
        "customer": f"cus_{cust:014d}",
        "status": status,
        "billing_reason": "subscription_cycle",
        "created": unix(day),
        "due_date": None,
        "period_start": start,
        "period_end": end,
        "currency": currency,
        "subtotal": amount_due,
        "total": amount_due,
        "amount_due": amount_due,
        "amount_paid": amount_due if status == "paid" else 0,
        "amount_remaining": 0 if status == "paid" else amount_due,
        "attempt_count": 1,
        "status_transitions": {"finalized_at": unix(day), "paid_at": unix(day) if status == "paid" else None},
        "parent": {"subscription_details": {"subscription": f"sub_{sub:014d}"}},
        "lines": {
            "object": "list",
            "has_more": False,
            "url": f"/v1/invoices/in_{n:014d}/lines",
            "data": [
                {
                    "id": f"il_{n:014d}",
                    "object": "line_item",
                    "amount": amount_due,
                    "currency": currency,
                    "period": {"start": start, "end": end},
                    "quantity": 5,
                    "pricing": {"price_details": {"price": "price_00000000000001"}},
                    "parent": {
                        "subscription_item_details": {
                            "subscription": f"sub_{sub:014d}",
                            "subscription_item": f"si_{sub * 10 + 1:014d}",
                            "proration": False,
                        }
                    },
                }
            ],
        },
    }


def stripe_event(
    n: int, day: str, sub: dict[str, Any], previous: dict[str, Any] | None = None
) -> dict[str, Any]:
    data = {"object": sub}
    if previous is not None:
        data["previous_attributes"] = previous
    return {
        "id": f"evt_{n:014d}",
        "object": "event",
        "type": "customer.subscription.updated",
        "created": unix(day),
        "api_version": "2025-03-31.basil",
        "data": data,
    }


def organization(n: int, acct: int | None, day: str) -> dict[str, Any]:
    return {
        "url": f"https://example.zendesk.com/api/v2/organizations/{n}.json",
        "id": 360000000000 + n,
        "name": f"Account {n}",
        "external_id": sf_id("001", acct) if acct else None,
        "domain_names": [f"acct{n}.example.com"],
        "created_at": "2025-06-01T10:00:00Z",
        "updated_at": f"{day}T10:00:00Z",
        "tags": [],
    }


def ticket(
    n: int, org: int, day: str, *, status: str = "open", priority: Any = "normal", **extra: Any
) -> dict[str, Any]:
    return {
        "url": f"https://example.zendesk.com/api/v2/tickets/{n}.json",
        "id": 5000000000 + n,
        "external_id": None,
        "via": {"channel": "web", "source": {"from": {}, "to": {}, "rel": None}},
        "created_at": "2025-12-30T09:00:00Z",
        "updated_at": f"{day}T11:00:00Z",
        "type": "incident",
        "subject": f"Ticket {n}",
        "priority": priority,
        "status": status,
        "requester_id": 20014182,
        "submitter_id": 20014182,
        "assignee_id": 20014183,
        "organization_id": 360000000000 + org,
        "group_id": 20001662,
        "tags": ["billing"],
        "custom_fields": [{"id": 20015156, "value": None}],
        "satisfaction_rating": {"score": "unoffered"},
        **extra,
    }


def ticket_metric(n: int, day: str, solved: bool = False) -> dict[str, Any]:
    return {
        "id": 7000000000 + n,
        "ticket_id": 5000000000 + n,
        "created_at": "2025-12-30T09:00:00Z",
        "updated_at": f"{day}T11:00:00Z",
        "solved_at": f"{day}T11:00:00Z" if solved else None,
        "reopens": 0,
        "replies": 2,
        "reply_time_in_minutes": {"calendar": 46, "business": 46},
        "full_resolution_time_in_minutes": {"calendar": 2391, "business": 737},
    }


def satisfaction_rating(n: int, day: str, score: str = "good") -> dict[str, Any]:
    return {
        "id": 8000000000 + n,
        "ticket_id": 5000000000 + n,
        "score": score,
        "comment": "Thanks",
        "created_at": f"{day}T12:00:00Z",
        "updated_at": f"{day}T12:00:00Z",
    }


def survey_response(n: int, acct: int, day: str, score: int = 9) -> dict[str, Any]:
    return {
        "id": str(100000 + n),
        "person": str(200000 + n),
        "survey_type": "nps",
        "score": score,
        "comment": "Great",
        "permalink": f"https://delighted.com/r/{n}",
        "created_at": unix(day),
        "updated_at": unix(day),
        "person_properties": {"salesforce_account_id": sf_id("001", acct), "Company": f"Account {acct}"},
    }


def segment_event(n: int, day: str, *, kind: str = "track", ws: int = 1, user_n: int = 1) -> dict[str, Any]:
    ts = f"{day}T10:{n % 60:02d}:00.000Z"
    event = {
        "type": kind,
        "messageId": f"ajs-{n:032d}",
        "userId": f"u_{user_n:06d}",
        "timestamp": ts,
        "originalTimestamp": ts,
        "sentAt": ts,
        "receivedAt": ts,
        "context": {"library": {"name": "analytics.js", "version": "2.11.1"}},
    }
    if kind == "track":
        event.update(event="Dashboard Viewed", properties={"title": "Usage"})
        event["context"]["groupId"] = f"ws_{ws:05d}"
    elif kind == "identify":
        event["traits"] = {"email": f"u{user_n}@example.com"}
    else:
        event.update(groupId=f"ws_{ws:05d}", traits={"name": f"Account {ws}"})
    return event


def tiny_company() -> History:
    """Three extract days of a two-account company: snapshot, then two increments with changes."""
    d1, d2, d3 = DAYS
    sub1_v2 = subscription(1, 1, d2, items=[(11, 8)])
    return {
        d1: {
            ("crm", "Account"): [account(1, d1), account(2, d1, segment="Mid-Market")],
            ("crm", "User"): [user(1, d1, "AE"), user(2, d1)],
            ("crm", "Contact"): [contact(1, 1, d1), contact(2, 2, d1)],
            ("crm", "Opportunity"): [opportunity(1, 1, d1)],
            ("billing", "customers"): [customer(1, 1), customer(2, 2)],
            ("billing", "products"): [product(1)],
            ("billing", "prices"): [price(1)],
            ("billing", "coupons"): [coupon("WELCOME20")],
            ("billing", "subscriptions"): [
                subscription(1, 1, d1, items=[(11, 5), (12, 1)]),
                subscription(2, 2, d1),
            ],
            ("billing", "invoices"): [invoice(1, 1, 1, d1), invoice(2, 2, 2, d1, status="open")],
            ("billing", "events"): [stripe_event(1, d1, subscription(1, 1, d1))],
            ("support", "organizations"): [organization(1, 1, d1), organization(2, None, d1)],
            ("support", "tickets"): [ticket(1, 1, d1), ticket(2, 2, d1)],
            ("support", "ticket_metrics"): [ticket_metric(1, d1), ticket_metric(2, d1)],
            ("support", "satisfaction_ratings"): [satisfaction_rating(1, d1)],
            ("nps", "survey_responses"): [survey_response(1, 1, d1), survey_response(2, 2, d1, score=4)],
        },
        d2: {
            ("crm", "Account"): [account(1, d2, owner=3)],
            ("crm", "User"): [user(3, d2, "AE")],
            ("crm", "Opportunity"): [opportunity(1, 1, d2, stage="Negotiation")],
            ("billing", "subscriptions"): [sub1_v2],
            ("billing", "invoices"): [invoice(2, 2, 2, d2)],
            ("billing", "events"): [stripe_event(2, d2, sub1_v2, {"items": {"data": []}})],
            ("support", "tickets"): [ticket(1, 1, d2, status="solved")],
            ("support", "ticket_metrics"): [ticket_metric(1, d2, solved=True)],
            ("nps", "survey_responses"): [survey_response(3, 1, d2, score=10)],
        },
        d3: {
            ("crm", "Account"): [account(2, d3, segment="Enterprise"), account(3, d3)],
            ("billing", "customers"): [customer(3, 3)],
            ("billing", "subscriptions"): [subscription(2, 2, d3, status="canceled")],
            ("support", "organizations"): [organization(3, 3, d3)],
            ("support", "tickets"): [ticket(3, 3, d3)],
            ("nps", "survey_responses"): [survey_response(2, 2, d3, score=6)],
        },
    }


def tiny_events(day: str, start: int, count: int) -> list[dict[str, Any]]:
    """``count`` Segment events (track, with an identify and a group) numbered from ``start``."""
    kinds = ["identify", "group"] + ["track"] * max(count - 2, 0)
    return [
        segment_event(start + i, day, kind=kinds[i % len(kinds)] if i < 2 else "track", ws=1 + i % 2)
        for i in range(count)
    ]
