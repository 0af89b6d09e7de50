"""A minimal landing folder and a stand-in simulator, for tests that must not depend on the real one."""

from pathlib import Path

from cs_kpis.defs.landing.manifest import SYSTEM_ENTITIES
from cs_kpis.simulator.landing import EVENTS
from cs_kpis_tests.landing_builder import write_landing

# the manifest's "<system>/<entity>" count keys: every entity an export must hold (docs/LANDING.md)
FAKE_ENTITIES = tuple(entity for entities in SYSTEM_ENTITIES.values() for entity in entities)


def write_fake_landing(
    landing_dir: Path, size: str = "demo", seed: int = 42, extract_days: tuple[str, ...] = ("2026-01-31",)
) -> dict:
    """One empty part per entity and extract day, an empty fx_rates.csv, then the manifest (written last, as
    the contract says), all through the simulator's writer.

    The manifest claims 3 rows per entity while the parts are empty: enough for the landing check, and
    loaders see a valid, empty export.
    """
    manifest = {
        "generator": "cs_kpis_tests.landing_fakes",
        "seed": seed,
        "size": size,
        "start_date": "2025-01-01",
        "end_date": extract_days[-1],
        "as_of": extract_days[0],
        "extract_days": list(extract_days),
        "reporting_currency": "USD",
        "bad_input": False,
        "counts": {entity: 3 for entity in FAKE_ENTITIES},
    }
    empty = {tuple(entity.split("/")): [] for entity in FAKE_ENTITIES if entity != EVENTS}
    write_landing(Path(landing_dir), {day: dict(empty) for day in extract_days},
                  events={day: [] for day in extract_days}, fx_currencies=(), manifest=manifest)
    return manifest
