"""The warehouse resource (cs_kpis/defs/resources.py): its DuckDB spill settings on every step connection."""

import os

import duckdb
import pytest

from cs_kpis.defs.resources import WarehouseResource, duckdb_limits_sql

SPILLING_QUERY = ("select s, count(*) from (select md5(range::varchar) as s from range(600000)) "
                  "group by s order by s limit 1")


def _spill(con, spill) -> None:
    """Runs a query that does not fit in the 20 MB limit, so DuckDB writes to its temporary directory."""
    con.execute("set threads = 1")
    con.execute(SPILLING_QUERY).fetchall()
    assert os.listdir(spill), "the query was meant to spill; nothing in the temporary directory"


def test_a_second_connection_keeps_the_temp_directory_the_first_one_spilled_to(tmp_path):
    # DuckDB refuses any `set temp_directory` (even to the same folder) once the database has spilled while
    # another connection to it is open: "Cannot switch temporary directory after the current one has been used"
    spill = tmp_path / "spill"
    resource = WarehouseResource(database=str(tmp_path / "w.duckdb"), memory_limit="20MB",
                                 temp_directory=str(spill))
    with resource.get_connection() as first:
        _spill(first, spill)
        with pytest.raises(duckdb.NotImplementedException, match="Cannot switch temporary directory"):
            first.execute(f"set temp_directory = '{spill}'")  # the condition the resource must avoid
        with resource.get_connection() as second:
            assert second.execute("select current_setting('temp_directory'), current_setting('memory_limit')"
                                  ).fetchone() == (str(spill), "19.0 MiB")  # DuckDB's way of writing 20MB
            assert second.execute("select count(*) from range(3)").fetchone() == (3,)


def test_another_temp_directory_after_a_spill_fails_naming_the_setting(tmp_path):
    resource = WarehouseResource(database=str(tmp_path / "w.duckdb"), memory_limit="20MB",
                                 temp_directory=str(tmp_path / "spill"))
    elsewhere = WarehouseResource(database=str(tmp_path / "w.duckdb"), temp_directory=str(tmp_path / "other"))
    with resource.get_connection() as first:
        _spill(first, tmp_path / "spill")
        with (pytest.raises(RuntimeError, match=r"temp_directory.*CS_KPIS_DUCKDB_TEMP_DIR.*other.*spill"),
              elsewhere.get_connection()):
            pass


def test_the_statements_skip_a_temp_directory_duckdb_already_uses(tmp_path):
    assert duckdb_limits_sql("1GB", "2GB", "/data/spill") == [
        "set memory_limit = '1GB'", "set temp_directory = '/data/spill'", "set max_temp_directory_size = '2GB'"]
    assert duckdb_limits_sql("1GB", None, "/data/spill", current_temp_directory="/data/spill/") == [
        "set memory_limit = '1GB'"]
    assert duckdb_limits_sql(None, None, "/data/it's", current_temp_directory="/data/spill") == [
        "set temp_directory = '/data/it''s'"]
