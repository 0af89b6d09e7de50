"""Staging models on Spark reading dlt's lake files equal the same models on DuckDB over the DuckDB destination.

The landing_builder company (three extract days) is loaded day by day into a lake (filesystem destination) and
once into a DuckDB warehouse (duckdb destination). Spark registers the raw tables from the lake's files
(``cs_kpis.lib.engine.register_lake_raw``: appended Parquet plus the merge-on-read view, transpiled); the
models chosen read the tables whose read rule differs: Account versions (scd2), a subscription's item set
replaced (child merge), Stripe events (insert-only), subscriptions and FX rates (latest on one and two keys),
and Segment events (the fast path's own files).
"""


import duckdb
import pytest

from cs_kpis.config import render_sql
from cs_kpis.defs.staging.assets import STAGING_MODELS
from cs_kpis.lib import engine
from cs_kpis.lib import incremental_loads as load_builds
from cs_kpis.lib.portable import tables_read, to_spark
from cs_kpis_tests.landing_builder import write_landing
from cs_kpis_tests.portability.compare import differences
from cs_kpis_tests.portability.lake_build import load_both
from cs_kpis_tests.sources.landing_builder import DAYS, tiny_company, tiny_events

pytestmark = pytest.mark.portability

CHOSEN = ("stg_billing__events", "stg_billing__fx_rates", "stg_crm__contacts", "stg_crm__opportunities",
          "stg_crm__users", "stg_product__events")
"""the staging models the landing_builder company has every column for (its objects carry only the fields
the source tests need); the raw tables below cover every read rule, Account versions included"""
MODELS = [m for m in STAGING_MODELS if m.name in CHOSEN]
SYSTEMS = ("crm", "billing", "product")
RAW_TABLES = ("crm__accounts", "crm__contacts", "crm__opportunities", "crm__users", "crm__account_history",
              "billing__customers", "billing__products", "billing__prices", "billing__coupons", "billing__subscriptions",
              "billing__subscription_items", "billing__invoices", "billing__invoice_lines", "billing__events",
              "billing__fx_rates", "product__events")
NOT_COMPARED = ("_dlt_id", "_dlt_load_id")


@pytest.fixture(scope="module")
def lake_pair(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("lake_on_spark")
    events = {day: tiny_events(day, i * 100, 10) for i, day in enumerate(DAYS)}
    landing = write_landing(root / "landing", tiny_company(), events=events)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RUNTIME__DLTHUB_TELEMETRY", "false")
        mp.setenv("DLT_DATA_DIR", str(root / "dlt_global"))
        return load_both(root, landing, systems=SYSTEMS)


@pytest.fixture(scope="module")
def lake_raw(lake_pair, spark):
    """Registers ``raw.<table>`` from the lake (``engine.register_lake_raw``) once per module and returns what
    that first registration returned: the raw tests and the staging models read the same lake, so registering
    a table again for each model only repeated the same statements (each a round trip to the Spark server)."""
    registered: dict[str, bool] = {}

    def register(table: str) -> bool:
        if table not in registered:
            registered[table] = engine.register_lake_raw(spark, lake_pair.lake, table)
        return registered[table]

    return register


def test_the_chosen_models_exist() -> None:
    assert sorted(m.name for m in MODELS) == sorted(CHOSEN)


@pytest.mark.parametrize("table", RAW_TABLES)
def test_raw_table_on_spark_from_the_lake_equals_the_duckdb_destination(table, lake_pair, lake_raw, spark) -> None:
    """Spark's raw.<table> (dlt's appended files merged on read) against dlt's own merge into DuckDB."""
    with duckdb.connect(str(lake_pair.duckdb_warehouse), read_only=True) as con:
        con.execute("set TimeZone = 'UTC'")
        columns = [c for (c,) in con.execute(
            "select column_name from information_schema.columns where table_schema = 'raw' and table_name = ? "
            "order by ordinal_position", [table]).fetchall() if c not in NOT_COMPARED]
        sql = f"select {', '.join(columns)} from raw.{table}"
        duck = con.sql(sql).to_arrow_table()
    assert lake_raw(table)
    got = spark.sql(to_spark(sql)).toArrow()
    if table != "crm__account_history":  # the landing_builder company has no field history
        assert duck.num_rows > 0, f"raw.{table} is empty: the comparison would prove nothing"
    diffs = differences(duck, got)
    assert not diffs, f"raw.{table}: Spark over the lake and dlt's DuckDB table disagree\n" + "\n".join(diffs)


def _every_load_current(model, warehouse, spark, tmp_path):
    """An @incremental by=load model reads the current build's raw loads from staging._build_loads
    (cs_kpis/lib/incremental_loads.py): make every load current on both sides, as a full build does. Returns
    the DuckDB warehouse to read (a copy with the control table)."""
    import shutil

    import pyarrow.parquet as pq

    copy = tmp_path / "warehouse.duckdb"
    shutil.copy(warehouse, copy)
    raw = load_builds.raw_table(model.sql, model.table)
    with duckdb.connect(str(copy)) as con:
        load_builds.record(con, model.table, load_builds.plan(con, model.table, raw, "test", full_refresh=True))
    loads = spark.sql(f"select '{model.table}' as model, coalesce(_dlt_load_id, '') as _dlt_load_id, "
                      f"count(*) as raw_rows, 1 as build_seq, true as is_current, false as grain_checked "
                      f"from {raw} group by 2").toArrow()
    (tmp_path / "build_loads").mkdir()
    pq.write_table(loads, tmp_path / "build_loads" / "loads.parquet")
    engine.register(spark, "staging", "_build_loads", tmp_path / "build_loads")
    return copy


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.name)
def test_staging_model_on_spark_from_the_lake_equals_duckdb_from_its_destination(model, lake_pair, lake_raw, spark,
                                                                                  tmp_path) -> None:
    sql = render_sql(model.sql, where=f"model {model.table}")
    for schema, table in tables_read(sql):
        if model.by_load and f"{schema}.{table}" == load_builds.CONTROL_TABLE:
            continue
        assert schema == "raw"
        assert lake_raw(table), f"raw.{table} is not in the lake"
        assert ("raw", table) in engine.LAKE_REGISTERED
    warehouse = lake_pair.duckdb_warehouse
    if model.by_load:
        warehouse = _every_load_current(model, warehouse, spark, tmp_path)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        con.execute("set TimeZone = 'UTC'")
        duck = con.sql(sql).to_arrow_table()
    with engine.spark_rows(spark, sql) as rows:  # the engine's path (its steps)
        got = rows.toArrow()
    assert duck.num_rows > 0, f"{model.table} is empty: the comparison would prove nothing"
    diffs = differences(duck, got)
    assert not diffs, f"{model.table}: Spark over the lake and DuckDB over its destination disagree\n" + "\n".join(diffs)
