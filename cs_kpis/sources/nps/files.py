"""Files-mode reader: Delighted pages (bare JSON arrays) under ``nps/survey_responses/<extract_day>/``."""

from collections.abc import Iterator
from pathlib import Path

from cs_kpis.sources.common.landing import iter_envelope_records
from cs_kpis.sources.nps import settings
from cs_kpis.sources.records import RawRecord


def iter_records(landing_dir: Path | str, entity: str, extract_day: str) -> Iterator[RawRecord]:
    """Stream the survey responses of one extract day, page by page."""
    yield from iter_envelope_records(landing_dir, f"{settings.SYSTEM}/{entity}", extract_day, lambda page: page, None)
