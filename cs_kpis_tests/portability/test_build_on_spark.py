"""End to end on Spark: the tiny company's staging, marts and kpis built by Dagster with ``CS_KPIS_ENGINE=spark``
(every SQL model on local Spark Connect, through the engine seam of cs_kpis/lib/engine.py), compared row for row
with the DuckDB build of the same raw data.

The raw layer is the DuckDB build's own (dlt loads into DuckDB; the engine hands raw tables to Spark as Parquet),
copied with every later schema dropped, so nothing downstream of raw can leak from the DuckDB build into the
Spark one. Spark's results are read from the Parquet files Spark wrote, not from their DuckDB mirrors.
"""

import shutil

import dagster as dg
import duckdb
import pytest

from cs_kpis.lib import engine
from cs_kpis_tests.portability.compare import differences

# 8.5 min measured on 2 cores under load (load average 15): out of the default run (`pytest -m slow`)
pytestmark = [pytest.mark.portability, pytest.mark.slow]

BUILT_SCHEMAS = ("staging", "marts", "kpis")
SPARK_BUILT_TABLES = [("kpis", "revenue_monthly"), ("marts", "mrr_monthly")]
PYTHON_BUILT = {
    # marts/assets.py: the calendar spines, built with pandas on DuckDB
    ("marts", "dim_day"), ("marts", "dim_month"), ("marts", "dim_position"),
    # @incremental models (cs_kpis/lib/incremental.py): a planned window, delete + insert on DuckDB
    ("kpis", "account_activity_daily"), ("kpis", "account_indicators_daily"),
    # health/assets.py: the product configuration written from Python
    ("kpis", "health_product_config"),
    # cs_kpis/lib/incremental_loads.py: the raw loads stg_product__events reads, recorded on DuckDB by the planner
    ("staging", "_build_loads"),
}
"""tables Spark may read from DuckDB (handed over as Parquet): besides raw, only these Python-built ones"""


@pytest.fixture(scope="module")
def spark_build(tiny_warehouse, spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("spark_build")
    warehouse = root / "warehouse.duckdb"
    shutil.copy(tiny_warehouse, warehouse)
    with duckdb.connect(str(warehouse)) as con:
        for schema in (*BUILT_SCHEMAS, "alerts"):
            con.execute(f"drop schema if exists {schema} cascade")
    engine.HANDED_OVER.clear()
    with pytest.MonkeyPatch.context() as mp:
        for name, path in {"CS_KPIS_STATE_DIR": root / "state", "CS_KPIS_WAREHOUSE": warehouse,
                           "CS_KPIS_DLT_DIR": root / "dlt", "DAGSTER_HOME": root / "dagster_home",
                           "CS_KPIS_LANDING_DIR": root / "landing", "CS_KPIS_LAKE_DIR": root / "lake",
                           "CS_KPIS_GROUND_TRUTH_DIR": root / "ground_truth"}.items():
            mp.setenv(name, str(path))
        mp.setenv("CS_KPIS_ENGINE", "spark")
        mp.setenv("CS_KPIS_SPARK_REMOTE", "local[2]")  # the session the `spark` fixture started
        mp.setenv("CS_KPIS_DEMO_SIZE", "tiny")
        mp.setenv("CS_KPIS_DEMO_SEED", "1")
        from cs_kpis.definitions import defs as load_defs

        defs = load_defs()
        keys = [k for k in defs.resolve_all_asset_keys() if k.path[0] in BUILT_SCHEMAS]
        result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            asset_selection=keys, instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    assert result.success, [e.message for e in result.all_events if e.is_step_failure]
    return warehouse, result


def test_spark_built_the_sql_models_and_read_only_raw_and_python_tables_from_duckdb(spark_build):
    _, result = spark_build
    built = engine.spark_built()
    assert set(SPARK_BUILT_TABLES) <= built
    assert len([t for t in built if t[0] == "staging"]) >= 15, sorted(built)
    handed = {t for t in engine.HANDED_OVER if t[0] != "raw"}
    assert handed <= PYTHON_BUILT, f"Spark read tables built by DuckDB that are not raw or Python-built: {handed}"
    metadata = result.asset_materializations_for_node("kpis__revenue_monthly")[0].metadata
    assert metadata["engine"].value.startswith("spark")


@pytest.mark.parametrize(("schema", "table"), SPARK_BUILT_TABLES, ids=lambda x: x)
def test_spark_build_equals_the_duckdb_build(schema, table, spark_build, spark, tiny_warehouse):
    got = spark.table(f"{schema}.{table}").toArrow()  # the Parquet files Spark wrote
    with duckdb.connect(str(tiny_warehouse), read_only=True) as con:
        want = con.sql(f"select * from {schema}.{table}").to_arrow_table()
    assert want.num_rows > 0
    diffs = differences(want, got)
    assert not diffs, f"{schema}.{table}: the DuckDB and the Spark builds disagree\n" + "\n".join(diffs)


def test_health_scores_on_the_spark_built_inputs_equal_the_duckdb_build(spark_build, tiny_warehouse):
    """kpis.health_scores_daily is SQL generated in Python (health/health_score.py) and runs on DuckDB in both
    modes; here its inputs (accounts, MRR, subscriptions) are the Spark-built tables' mirrors."""
    warehouse, _ = spark_build
    sql = "select * from kpis.health_scores_daily"
    with duckdb.connect(str(tiny_warehouse), read_only=True) as con:
        want = con.sql(sql).to_arrow_table()
    with duckdb.connect(str(warehouse), read_only=True) as con:
        got = con.sql(sql).to_arrow_table()
    assert want.num_rows > 0
    diffs = differences(want, got)
    assert not diffs, "kpis.health_scores_daily differs\n" + "\n".join(diffs)
