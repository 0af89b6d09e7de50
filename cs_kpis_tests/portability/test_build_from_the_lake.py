"""End to end from the lake: Dagster loads the tiny company with dlt's filesystem destination
(``CS_KPIS_RAW_DESTINATION=filesystem``) and builds staging and marts on Spark (``CS_KPIS_ENGINE=spark``), every
raw table registered in Spark from dlt's own files; compared with the DuckDB build (duckdb destination, DuckDB
engine) of the same company, row for row.
"""

import dagster as dg
import duckdb
import pytest

from cs_kpis.lib import engine
from cs_kpis_tests.portability.compare import differences
from cs_kpis_tests.portability.lake_build import raw_tables_compared

# a whole Dagster run with Spark: out of the default run (`pytest -m slow`)
pytestmark = [pytest.mark.portability, pytest.mark.slow]

BUILT = ("raw", "staging", "marts")
COMPARED = [("marts", "mrr_monthly"), ("marts", "subscription_states"), ("staging", "stg_crm__accounts"),
            ("staging", "stg_billing__invoice_lines"), ("staging", "stg_product__events")]


@pytest.fixture(scope="module")
def lake_build(tiny_warehouse, spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("lake_build")
    engine.HANDED_OVER.clear()
    engine.LAKE_REGISTERED.clear()
    engine.forget_spark_built()  # test_build_on_spark.py may have built on the same session before
    with pytest.MonkeyPatch.context() as mp:
        paths = {"CS_KPIS_STATE_DIR": root / "state", "CS_KPIS_WAREHOUSE": root / "warehouse.duckdb",
                 "CS_KPIS_DLT_DIR": root / "dlt", "DAGSTER_HOME": root / "dagster_home",
                 "CS_KPIS_LANDING_DIR": root / "landing", "CS_KPIS_LAKE_DIR": root / "lake",
                 "CS_KPIS_GROUND_TRUTH_DIR": root / "ground_truth"}
        for name, path in paths.items():
            mp.setenv(name, str(path))
        mp.setenv("CS_KPIS_RAW_DESTINATION", "filesystem")
        mp.setenv("CS_KPIS_ENGINE", "spark")
        mp.setenv("CS_KPIS_SPARK_REMOTE", "local[2]")  # the session the `spark` fixture started
        mp.setenv("CS_KPIS_DEMO_SIZE", "tiny")
        mp.setenv("CS_KPIS_DEMO_SEED", "1")
        mp.setenv("RUNTIME__DLTHUB_TELEMETRY", "false")
        mp.setenv("DLT_DATA_DIR", str(root / "dlt_global"))
        from cs_kpis.simulator import generate

        generate(paths["CS_KPIS_LANDING_DIR"], paths["CS_KPIS_GROUND_TRUTH_DIR"], size="tiny", seed=1)
        from cs_kpis.definitions import defs as load_defs

        defs = load_defs()
        keys = [k for k in defs.resolve_all_asset_keys() if k.path[0] in BUILT]
        result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            asset_selection=keys, instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    assert result.success, [e.message for e in result.all_events if e.is_step_failure]
    return paths, result


def test_raw_came_from_the_lake_and_equals_the_duckdb_destination(lake_build, tiny_warehouse):
    paths, result = lake_build
    assert (paths["CS_KPIS_LAKE_DIR"] / "dlt" / "raw" / "billing__invoices").is_dir()
    assert not [t for t in engine.HANDED_OVER if t[0] == "raw"], "a raw table was handed over from DuckDB"
    assert {t for t in engine.LAKE_REGISTERED} >= {("raw", "crm__accounts"), ("raw", "product__events")}
    compared = raw_tables_compared(tiny_warehouse, paths["CS_KPIS_WAREHOUSE"])
    assert len(compared) >= 20
    assert {t for t, (_, _, equal) in compared.items() if not equal} == set(), compared
    failed = [c for c in result.get_asset_check_evaluations() if not c.passed]
    assert not failed, [(c.asset_key.to_user_string(), c.check_name) for c in failed]


@pytest.mark.parametrize(("schema", "table"), COMPARED, ids=lambda x: x)
def test_spark_build_from_the_lake_equals_the_duckdb_build(schema, table, lake_build, spark, tiny_warehouse):
    assert (schema, table) in engine.spark_built()
    got = spark.table(f"{schema}.{table}").toArrow()  # the Parquet files Spark wrote
    with duckdb.connect(str(tiny_warehouse), read_only=True) as con:
        want = con.sql(f"select * from {schema}.{table}").to_arrow_table()
    assert want.num_rows > 0
    diffs = differences(want, got)
    assert not diffs, f"{schema}.{table}: the DuckDB build and the Spark build from the lake disagree\n" + "\n".join(diffs)
