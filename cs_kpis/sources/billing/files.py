"""Files-mode reader: Stripe list envelopes under ``billing/<entity>/<extract_day>/part-*.json``."""

from collections.abc import Iterator
from pathlib import Path

from cs_kpis.sources.billing import settings
from cs_kpis.sources.common.landing import EnvelopePages
from cs_kpis.sources.records import RawRecord

PAGES = EnvelopePages(settings.SYSTEM, "data")
"""the Stripe pages: each a list envelope with the records under ``data``"""


def iter_records(landing_dir: Path | str, entity: str, extract_day: str) -> Iterator[RawRecord]:
    """Stream the objects of one Stripe entity and extract day, part by part."""
    yield from PAGES.iter_records(landing_dir, entity, extract_day)


def iter_keys(landing_dir: Path | str, entity: str, extract_day: str) -> Iterator[RawRecord]:
    """The same records with their ``id`` only, for the files-mode first pass (:func:`iter_envelope_keys`)."""
    yield from PAGES.iter_keys(landing_dir, entity, extract_day, (settings.PRIMARY_KEY,))
