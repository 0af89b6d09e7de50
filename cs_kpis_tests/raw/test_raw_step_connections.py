"""A raw step keeps the warehouse open while it runs (cs_kpis.sources.pipelines.warehouse_held_open), so dlt's
SQL clients reuse the open database instead of reopening the file and checkpointing on each close, and it
reads every table's columns and rows in one connection (warehouse_tables). BENCHMARKS.md (issue 18, session 18)
has the figures."""

import inspect

import dlt
import duckdb

from cs_kpis.defs.raw import resources


def _pipeline(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    pipeline = dlt.pipeline("raw_step_connections", destination=dlt.destinations.duckdb(str(warehouse)),
                            dataset_name="raw", pipelines_dir=str(tmp_path / "dlt"))
    pipeline.run([{"id": 1, "name": "a"}, {"id": 2, "name": None}], table_name="demo__things")
    return pipeline, warehouse


def _threads_after_a_closed_connection(warehouse) -> int:
    """A global setting made on a connection survives its close only while the database stays open."""
    with duckdb.connect(str(warehouse)) as con:
        con.execute("set global threads = 3")
    with duckdb.connect(str(warehouse)) as con:
        return con.execute("select current_setting('threads')").fetchone()[0]


def test_the_warehouse_stays_open_for_the_block_only(tmp_path):
    pipeline, warehouse = _pipeline(tmp_path)
    with resources.warehouse_held_open(pipeline):
        assert _threads_after_a_closed_connection(warehouse) == 3  # the same open database
    assert _threads_after_a_closed_connection(warehouse) != 3  # closed and opened again


def test_a_raw_step_loads_and_reads_its_metadata_with_the_warehouse_open():
    source = inspect.getsource(resources.RawDltResource.run)
    held = source.index("with warehouse_held_open(dlt_pipeline):")
    assert held < source.index("reset_local_state(") < source.index("run_until_caught_up(")
    assert held < source.index("warehouse_tables(")


def test_columns_and_rows_of_every_table_in_one_pass(tmp_path):
    pipeline, _ = _pipeline(tmp_path)
    found = resources.warehouse_tables(pipeline, ["demo__things", "demo__missing"])
    columns, rows = found["demo__things"]
    assert rows == 2
    assert [(name, kind) for name, kind, _ in columns][:2] == [("id", "BIGINT"), ("name", "VARCHAR")]
    assert {name for name, _, _ in columns} >= {"_dlt_load_id", "_dlt_id"}
    assert found["demo__missing"] == ([], None)


def test_a_lake_pipelines_tables_are_read_from_the_warehouses_views(tmp_path, monkeypatch):
    """With the filesystem destination the columns and rows come from the warehouse's ``raw`` views of the lake."""
    warehouse = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create schema raw; create view raw.demo__things as select 1::bigint as id, 'a' as name "
                    "union all select 2, null")
    monkeypatch.setattr(resources, "_lake_warehouse", lambda pipeline: duckdb.connect(str(warehouse), read_only=True))

    class Lake:
        dataset_name = "raw"

    found = resources.warehouse_tables(Lake(), ["demo__things", "demo__missing"])
    assert found["demo__things"] == ([("id", "BIGINT", True), ("name", "VARCHAR", True)], 2)
    assert found["demo__missing"] == ([], None)


def test_the_loader_command_loads_with_the_warehouse_open_as_a_step_does():
    """``python -m cs_kpis.sources.pipelines`` (the benchmarks' and crash tests' loader) holds the warehouse as the
    raw step does, so its figures are the step's."""
    from cs_kpis.sources import pipelines

    assert resources.warehouse_held_open is pipelines.warehouse_held_open
    source = inspect.getsource(pipelines.load_system)
    held = source.index("with warehouse_held_open(pipeline):")
    assert held < source.index("reset_local_state(") < source.index("run_until_caught_up(")
