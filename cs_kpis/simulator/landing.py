"""The landing folder format (docs/LANDING.md), written in one place.

Everything that writes a landing folder goes through here: the simulator (its version store hands over
JSON bodies already serialized, millions of them) and the tests' hand-made landings (a few dicts, see
cs_kpis_tests/landing_builder.py). What lives here and nowhere else:

- where a file goes: ``<landing>/<system>/<entity>/<extract_day>/part-NNNNN.json``,
  ``product/events/<received_day>/part-NNNNN.jsonl``, ``reference/fx_rates.csv``, ``_manifest.json``;
- each entity's vendor envelope (Stripe list, Salesforce query response, the three Zendesk export
  shapes, Delighted's bare array) and its paging fields;
- parts of at most :data:`PART_SIZE` records, numbered from ``part-00001``, always at least one;
- how an object becomes JSON text (:func:`dumps`), how an FX rate is printed, how the manifest is printed.

The bulk of the product events is formatted by DuckDB in cs_kpis/simulator/segment.py (tens of millions of
lines); it writes to :func:`events_part` and its lines are the same compact JSON as :func:`dumps`.
"""

import datetime as dt
import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

PART_SIZE = 1000
"""records per part (events: one part per received day, plus one for identify/group calls)"""

Envelope = Callable[[list[str], bool, int, int], str]
"""wraps the JSON bodies of one part: (bodies, more parts follow?, part number, records that day)"""


def stripe_envelope(url: str) -> Envelope:
    def wrap(bodies: list[str], has_more: bool, part: int, total: int) -> str:
        return (f'{{"object":"list","url":"{url}","has_more":{"true" if has_more else "false"},'
                f'"data":[{",".join(bodies)}]}}')
    return wrap


def salesforce_envelope(obj: str) -> Envelope:
    def wrap(bodies: list[str], has_more: bool, part: int, total: int) -> str:
        # a part that has more is a full one: part * len(bodies) records are delivered so far
        nxt = (f',"nextRecordsUrl":"/services/data/v62.0/query/01gSIM{obj[:3].upper()}-{part * len(bodies)}"'
               if has_more else "")
        return (f'{{"totalSize":{total},"done":{"false" if has_more else "true"}{nxt},'
                f'"records":[{",".join(bodies)}]}}')
    return wrap


def zendesk_envelope(key: str, kind: str, end_time: int) -> Envelope:
    def wrap(bodies: list[str], has_more: bool, part: int, total: int) -> str:
        items = f'"{key}":[{",".join(bodies)}]'
        if kind == "cursor":
            cur = f'"simcursor{part:05d}"'
            return (f'{{{items},"after_cursor":{cur if has_more else "null"},"before_cursor":null,'
                    f'"after_url":{"null" if not has_more else json.dumps(f"/api/v2/incremental/{key}/cursor.json?cursor=simcursor{part:05d}")},'
                    f'"end_of_stream":{"false" if has_more else "true"}}}')
        if kind == "incremental":
            nxt = json.dumps(f"/api/v2/incremental/{key}.json?start_time={end_time}&part={part + 1}") if has_more else "null"
            return (f'{{{items},"next_page":{nxt},"count":{len(bodies)},"end_time":{end_time},'
                    f'"end_of_stream":{"false" if has_more else "true"}}}')
        nxt = json.dumps(f"/api/v2/{key}.json?page={part + 1}") if has_more else "null"
        prev = json.dumps(f"/api/v2/{key}.json?page={part - 1}") if part > 1 else "null"
        return f'{{{items},"next_page":{nxt},"previous_page":{prev},"count":{total}}}'
    return wrap


def bare_array(bodies: list[str], has_more: bool, part: int, total: int) -> str:
    return "[" + ",".join(bodies) + "]"


# entity -> (envelope for an extract day ending at end_time (Unix seconds), newest first?)
ENTITIES: dict[str, tuple[Callable[[int], Envelope], bool]] = {
    "crm/Account": (lambda end: salesforce_envelope("Account"), False),
    "crm/User": (lambda end: salesforce_envelope("User"), False),
    "crm/Contact": (lambda end: salesforce_envelope("Contact"), False),
    "crm/Opportunity": (lambda end: salesforce_envelope("Opportunity"), False),
    "crm/AccountHistory": (lambda end: salesforce_envelope("AccountHistory"), False),
    "billing/customers": (lambda end: stripe_envelope("/v1/customers"), True),
    "billing/products": (lambda end: stripe_envelope("/v1/products"), True),
    "billing/prices": (lambda end: stripe_envelope("/v1/prices"), True),
    "billing/coupons": (lambda end: stripe_envelope("/v1/coupons"), True),
    "billing/subscriptions": (lambda end: stripe_envelope("/v1/subscriptions"), True),
    "billing/invoices": (lambda end: stripe_envelope("/v1/invoices"), True),
    "billing/events": (lambda end: stripe_envelope("/v1/events"), True),
    "billing/invoiceitems": (lambda end: stripe_envelope("/v1/invoiceitems"), True),
    "support/organizations": (lambda end: zendesk_envelope("organizations", "incremental", end), False),
    "support/tickets": (lambda end: zendesk_envelope("tickets", "cursor", end), False),
    "support/ticket_metrics": (lambda end: zendesk_envelope("ticket_metrics", "offset", end), False),
    "support/satisfaction_ratings": (lambda end: zendesk_envelope("satisfaction_ratings", "offset", end), False),
    "nps/survey_responses": (lambda end: bare_array, False),
}
EVENTS = "product/events"
FX_RATES = Path("reference") / "fx_rates.csv"
MANIFEST = "_manifest.json"


def day_bounds(day: dt.date) -> tuple[int, int]:
    """Unix seconds of the start of ``day`` (UTC) and of the next day."""
    start = int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())
    return start, start + 86400


def _day(day: dt.date | str) -> dt.date:
    return dt.date.fromisoformat(day) if isinstance(day, str) else day


def dumps(obj: Any) -> str:
    """One object as the compact JSON text a part or an events line holds."""
    return json.dumps(obj, separators=(",", ":"))


def write_bodies(landing: Path, entity: str, day: dt.date | str, bodies: Iterable[str], total: int,
                 *, part_size: int = PART_SIZE) -> int:
    """Write one extract day of one entity (``"<system>/<entity>"``) from JSON bodies, in its vendor's
    envelope, as numbered parts; always at least one (possibly empty) part. ``total`` is the number of
    bodies (the envelopes' paging and counts need it before the last one). Returns the bodies written."""
    if entity not in ENTITIES:
        raise ValueError(f"unknown landing entity {entity!r}; expected one of {', '.join(ENTITIES)}")
    day = _day(day)
    wrap = ENTITIES[entity][0](day_bounds(day)[1])
    folder = Path(landing) / entity / day.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    part, written, chunk = 1, 0, []
    for body in bodies:
        chunk.append(body)
        if len(chunk) == part_size:
            written += len(chunk)
            (folder / f"part-{part:05d}.json").write_text(wrap(chunk, written < total, part, total))
            part, chunk = part + 1, []
    if chunk or part == 1:
        written += len(chunk)
        (folder / f"part-{part:05d}.json").write_text(wrap(chunk, False, part, total))
    return written


def write_records(landing: Path, entity: str, day: dt.date | str, records: Sequence[Any],
                  *, part_size: int = PART_SIZE) -> int:
    """:func:`write_bodies` for objects in memory (each serialized with :func:`dumps`)."""
    return write_bodies(landing, entity, day, (dumps(r) for r in records), len(records), part_size=part_size)


def events_part(landing: Path, day: dt.date | str, part: int = 1) -> Path:
    """The path of one part of the product events Segment received on ``day`` (its folder created)."""
    folder = Path(landing) / EVENTS / _day(day).isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"part-{part:05d}.jsonl"


def write_event_lines(landing: Path, day: dt.date | str, lines: Iterable[str], part: int = 1) -> int:
    """Write product event lines (JSON text, one event each: :func:`dumps`) as one part of ``day``.
    Returns the lines written."""
    lines = list(lines)
    events_part(landing, day, part).write_text("".join(line + "\n" for line in lines))
    return len(lines)


def write_fx(landing: Path, rates: Iterable[tuple[dt.date | str, str, float]]) -> Path:
    """``reference/fx_rates.csv`` from (day, currency, rate) rows, in the given order."""
    path = Path(landing) / FX_RATES
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["date,currency,rate"]
    lines += [f"{_day(day).isoformat()},{cur},{float(rate):.4f}" for day, cur, rate in rates]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_manifest(landing: Path, manifest: dict[str, Any]) -> Path:
    """``_manifest.json``: write it last, after every part (docs/LANDING.md, "For exporters")."""
    path = Path(landing) / MANIFEST
    path.write_text(json.dumps(manifest, indent=1))
    return path
