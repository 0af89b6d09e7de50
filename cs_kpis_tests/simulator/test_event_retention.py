"""Stripe events as a real account keeps them: the last 30 days before the snapshot, then each day's own.

The landing files and the fake vendor server (which serves the same landing folder, honouring
``created[gte]``) both hold only that window; ``event_retention_days=0`` keeps the whole history.
Everything else Stripe keeps for ever (subscriptions, invoices) is the same either way.
"""

import datetime as dt
import json
import urllib.request
from pathlib import Path

import pytest

from cs_kpis.simulator import generate
from cs_kpis.sources.billing import api as stripe
from cs_kpis_tests.fakes import vendor_server as fake
from cs_kpis_tests.fakes.vendor_server import serve_landing

FAST = {"backoff_base": 0.01, "max_retries": 3, "max_retry_delay": 5.0, "timeout": 10.0}


def _day_start(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())


def _bodies(landing: Path, entity: str) -> list[dict]:
    out = []
    for part in sorted((landing / entity).glob("*/part-*.json")):
        out += json.loads(part.read_text())["data"]
    return out


@pytest.fixture(scope="module")
def landings(tmp_path_factory) -> dict[int, Path]:
    root = tmp_path_factory.mktemp("retention")
    out = {}
    for days in (0, 30):
        m = generate(root / f"landing{days}", root / f"truth{days}", size="tiny", seed=3, increments=2,
                     event_retention_days=days)
        assert m["event_retention_days"] == days
        out[days] = root / f"landing{days}"
    return out


def test_snapshot_keeps_thirty_days_of_events_and_increments_bring_their_day(landings):
    manifest = json.loads((landings[30] / "_manifest.json").read_text())
    as_of = dt.date.fromisoformat(manifest["as_of"])
    window_start = _day_start(as_of) - 30 * 86400
    full = _bodies(landings[0], "billing/events")
    kept = _bodies(landings[30], "billing/events")
    assert min(e["created"] for e in full) < window_start - 300 * 86400  # the full export reaches far back
    assert kept and min(e["created"] for e in kept) >= window_start
    assert {e["id"] for e in kept} == {e["id"] for e in full if e["created"] >= window_start}
    for day in manifest["extract_days"][1:]:
        lo = _day_start(dt.date.fromisoformat(day))
        part = [e for p in sorted((landings[30] / "billing/events" / day).glob("part-*.json"))
                for e in json.loads(p.read_text())["data"]]
        assert all(lo <= e["created"] < lo + 86400 for e in part)
    # what Stripe keeps for ever is the same
    for entity in ("billing/subscriptions", "billing/invoices", "billing/invoiceitems"):
        assert _bodies(landings[30], entity) == _bodies(landings[0], entity)


def test_fake_stripe_serves_the_same_window_and_honours_created_gte(landings):
    landing = landings[30]
    with serve_landing(landing, page_size=100) as srv:
        config = stripe.StripeApiConfig(base_url=srv.base_url, api_key=fake.STRIPE_API_KEY, **FAST)
        served = [r.obj for r in stripe.iter_records(config, "events")]
        expected = [e for e in _bodies(landing, "billing/events") if e["type"] in stripe.EVENT_TYPES]
        assert {e["id"] for e in served} == {e["id"] for e in expected}
        since = sorted(e["created"] for e in served)[len(served) // 2]
        recent = [r.obj for r in stripe.iter_records(config, "events", since=since)]
    assert recent and all(e["created"] >= since for e in recent)
    assert {e["id"] for e in recent} == {e["id"] for e in served if e["created"] >= since}


def test_negative_retention_is_refused(tmp_path):
    with pytest.raises(ValueError, match="event_retention_days"):
        generate(tmp_path / "landing", tmp_path / "truth", size="tiny", seed=3, event_retention_days=-1)


def _latest(landing: Path, entity: str) -> dict[str, dict]:
    out = {}
    for day in sorted(p.name for p in (landing / entity).iterdir()):
        for part in sorted((landing / entity / day).glob("part-*.json")):
            out.update({o["id"]: o for o in json.loads(part.read_text())["data"]})
    return out


def test_invoice_items_are_the_prorations_pending_or_billed_as_stripe_lists_them(landings):
    """Every proration line of an invoice came from an invoice item that names that invoice; an item not yet
    on any invoice (a decrease credited on the next one) is listed with ``invoice: null``."""
    landing = landings[30]
    items = _latest(landing, "billing/invoiceitems")
    lines = {li["parent"]["subscription_item_details"]["invoice_item"]: (inv["id"], li)
             for inv in _latest(landing, "billing/invoices").values() for li in inv["lines"]["data"]
             if li["parent"]["subscription_item_details"]["proration"]}
    pending = [i for i in items.values() if i["invoice"] is None]
    assert pending and len(pending) < len(items)
    assert set(lines) == {i["id"] for i in items.values() if i["invoice"] is not None}
    for item in items.values():
        assert item["object"] == "invoiceitem" and item["proration"] is True
        assert item["parent"]["subscription_details"]["subscription"].startswith("sub_")
        if item["invoice"] is not None:
            invoice_id, line = lines[item["id"]]
            assert item["invoice"] == invoice_id
            assert (line["amount"], line["period"], line["quantity"]) == (item["amount"], item["period"], item["quantity"])
    # a pending credit and its charge: the old and the new quantity from the same moment (amounts net of the
    # subscription's discounts: Stripe's descriptions tell them apart when a discount leaves 0)
    credit = next(i for i in pending if i["amount"] < 0)
    sub = credit["parent"]["subscription_details"]["subscription"]
    pair = [i for i in pending
            if i["parent"]["subscription_details"]["subscription"] == sub and i["period"] == credit["period"]]
    assert len(pair) == 2 and sum(i["description"].startswith("Remaining time on ") for i in pair) == 1
    with serve_landing(landing, page_size=100) as srv:
        config = stripe.StripeApiConfig(base_url=srv.base_url, api_key=fake.STRIPE_API_KEY, **FAST)
        served = {r.obj["id"]: r.obj for r in stripe.iter_records(config, "invoiceitems")}
        request = urllib.request.Request(f"{srv.base_url}/v1/invoiceitems?pending=true&limit=100",
                                         headers={"Authorization": f"Bearer {fake.STRIPE_API_KEY}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            listed_pending = json.loads(response.read())["data"]
    assert served == items
    assert {i["id"] for i in listed_pending} == {i["id"] for i in pending}
