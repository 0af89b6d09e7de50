"""Project-wide resources and the default executor.

Layer folders add their own resources next to their assets (the dlt resource lives in defs/raw/).
"""

from contextlib import contextmanager

import dagster as dg
from dagster_duckdb import DuckDBResource

from cs_kpis import settings, tuning


class WarehouseResource(DuckDBResource):
    """dagster-duckdb's ``DuckDBResource`` whose connection is closed when the step fails, too.

    dagster-duckdb 0.29.27 closes the connection only after the ``with`` block ends normally. A step that
    raised (a failed SQL model) left its connection open, and DuckDB then refused any other connection to
    the file in the same process with a different configuration: ``python -m cs_kpis.run``'s summary, which
    reads the warehouse read-only, crashed with "ConnectionException: Can't open a connection to same
    database file with a different configuration".
    """

    memory_limit: str | None = None
    """DuckDB's memory limit (``settings.warehouse.memory_limit``, CS_KPIS_DUCKDB_MEMORY_LIMIT overrides); set on
    each connection with ``SET`` rather than at connect time, so other connections to the file in the same
    process (dlt's, the run summary's) need no matching configuration. Beyond it DuckDB spills to disk."""

    @contextmanager
    def get_connection(self):
        with super().get_connection() as con:
            try:
                if self.memory_limit:
                    con.execute(f"set memory_limit = '{self.memory_limit}'")
                yield con
            finally:
                con.close()


@dg.definitions
def resources() -> dg.Definitions:
    # evaluated when the code location loads, so CS_KPIS_WAREHOUSE set in the environment (or by a
    # test's monkeypatch) at that moment decides the file
    warehouse = settings.warehouse_path()
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    return dg.Definitions(
        resources={"duckdb": WarehouseResource(database=str(warehouse),
                                               memory_limit=tuning.get("warehouse.memory_limit"))},
        # DuckDB is single-writer: steps of one run execute one after the other in the run's process
        # (the multiprocess default crashed on the file lock and re-imported the code for every step)
        executor=dg.in_process_executor,
    )
