"""A corpus of bad input across all five systems, the JSON inside Stripe events included (issue 15).

Each case adds bad records (with ids of their own) to the tiny company, loads the system with them and
compares the result with the clean tiny company's load of that system (loaded once per system for the
module, :func:`clean_load`). It asserts one of two outcomes:

- quarantined: every table of the system is identical to the clean load (columns and values: no value
  moved, no side column, nothing else lost), each bad record has exactly its quarantine rows (naming the
  field when one is at fault), and read = loaded + quarantined + deduplicated holds, with exactly the bad
  records more read than the clean load;
- stopped: the load fails with an error naming the field, the file and the share, and nothing of it loads.

Besides the hand-written cases, :func:`test_every_field_changing_type_is_quarantined` mutates every field of
a sample record of every entity (and every declared field of the subscription inside a Stripe event) into
each other JSON type, so that a field nobody thought of is covered too.
"""

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from dlt.pipeline.exceptions import PipelineStepFailed

from cs_kpis.sources.billing import settings as billing_settings
from cs_kpis_tests.landing_builder import write_landing
from cs_kpis_tests.sources.conftest import Loader, make_loader
from cs_kpis_tests.sources.landing_builder import (
    DAYS,
    account,
    contact,
    customer,
    invoice,
    opportunity,
    price,
    segment_event,
    stripe_event,
    subscription,
    survey_response,
    ticket,
    ticket_metric,
    tiny_company,
    tiny_events,
)

D1, D2, D3 = DAYS
YEAR_9999 = 253_402_300_000  # Unix seconds in 9999


def _events() -> dict[str, list[Any]]:
    return {day: tiny_events(day, i * 100, 6) for i, day in enumerate(DAYS)}


def _tables(loader: Loader, system: str) -> dict[str, list[tuple]]:
    return loader.tables(like=f"{system}\\_\\_%")


def _load(tmp_path: Path, name: str, system: str, history: dict, events: dict) -> tuple[Loader, dict]:
    loader = make_loader(tmp_path, name)
    landing = write_landing(tmp_path / name / "landing", history, events=events)
    return loader, loader.run(system, landing)


CleanLoad = Callable[[str], tuple[dict[str, list[tuple]], dict]]


@pytest.fixture(scope="module")
def clean_load(tmp_path_factory: pytest.TempPathFactory) -> CleanLoad:
    """The clean tiny company loaded once per system for this module: ``system -> (tables, totals)``.

    Every case compares its bad load with the same clean load of its system, so the clean one is loaded once,
    in its own warehouse, not once per case (it was half of this module's time)."""
    loaded: dict[str, tuple[dict[str, list[tuple]], dict]] = {}

    def get(system: str) -> tuple[dict[str, list[tuple]], dict]:
        if system not in loaded:
            loader, totals = _load(tmp_path_factory.mktemp(f"clean_{system}"), "clean", system, tiny_company(),
                                   _events())
            loaded[system] = (_tables(loader, system), totals)
        # a copy for each case: one that changed what it got would otherwise change every later case's expectation
        return copy.deepcopy(loaded[system])

    return get


def _assert_quarantined(tmp_path: Path, clean_load: CleanLoad, system: str, mutate: Callable[[dict, dict], None],
                        expected: dict[str, int], field: str | None = None) -> list[tuple]:
    """Load bad and compare with the clean load; the bad records end in quarantine only.

    ``expected``: entity -> rows."""
    clean_tables, clean_totals = clean_load(system)
    history, events = tiny_company(), _events()
    mutate(history, events)
    bad, bad_totals = _load(tmp_path, "bad", system, history, events)
    assert _tables(bad, system) == clean_tables
    rows = bad.query(f"select entity, field, reason, origin, position from raw._quarantine where source = '{system}'")
    by_entity: dict[str, int] = {}
    for entity, *_ in rows:
        by_entity[entity] = by_entity.get(entity, 0) + 1
    assert by_entity == expected, rows
    if field is not None:
        assert {f for _, f, *_ in rows} == {field}, rows
    assert all(origin for *_, origin, _ in rows)
    for name, counts in bad_totals.items():
        assert counts.balanced, (name, counts)
        assert counts.rows_quarantined == expected.get(name, 0), (name, counts)
        assert counts.rows_read == clean_totals[name].rows_read + expected.get(name, 0), (name, counts)
    return rows


def _add(history: dict, key: tuple[str, str], obj: dict, day: str = D1) -> None:
    history[day].setdefault(key, []).append(obj)


def _sub_event(n: int, mutate_sub: Callable[[dict], None], day: str = D2, **event: Any) -> dict:
    sub = subscription(70 + n, 1, day)
    mutate_sub(sub)
    return {**stripe_event(900 + n, day, sub, {"status": "trialing"}), **event}


def _price_of(sub: dict) -> dict:
    return sub["items"]["data"][0]["price"]


BILLING_CASES: dict[str, tuple[Callable[[dict, dict], None], dict[str, int], str | None]] = {
    "price unit_amount as text": (
        lambda h, e: _add(h, ("billing", "prices"), {**price(50), "unit_amount": "12.50"}),
        {"prices": 1}, "unit_amount"),
    "price as the first record of the batch": (
        lambda h, e: h[D1][("billing", "prices")].insert(0, {**price(50), "unit_amount": "12.50"}),
        {"prices": 1}, "unit_amount"),
    "invoice amount_due as text": (
        lambda h, e: _add(h, ("billing", "invoices"), {**invoice(50, 1, 1, D1), "amount_due": "12.50"}),
        {"invoices": 1, "invoice_lines": 1}, "amount_due"),
    "subscription item quantity as an object": (
        lambda h, e: _add(h, ("billing", "subscriptions"), _with(subscription(50, 1, D1),
                          lambda s: s["items"]["data"][0].update(quantity={"value": 44}))),
        {"subscriptions": 1, "subscription_items": 1}, "items.data[].quantity"),
    "subscription in year 9999": (
        lambda h, e: _add(h, ("billing", "subscriptions"), {**subscription(50, 1, D1), "cancel_at": YEAR_9999}),
        {"subscriptions": 1, "subscription_items": 1}, "cancel_at"),
    "event: subscription price unit_amount as text": (
        lambda h, e: _add(h, ("billing", "events"), _sub_event(1, lambda s: _price_of(s).update(unit_amount="12.50"))),
        {"events": 1}, "data.object.items.data[].price.unit_amount"),
    "event: subscription quantity as an object": (
        lambda h, e: _add(h, ("billing", "events"),
                          _sub_event(2, lambda s: s["items"]["data"][0].update(quantity={"value": 44}))),
        {"events": 1}, "data.object.items.data[].quantity"),
    "event: unknown currency XYZ": (
        lambda h, e: _add(h, ("billing", "events"), _sub_event(3, lambda s: (
            s.update(currency="xyz"), _price_of(s).update(currency="xyz")))),
        {"events": 1}, "data.object.currency"),
    "event created at 0 (1970)": (
        lambda h, e: _add(h, ("billing", "events"), _sub_event(4, lambda s: None, created=0)),
        {"events": 1}, "created"),
    "event previous_attributes with a quantity as text": (
        lambda h, e: _add(h, ("billing", "events"), {
            **_sub_event(5, lambda s: None),
            "data": {"object": subscription(75, 1, D2),
                     "previous_attributes": {"items": {"data": [{"id": "si_1", "quantity": "8"}]}}}}),
        {"events": 1}, "data.previous_attributes.items.data[].quantity"),
    "event without its object": (
        lambda h, e: _add(h, ("billing", "events"), {**_sub_event(6, lambda s: None), "data": {}}),
        {"events": 1}, "data.object"),
    "customer without id": (
        lambda h, e: _add(h, ("billing", "customers"), {k: v for k, v in customer(50, 1).items() if k != "id"}),
        {"customers": 1}, "id"),
}


def _with(obj: dict, change: Callable[[dict], Any]) -> dict:
    change(obj)
    return obj


@pytest.mark.parametrize("case", list(BILLING_CASES))
def test_billing_bad_record_is_quarantined_and_nothing_else_changes(tmp_path: Path, clean_load: CleanLoad,
                                                                   case: str) -> None:
    mutate, expected, field = BILLING_CASES[case]
    _assert_quarantined(tmp_path, clean_load, "billing", mutate, expected, field)


OTHER_CASES: dict[str, tuple[str, Callable[[dict, dict], None], dict[str, int], str | None]] = {
    "ticket priority as a number": (
        "support", lambda h, e: _add(h, ("support", "tickets"), ticket(50, 1, D2, priority=3), D2),
        {"tickets": 1}, "priority"),
    "ticket id as text": (
        "support", lambda h, e: _add(h, ("support", "tickets"), {**ticket(51, 1, D2), "id": "abc"}, D2),
        {"tickets": 1}, "id"),
    "ticket metric minutes as text": (
        "support", lambda h, e: _add(h, ("support", "ticket_metrics"), _with(
            ticket_metric(50, D1), lambda m: m.update(reply_time_in_minutes={"calendar": "12", "business": 3}))),
        {"ticket_metrics": 1}, "reply_time_in_minutes.calendar"),
    "opportunity amount as text": (
        "crm", lambda h, e: _add(h, ("crm", "Opportunity"), {**opportunity(50, 1, D1), "Amount": "12.50"}),
        {"opportunities": 1}, "Amount"),
    "account created in year 9999": (
        "crm", lambda h, e: _add(h, ("crm", "Account"), account(50, D1, CreatedDate="9999-12-31T00:00:00.000+0000")),
        {"accounts": 1}, "CreatedDate"),
    "contact without Id": (
        "crm", lambda h, e: _add(h, ("crm", "Contact"), {k: v for k, v in contact(50, 1, D1).items() if k != "Id"}),
        {"contacts": 1}, "Id"),
    "nps score 11": (
        "nps", lambda h, e: _add(h, ("nps", "survey_responses"), survey_response(50, 1, D1, score=11)),
        {"survey_responses": 1}, "score"),
    "nps score as text": (
        "nps", lambda h, e: _add(h, ("nps", "survey_responses"), {**survey_response(51, 1, D1), "score": "9"}),
        {"survey_responses": 1}, "score"),
    "nps created at 0 (1970)": (
        "nps", lambda h, e: _add(h, ("nps", "survey_responses"), {**survey_response(52, 1, D1), "created_at": 0}),
        {"survey_responses": 1}, "created_at"),
    "event line cut off": (
        "product", lambda h, e: e[D2].append('{"type":"track","messageId":"ajs-cut","timest'), {"events": 1}, None),
    "event line without messageId": (
        "product", lambda h, e: e[D2].append({k: v for k, v in segment_event(950, D2).items() if k != "messageId"}),
        {"events": 1}, "messageId"),
    "event line in year 9999": (
        "product", lambda h, e: e[D2].append({**segment_event(951, D2), "timestamp": "9999-01-30T00:00:00.000Z"}),
        {"events": 1}, "timestamp"),
    "event line oversized": (
        "product", lambda h, e: e[D2].append({**segment_event(952, D2), "properties": {"pad": "x" * 40_000}}),
        {"events": 1}, None),
}


@pytest.mark.parametrize("case", list(OTHER_CASES))
def test_bad_record_is_quarantined_and_nothing_else_changes(tmp_path: Path, clean_load: CleanLoad, case: str) -> None:
    system, mutate, expected, field = OTHER_CASES[case]
    _assert_quarantined(tmp_path, clean_load, system, mutate, expected, field)


def test_an_event_line_with_invalid_utf8_is_quarantined_with_its_line(tmp_path: Path, clean_load: CleanLoad) -> None:
    clean_tables, _ = clean_load("product")
    bad = make_loader(tmp_path, "bad")
    landing = write_landing(tmp_path / "bad" / "landing", tiny_company(), events=_events())
    part = landing / "product" / "events" / D2 / "part-00001.jsonl"
    part.write_bytes(part.read_bytes() + b'{"type":"track","messageId":"ajs-utf","event":"Log\xffin"}\n')
    totals = bad.run("product", landing)
    assert _tables(bad, "product") == clean_tables
    assert bad.query("select origin, position, reason from raw._quarantine") == [
        ("product/events/2026-01-02/part-00001.jsonl", 6, "line is not valid UTF-8 (byte 50)")]
    assert totals["events"].balanced and totals["events"].rows_quarantined == 1


def test_bom_and_crlf_load_as_if_they_were_not_there(tmp_path: Path, clean_load: CleanLoad) -> None:
    clean_tables, _ = clean_load("billing")
    bad = make_loader(tmp_path, "bad")
    landing = write_landing(tmp_path / "bad" / "landing", tiny_company(), events=_events())
    # before issue 15 a BOM on fx_rates.csv quarantined every rate ("Invalid isoformat string: ''")
    for path in [landing / "reference" / "fx_rates.csv", *landing.glob("billing/*/*/part-*.json"),
                 landing / "_manifest.json"]:
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().replace(b"\n", b"\r\n"))
    bad.run("billing", landing)
    assert bad.query("select count(*) from raw._quarantine") == [(0,)]
    assert _tables(bad, "billing") == clean_tables


def test_a_type_change_across_most_of_a_batch_stops_with_field_file_and_share(tmp_path: Path) -> None:
    history = tiny_company()
    history[D2][("billing", "prices")] = [{**price(n), "unit_amount": f"{n}.50"} for n in range(10, 22)]
    loader = make_loader(tmp_path, "bad")
    landing = write_landing(tmp_path / "bad" / "landing", history, events=_events())
    with pytest.raises(PipelineStepFailed) as failure:
        loader.run("billing", landing)
    message = str(failure.value)
    assert "contract change in field 'unit_amount'" in message
    assert "billing/prices/2026-01-02/part-00001.json" in message and "12 of 13 records (92%)" in message
    assert loader.query("select count(*) from information_schema.tables where table_name = 'billing__prices'") == [(0,)]
    assert loader.query("select status from raw._row_accounting where entity = 'prices'") == [("failed",)]


def test_a_required_field_disappearing_from_a_batch_stops(tmp_path: Path) -> None:
    history = tiny_company()
    history[D2][("billing", "subscriptions")] = [
        {k: v for k, v in subscription(n, 1, D2).items() if k != "customer"} for n in range(10, 22)]
    loader = make_loader(tmp_path, "bad")
    landing = write_landing(tmp_path / "bad" / "landing", history, events=_events())
    with pytest.raises(PipelineStepFailed, match="contract change in field 'customer'"):
        loader.run("billing", landing)


# -- mutations: every field of a sample record, into every other JSON type --------------------------------

def _substitutes(value: Any) -> list[Any]:
    """Values of other JSON types than ``value``'s (ints and floats are both numbers)."""
    if isinstance(value, bool):
        return ["yes", 1]
    if isinstance(value, int | float):
        return [f"{value}.50", {"value": value}, True]
    if isinstance(value, str):
        return [12.5, {"value": value}, ["x"]]
    if isinstance(value, dict):
        return ["text", 12]
    if isinstance(value, list):
        return ["text", {"a": 1}]
    return []


def _leaves(obj: Any, prefix: tuple = ()) -> list[tuple]:
    """Paths (tuples of keys and list indexes) of every non-null value, containers included."""
    out = []
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else []
    for key, value in items:
        if value is None:
            continue
        path = (*prefix, key)
        out.append(path)
        if isinstance(value, dict | list) and value:
            out += _leaves(value, path)
    return out


def _set(obj: Any, path: tuple, value: Any) -> None:
    for key in path[:-1]:
        obj = obj[key]
    obj[path[-1]] = value


def _mutants(sample: dict, pk: str, fresh: Callable[[int], Any], skip: Callable[[tuple], bool]) -> list[dict]:
    mutants = []
    for path in _leaves(sample):
        if path == (pk,) or skip(path):
            continue
        value = sample
        for key in path:
            value = value[key]
        for substitute in _substitutes(value):
            mutant = copy.deepcopy(sample)
            _set(mutant, path, substitute)
            mutant[pk] = fresh(len(mutants))
            mutants.append(mutant)
    return mutants


def _difference(sample: Any, mutant: Any, prefix: str = "") -> str:
    """The first path where ``mutant`` differs from ``sample`` (besides the id), for failure messages."""
    if isinstance(sample, dict) and isinstance(mutant, dict):
        for key in sample:
            if key in ("id", "Id"):
                continue
            if sample[key] != mutant.get(key):
                return _difference(sample[key], mutant.get(key), f"{prefix}{key}.")
        return prefix
    if isinstance(sample, list) and isinstance(mutant, list) and len(sample) == len(mutant):
        for index, (a, b) in enumerate(zip(sample, mutant, strict=True)):
            if a != b:
                return _difference(a, b, f"{prefix}{index}.")
    return f"{prefix.rstrip('.')}={json.dumps(mutant)[:60]}"


def _declared(path: tuple, fields: set[str], prefix: str = "") -> bool:
    generic = ".".join("[]" if isinstance(k, int) else str(k) for k in path).replace(".[]", "[]")
    return generic.removeprefix(prefix) in fields


SUB_FIELDS = set(billing_settings.SUBSCRIPTION_FIELDS)
MUTATED: dict[str, tuple[str, tuple[str, str], Callable[[], dict], str, Callable[[int], Any], Callable[[tuple], bool]]] = {
    "crm accounts": ("crm", ("crm", "Account"), lambda: account(1, D1), "Id",
                     lambda n: f"001MUT{n:09d}AAA", lambda p: p[0] == "attributes"),
    "crm opportunities": ("crm", ("crm", "Opportunity"), lambda: opportunity(1, 1, D1), "Id",
                          lambda n: f"006MUT{n:09d}AAA", lambda p: p[0] == "attributes"),
    "billing subscriptions and their items": (
        "billing", ("billing", "subscriptions"), lambda: subscription(1, 1, D1), "id",
        lambda n: f"sub_MUT{n:010d}",
        # list element ids are the child rows' keys; metadata maps are free-form
        lambda p: p[-1] == "metadata" or "metadata" in p or p[:1] == ("discounts",)),
    "billing invoices and their lines": (
        "billing", ("billing", "invoices"), lambda: invoice(1, 1, 1, D1), "id", lambda n: f"in_MUT{n:010d}",
        lambda p: "metadata" in p),
    "billing prices": ("billing", ("billing", "prices"), lambda: price(1), "id", lambda n: f"price_MUT{n:08d}",
                       lambda p: "metadata" in p),
    "billing events (the declared fields of the subscription inside)": (
        "billing", ("billing", "events"), lambda: stripe_event(1, D1, subscription(1, 1, D1)), "id",
        lambda n: f"evt_MUT{n:010d}",
        lambda p: p[0] == "data" and not _declared(p[2:], SUB_FIELDS) if len(p) > 2 else p[:1] == ("data",)),
    "support tickets": ("support", ("support", "tickets"), lambda: ticket(1, 1, D1), "id",
                        # custom fields are each account's own, free-form JSON
                        lambda n: 8_000_000_000 + n, lambda p: p[0] == "custom_fields"),
    "support ticket metrics": ("support", ("support", "ticket_metrics"), lambda: ticket_metric(1, D1), "id",
                               lambda n: 8_000_000_000 + n, lambda p: False),
    "nps survey responses": ("nps", ("nps", "survey_responses"), lambda: survey_response(1, 1, D1), "id",
                             lambda n: str(800_000 + n), lambda p: False),
}


@pytest.mark.parametrize("case", list(MUTATED))
def test_every_field_changing_type_is_quarantined(tmp_path: Path, clean_load: CleanLoad, case: str) -> None:
    system, key, sample, pk, fresh, skip = MUTATED[case]
    mutants = _mutants(sample(), pk, fresh, skip)
    assert len(mutants) >= 10

    def mutate(history: dict, events: dict) -> None:
        history[D1][key] = history[D1].get(key, []) + mutants

    clean_tables, _ = clean_load(system)
    history, events = tiny_company(), _events()
    mutate(history, events)
    bad, bad_totals = _load(tmp_path, "bad", system, history, events)
    quarantined = {json.loads(raw)[pk] for (raw,) in bad.query(
        f"select raw_text from raw._quarantine where source = '{system}'")}
    missed = [m for m in mutants if m[pk] not in quarantined]
    assert not missed, f"{len(missed)} of {len(mutants)} mutants loaded: " + "; ".join(
        _difference(sample(), m) for m in missed)
    assert _tables(bad, system) == clean_tables
    for name, counts in bad_totals.items():
        assert counts.balanced, (name, counts)
