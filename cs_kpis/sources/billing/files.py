"""Files-mode reader: Stripe list envelopes under ``billing/<entity>/<extract_day>/part-*.json``."""

from collections.abc import Iterator
from pathlib import Path

from cs_kpis.sources.billing import settings
from cs_kpis.sources.common.landing import iter_envelope_keys, iter_envelope_records
from cs_kpis.sources.records import RawRecord


def iter_records(landing_dir: Path | str, entity: str, extract_day: str) -> Iterator[RawRecord]:
    """Stream the objects of one Stripe entity and extract day, part by part."""
    yield from iter_envelope_records(landing_dir, f"{settings.SYSTEM}/{entity}", extract_day, lambda env: env["data"], "data")


def iter_keys(landing_dir: Path | str, entity: str, extract_day: str) -> Iterator[RawRecord]:
    """The same records with their ``id`` only, for the files-mode first pass (:func:`iter_envelope_keys`)."""
    yield from iter_envelope_keys(landing_dir, f"{settings.SYSTEM}/{entity}", extract_day, lambda env: env["data"], "data",
                                  (settings.PRIMARY_KEY,))
