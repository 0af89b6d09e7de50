"""A system turned off in the company configuration (``systems.<name>.mode: off``): empty raw tables.

A company without an NPS tool (or a support desk, or product analytics) sets its mode to ``off``. Nothing is
loaded for it, but the layers downstream keep their shape: this asset creates its raw tables **empty**, with
the columns and types a real load has (``off_schemas.json``, taken from a load of the simulator's company;
``cs_kpis_tests/staging/test_off_schemas.py`` keeps it equal to what dlt writes). The staging models then
build empty tables, the marts and KPIs see no rows of that system, and the layers that would mistake "no
rows" for "nothing wrong" are told the system is off (cs_kpis/lib/systems.py): its health indicators are
null (the health score leaves them out and rescales the other weights), its alert types are skipped, and the
report says "not connected".

CRM and billing cannot be turned off (cs_kpis/config.py refuses it): every KPI starts from accounts and MRR.
A table that exists already (from before the system was turned off) is left as it is: nothing is deleted.
Its old rows do not flow downstream: the system's staging models read nothing while it is off
(cs_kpis/lib/systems.py, ``read_nothing_when_off``), so the layers see the same as with empty tables.
"""

import json
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from cs_kpis.lib.sql import WAREHOUSE_POOL, raw_key, table_metadata

SCHEMAS_PATH = Path(__file__).with_name("off_schemas.json")
OFFABLE = ("product", "support", "nps")


def off_schemas(system: str) -> dict[str, list[list[str]]]:
    """{raw table: [[column, DuckDB type], ...]} of one system."""
    schemas = json.loads(SCHEMAS_PATH.read_text())
    return {table: cols for table, cols in schemas.items() if table.split("__")[0] == system}


def create_sql(table: str, columns: list[list[str]]) -> str:
    cols = ", ".join(f'"{name}" {dtype}' for name, dtype in columns)
    return f"create table if not exists raw.{table} ({cols})"


def build_off_assets(system: str) -> dg.AssetsDefinition:
    if system not in OFFABLE:
        raise ValueError(f"{system} cannot be turned off (only {', '.join(OFFABLE)})")
    tables = off_schemas(system)
    specs = [
        dg.AssetSpec(
            raw_key(system, table.split("__", 1)[1]), group_name="raw", kinds={"duckdb"},
            owners=["team:data-eng"],
            description=(f"{system} is turned off in the company configuration (systems.{system}.mode: off): "
                         f"raw.{table} exists empty, with the columns a load would give, so the layers "
                         "downstream keep their shape. Nothing is loaded."),
            metadata={"dagster/table_name": f"raw.{table}", "system_mode": "off",
                      "dagster/column_schema": dg.TableSchema(
                          columns=[dg.TableColumn(name, dtype) for name, dtype in tables[table]])},
        )
        for table in sorted(tables)
    ]

    @dg.multi_asset(name=f"raw_{system}_off", specs=specs, pool=WAREHOUSE_POOL)
    def _off(context: dg.AssetExecutionContext, duckdb: DuckDBResource):
        with duckdb.get_connection() as con:
            con.execute("create schema if not exists raw")
            for table in sorted(tables):
                con.execute(create_sql(table, tables[table]))
                meta = table_metadata(con, "raw", table)
                yield dg.MaterializeResult(asset_key=raw_key(system, table.split("__", 1)[1]),
                                           metadata={**meta, "system_mode": "off"})
        context.log.info(f"{system} is off: {len(tables)} empty raw table(s), nothing loaded")

    return _off
