"""Files-mode reader: Zendesk export pages under ``support/<entity>/<extract_day>/part-*.json``."""

from collections.abc import Iterator
from pathlib import Path

from cs_kpis.sources.common.landing import iter_envelope_keys, iter_envelope_records
from cs_kpis.sources.records import RawRecord
from cs_kpis.sources.support import settings


def iter_records(landing_dir: Path | str, entity: str, extract_day: str) -> Iterator[RawRecord]:
    """Stream the objects of one Zendesk entity and extract day, page by page."""
    yield from iter_envelope_records(landing_dir, f"{settings.SYSTEM}/{entity}", extract_day, lambda env: env[entity], entity)


def iter_keys(landing_dir: Path | str, entity: str, extract_day: str) -> Iterator[RawRecord]:
    """The same records with their ``id`` only, for the files-mode first pass (:func:`iter_envelope_keys`)."""
    yield from iter_envelope_keys(landing_dir, f"{settings.SYSTEM}/{entity}", extract_day, lambda env: env[entity], entity,
                                  (settings.PRIMARY_KEY,))
