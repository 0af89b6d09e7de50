"""The Python-built tables' SQL through the engine seam: the alert conditions and the calendar's span on Spark.

``SqlEngineResource.query`` runs a SELECT on the chosen engine; in Spark mode a query the portable-SQL lint
rejects runs on DuckDB and is named (``engine.RAN_ON_DUCKDB``). Over the tiny company, the alert conditions
evaluated through a Spark engine equal DuckDB's, row for row.
"""

import duckdb
import pyarrow as pa
import pytest

from cs_kpis.defs.alerts import engine as alerts_engine
from cs_kpis.defs.marts.assets import SPAN_SQL
from cs_kpis.lib import engine
from cs_kpis_tests.portability.compare import differences
from cs_kpis_tests.portability.test_models_on_spark import CANNOT_RUN_ON_SPARK

pytestmark = pytest.mark.portability


@pytest.fixture
def spark_engine(spark, tmp_path):
    # the session the `spark` fixture started (one per remote and process); hand-overs go to a lake of its own
    return engine.SqlEngineResource(engine="spark", spark_remote="local[2]", lake_dir=str(tmp_path / "lake"))


def test_alert_conditions_through_a_spark_engine_equal_duckdb(tiny_warehouse, spark_engine):
    rules = alerts_engine.load_rules()
    # three types keep it short (each condition is also compared alone in test_models_on_spark.py): two that
    # run on Spark (one with a list parameter) and one that cannot (a computed interval)
    evaluated = {"health_red", "renewal_risk", "usage_drop"}
    skipped = set(alerts_engine.ALERT_TYPES) - evaluated
    with duckdb.connect(str(tiny_warehouse), read_only=True) as con:
        con.execute("set TimeZone = 'UTC'")
        as_of = alerts_engine.as_of_day(con)
        want = alerts_engine.conditions(con, rules, as_of, skipped=skipped)
        engine.RAN_ON_DUCKDB.clear()
        got = alerts_engine.conditions(con, rules, as_of, skipped=skipped, sql_engine=spark_engine)
    assert len(want) > 0
    on_duckdb = {line.removeprefix("-- ").split(":")[0] for line, _ in engine.RAN_ON_DUCKDB}
    # only the condition the portability suite knows cannot run on Spark went to DuckDB
    assert on_duckdb == {"usage_drop"} == evaluated & {n.removeprefix("alerts.") for n in CANNOT_RUN_ON_SPARK}
    assert set(want["alert_type"]) >= {"health_red", "renewal_risk"}
    diffs = differences(pa.Table.from_pandas(want, preserve_index=False), pa.Table.from_pandas(got, preserve_index=False))
    assert not diffs, "alert conditions differ between DuckDB and the Spark engine\n" + "\n".join(diffs)


def test_the_calendar_span_on_a_spark_engine_equals_duckdb(tiny_warehouse, spark_engine):
    with duckdb.connect(str(tiny_warehouse), read_only=True) as con:
        want = con.execute(SPAN_SQL).fetchall()[0]
        got = spark_engine.query(con, SPAN_SQL)
    assert want[0] is not None
    assert (got["first_day"][0], got["last_day"][0]) == want


def test_a_list_subscript_gives_duckdbs_answer_on_spark_at_every_index(spark):
    """``list[i]`` on DuckDB (1-based; NULL at 0, past the end and before the start) equals the Spark form
    (``get``) at the indexes 0, 1, 2, 3 and 5 of a 3-element list (and -4, -1, where they may differ: DuckDB counts from the end), and never raises: Spark's try_element_at
    raised INVALID_INDEX_OF_ZERO at index 0."""
    import duckdb

    from cs_kpis.lib.portable import to_spark

    sql = ("select i, l[i] as at_i, l[i + 1] as after_i from (select [10, 20, 30] as l) as t "
           "cross join (values (-4), (-1), (0), (1), (2), (3), (5)) as v(i) order by i")
    duck = duckdb.sql(sql).fetchall()
    got = [tuple(r) for r in spark.sql(to_spark(sql)).collect()]
    # the negative computed indexes are where the engines may differ: DuckDB counts from the end
    assert [r for r in duck if r[0] >= 0] == [r for r in got if r[0] >= 0]
    assert {r[0]: r[1] for r in got}[0] is None
