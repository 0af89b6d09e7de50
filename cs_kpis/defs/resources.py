"""Project-wide resources and the default executor.

Layer folders add their own resources next to their assets (the dlt resource lives in defs/raw/).
"""

import os
from contextlib import contextmanager

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from cs_kpis import settings, tuning


def _same_folder(a: str, b: str) -> bool:
    return os.path.normpath(a) == os.path.normpath(b)


def duckdb_limits_sql(memory_limit: str | None, max_temp_directory_size: str | None,
                      temp_directory: str | None, current_temp_directory: str | None = None) -> list[str]:
    """The ``SET`` statements of the warehouse's DuckDB limits that are given (settings.warehouse.*).

    No ``set temp_directory`` when DuckDB already uses that folder (``current_temp_directory``, its
    ``current_setting('temp_directory')``): once the database has spilled while another connection to it is
    open, DuckDB refuses any ``set temp_directory``, even to the same folder ("Cannot switch temporary
    directory after the current one has been used")."""
    out = []
    if memory_limit:
        out.append(f"set memory_limit = '{memory_limit}'")
    if temp_directory and not (current_temp_directory is not None
                               and _same_folder(str(temp_directory), current_temp_directory)):
        out.append("set temp_directory = '" + str(temp_directory).replace("'", "''") + "'")
    if max_temp_directory_size:
        out.append(f"set max_temp_directory_size = '{max_temp_directory_size}'")
    return out


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

    max_temp_directory_size: str | None = None
    """The most DuckDB may spill past the memory limit (``settings.warehouse.max_temp_directory_size``,
    CS_KPIS_DUCKDB_MAX_TEMP_SIZE). Beyond it the step fails with DuckDB's out-of-memory error naming the
    setting, rather than filling the disk; unset, DuckDB allows 90% of the free disk."""
    temp_directory: str | None = None
    """Where DuckDB spills (``settings.warehouse.temp_directory``, CS_KPIS_DUCKDB_TEMP_DIR); unset, beside the
    warehouse file. Set with ``SET`` like the memory limit (a connect-time ``config`` is refused while another
    connection to the file is open with another configuration), and only when DuckDB does not use that folder
    already: after a spill, while another connection is open, DuckDB refuses to set it again. Another folder
    than the one the open database already spilled to is an error naming the setting."""

    @contextmanager
    def get_connection(self):
        with super().get_connection() as con:
            try:
                current = (con.execute("select current_setting('temp_directory')").fetchone()[0]
                           if self.temp_directory else None)
                for statement in duckdb_limits_sql(self.memory_limit, self.max_temp_directory_size,
                                                   self.temp_directory, current):
                    try:
                        con.execute(statement)
                    except duckdb.NotImplementedException as e:
                        if not statement.startswith("set temp_directory"):
                            raise
                        raise RuntimeError(
                            f"settings.warehouse.temp_directory (CS_KPIS_DUCKDB_TEMP_DIR) is {self.temp_directory}, "
                            f"but DuckDB has already spilled to {current} while another connection to "
                            f"{self.database} is open in this process, and cannot switch folders until every "
                            f"connection to it is closed ({e})") from e
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
        resources={"duckdb": WarehouseResource(
            database=str(warehouse), memory_limit=tuning.get("warehouse.memory_limit"),
            max_temp_directory_size=tuning.get("warehouse.max_temp_directory_size"),
            temp_directory=(str(tuning.get_path("warehouse.temp_directory"))
                            if tuning.get_path("warehouse.temp_directory") else None))},
        # DuckDB is single-writer: steps of one run execute one after the other in the run's process
        # (the multiprocess default crashed on the file lock and re-imported the code for every step)
        executor=dg.in_process_executor,
    )
