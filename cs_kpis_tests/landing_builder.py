"""Hand-made landing folders for tests, written by the simulator's own writer (cs_kpis/simulator/landing.py).

A test describes its company as a :data:`History` (extract day -> (system, entity) -> objects) and a few
Segment events; :func:`write_landing` hands them to the writer the simulator uses, so the envelopes,
parts, FX file and manifest are the same format as a generated company's. The two sets of hand-made
objects live beside their tests: cs_kpis_tests/sources/landing_builder.py (the tiny company of the files
readers) and cs_kpis_tests/sources_api/landing_builder.py (the fake vendor servers' company).
"""

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cs_kpis.simulator.landing import (
    PART_SIZE,
    dumps,
    write_event_lines,
    write_fx,
    write_manifest,
    write_records,
)

History = dict[str, dict[tuple[str, str], list[Any]]]
"""extract day -> (system, entity) -> objects of that day's snapshot or increment"""


def primary_key(system: str) -> str:
    """The id field of a system's objects: ``Id`` for Salesforce, ``id`` elsewhere."""
    return "Id" if system == "crm" else "id"


def write_landing(
    root: Path,
    history: History,
    *,
    events: dict[str, list[Any]] | None = None,
    fx_currencies: Iterable[str] = ("USD", "EUR", "GBP"),
    part_size: int = PART_SIZE,
    manifest: dict[str, Any] | None = None,
) -> Path:
    """Write ``history`` (and Segment events per received day) as a landing folder, manifest last.

    An event is a dict, or a string written as the line itself: the one way to plant a malformed line
    (cut off, not JSON) among good ones. FX: a rate per currency for every day of ``history`` (USD 1, others
    1.1). ``manifest``: written as given instead of the one built here (the simulator's keys, with
    ``counts`` as the simulator counts them).
    """
    root = Path(root)
    for day, entities in history.items():
        for (system, entity), objects in entities.items():
            write_records(root, f"{system}/{entity}", day, objects, part_size=part_size)
    for day, lines in (events or {}).items():
        write_event_lines(root, day, (line if isinstance(line, str) else dumps(line) for line in lines))
    currencies = list(fx_currencies)
    write_fx(root, [(day, cur, 1.0 if cur == "USD" else 1.1) for day in sorted(history) for cur in currencies])
    days = sorted(set(history) | set(events or {}))
    write_manifest(root, manifest if manifest is not None else {
        "generator": "cs_kpis_tests.landing_builder",
        "seed": 1,
        "size": "test",
        "start_date": days[0],
        "end_date": days[-1],
        "as_of": days[0],
        "extract_days": days,
        "reporting_currency": "USD",
        "bad_input": False,
        "counts": counts(history, events),
    })
    return root


def counts(history: History, events: dict[str, list[Any]] | None = None) -> dict[str, int]:
    """The manifest's ``counts`` as the simulator writes them: distinct ids per entity folder over all days
    (records without an id are not counted), and every event line written."""
    ids: dict[str, set[Any]] = {}
    for entities in history.values():
        for (system, entity), objects in entities.items():
            pk = primary_key(system)
            found = ids.setdefault(f"{system}/{entity}", set())
            found.update(obj[pk] for obj in objects if isinstance(obj, dict) and obj.get(pk) is not None)
    out = {folder: len(found) for folder, found in ids.items()}
    if events:
        out["product/events"] = sum(len(lines) for lines in events.values())
    return out


def final_snapshot(history: History) -> History:
    """The single snapshot on the last day: every object's latest version, merged on its id."""
    merged: dict[tuple[str, str], dict[Any, dict[str, Any]]] = {}
    for day in sorted(history):
        for key, objects in history[day].items():
            for obj in objects:
                merged.setdefault(key, {})[obj.get("Id", obj.get("id"))] = obj
    return {max(history): {key: list(objs.values()) for key, objs in merged.items()}}
