"""Files-mode reading of Segment events under ``product/events/<received_day>/part-*.jsonl``.

The source loads whole days with DuckDB (:mod:`cs_kpis.sources.product.loader`); ``iter_records`` is
the record-by-record reader with the same contract as the other systems, for tools and tests.
"""

import json
from collections.abc import Iterator
from pathlib import Path

from cs_kpis.sources.common.landing import part_files, relative_origin
from cs_kpis.sources.product import settings
from cs_kpis.sources.records import RawRecord


def day_files(landing_dir: Path | str, received_day: str) -> list[Path]:
    """The part files of one received day, in part order."""
    return part_files(landing_dir, settings.FOLDER, received_day, suffix=".jsonl")


def iter_records(landing_dir: Path | str, entity: str, extract_day: str) -> Iterator[RawRecord]:
    """Stream the events of one received day, line by line (position = 0-based line number)."""
    for path in day_files(landing_dir, extract_day):
        origin = relative_origin(landing_dir, path)
        with path.open() as handle:
            for position, line in enumerate(handle):
                line = line.rstrip("\n")
                try:
                    obj = json.loads(line)
                except ValueError as exc:
                    yield RawRecord(None, origin, position, raw_text=line, error=f"malformed JSON line: {exc}")
                    continue
                if isinstance(obj, dict):
                    yield RawRecord(obj, origin, position)
                else:
                    yield RawRecord(None, origin, position, raw_text=line, error="line is not a JSON object")
