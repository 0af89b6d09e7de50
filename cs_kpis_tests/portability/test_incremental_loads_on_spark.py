"""stg_product__events built by load on Spark (cs_kpis/lib/engine.py, build_by_load_on_spark): a full build
rewrites its Parquet folder, a nightly one appends the new load's rows as new files and to the warehouse's
copy. Both equal the DuckDB build of the same raw loads, read from Spark's own files.

The tiny company's raw events are split into two loads by received day (as in
cs_kpis_tests/staging/test_incremental_loads.py); the first is built, the second arrives and is appended.
"""

import shutil

import duckdb
import pytest

from cs_kpis.defs.staging.assets import STAGING_MODELS
from cs_kpis.lib import engine
from cs_kpis.lib import sql as sqllib
from cs_kpis_tests.portability.compare import differences

pytestmark = pytest.mark.portability

MODEL = next(m for m in STAGING_MODELS if m.name == "stg_product__events")
RAW = "raw.product__events"


def test_a_spark_nightly_appends_the_new_load_and_equals_the_duckdb_build(tiny_warehouse, spark, tmp_path):

    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(tiny_warehouse, warehouse)
    chosen = engine.EngineSettings("spark", "local[2]", tmp_path / "lake")
    with duckdb.connect(str(warehouse)) as con:
        con.execute("set TimeZone = 'UTC'")
        (cut,) = con.execute(f"select quantile_disc(_received_day, 0.5) from {RAW}").fetchall()[0]
        con.execute(f"update {RAW} set _dlt_load_id = case when _received_day < ? then '1.first' else '2.second' end",
                    [cut])
        con.execute(f"create table main.second as select * from {RAW} where _dlt_load_id = '2.second'")
        con.execute(f"delete from {RAW} where _dlt_load_id = '2.second'")
        con.execute("drop schema staging cascade")
        engine.forget_spark_built()  # the session may hold a staging table of an earlier build

        plan, rows, meta = engine.build_by_load_on_spark(con, MODEL, chosen)
        assert plan.mode == "full" and meta["engine"].startswith("spark")
        con.execute(f"insert into {RAW} select * from main.second")
        plan, rows, meta = engine.build_by_load_on_spark(con, MODEL, chosen)
        assert plan.mode == "incremental" and list(plan.loads) == ["2.second"], plan
        assert rows == con.execute(f"select count(*) from {RAW}").fetchall()[0][0]
        assert len(list((tmp_path / "lake" / "staging" / MODEL.name).glob("*.parquet"))) >= 2

        mirror = con.sql(f"select * from {MODEL.table}").to_arrow_table()
        # the DuckDB build of the same loads, for comparison
        con.execute("drop schema staging cascade")
        _, want_rows = sqllib.build_by_load(con, MODEL)
        want = con.sql(f"select * from {MODEL.table}").to_arrow_table()
    got = spark.table(MODEL.table).toArrow()  # Spark's own Parquet files
    assert want_rows == rows > 0
    assert not differences(want, got), differences(want, got)[:5]
    assert not differences(want, mirror), differences(want, mirror)[:5]
