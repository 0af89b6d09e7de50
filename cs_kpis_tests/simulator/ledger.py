"""An independent MRR calculator over the landing files, used to check the simulator's ground truth.

It reads only what a pipeline may read (the Stripe events and customers, the discounts the subscriptions
and invoices list expanded, since an event names its discounts by id, and the rates file) and
applies the KPI definitions directly, in plain Python, sharing no code with the simulator.
"""

import csv
import datetime as dt
import json
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from pathlib import Path

import orjson

MONTHS = {("month", 1): 1, ("month", 3): 3, ("year", 1): 12}
DELINQUENT_DAYS = 30


def _day(ts: int) -> dt.date:
    return dt.datetime.fromtimestamp(ts, dt.UTC).date()


TYPE_ORDER = {"customer.subscription.created": 0, "customer.subscription.updated": 1,
              "customer.subscription.deleted": 2}
"""events of one second in the order Stripe made them: created, updated, deleted"""


def price_amount(price: dict, quantity: int, tiers: dict[str, list]) -> Fraction:
    """What ``quantity`` of a price costs per billing period (Stripe's pricing rules). An item's price
    carries no tiers; they come from the prices list (``tiers``: price id -> its tiers)."""
    q = quantity or 0
    if price.get("billing_scheme") == "tiered":
        total, lower = Fraction(0), 0
        for t in tiers[price["id"]]:
            unit = Fraction(t.get("unit_amount_decimal") or t.get("unit_amount") or 0)
            flat = Fraction(t.get("flat_amount_decimal") or t.get("flat_amount") or 0)
            top = q if t["up_to"] is None else t["up_to"]
            if price["tiers_mode"] == "graduated":
                n = max(0, min(q, top) - lower)
                total += n * unit + (flat if n else 0)
            elif lower < q <= top:
                total += q * unit + flat
            if t["up_to"] is not None:
                lower = t["up_to"]
        return total
    tq = price.get("transform_quantity")
    if tq:
        q = -(-q // tq["divide_by"]) if tq["round"] == "up" else q // tq["divide_by"]
    unit = Fraction(price["unit_amount_decimal"]) if price.get("unit_amount_decimal") else Fraction(price["unit_amount"])
    return unit * q


def _apply(total: Fraction, discounts: list, months: int, currency: str, options: dict) -> Fraction:
    for d in discounts:
        c = d["coupon"]
        if c["duration"] == "once":
            continue
        if c["percent_off"] is not None:
            total *= 1 - Fraction(str(c["percent_off"])) / 100
        elif (c.get("currency") or "").lower() == currency.lower():
            total = max(Fraction(0), total - Fraction(c["amount_off"], months))
        elif (off := options.get(c["id"], {}).get(currency.lower(), {}).get("amount_off")) is not None:
            # an event's coupon lacks currency_options; the coupons list (expanded) has them
            total = max(Fraction(0), total - Fraction(off, months))
    return total


def local_mrr(sub: dict, tiers: dict[str, list] | None = None, options: dict | None = None) -> Fraction:
    if sub["status"] in ("trialing", "canceled", "incomplete", "incomplete_expired", "unpaid", "paused") \
            or sub["ended_at"]:
        return Fraction(0)
    total = Fraction(0)
    months = 1
    for it in sub["items"]["data"]:
        rec = it["price"]["recurring"]
        if rec["usage_type"] == "metered":
            continue
        months = MONTHS[(rec["interval"], rec["interval_count"])]
        item_mrr = price_amount(it["price"], it["quantity"], tiers or {}) / months
        total += _apply(item_mrr, it.get("discounts") or [], months, sub["currency"], options or {})
    return _apply(total, sub["discounts"], months, sub["currency"], options or {})


def discount_objects(landing: Path) -> dict[str, dict]:
    """discount id -> the discount object, from everything Stripe lists expanded: the subscriptions and
    their items (expand[]=data.discounts, data.items.data.discounts), the invoices and their lines. An
    event's object carries only the ids (Stripe never expands it)."""
    out: dict[str, dict] = {}

    def keep(ds):
        for d in ds or []:
            if isinstance(d, dict):
                out[d["id"]] = d

    for p in sorted((landing / "billing" / "subscriptions").glob("*/part-*.json")):
        for s in orjson.loads(p.read_bytes())["data"]:
            keep(s.get("discounts"))
            for it in s["items"]["data"]:
                keep(it.get("discounts"))
    for p in sorted((landing / "billing" / "invoices").glob("*/part-*.json")):
        for i in orjson.loads(p.read_bytes())["data"]:
            keep(i.get("discounts"))
            for line in i["lines"]["data"]:
                keep(line.get("discounts"))
    return out


def resolved(sub: dict, known: dict[str, dict]) -> dict:
    """``sub`` with each discount id replaced by its object (a discount no list shows is left out)."""
    def objs(ds):
        return [d if isinstance(d, dict) else known[d] for d in ds or [] if isinstance(d, dict) or d in known]

    return {**sub, "discounts": objs(sub.get("discounts")),
            "items": {**sub["items"], "data": [{**it, "discounts": objs(it.get("discounts"))}
                                               for it in sub["items"]["data"]]}}


def month_end_mrr(landing: Path) -> dict[tuple[str, str], Decimal]:
    """(month, account id) -> month-end MRR in USD, from the events ledger alone."""
    manifest = json.loads((landing / "_manifest.json").read_text())
    last_day = dt.date.fromisoformat(manifest["extract_days"][-1])
    rates = {}
    with (landing / "reference" / "fx_rates.csv").open() as f:
        for r in csv.DictReader(f):
            rates[(r["currency"].lower(), dt.date.fromisoformat(r["date"]))] = Fraction(r["rate"])
    account_of = {}
    for p in sorted((landing / "billing" / "customers").glob("*/part-*.json")):
        for c in orjson.loads(p.read_bytes())["data"]:
            account_of[c["id"]] = c["metadata"].get("salesforce_account_id")
    tiers = {}
    for p in sorted((landing / "billing" / "prices").glob("*/part-*.json")):
        for pr in orjson.loads(p.read_bytes())["data"]:
            if pr.get("tiers"):
                tiers[pr["id"]] = pr["tiers"]
    options = {}  # coupon id -> its currency_options (GET /v1/coupons?expand[]=data.currency_options)
    for p in sorted((landing / "billing" / "coupons").glob("*/part-*.json")):
        for c in orjson.loads(p.read_bytes())["data"]:
            options[c["id"]] = c.get("currency_options") or {}
    known = discount_objects(landing)
    versions = defaultdict(list)
    for p in sorted((landing / "billing" / "events").glob("*/part-*.json")):
        for e in orjson.loads(p.read_bytes())["data"]:
            if e["type"].startswith("customer.subscription."):
                versions[e["data"]["object"]["id"]].append(
                    ((e["created"], TYPE_ORDER.get(e["type"], 1)), resolved(e["data"]["object"], known)))
    months = []
    m = dt.date.fromisoformat(manifest["start_date"]).replace(day=1)
    while m <= last_day:
        nxt = (m + dt.timedelta(days=32)).replace(day=1)
        months.append((m, min(nxt - dt.timedelta(days=1), last_day)))
        m = nxt
    out: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for vs in versions.values():
        vs.sort(key=lambda x: x[0])
        by_day, past_due_since, spells = {}, None, []
        for (ts, _), obj in vs:
            by_day[_day(ts)] = (local_mrr(obj, tiers, options), obj["currency"])
            if obj["status"] == "past_due" and past_due_since is None:
                past_due_since = _day(ts)
            elif obj["status"] != "past_due" and past_due_since is not None:
                spells.append((past_due_since, _day(ts)))
                past_due_since = None
        if past_due_since is not None:
            spells.append((past_due_since, None))
        steps, prev = [], None
        for d in sorted(by_day):
            mrr, cur = by_day[d]
            if mrr != prev:
                prev = mrr
                x = mrr / 100 * rates[(cur, d)]
                steps.append((d, (Decimal(x.numerator) / Decimal(x.denominator)).quantize(
                    Decimal("0.01"), ROUND_HALF_UP)))
        for start, end in spells:
            # past due at the end of days start .. end - 1 (or .. last_day while open): more than 30
            # ends of day makes it delinquent, i.e. an open spell once last_day - start >= 30
            if ((end or last_day + dt.timedelta(days=1)) - start).days > DELINQUENT_DAYS:
                steps = [s for s in steps if s[0] < start] + [(start, Decimal("0.00"))]
        account = account_of.get(vs[-1][1]["customer"])
        if not account or not account.startswith("001") or "UNKNOWN" in account:
            continue
        for month, read_day in months:
            v = Decimal("0.00")
            for d, val in steps:
                if d > read_day:
                    break
                v = val
            out[(month.isoformat(), account)] += v
    return out
