"""Bad input on request: the malformed rows a real pipeline meets, injected into the snapshot day.

Each injection is recorded (file, position, what) so tests can check that every one of them ends up
quarantined or rejected with a clear error, never silently dropped.
"""

import datetime as dt
import json
from pathlib import Path


def _load(path: Path):
    return json.loads(path.read_text())


def _save(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, separators=(",", ":")))


def inject(landing: Path, as_of: dt.date) -> list[dict]:
    day = as_of.isoformat()
    out: list[dict] = []

    def note(entity: str, path: Path, position: int, what: str, field: str | None = None) -> None:
        out.append({"entity": entity, "file": str(path.relative_to(landing)), "position": position,
                    "what": what, "field": field})

    # a malformed JSON line in the product events
    ev = landing / "product" / "events" / day / "part-00001.jsonl"
    lines = ev.read_text().splitlines(keepends=True)
    pos = min(5, len(lines))
    lines.insert(pos, '{"type":"track","event":"Report Created","messageId":"ajs-broken\n')
    ev.write_text("".join(lines))
    note("product/events", ev, pos, "malformed JSON line")

    # a Stripe customer without its id, and one in an unknown currency
    p = landing / "billing" / "customers" / day / "part-00001.json"
    env = _load(p)
    bad = dict(env["data"][0])
    bad.pop("id")
    env["data"].append(bad)
    note("billing/customers", p, len(env["data"]) - 1, "missing primary key", "id")
    _save(p, env)

    p = landing / "billing" / "subscriptions" / day / "part-00001.json"
    env = _load(p)
    sub = json.loads(json.dumps(env["data"][0]))
    sub["id"] = "sub_BADCURRENCY000000000000"
    sub["currency"] = "xyz"
    for it in sub["items"]["data"]:
        it["price"]["currency"] = "xyz"
        it["subscription"] = sub["id"]
    env["data"].append(sub)
    note("billing/subscriptions", p, len(env["data"]) - 1, "unknown currency", "currency")
    _save(p, env)

    # an invoice with a negative amount due
    p = landing / "billing" / "invoices" / day / "part-00001.json"
    env = _load(p)
    inv = json.loads(json.dumps(env["data"][0]))
    inv["id"] = "in_NEGATIVEAMOUNT0000000000"
    inv["amount_due"] = -500
    env["data"].append(inv)
    note("billing/invoices", p, len(env["data"]) - 1, "negative amount", "amount_due")
    _save(p, env)

    # a wrongly formatted date and an unexpected new field on Salesforce accounts
    p = landing / "crm" / "Account" / day / "part-00001.json"
    env = _load(p)
    acct = dict(env["records"][0])
    acct["Id"] = "0015gBADDATE000AAA"
    acct["CreatedDate"] = "31/12/2025"
    env["records"].append(acct)
    env["totalSize"] += 1
    note("crm/Account", p, len(env["records"]) - 1, "wrongly formatted date", "CreatedDate")
    env["records"][1]["Upsell_Score__c"] = 0.73
    note("crm/Account", p, 1, "unexpected new field", "Upsell_Score__c")
    _save(p, env)

    # tickets: a new field, then a field whose type changes (priority as an integer)
    p = landing / "support" / "tickets" / day / "part-00001.json"
    env = _load(p)
    env["tickets"][0]["new_field"] = "surprise"
    note("support/tickets", p, 0, "unexpected new field", "new_field")
    t = json.loads(json.dumps(env["tickets"][-1]))
    t["id"] = 999_999_999
    t["priority"] = 3
    env["tickets"].append(t)
    note("support/tickets", p, len(env["tickets"]) - 1, "field type changes", "priority")
    _save(p, env)
    return out
