"""The demo company simulator: deterministic, vendor-shaped, complete in its edge cases, and honest in its ground truth."""

import csv
import datetime as dt
import hashlib
import json
import re
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from cs_kpis.simulator import SIZES, generate

from .ledger import discount_objects, month_end_mrr

# real vendor payloads, trimmed, with their sources and licences in real_payloads/SOURCES.md
FIXTURES = Path(__file__).resolve().parent / "real_payloads"


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# the landing's JSON is read with orjson (the objects json.loads makes, a few times faster: the demo company's
# files took most of the edge case test's time)


def _objects(landing: Path, entity: str, key: str) -> list[dict]:
    out = []
    for p in sorted((landing / entity).glob("*/part-*.json")):
        env = orjson.loads(p.read_bytes())
        out.extend(env if isinstance(env, list) else env[key])
    return out


def _lines(part: Path):
    """The JSON lines of a product events part, parsed."""
    return (orjson.loads(line) for line in part.read_bytes().splitlines() if line)


def _events(landing: Path) -> list[dict]:
    out = []
    for p in sorted((landing / "product" / "events").glob("*/part-*.jsonl")):
        out.extend(_lines(p))
    return out


def test_same_seed_gives_identical_files(tmp_path, tiny_company):
    generate(tmp_path / "landing", tmp_path / "truth", size="tiny", seed=7)
    assert _digest(tmp_path / "landing") == _digest(tiny_company / "landing")
    assert _digest(tmp_path / "truth") == _digest(tiny_company / "truth")


def test_another_seed_gives_another_company(tmp_path, tiny_company):
    generate(tmp_path / "landing", tmp_path / "truth", size="tiny", seed=8)
    a = _objects(tiny_company / "landing", "crm/Account", "records")
    b = _objects(tmp_path / "landing", "crm/Account", "records")
    assert {x["Id"] for x in a} != {x["Id"] for x in b}


def test_unknown_size_and_out_of_range_day_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown size"):
        generate(tmp_path / "l", tmp_path / "t", size="huge")
    with pytest.raises(ValueError, match="must fall within"):
        generate(tmp_path / "l", tmp_path / "t", size="tiny", as_of=SIZES["tiny"].end_date, increments=2)


def test_snapshot_plus_increments_equals_final_snapshot(tmp_path, tiny_company):
    """Merging the daily increments over an earlier snapshot gives the final day's snapshot."""
    generate(tmp_path / "landing", tmp_path / "truth", size="tiny", seed=7,
             as_of=SIZES["tiny"].end_date.replace(day=27), increments=4)
    inc, full = tmp_path / "landing", tiny_company / "landing"
    manifest = json.loads((inc / "_manifest.json").read_text())
    assert len(manifest["extract_days"]) == 5
    for entity, key, pk in [("billing/subscriptions", "data", "id"), ("billing/invoices", "data", "id"),
                            ("crm/Account", "records", "Id"), ("support/tickets", "tickets", "id"),
                            ("support/ticket_metrics", "ticket_metrics", "id"),
                            ("nps/survey_responses", None, "id")]:
        merged = {}
        for day in manifest["extract_days"]:  # in order: later days win
            for p in sorted((inc / entity / day).glob("part-*.json")):
                env = json.loads(p.read_text())
                for obj in (env if key is None else env[key]):
                    merged[obj[pk]] = obj
        final = {o[pk]: o for o in _objects(full, entity, key)}
        assert merged == final, entity
    # product events are files per received day: the same files either way
    assert _digest(inc / "product") == _digest(full / "product")
    assert _digest(tmp_path / "truth") == _digest(tiny_company / "truth")


def _json_type(v):
    return {bool: "bool", int: "int", float: "number", str: "str", list: "list", dict: "dict"}.get(type(v), "null")


def _assert_same_types(ours: dict, real: dict, path: str = "") -> int:
    """Fields present in both must have the same JSON type (null on either side is not compared)."""
    checked = 0
    for k, v in ours.items():
        if k not in real or v is None or real[k] is None:
            continue
        tv, tr = _json_type(v), _json_type(real[k])
        if {tv, tr} <= {"int", "number"}:
            checked += 1
            continue
        assert tv == tr, f"{path}{k}: simulator {tv}, real payload {tr}"
        checked += 1
        if tv == "dict":
            checked += _assert_same_types(v, real[k], f"{path}{k}.")
        elif tv == "list" and v and real[k] and isinstance(v[0], dict) and isinstance(real[k][0], dict):
            checked += _assert_same_types(v[0], real[k][0], f"{path}{k}[].")
    return checked


@pytest.mark.parametrize("entity,key,fixture,fixture_key", [
    ("billing/subscriptions", "data", "stripe/subscription.json", None),
    ("billing/customers", "data", "stripe/customer.json", None),
    ("billing/invoices", "data", "stripe/invoice.json", None),
    ("billing/coupons", "data", "stripe/coupon.json", None),
    ("billing/prices", "data", "stripe/price.json", None),
    ("billing/events", "data", "stripe/events/customer.subscription.updated.json", None),
    ("support/tickets", "tickets", "zendesk/tickets_page_offset.json", "tickets"),
    ("support/ticket_metrics", "ticket_metrics", "zendesk/ticket_metrics_page_offset.json", "ticket_metrics"),
    ("support/satisfaction_ratings", "satisfaction_ratings", "zendesk/satisfaction_ratings_page_offset.json",
     "satisfaction_ratings"),
    ("support/organizations", "organizations", "zendesk/organizations_page_offset.json", "organizations"),
])
def test_payload_types_match_the_real_fixtures(tiny_company, entity, key, fixture, fixture_key):
    real = json.loads((FIXTURES / fixture).read_text())
    real = real[fixture_key][0] if fixture_key else real
    ours = [o for o in _objects(tiny_company / "landing", entity, key) if o.get("object") != "event"
            or o["type"] == "customer.subscription.updated"]
    assert ours, entity
    assert _assert_same_types(ours[0], real) >= 5
    # the fields the pipeline depends on are all there
    shared = set(ours[0]) & set(real)
    assert len(shared) >= 0.6 * len(set(ours[0])), f"{entity}: few fields in common with the real payload"


def test_segment_events_have_the_real_common_fields(tiny_company):
    real = json.loads((FIXTURES / "segment" / "track_full.json").read_text())
    events = _events(tiny_company / "landing")
    track = next(e for e in events if e["type"] == "track")
    _assert_same_types(track, real)
    for f in ("messageId", "userId", "timestamp", "receivedAt", "sentAt", "originalTimestamp", "event", "type"):
        assert isinstance(track[f], str), f
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", track["timestamp"])
    assert track["context"]["groupId"].startswith("ws_")
    assert {"identify", "group", "track"} <= {e["type"] for e in events}


def test_salesforce_ids_and_datetimes_have_the_real_format(tiny_company):
    accounts = _objects(tiny_company / "landing", "crm/Account", "records")
    for a in accounts:
        assert re.fullmatch(r"001[0-9A-Za-z]{15}", a["Id"])
        assert a["attributes"]["type"] == "Account"
        # same format as the real query response: 2025-12-16T13:05:30.000+0000
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000\+0000", a["SystemModstamp"])
    for prefix, entity in (("005", "crm/User"), ("003", "crm/Contact"), ("006", "crm/Opportunity")):
        assert all(o["Id"].startswith(prefix) and len(o["Id"]) == 18
                   for o in _objects(tiny_company / "landing", entity, "records"))


def test_salesforce_checksum_suffix_matches_the_published_algorithm():
    from cs_kpis.simulator.ids import salesforce_18
    # a real 15 -> 18 pair from the Fivetran Salesforce seed (0015500000Xyy06 -> ...AAB? computed by hand:
    # chunks "00155" no capitals -> A, "00000" -> A, "Xyy06" -> X is bit 0 -> B)
    assert salesforce_18("0015500000Xyy06") == "0015500000Xyy06AAB"


def test_every_listed_edge_case_occurs_in_the_demo_company(demo_company):
    landing = demo_company / "landing"
    subs = _objects(landing, "billing/subscriptions", "data")
    events = _objects(landing, "billing/events", "data")
    accounts = _objects(landing, "crm/Account", "records")
    customers = _objects(landing, "billing/customers", "data")
    intervals = {(i["price"]["recurring"]["interval"], i["price"]["recurring"]["interval_count"])
                 for s in subs for i in s["items"]["data"]}
    assert {("month", 1), ("month", 3), ("year", 1)} <= intervals
    assert any(i["price"]["recurring"]["usage_type"] == "metered" for s in subs for i in s["items"]["data"])
    # an event names its discounts by id (Stripe never expands an event's object); the subscriptions and
    # invoices list them expanded
    known = discount_objects(landing)
    created = [e["data"]["object"] for e in events if e["type"] == "customer.subscription.created"]
    assert all(isinstance(d, str) for o in created for d in o["discounts"]
               + [d for i in o["items"]["data"] for d in i["discounts"]])
    assert {known[d]["coupon"]["duration"] for o in created for d in o["discounts"][:1] if d in known} \
        == {"once", "repeating", "forever"}
    # an item's own discounts (items.data[].discounts): forever, repeating and once; listed expanded, and
    # on the invoice lines that bill the item (expand[]=data.lines.data.discounts), naming the item
    item_discounts = [d for s in subs for i in s["items"]["data"] for d in i["discounts"]]
    assert {d["coupon"]["duration"] for d in item_discounts} == {"once", "repeating", "forever"}
    assert all(isinstance(d, dict) and d["subscription_item"] for d in item_discounts)
    invoices = _objects(landing, "billing/invoices", "data")
    line_discounts = [(line, d) for i in invoices for line in i["lines"]["data"] for d in line["discounts"]]
    assert line_discounts and all(
        d["subscription_item"] == line["parent"]["subscription_item_details"]["subscription_item"]
        for line, d in line_discounts)
    updates = [e for e in events if e["type"] == "customer.subscription.updated"]
    # a repeating discount expiring
    assert any("discounts" in e["data"]["previous_attributes"] and not e["data"]["object"]["discounts"]
               for e in updates)
    # trials that convert and trials that lapse
    assert any(e["data"]["previous_attributes"].get("status") == "trialing"
               and e["data"]["object"]["status"] == "active" for e in updates)
    assert any(s["status"] == "canceled" and s["trial_end"] and s["ended_at"] == s["trial_end"] for s in subs)
    # seat increases and decreases
    moves = set()
    for e in updates:
        old = e["data"]["previous_attributes"].get("items")
        if old:
            q0 = old["data"][0].get("quantity")
            q1 = e["data"]["object"]["items"]["data"][0].get("quantity")
            if q0 and q1 and q0 != q1 and old["data"][0]["price"]["id"] == e["data"]["object"]["items"]["data"][0]["price"]["id"]:
                moves.add("up" if q1 > q0 else "down")
    assert moves == {"up", "down"}
    # mid-month starts, cancellation at period end and immediately, past due, delinquent churn
    import datetime as dt
    assert any(dt.datetime.fromtimestamp(s["created"], dt.UTC).day != 1 for s in subs)
    assert any(s["cancel_at_period_end"] and s["ended_at"] == s["current_period_end"] for s in subs)
    assert any(s["status"] == "canceled" and s["canceled_at"] == s["ended_at"] and not s["trial_end"] for s in subs)
    assert any(e["data"]["object"]["status"] == "past_due" for e in updates)
    # several subscriptions on one account
    per_customer = {}
    for s in subs:
        per_customer.setdefault(s["customer"], []).append(s)
    assert any(len(v) > 1 for v in per_customer.values())
    # hierarchy, accounts without usage, unmatched customers and organizations
    assert any(a["ParentId"] for a in accounts)
    used = {e["context"]["groupId"] for e in _events_sample(landing)}
    assert any(a["Product_Workspace_Id__c"] not in used for a in accounts)
    known = {a["Id"] for a in accounts}
    assert sum(c["metadata"].get("salesforce_account_id") not in known for c in customers) >= 2
    orgs = _objects(landing, "support/organizations", "organizations")
    assert any(o["external_id"] is None for o in orgs)
    # currencies
    assert {s["currency"] for s in subs} == {"usd", "eur", "gbp"}
    # reactivation and churn per the ground truth
    with (demo_company / "truth" / "churn_events.csv").open() as f:
        kinds = {r["event"] for r in csv.DictReader(f)}
    assert kinds == {"churn", "reactivation"}
    manifest = json.loads((landing / "_manifest.json").read_text())
    assert manifest["events"]["late"] > 0 and manifest["events"]["duplicates"] > 0


def _events_sample(landing: Path):
    # every received day, first part: enough to see every workspace that is ever active
    for p in sorted((landing / "product" / "events").glob("*/part-00001.jsonl")):
        yield from _lines(p)


def test_duplicate_and_late_product_events_are_really_in_the_files(tiny_company):
    events = [e for e in _events(tiny_company / "landing") if e["type"] == "track"]
    ids = [e["messageId"] for e in events]
    assert len(ids) > len(set(ids))
    assert any(e["receivedAt"][:10] > e["timestamp"][:10] for e in events)


def test_ground_truth_agrees_with_the_stripe_ledger(demo_company):
    """Every account-month of the ground truth equals an independent recomputation from the events."""
    ledger = month_end_mrr(demo_company / "landing")
    with (demo_company / "truth" / "mrr_month_end.csv").open() as f:
        truth = {(r["month"], r["account_id"]): Decimal(r["mrr"]) for r in csv.DictReader(f)}
    assert len(truth) > 5000
    keys = set(truth) | {k for k, v in ledger.items() if v}
    diffs = [(k, truth.get(k, Decimal(0)), ledger.get(k, Decimal(0))) for k in keys
             if truth.get(k, Decimal(0)) != ledger.get(k, Decimal(0))]
    assert not diffs, f"{len(diffs)} account-months differ, e.g. {sorted(diffs)[:5]}"
    assert sum(truth.values()) > 0


def test_bad_input_is_injected_only_on_request(tmp_path, tiny_company):
    assert json.loads((tiny_company / "truth" / "bad_input.json").read_text()) == []
    m = generate(tmp_path / "landing", tmp_path / "truth", size="tiny", seed=7, bad_input=True)
    assert m["bad_input"] is True
    bad = json.loads((tmp_path / "truth" / "bad_input.json").read_text())
    whats = {b["what"] for b in bad}
    assert whats == {"malformed JSON line", "missing primary key", "unknown currency", "negative amount",
                     "wrongly formatted date", "unexpected new field", "field type changes"}
    for b in bad:
        path = tmp_path / "landing" / b["file"]
        assert path.exists()
    line_file = next(b for b in bad if b["what"] == "malformed JSON line")
    lines = (tmp_path / "landing" / line_file["file"]).read_text().splitlines()
    with pytest.raises(json.JSONDecodeError):
        json.loads(lines[line_file["position"]])


def test_cli_writes_a_company(tmp_path, capsys):
    from cs_kpis.simulator.cli import main
    assert main(["--size", "tiny", "--seed", "3", "--landing", str(tmp_path / "l"),
                 "--ground-truth", str(tmp_path / "t")]) == 0
    assert (tmp_path / "l" / "_manifest.json").exists()
    out = capsys.readouterr().out
    assert "crm/Account" in out
    assert "(--workers " in out and not re.search(r"\(\d+ cores?\)", out)  # workers (processes), not cores
    assert re.search(r"seconds: simulation [\d.]+, .*truth [\d.]+", out), out  # where the seconds went


def test_a_paid_renewal_ends_a_past_due_spell_as_in_stripe(tmp_path):
    """Stripe: past_due means the latest finalized invoice is unpaid. A renewal invoice that is paid (0.00 here:
    the customer's credit covers it) makes the subscription active again although the older failed invoice
    stays open; the ground truth's spell ends there, and its retries running out later still cancel it."""
    from cs_kpis.simulator.company import Company, day_of, ts_of
    from cs_kpis.simulator.store import VersionStore
    from cs_kpis.simulator.truth import subscription_steps

    spec = SIZES["tiny"]
    company = Company(spec, 42, VersionStore(tmp_path / "versions.duckdb"), spec.end_date)
    acct = next(a for a in company.accounts if a.sf_id and a.interval_key == "month")
    s = company._start_subscription(acct, ts_of(spec.start_date, 3600), trial=False, first=True)
    failed_at, renewal_at = s.cps + 86400, s.cpe
    failed = {"id": "in_failed", "created": failed_at, "status": "open", "amount_due": 100,
              "status_transitions": {"paid_at": None}}
    company._fail_payment(s, failed, failed_at, 0.0)  # schedules the failure's fate; nothing runs yet
    assert s.status == "past_due"
    s.credit_balance = 10**9  # the renewal is covered by the customer's balance: 0.00 due, marked paid
    company._on_renewal(renewal_at, s)
    assert s.status == "active" and s.ended_at is None
    assert s.past_due_spells == [[failed_at + 600, renewal_at + 300]]
    assert "past_due_ended_by_paid_renewal" in company.edge_cases
    # the failed invoice's retries run out later: marked uncollectible and the subscription cancelled
    ended_at = renewal_at + 10 * 86400
    company._on_delinquent_cancel(ended_at, s, failed)
    assert failed["status"] == "uncollectible" and s.ended_at == ended_at
    # past due for fewer than 31 ends of day: MRR kept until the end, not churned from the failure's day
    assert (day_of(renewal_at + 300) - day_of(failed_at + 600)).days <= 30
    steps = subscription_steps(s, company.fx, spec.end_date)
    assert [v for d, v in steps if d == day_of(failed_at)] == [] and steps[-1] == (day_of(ended_at), 0)
    assert [v for d, v in steps if d < day_of(ended_at)][-1] > 0


def test_a_delinquent_spell_ended_by_a_paid_invoice_counts_again_from_its_end(tmp_path):
    """Past due 31 ends of day (the failed invoice of May 28 open, a 0.00 renewal paid on Jun 28) is delinquent:
    churned from May 28. The paid renewal makes the subscription active again, so its MRR counts from Jun 28
    until it ends (Jul 4), as the revenue marts have it (marts test A_inv_zero_renewal_31). The truth used to
    keep 0.00 until the end (large company, seed 42: one account-month, 2024-06)."""
    import datetime as dt
    from decimal import Decimal
    from fractions import Fraction

    from cs_kpis.simulator.company import Company, ts_of
    from cs_kpis.simulator.store import VersionStore
    from cs_kpis.simulator.truth import subscription_steps

    spec = SIZES["tiny"]
    company = Company(spec, 42, VersionStore(tmp_path / "versions.duckdb"), spec.end_date)
    acct = next(a for a in company.accounts if a.sf_id and a.interval_key == "month")
    s = company._start_subscription(acct, ts_of(spec.start_date, 3600), trial=False, first=True)
    s.currency = "usd"
    assert set(company.fx["usd"].values()) == {1}
    d0 = spec.start_date + dt.timedelta(days=40)
    day = {n: d0 + dt.timedelta(days=n) for n in (0, 2, 31, 37)}
    s.mrr_history = [(ts_of(spec.start_date, 3600), Fraction(7500)), (ts_of(day[2], 3600), Fraction(2500)),
                     (ts_of(day[37], 3600), Fraction(0))]
    s.past_due_spells = [[ts_of(day[0], 3600), ts_of(day[31], 3600)]]
    steps = subscription_steps(s, company.fx, spec.end_date)
    assert steps == [(spec.start_date, Decimal("75.00")), (day[0], Decimal("0.00")), (day[31], Decimal("25.00")),
                     (day[37], Decimal("0.00"))]
    # the same spell ended by the cancellation: 0.00 from the failure on
    s.past_due_spells = [[ts_of(day[0], 3600), ts_of(day[37], 3600)]]
    assert subscription_steps(s, company.fx, spec.end_date)[1:] == [(day[0], Decimal("0.00")),
                                                                     (day[37], Decimal("0.00"))]


def test_a_closed_ticket_keeps_the_rating_given_after_it_was_solved(tiny_company):
    """Zendesk keeps a ticket's satisfaction rating when the ticket closes. A customer rates a few days after
    the solve (the rating is offered then), and the ticket closes later: the closed ticket carries the good or
    bad score, with the rating's id, as the rating itself says (the closed ticket used to go back to the
    solved version's "offered")."""
    landing = tiny_company / "landing"
    # the latest version of each: _objects reads the days in order, later days win
    tickets = {t["id"]: t for t in _objects(landing, "support/tickets", "tickets")}
    ratings = {r["id"]: r for r in _objects(landing, "support/satisfaction_ratings", "satisfaction_ratings")}
    rated = [r for r in ratings.values() if r["score"] in ("good", "bad")
             and tickets[r["ticket_id"]]["status"] == "closed"]
    assert len(rated) >= 5
    for r in rated:
        assert tickets[r["ticket_id"]]["satisfaction_rating"] == {"id": r["id"], "score": r["score"],
                                                                  "comment": r["comment"]}


def test_prorations_are_net_of_discounts_and_a_credit_names_the_line_it_credits(tmp_path):
    """As Stripe writes prorations (API 2025-03-31.basil, classic billing mode; cs_kpis/simulator/company.py
    ``_net_of_discounts``): the amount is net of the subscription's discounts, the line is not discountable and
    lists those discounts at amount 0, its description is the invoice item's ("Unused time on ..." for a
    credit, "Remaining time on ..." for a charge), and a credit's ``proration_details.credited_items`` names
    the line that charged what it credits. A 100% discount leaves 0 on both; the pending invoice items carry no
    ``proration_details`` (not in that API version)."""
    import copy
    from fractions import Fraction

    from cs_kpis.simulator.company import Company, ts_of
    from cs_kpis.simulator.store import VersionStore

    class Seen:
        """the store, keeping a copy of every version the company adds"""

        def __init__(self, store):
            self.store, self.added = store, []

        def add(self, entity, obj_id, ts, obj, **kw):
            self.added.append((entity, copy.deepcopy(obj)))
            self.store.add(entity, obj_id, ts, obj, **kw)

        def __getattr__(self, name):
            return getattr(self.store, name)

    spec = SIZES["tiny"]
    company = Company(spec, 42, VersionStore(tmp_path / "versions.duckdb"), spec.end_date)
    company.store = seen = Seen(company.store)
    acct = next(a for a in company.accounts if a.sf_id and a.interval_key == "month")
    s = company._start_subscription(acct, ts_of(spec.start_date, 3600), trial=False, first=False)
    s.main_item.discounts = []
    [created] = [o for e, o in seen.added if e == "billing/invoices"]
    period_line = next(li for li in created["lines"]["data"] if li["parent"]["subscription_item_details"]
                       ["subscription_item"] == s.main_item.id)

    def discount(pct: int) -> dict:
        return {"id": f"di_test{pct}", "coupon": {"id": f"TEST{pct}", "duration": "forever",
                                                  "percent_off": float(pct), "amount_off": None}}

    # up 3 seats halfway through the period, with 20% off the subscription: charged at once
    s.discounts = [discount(20)]
    old, ts = s.main_item, s.cps + (s.cpe - s.cps) // 2
    frac = Fraction(s.cpe - ts, s.cpe - s.cps)
    company._change_item(s, ts, quantity=(old.quantity or 1) + 3)
    new = s.main_item
    upgrade = [o for e, o in seen.added if e == "billing/invoices"][-1]
    credit, charge = upgrade["lines"]["data"]
    assert credit["amount"] == -round(old.price.amount(old.quantity) * Fraction(4, 5) * frac)
    assert charge["amount"] == round(new.price.amount(new.quantity) * Fraction(4, 5) * frac)
    assert upgrade["total"] == credit["amount"] + charge["amount"]
    assert credit["description"].startswith("Unused time on ") and charge["description"].startswith("Remaining time on ")
    for li in (credit, charge):
        assert li["discountable"] is False and li["discount_amounts"] == [{"amount": 0, "discount": "di_test20"}]
    assert credit["parent"]["subscription_item_details"]["proration_details"] == {
        "credited_items": {"invoice": created["id"], "invoice_line_items": [period_line["id"]]}}
    assert charge["parent"]["subscription_item_details"]["proration_details"] == {"credited_items": None}

    # down 2 seats later, now 100% off: both prorations 0, pending until the renewal bills them
    s.discounts = [discount(100)]
    company._change_item(s, ts + 86400, quantity=new.quantity - 2)
    items = [o for e, o in seen.added if e == "billing/invoiceitems"][-2:]
    assert [i["amount"] for i in items] == [0, 0] and all("proration_details" not in i for i in items)
    assert items[0]["description"].startswith("Unused time on ")
    assert items[1]["description"].startswith("Remaining time on ")
    company._on_renewal(s.cpe, s)
    renewal = [o for e, o in seen.added if e == "billing/invoices"][-1]
    zero_credit, zero_charge = renewal["lines"]["data"][:2]
    assert (zero_credit["amount"], zero_charge["amount"]) == (0, 0)
    # the credit for the seats the upgrade charged names the upgrade's charge
    assert zero_credit["parent"]["subscription_item_details"]["proration_details"] == {
        "credited_items": {"invoice": upgrade["id"], "invoice_line_items": [charge["id"]]}}


def test_the_simulation_collects_cyclic_garbage_by_hand_and_writes_the_same_bytes(tmp_path, tiny_company, monkeypatch):
    # Python's automatic cyclic collection is off while the simulation runs (its full collections walked every
    # long-lived object: the large company's simulation took 601 s with them, 386 s without), collected by hand every GC_EVERY_DAYS
    # simulated days instead, and on again after. How often it collects changes no byte of the company.
    import gc

    from cs_kpis.simulator import company

    seen = {"enabled": set(), "collects": 0}
    support, collect = company.Company._support, gc.collect

    def support_spy(self, day):
        seen["enabled"].add(gc.isenabled())
        return support(self, day)

    def collect_spy(*args, **kwargs):
        seen["collects"] += 1
        return collect(*args, **kwargs)

    monkeypatch.setattr(company.Company, "_support", support_spy)
    monkeypatch.setattr(gc, "collect", collect_spy)
    monkeypatch.setattr(company, "GC_EVERY_DAYS", 30)
    assert gc.isenabled()
    m = generate(tmp_path / "landing", tmp_path / "truth", size="tiny", seed=7)
    assert gc.isenabled()
    assert seen["enabled"] == {False}
    simulated = (dt.date.fromisoformat(m["extract_days"][-1]) - SIZES["tiny"].start_date).days + 1
    assert seen["collects"] == simulated // 30 > 10
    assert _digest(tmp_path / "landing") == _digest(tiny_company / "landing")
    assert _digest(tmp_path / "truth") == _digest(tiny_company / "truth")


def test_a_failed_simulation_turns_the_cyclic_collector_back_on(tmp_path, monkeypatch):
    import gc

    from cs_kpis.simulator import company

    def fail(self, day):
        assert not gc.isenabled()
        raise RuntimeError("a simulated day failed")

    monkeypatch.setattr(company.Company, "_support", fail)
    with pytest.raises(RuntimeError, match="a simulated day failed"):
        generate(tmp_path / "landing", tmp_path / "truth", size="tiny", seed=7, workers=1)
    assert gc.isenabled()
