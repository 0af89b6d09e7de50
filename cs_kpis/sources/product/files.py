"""Files-mode reading of Segment events under ``product/events/<received_day>/part-*.jsonl``.

The source loads whole days with DuckDB (:mod:`cs_kpis.sources.product.loader`); ``iter_records`` is
the record-by-record reader with the same contract as the other systems, for tools and tests.
"""

import json
import re
from collections.abc import Iterator
from pathlib import Path

from cs_kpis.sources.common.landing import part_files, relative_origin
from cs_kpis.sources.product import settings
from cs_kpis.sources.records import RawRecord

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def day_files(landing_dir: Path | str, received_day: str) -> list[Path]:
    """The part files of one received day, in part order."""
    return part_files(landing_dir, settings.FOLDER, received_day, suffix=".jsonl")


def received_days(landing_dir: Path | str, after: str | None, up_to: str) -> list[str]:
    """The received-day folders in ``(after, up_to]``, oldest first.

    Events are filed by the day Segment received them, not by extract day: the snapshot extract
    covers every received day up to it, and each increment covers its own day.
    """
    root = Path(landing_dir) / settings.FOLDER
    if not root.is_dir():
        return []
    names = (p.name for p in root.iterdir() if p.is_dir() and _DAY.fullmatch(p.name))
    return sorted(n for n in names if (after is None or n > after) and n <= up_to)


def batches(landing_dir: Path | str, folders: list[str], max_bytes: int) -> Iterator[list[str]]:
    """The part files of ``folders`` in batches of whole received days, at most ``max_bytes`` each
    (a day larger than that is a batch of its own), in folder then part order."""
    batch: list[str] = []
    size = 0
    for folder in folders:
        paths = day_files(landing_dir, folder)
        day_size = sum(p.stat().st_size for p in paths)
        if batch and size + day_size > max_bytes:
            yield batch
            batch, size = [], 0
        batch += [str(p) for p in paths]
        size += day_size
    if batch:
        yield batch


def iter_records(landing_dir: Path | str, entity: str, extract_day: str) -> Iterator[RawRecord]:
    """Stream the events of one received day, line by line (position = 0-based line number)."""
    for path in day_files(landing_dir, extract_day):
        origin = relative_origin(landing_dir, path)
        with path.open(encoding="utf-8-sig", errors="replace", newline="") as handle:
            for position, line in enumerate(handle):
                line = line.rstrip("\n").rstrip("\r")
                try:
                    obj = json.loads(line)
                except ValueError as exc:
                    yield RawRecord(None, origin, position, raw_text=line, error=f"malformed JSON line: {exc}")
                    continue
                if isinstance(obj, dict):
                    yield RawRecord(obj, origin, position)
                else:
                    yield RawRecord(None, origin, position, raw_text=line, error="line is not a JSON object")
