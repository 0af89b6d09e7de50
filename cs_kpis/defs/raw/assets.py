"""raw/<system>/<entity>: one @dlt_assets per source system, loading into the DuckDB warehouse.

Layout: one DuckDB schema ``raw`` for all systems, tables ``<system>__<entity>`` (``raw.billing__invoices``),
plus ``raw._quarantine`` and ``raw._row_accounting`` shared by all systems. One dlt pipeline per system
(``cs_kpis_raw_<system>``) so each keeps its own state and schema, and one system's failure does not
block the others.
"""

import importlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg
import dlt
from dagster_dlt import dlt_assets

from cs_kpis import settings
from cs_kpis.defs.raw.checks import build_raw_checks
from cs_kpis.defs.raw.resources import RawDltResource
from cs_kpis.defs.raw.translator import RawDltTranslator
from cs_kpis.sources.billing import billing_source
from cs_kpis.sources.crm import crm_source
from cs_kpis.sources.nps import nps_source
from cs_kpis.sources.product import product_source
from cs_kpis.sources.support import support_source

DATASET = "raw"
POOL = "warehouse"

SOURCES: dict[str, Callable[..., Any]] = {
    "crm": crm_source,
    "billing": billing_source,
    "product": product_source,
    "support": support_source,
    "nps": nps_source,
}

API_CONFIGS: dict[str, str] = {
    "crm": "SalesforceApiConfig",
    "billing": "StripeApiConfig",
    "support": "ZendeskApiConfig",
    "nps": "DelightedApiConfig",
}
"""api mode: the config class in ``cs_kpis/sources/<system>/api.py``, built with ``from_env()``"""


def ingest_mode() -> str:
    """``files`` (default: read the landing folder) or ``api`` (call the vendors), from CS_KPIS_INGEST_MODE."""
    mode = os.environ.get("CS_KPIS_INGEST_MODE", "files").strip().lower() or "files"
    if mode not in ("files", "api"):
        raise ValueError(f"CS_KPIS_INGEST_MODE must be 'files' or 'api', got {mode!r}")
    return mode


def api_config(system: str) -> Any:
    """The system's API config from the environment (api mode only)."""
    class_name = API_CONFIGS.get(system)
    if class_name is None:
        raise NotImplementedError(f"no API reader configured for {system}")
    module = importlib.import_module(f"cs_kpis.sources.{system}.api")
    return getattr(module, class_name).from_env()


def make_pipeline(system: str, warehouse: Path, pipelines_dir: Path) -> dlt.Pipeline:
    """The dlt pipeline of one system: DuckDB destination at ``warehouse``, dataset ``raw``."""
    return dlt.pipeline(
        pipeline_name=f"cs_kpis_raw_{system}",
        destination=dlt.destinations.duckdb(credentials=str(warehouse)),
        dataset_name=DATASET,
        pipelines_dir=str(pipelines_dir),
    )


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
        source = SOURCES[system](
            landing_dir=landing_dir if mode == "files" else None,
            mode=mode,
            api_config=api_config(system) if mode == "api" else None,
        )
        translator = RawDltTranslator(system=system, files_mode=mode == "files")

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
    return dg.Definitions(assets=assets, asset_checks=build_raw_checks(assets))
