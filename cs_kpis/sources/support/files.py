"""Files-mode reader: Zendesk export pages under ``support/<entity>/<extract_day>/part-*.json``."""

from collections.abc import Iterator
from pathlib import Path

from cs_kpis.sources.common.landing import EnvelopePages
from cs_kpis.sources.records import RawRecord
from cs_kpis.sources.support import settings

PAGES = EnvelopePages(settings.SYSTEM)
"""the Zendesk export pages: each an envelope with the records under the entity's name"""


def iter_records(landing_dir: Path | str, entity: str, extract_day: str) -> Iterator[RawRecord]:
    """Stream the objects of one Zendesk entity and extract day, page by page."""
    yield from PAGES.iter_records(landing_dir, entity, extract_day)


def iter_keys(landing_dir: Path | str, entity: str, extract_day: str) -> Iterator[RawRecord]:
    """The same records with their ``id`` only, for the files-mode first pass (:func:`iter_envelope_keys`)."""
    yield from PAGES.iter_keys(landing_dir, entity, extract_day, (settings.PRIMARY_KEY,))
