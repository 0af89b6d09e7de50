"""raw/<system>/<entity>: one @dlt_assets per source system, loading into the DuckDB warehouse.

Layout: one DuckDB schema ``raw`` for all systems, tables ``<system>__<entity>`` (``raw.billing__invoices``),
plus ``raw._quarantine`` and ``raw._row_accounting`` shared by all systems. One dlt pipeline per system
(``cs_kpis_raw_<system>``) so each keeps its own state and schema, and one system's failure does not
block the others.
"""

import os
from pathlib import Path

import dagster as dg
from dagster_dlt import dlt_assets

from cs_kpis import settings
from cs_kpis.defs.raw.checks import build_raw_checks
from cs_kpis.defs.raw.resources import RawDltResource
from cs_kpis.defs.raw.translator import RawDltTranslator
from cs_kpis.sources.pipelines import API_CONFIGS, DATASET, SOURCES, api_config, make_pipeline, make_source

__all__ = ["API_CONFIGS", "DATASET", "POOL", "SOURCES", "api_config", "build_raw_assets", "ingest_mode", "make_pipeline"]

POOL = "warehouse"


def ingest_mode() -> str:
    """``files`` (default: read the landing folder) or ``api`` (call the vendors), from CS_KPIS_INGEST_MODE."""
    mode = os.environ.get("CS_KPIS_INGEST_MODE", "files").strip().lower() or "files"
    if mode not in ("files", "api"):
        raise ValueError(f"CS_KPIS_INGEST_MODE must be 'files' or 'api', got {mode!r}")
    return mode


def system_mode(system: str, mode: str) -> str:
    """The mode one system loads in: product events come from the landing folder in both modes."""
    return mode if system in API_CONFIGS else "files"


def build_raw_assets(
    *,
    landing_dir: Path,
    warehouse: Path,
    pipelines_dir: Path,
    mode: str = "files",
    systems: tuple[str, ...] = tuple(SOURCES),
) -> list[dg.AssetsDefinition]:
    """One multi-asset per system; paths are arguments so tests can point them at tmp_path."""
    assets = []
    for system in systems:
        # the landing folder is passed in api mode too: its reference/fx_rates.csv (billing__fx_rates and
        # the known currencies) and the product events are files in both modes
        this_mode = system_mode(system, mode)
        source = make_source(system, landing_dir=landing_dir, mode=this_mode)
        translator = RawDltTranslator(system=system, files_mode=this_mode == "files")

        @dlt_assets(
            dlt_source=source,
            dlt_pipeline=make_pipeline(system, warehouse, pipelines_dir),
            name=f"raw_{system}",
            dagster_dlt_translator=translator,
            pool=POOL,
        )
        def _raw_assets(context: dg.AssetExecutionContext, dlt: RawDltResource):
            yield from dlt.run(context=context)

        assets.append(_raw_assets)
    return assets


@dg.definitions
def raw_definitions() -> dg.Definitions:
    # evaluated when the code location loads, so env vars set by then (or by a test) decide the paths
    mode = ingest_mode()
    assets = build_raw_assets(
        landing_dir=settings.landing_dir(),
        warehouse=settings.warehouse_path(),
        pipelines_dir=settings.dlt_pipelines_dir(),
        mode=mode,
    )
    files_mode = mode == "files"
    checks = build_raw_checks(
        assets,
        landing_dir=settings.landing_dir() if files_mode else None,
        warehouse=settings.warehouse_path() if files_mode else None,
    )
    return dg.Definitions(assets=assets, asset_checks=checks)
