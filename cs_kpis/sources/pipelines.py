"""The raw ingestion without Dagster: one dlt pipeline per system into the warehouse's ``raw`` dataset.

The Dagster raw assets (``cs_kpis/defs/raw``) and the command line below build the same pipelines and
run them the same way (drop the local working dir, restore state from the warehouse, discard the rows of
loads that never completed, load until caught up), so a benchmark or a crash test of this module tests
what the assets do.

    python -m cs_kpis.sources.pipelines --landing L --warehouse W --pipelines-dir D [--mode files|api]
        [--systems crm billing ...] [--destination duckdb|filesystem --lake LAKE]

prints one JSON line per system: rows read/loaded/quarantined/deduplicated, dlt loads, seconds and
the process's peak RSS so far.
"""

import argparse
import importlib
import json
import os
import resource
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dlt
from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials

from cs_kpis import tuning
from cs_kpis.sources import lake
from cs_kpis.sources.billing import billing_source
from cs_kpis.sources.common.accounting import Accounting
from cs_kpis.sources.common.runner import run_until_caught_up
from cs_kpis.sources.crm import crm_source
from cs_kpis.sources.nps import nps_source
from cs_kpis.sources.product import product_source
from cs_kpis.sources.support import support_source

DATASET = "raw"

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


def api_config(system: str) -> Any:
    """The system's API config from the environment (api mode only)."""
    class_name = API_CONFIGS.get(system)
    if class_name is None:
        raise NotImplementedError(f"no API reader configured for {system}")
    module = importlib.import_module(f"cs_kpis.sources.{system}.api")
    return getattr(module, class_name).from_env()


def make_pipeline(system: str, warehouse: Path, pipelines_dir: Path, *, destination: str | None = None,
                  lake_dir: Path | None = None) -> dlt.Pipeline:
    """The dlt pipeline of one system, dataset ``raw``: the DuckDB destination at ``warehouse`` (default), or
    the filesystem destination writing Parquet under ``lake_dir`` (``destination="filesystem"``; both default
    to CS_KPIS_RAW_DESTINATION and the engine's lake folder), whose tables ``warehouse`` then shows as views
    (cs_kpis/sources/lake.py)."""
    destination = destination or lake.raw_destination()
    if destination == "duckdb":
        # the warehouse's DuckDB memory limit (settings.warehouse.memory_limit, CS_KPIS_DUCKDB_MEMORY_LIMIT)
        # holds for dlt's load jobs too, which otherwise take DuckDB's default (80% of RAM)
        # and so do its spill limits (settings.warehouse.max_temp_directory_size and temp_directory)
        limits = {"memory_limit": tuning.get("warehouse.memory_limit"),
                  "max_temp_directory_size": tuning.get("warehouse.max_temp_directory_size"),
                  "temp_directory": tuning.get_path("warehouse.temp_directory")}
        limits = {k: str(v) for k, v in limits.items() if v}
        credentials = DuckDbCredentials(str(warehouse), global_config=limits) if limits else str(warehouse)
        target = dlt.destinations.duckdb(credentials=credentials)
    elif destination == "filesystem":
        if lake_dir is None:
            from cs_kpis.lib.engine import resolve

            lake_dir = resolve().lake_dir
        target = lake.lake_destination(Path(lake_dir))
    else:
        raise ValueError(f"destination must be one of {lake.DESTINATIONS}, not {destination!r}")
    name = f"cs_kpis_raw_{system}"
    # dlt's merge copies each load's rows into ``<dataset>_staging`` tables first and, by default, leaves them there
    # until the next load: the warehouse then keeps a second copy of every table's last load, which DuckDB's
    # checkpoint writes and compresses too. Emptied right after each load instead (the raw tables are the same). On
    # 187 MB of the large company's Stripe pages: half the warehouse file, less than half the closing checkpoint; on
    # 733 MB a fifth less CPU in dlt's load step (BENCHMARKS.md, billing, session 19). Set for this pipeline's name
    # only (dlt reads ``<PIPELINE>__LOAD__...`` first), so other dlt pipelines in the process keep dlt's default;
    # an explicit value in the environment wins.
    os.environ.setdefault(f"{name.upper()}__LOAD__TRUNCATE_STAGING_DATASET", "true")
    pipeline = dlt.pipeline(
        pipeline_name=name,
        destination=target,
        dataset_name=DATASET,
        pipelines_dir=str(pipelines_dir),
    )
    if destination == "filesystem":
        lake.bind_warehouse(pipeline, warehouse)
    return pipeline


def make_source(system: str, *, landing_dir: Path | None, mode: str = "files", config: Any = None,
                fx_rates_path: Path | None = None) -> Any:
    """The dlt source of one system; in api mode ``config`` defaults to :func:`api_config`. Billing reads
    its FX rates from ``fx_rates_path`` (default ``<landing>/reference/fx_rates.csv``)."""
    if mode == "api" and system in API_CONFIGS and config is None:
        config = api_config(system)
    extra = {"fx_rates_path": fx_rates_path} if system == "billing" and fx_rates_path else {}
    return SOURCES[system](landing_dir=landing_dir, mode=mode, api_config=config, **extra)


def reset_local_state(pipeline: dlt.Pipeline) -> None:
    """As dagster-dlt does before every run: the warehouse holds the state, so drop the local working
    dir (and with it the packages of a killed run); the next run restores the state from the warehouse."""
    if pipeline.config.restore_from_destination:
        pipeline.drop()
    else:
        pipeline.drop_pending_packages()


@contextmanager
def warehouse_held_open(pipeline: dlt.Pipeline) -> Iterator[None]:
    """Keep the DuckDB warehouse open for the block. dlt opens and closes the database file for each SQL client it
    makes (a step makes dozens: its state and schema, each load job, the row accounting, each table's metadata),
    and DuckDB reopens the file (its catalog) and checkpoints on each last close unless another connection of
    the process holds it: then a connect reuses the open database. Nothing else changes (same process, same
    configuration). A lake pipeline, or one whose destination is not set up yet, is left alone."""
    if lake.is_lake(pipeline):
        yield
        return
    try:
        client_cm = pipeline.sql_client()
    except Exception:  # noqa: BLE001 - no destination configured yet: nothing to hold
        yield
        return
    with client_cm:
        yield


def load_system(
    system: str,
    *,
    warehouse: Path,
    pipelines_dir: Path,
    landing_dir: Path | None,
    mode: str = "files",
    config: Any = None,
    destination: str | None = None,
    lake_dir: Path | None = None,
) -> dict[str, Any]:
    """Load one system until caught up; returns its accounting summed over resources and loads."""
    started = time.perf_counter()
    pipeline = make_pipeline(system, warehouse, pipelines_dir, destination=destination, lake_dir=lake_dir)
    with warehouse_held_open(pipeline):  # as a raw step does (cs_kpis/defs/raw/resources.py)
        reset_local_state(pipeline)
        source = make_source(system, landing_dir=landing_dir, mode=mode, config=config)
        load_infos, totals = run_until_caught_up(pipeline, source)
    total = Accounting()
    for counts in totals.values():
        total = total.add(counts)
    return {
        "system": system,
        "mode": mode,
        **total.as_dict(),
        "balanced": total.balanced,
        "per_resource": {name: counts.as_dict() for name, counts in totals.items()},
        "dlt_loads": len(load_infos),
        "seconds": round(time.perf_counter() - started, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cs_kpis.sources.pipelines", description=__doc__.splitlines()[0])
    parser.add_argument("--landing", type=Path, help="landing folder (files mode; product events in api mode too)")
    parser.add_argument("--warehouse", type=Path, required=True)
    parser.add_argument("--pipelines-dir", type=Path, required=True)
    parser.add_argument("--mode", choices=["files", "api"], default="files")
    parser.add_argument("--systems", nargs="+", choices=list(SOURCES), default=list(SOURCES))
    parser.add_argument("--destination", choices=list(lake.DESTINATIONS), default=None,
                        help="duckdb (the warehouse) or filesystem (Parquet under --lake); default "
                             "CS_KPIS_RAW_DESTINATION, else duckdb")
    parser.add_argument("--lake", type=Path, help="filesystem destination: the lake folder (default: the engine's)")
    args = parser.parse_args(argv)
    args.warehouse.parent.mkdir(parents=True, exist_ok=True)
    for system in args.systems:
        # product events come from the landing folder in both modes
        mode = "files" if system == "product" else args.mode
        result = load_system(system, warehouse=args.warehouse, pipelines_dir=args.pipelines_dir,
                             landing_dir=args.landing, mode=mode, destination=args.destination,
                             lake_dir=args.lake)
        result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
