"""Reading the landing folder (docs/LANDING.md): the manifest, extract days and envelope parts."""

import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

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
    return json.loads(path.read_text(encoding="utf-8-sig"))  # a byte-order mark is accepted


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


def _parse(data: bytes) -> Any:
    """A part's JSON: orjson (about 3x the standard library's speed on the Stripe pages), falling back to
    the standard library for what orjson refuses and ``json`` reads (integers beyond 64 bits, NaN)."""
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
) -> Iterator[RawRecord]:
    """Stream the records of every part of ``<folder>/<day>/``, one part in memory at a time.

    ``records_of`` takes a parsed envelope and returns its record list. A part that is not valid JSON
    or has no record list comes out as a single unparsed record, so it is quarantined, not lost.
    """
    for path in part_files(landing_dir, folder, day):
        origin = relative_origin(landing_dir, path)
        data = path.read_bytes()
        try:
            envelope = _parse(data)
            records = records_of(envelope)
        except (ValueError, KeyError, TypeError) as exc:
            yield RawRecord(None, origin, 0, raw_text=_text(data), error=f"unreadable part: {exc}")
            continue
        if not isinstance(records, list):
            yield RawRecord(None, origin, 0, raw_text=_text(data), error="envelope has no record list")
            continue
        for position, record in enumerate(records):
            if isinstance(record, dict):
                yield RawRecord(record, origin, position)
            else:
                yield RawRecord(None, origin, position, raw_text=json.dumps(record), error="record is not an object")


def read_fx_currencies(landing_dir: Path | str) -> set[str] | None:
    """Lower-case currency codes listed in ``reference/fx_rates.csv`` plus the reporting currency.

    None when the file is missing, which turns the unknown-currency check off.
    """
    import csv

    path = Path(landing_dir) / "reference" / "fx_rates.csv"
    if not path.exists():
        return None
    with path.open(newline="") as handle:
        currencies = {row["currency"].strip().lower() for row in csv.DictReader(handle) if row.get("currency")}
    try:
        reporting = read_manifest(landing_dir).get("reporting_currency")
    except (LandingIncomplete, ValueError):  # missing or malformed: the landing check reports it
        reporting = None
    if reporting:
        currencies.add(str(reporting).lower())
    return currencies
