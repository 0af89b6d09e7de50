"""Pure transforms of Stripe objects into raw rows."""

import csv
import io
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from typing import Any

from cs_kpis.sources.billing import settings
from cs_kpis.sources.common.contract import Contract, default_parsers
from cs_kpis.sources.common.helpers import (
    Reject,
    check_currency,
    check_non_negative,
    convert_flat_fields,
    flatten,
    parse_unix,
    require_fields,
)


def prepare_object(obj: dict[str, Any], entity: str, currencies: set[str] | None = None) -> dict[str, Any]:
    """Check id, currency and amounts, turn Unix seconds into timestamps; raise Reject when it cannot load."""
    require_fields(obj, (settings.PRIMARY_KEY,))
    row = flatten(obj, settings.JSON_PATHS.get(entity, frozenset()))
    convert_flat_fields(row, settings.UNIX_FIELDS.get(entity, ()), parse_unix)
    check_currency(obj, settings.CURRENCY_FIELDS.get(entity, ()), currencies)
    check_non_negative(obj, settings.NON_NEGATIVE_FIELDS.get(entity, ()))
    return row


def child_items(obj: dict[str, Any], child: str) -> list[dict[str, Any]]:
    """The raw child objects (subscription items, invoice lines) of a parent object."""
    _, list_field, _ = settings.CHILDREN[child]
    nested = obj.get(list_field) or {}
    items = nested.get("data") if isinstance(nested, dict) else nested
    return [item for item in items or [] if isinstance(item, dict)]


def with_children(obj: dict[str, Any], child: str) -> list[dict[str, Any]]:
    """What the type check sees of a parent and of its child table alike, so a subscription and its items
    are quarantined together whichever of them holds the changed field: the parent without its list, the
    list envelope under ``<list>{}`` (``items{}.url``) and each child under ``<list>[]``
    (``items[].price.unit_amount``)."""
    _, list_field, _ = settings.CHILDREN[child]
    nested = obj.get(list_field)
    checked = [{key: value for key, value in obj.items() if key != list_field}]
    if isinstance(nested, dict):
        checked.append({f"{list_field}{{}}": {key: value for key, value in nested.items() if key != "data"}})
    elif nested is not None:
        checked.append({f"{list_field}{{}}": nested})
    return checked + [{f"{list_field}[]": item} for item in child_items(obj, child)]


def prepare_children(obj: dict[str, Any], child: str, currencies: set[str] | None = None) -> list[dict[str, Any]]:
    """Rows of a child table, each with its parent's id as foreign key.

    A parent that cannot load yields no children (the parent's quarantine row holds them). One bad child
    rejects the parent's set, since the set is replaced as a whole.
    """
    parent, _, _ = settings.CHILDREN[child]
    try:
        prepare_object(obj, parent, currencies)
    except Reject:
        return []
    return prepare_child_rows(obj, child, currencies)


def prepare_child_rows(obj: dict[str, Any], child: str, currencies: set[str] | None = None) -> list[dict[str, Any]]:
    """:func:`prepare_children` for a parent whose own preparation is known to succeed: the parent's pass over
    the files has just prepared it, so it is not prepared (flattened, converted) a second time."""
    _, _, foreign_key = settings.CHILDREN[child]
    rows = []
    for index, item in enumerate(child_items(obj, child)):
        item = {**item, foreign_key: obj[settings.PRIMARY_KEY]}
        try:
            rows.append(prepare_object(item, child, currencies))
        except Reject as exc:
            raise Reject(f"{child}[{index}]: {exc}") from None
    return rows


def parse_fx_rates(text: str) -> tuple[list[dict[str, Any]], list[tuple[int, str, str]]]:
    """Rows of ``fx_rates.csv`` (date, currency, rate) and the bad ones as (line, raw text, reason)."""
    rows, bad = [], []
    text = text.removeprefix("\ufeff")
    lines = text.splitlines()
    for number, record in enumerate(csv.DictReader(io.StringIO(text)), start=1):
        raw = lines[number] if number < len(lines) else ""
        try:
            day = date.fromisoformat((record.get("date") or "").strip())
            currency = (record.get("currency") or "").strip().upper()
            rate = float(record.get("rate") or "")
            if not currency:
                raise ValueError("missing currency")
            if rate <= 0:
                raise ValueError(f"rate must be positive, got {rate}")
        except ValueError as exc:
            bad.append((number, raw, f"bad fx rate: {exc}"))
            continue
        rows.append({"date": day, "currency": currency, "rate": rate})
    return rows, bad


def contracts(currencies: set[str] | None, window: Any) -> dict[str, Callable[[dict[str, Any]], None]]:
    """Entity -> its contract check (``settings.CONTRACTS``). Children use their parent's; an event checks
    the object it carries (``settings.EVENT_OBJECTS``) like the subscription or invoice it is, under
    ``data.object``, and its ``previous_attributes`` with the same fields, none required."""
    parsers = default_parsers()

    def make(fields: dict) -> Contract:
        return Contract(fields, currencies=currencies, window=window, parsers=parsers)

    checks = {entity: make(fields).check for entity, fields in settings.CONTRACTS.items()}
    event = make(settings.CONTRACTS["events"])
    inner = [
        (prefix, make(fields), make({path: replace(spec, required=False) for path, spec in fields.items()}))
        for prefix, fields in settings.EVENT_OBJECTS.items()
    ]

    def check_event(obj: dict[str, Any]) -> None:
        event.check(obj)
        kind = obj["type"]
        for prefix, full, partial in inner:
            if kind.startswith(prefix):
                full.check(obj["data"]["object"], prefix="data.object.")
                previous = obj["data"].get("previous_attributes")
                if isinstance(previous, dict):
                    partial.check(previous, prefix="data.previous_attributes.")

    checks["events"] = check_event
    for child, (parent, _, _) in settings.CHILDREN.items():
        checks[child] = checks[parent]
    return checks
