"""raw/<system>/<entity>: one @dlt_assets per source system, loading into the DuckDB warehouse.

Layout: one DuckDB schema ``raw`` for all systems, tables ``<system>__<entity>`` (``raw.billing__invoices``),
plus ``raw._quarantine`` and ``raw._row_accounting`` shared by all systems. One dlt pipeline per system
(``cs_kpis_raw_<system>``) so each keeps its own state and schema, and one system's failure does not
block the others.
"""

import os
from pathlib import Path

import dagster as dg

from cs_kpis import config as company_config
from cs_kpis import settings
from cs_kpis.defs.raw import prefetch
from cs_kpis.defs.raw.checks import build_raw_checks
from cs_kpis.defs.raw.off import build_off_assets
from cs_kpis.defs.raw.resources import RawDltResource, dlt_multi_asset
from cs_kpis.defs.raw.translator import RawDltTranslator
from cs_kpis.lib.sql import WAREHOUSE_POOL
from cs_kpis.sources.pipelines import API_CONFIGS, DATASET, SOURCES, api_config, make_pipeline, make_source

__all__ = ["API_CONFIGS", "DATASET", "POOL", "SOURCES", "api_config", "build_raw_assets", "ingest_mode", "make_pipeline"]

POOL = WAREHOUSE_POOL


def ingest_mode() -> str:
    """``files`` (default: read the landing folder) or ``api`` (call the vendors), from CS_KPIS_INGEST_MODE.

    The demo profile's switch; a company profile sets each system's mode in its config file instead."""
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
    api_configs: dict[str, object] | None = None,
    fx_rates_path: Path | None = None,
) -> list[dg.AssetsDefinition]:
    """One multi-asset per system; paths are arguments so tests can point them at tmp_path."""
    assets = []
    for system in systems:
        # the landing folder is passed in api mode too: its reference/fx_rates.csv (billing__fx_rates and
        # the known currencies) and the product events are files in both modes
        this_mode = system_mode(system, mode)
        source = make_source(system, landing_dir=landing_dir, mode=this_mode,
                             config=(api_configs or {}).get(system) if this_mode == "api" else None,
                             fx_rates_path=fx_rates_path)
        translator = RawDltTranslator(system=system, files_mode=this_mode == "files")
        ahead = prefetch.register(prefetch.Spec(system, warehouse, pipelines_dir, landing_dir, fx_rates_path)) \
            if this_mode == "files" else None
        system_assets = _system_assets(system, source, make_pipeline(system, warehouse, pipelines_dir), translator,
                                       ahead)
        if ahead is not None:
            ahead.keys = frozenset(system_assets.keys)
        assets.append(system_assets)
    return assets


def _system_assets(system: str, source, pipeline, translator: RawDltTranslator,
                   ahead: prefetch.Spec | None = None) -> dg.AssetsDefinition:
    # source, pipeline and translator are passed to dlt.run, not read back from the assets' metadata, so the
    # metadata can go without them (dagster-dlt's live objects show as "(unserializable)" in the UI)
    # the raw steps' order (prefetch.STEP_ORDER): billing and product first, the systems extracted ahead after them
    @dlt_multi_asset(dlt_source=source, dlt_pipeline=pipeline, translator=translator, name=f"raw_{system}",
                     pool=POOL, op_tags=prefetch.step_tags(system))
    def _raw_assets(context: dg.AssetExecutionContext, dlt: RawDltResource):
        yield from dlt.run(context=context, dlt_source=source, dlt_pipeline=pipeline,
                           dagster_dlt_translator=translator, ahead=ahead)

    return _raw_assets


def crm_api_config(cfg: company_config.CompanyConfig):
    """Salesforce API mode: the SOQL selects the org's own custom field names (systems.crm.fields)."""
    from cs_kpis.sources.crm.api import SOQL_FIELDS, SalesforceApiConfig

    renames = cfg.crm_field_renames()
    fields = {obj: tuple(renames.get(name, name) for name in names) for obj, names in SOQL_FIELDS.items()}
    return SalesforceApiConfig.from_env(fields=fields)


@dg.definitions
def raw_definitions() -> dg.Definitions:
    # evaluated when the code location loads, so env vars set by then (or by a test) decide the paths
    paths = {"landing_dir": settings.landing_dir(), "warehouse": settings.warehouse_path(),
             "pipelines_dir": settings.dlt_pipelines_dir()}
    cfg = company_config.load()
    assets: list[dg.AssetsDefinition] = []
    checks: list[dg.AssetChecksDefinition] = []
    for system in SOURCES:
        # the demo profile: one mode for all (CS_KPIS_INGEST_MODE); a company profile: each system's mode
        # from the config file; a system turned off is not loaded, its raw tables exist empty (off.py)
        mode = ingest_mode() if cfg.is_demo else cfg.mode(system)
        if mode == "off":
            assets.append(build_off_assets(system))
            continue
        configs = {"crm": crm_api_config(cfg)} if system == "crm" and mode == "api" and not cfg.is_demo else None
        system_assets = build_raw_assets(**paths, mode=mode, systems=(system,), api_configs=configs,
                                         fx_rates_path=cfg.fx.path if cfg.fx.source == "csv" else None)
        assets += system_assets
        # the manifest reconciliation and unrecognized-files checks exist for files-mode systems only
        files = system_mode(system, mode) == "files"
        checks += build_raw_checks(system_assets, landing_dir=paths["landing_dir"] if files else None,
                                   warehouse=paths["warehouse"] if files else None)
    return dg.Definitions(assets=assets, asset_checks=checks)
