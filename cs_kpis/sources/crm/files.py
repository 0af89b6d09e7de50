"""Files-mode reader: Salesforce query responses under ``crm/<Object>/<extract_day>/part-*.json``."""

from collections.abc import Iterator
from pathlib import Path

from cs_kpis.sources.common.landing import iter_envelope_records
from cs_kpis.sources.crm import settings
from cs_kpis.sources.records import RawRecord


def iter_records(landing_dir: Path | str, entity: str, extract_day: str) -> Iterator[RawRecord]:
    """Stream the records of one object (``Account`` or ``accounts``) and extract day, part by part."""
    folder = settings.FOLDERS.get(entity, entity)
    yield from iter_envelope_records(landing_dir, f"{settings.SYSTEM}/{folder}", extract_day, lambda env: env["records"], "records")
