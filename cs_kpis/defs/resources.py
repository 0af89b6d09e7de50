"""Project-wide resources and the default executor.

Layer folders add their own resources next to their assets (the dlt resource lives in defs/raw/).
"""

import dagster as dg
from dagster_duckdb import DuckDBResource

from cs_kpis import settings


@dg.definitions
def resources() -> dg.Definitions:
    # evaluated when the code location loads, so CS_KPIS_WAREHOUSE set in the environment (or by a
    # test's monkeypatch) at that moment decides the file
    warehouse = settings.warehouse_path()
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    return dg.Definitions(
        resources={"duckdb": DuckDBResource(database=str(warehouse))},
        # DuckDB is single-writer: steps of one run execute one after the other in the run's process
        # (the multiprocess default crashed on the file lock and re-imported the code for every step)
        executor=dg.in_process_executor,
    )
