"""Reading the landing folder (docs/LANDING.md): the manifest, extract days and envelope parts."""

import json
import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import simdjson

from cs_kpis.sources.records import RawRecord

log = logging.getLogger(__name__)

MANIFEST = "_manifest.json"


class LandingIncomplete(RuntimeError):
    """The landing folder has no ``_manifest.json``: the export is absent or still being written."""


def read_manifest(landing_dir: Path | str) -> dict[str, Any]:
    """Return the parsed ``_manifest.json``; raise :class:`LandingIncomplete` when it is missing."""
    path = Path(landing_dir) / MANIFEST
    if not path.exists():
        raise LandingIncomplete(f"{path} not found: the landing folder is incomplete or empty")
    return json.loads(read_text_file(path))  # a byte-order mark is accepted


def extract_days(landing_dir: Path | str) -> list[str]:
    """The manifest's extract days (``YYYY-MM-DD``), oldest first; the first one is the snapshot."""
    return sorted(str(day) for day in read_manifest(landing_dir).get("extract_days") or [])


def pending_days(all_days: list[str], last_loaded: str | None, max_days: int | None = None) -> list[str]:
    """The extract days after ``last_loaded``, oldest first, at most ``max_days`` of them."""
    days = [day for day in sorted(all_days) if last_loaded is None or day > last_loaded]
    return days[:max_days] if max_days else days


def part_files(landing_dir: Path | str, folder: str, day: str, suffix: str = ".json") -> list[Path]:
    """The part files of one entity folder and day, in part order (``part-00001`` first)."""
    day_dir = Path(landing_dir) / folder / day
    if not day_dir.is_dir():
        return []
    return sorted(day_dir.glob(f"part-*{suffix}"))


def relative_origin(landing_dir: Path | str, path: Path) -> str:
    """A part file's path relative to the landing folder, as quarantine and errors report it."""
    try:
        return str(Path(path).relative_to(Path(landing_dir)))
    except ValueError:
        return str(path)


BOM = b"\xef\xbb\xbf"


def read_text_file(path: Path | str) -> str:
    """A UTF-8 text file without its byte-order mark, if it has one (Excel and Windows tools write one)."""
    return Path(path).read_text(encoding="utf-8-sig")


def _parse(data: bytes) -> Any:
    """A part's JSON: orjson (about 3x the standard library's speed on the Stripe pages), falling back to
    the standard library for what orjson refuses and ``json`` reads (integers beyond 64 bits, NaN). A
    byte-order mark is skipped; CRLF line ends are JSON whitespace."""
    data = data.removeprefix(BOM)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def iter_envelope_records(
    landing_dir: Path | str,
    folder: str,
    day: str,
    records_of: Callable[[Any], Any],
    list_key: str | None = None,
) -> Iterator[RawRecord]:
    """Stream the records of every part of ``<folder>/<day>/``, one part in memory at a time.

    ``records_of`` takes a parsed envelope and returns its record list; ``list_key`` names that list in
    the envelope (None: the part is a bare array). A part that is not valid JSON (cut off, a stray byte)
    is salvaged: the records before the damage load, and the rest comes out as one unparsed entry
    standing for the estimated number of records it held (:func:`salvage_part`), so the loss is counted
    in records, not as one row.
    """
    for path in part_files(landing_dir, folder, day):
        yield from _part_records(path.read_bytes(), relative_origin(landing_dir, path), records_of, list_key)


def _part_records(data: bytes, origin: str, records_of: Callable[[Any], Any], list_key: str | None) -> Iterator[RawRecord]:
    """The records of one part, as :func:`iter_envelope_records` reads them."""
    try:
        envelope = _parse(data)
        records = records_of(envelope)
    except (ValueError, KeyError, TypeError) as exc:
        yield from salvage_part(data, origin, list_key, f"unreadable part: {exc}")
        return
    if not isinstance(records, list):
        yield RawRecord(None, origin, None, raw_text=_text(data), error="envelope has no record list")
        return
    for position, record in enumerate(records):
        if isinstance(record, dict):
            yield RawRecord(record, origin, position)
        else:
            yield RawRecord(None, origin, position, raw_text=json.dumps(record), error="record is not an object")


class KeyFields(dict):
    """What :func:`iter_envelope_keys` yields for a record: its key fields only; :meth:`load` parses its
    part in full and returns the whole object (the first pass needs it for a key seen before)."""

    def __init__(self, values: dict[str, Any], part: "_Part", position: int) -> None:
        super().__init__(values)
        self.part = part
        self.position = position

    def load(self) -> dict[str, Any]:
        return self.part.records()[self.position]


class _Part:
    """One part file, parsed in full on demand (orjson, as :func:`iter_envelope_records` does), once."""

    def __init__(self, data: bytes, records_of: Callable[[Any], Any]) -> None:
        self.data = data
        self.records_of = records_of
        self._records: list[Any] | None = None

    def records(self) -> list[Any]:
        if self._records is None:
            self._records = self.records_of(_parse(self.data))
        return self._records


_KEY_TYPES = (str, int, type(None))


def _key_values(data: bytes, list_key: str | None, fields: tuple[str, ...]) -> list[dict[str, Any]] | None:
    """The ``fields`` of each record of a part, read with simdjson without building the records; None when
    the part is not a plain envelope of objects whose key fields are strings, integers or null (it is then
    read in full, as the second pass reads it)."""
    try:
        document = simdjson.Parser().parse(data.removeprefix(BOM))
        items = document
        if list_key is not None:
            if not isinstance(document, simdjson.Object):
                return None
            items = document.get(list_key)
        if not isinstance(items, simdjson.Array):
            return None
        values = []
        for item in items:
            if not isinstance(item, simdjson.Object):
                return None
            fields_of = {}
            for name in fields:
                value = item.get(name)
                if type(value) not in _KEY_TYPES:
                    return None
                fields_of[name] = value
            values.append(fields_of)
        return values
    except Exception:  # noqa: BLE001 - anything simdjson does not read plainly is read in full instead
        return None


def iter_envelope_keys(
    landing_dir: Path | str,
    folder: str,
    day: str,
    records_of: Callable[[Any], Any],
    list_key: str | None = None,
    fields: tuple[str, ...] = ("id",),
) -> Iterator[RawRecord]:
    """:func:`iter_envelope_records` for the files-mode first pass, which needs each record's key only: the
    same records in the same order, a plain record as :class:`KeyFields` (its top-level ``fields``, read
    with simdjson at a tenth of the cost of parsing the records into Python). A part simdjson cannot read
    that way (damaged, unusual) comes out exactly as :func:`iter_envelope_records` gives it."""
    for path in part_files(landing_dir, folder, day):
        origin = relative_origin(landing_dir, path)
        data = path.read_bytes()
        values = _key_values(data, list_key, fields)
        if values is None:
            yield from _part_records(data, origin, records_of, list_key)
            continue
        part = _Part(data, records_of)
        for position, fields_of in enumerate(values):
            yield RawRecord(KeyFields(fields_of, part, position), origin, position)


_REPLACEMENT = "\ufffd"


def salvage_part(data: bytes, origin: str, list_key: str | None, error: str) -> Iterator[RawRecord]:
    """The records of a damaged part that still parse, in order, then one entry for the rest.

    Each record of the list is decoded on its own; the first one that does not decode ends the salvage.
    A record holding bytes that are not UTF-8 is quarantined by itself (its text would change otherwise).
    The rest of the part is one unparsed entry whose ``records`` is an estimate of how many records it held:
    its size over the average size of the salvaged records (at least 1 when it is not just the envelope's
    closing brackets). The manifest reconciliation check compares the exact counts.
    """
    text = (data.removeprefix(BOM)).decode("utf-8", errors="replace")
    genuine_replacement = _REPLACEMENT.encode() in data
    if list_key is None:
        match = re.match(r"\s*\[", text)
    else:
        match = re.search(r'"' + re.escape(list_key) + r'"\s*:\s*\[', text)
    if match is None:
        yield RawRecord(None, origin, None, raw_text=text, error=f"{error}; no record list found")
        return
    decoder = json.JSONDecoder()
    index, position, sizes = match.end(), 0, []
    while True:
        while index < len(text) and text[index] in " \t\r\n,":
            index += 1
        if index >= len(text) or text[index] == "]":
            break
        try:
            obj, end = decoder.raw_decode(text, index)
        except ValueError:
            break
        span = text[index:end]
        sizes.append(end - index)
        if _REPLACEMENT in span and not genuine_replacement:
            yield RawRecord(None, origin, position, raw_text=span, error="record holds bytes that are not valid UTF-8")
        elif isinstance(obj, dict):
            yield RawRecord(obj, origin, position)
        else:
            yield RawRecord(None, origin, position, raw_text=span, error="record is not an object")
        position += 1
        index = end
    rest = text[index:]
    if rest.lstrip().startswith("]"):
        lost = 0  # the list is whole: the damage is in the envelope after it
    else:
        average = sum(sizes) / len(sizes) if sizes else None
        lost = max(1, round(len(rest) / average)) if average else 1
    yield RawRecord(
        None, origin, None, raw_text=rest, records=lost,
        error=f"{error}; {position} records before the damage loaded, the unreadable rest held about {lost} "
              "(estimated from its size)",
    )


def read_fx_currencies(landing_dir: Path | str | None, fx_rates_path: Path | str | None = None) -> set[str] | None:
    """Lower-case currency codes listed in ``reference/fx_rates.csv`` (or ``fx_rates_path``) plus the
    reporting currency of the landing manifest.

    None when the file is missing, which turns the unknown-currency check off.
    """
    import csv

    path = Path(fx_rates_path) if fx_rates_path else Path(landing_dir) / "reference" / "fx_rates.csv"
    if not path.exists():
        return None
    with path.open(newline="", encoding="utf-8-sig") as handle:
        currencies = {row["currency"].strip().lower() for row in csv.DictReader(handle) if row.get("currency")}
    try:
        reporting = read_manifest(landing_dir).get("reporting_currency") if landing_dir else None
    except (LandingIncomplete, ValueError):  # missing or malformed: the landing check reports it
        reporting = None
    if reporting:
        currencies.add(str(reporting).lower())
    return currencies
