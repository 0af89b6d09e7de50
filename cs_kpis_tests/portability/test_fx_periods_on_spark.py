"""marts.subscription_periods on the hand-built foreign-currency histories of marts/test_subscription_periods.py,
on DuckDB and on local Spark Connect: the same rows on both, and on Spark the periods computed by hand there
(a rate move below a cent in a delinquent spell, a discount ending during delinquency, a trial converting).

The tiny company has no such history, so test_models_on_spark.py compares the rate logic only where it changes
nothing. The inputs are registered on Spark under their own schemas (``fxcase_marts``, ``fxcase_staging``): the
package's session keeps the tiny company's ``marts`` and ``staging`` tables for the other tests.
"""

import re

import duckdb
import pytest

from cs_kpis.config import render_sql
from cs_kpis.defs.marts.assets import SQL_DIR
from cs_kpis.lib.engine import register, spark_rows
from cs_kpis.lib.portable import tables_read
from cs_kpis.lib.sql import load_models
from cs_kpis_tests.marts.billing_fixtures import build_marts
from cs_kpis_tests.marts.test_subscription_periods import AS_OF, FX_PERIODS, scenarios
from cs_kpis_tests.portability.compare import differences

# a Spark query of some 20 s: out of the default run (`pytest -m slow`)
pytestmark = [pytest.mark.portability, pytest.mark.slow]


def test_fx_periods_of_the_hand_built_histories_are_the_same_on_spark(spark, tmp_path):
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    scenarios().write(con, AS_OF)
    build_marts(con)
    model = next(m for m in load_models(SQL_DIR, "marts") if m.name == "subscription_periods")
    sql = render_sql(model.sql, where="model marts.subscription_periods")
    for schema, table in sorted(tables_read(sql)):
        path = tmp_path / f"{schema}-{table}.parquet"
        con.execute(f"copy (select * from {schema}.{table}) to '{path}' (format parquet)")
        register(spark, f"fxcase_{schema}", table, path)
    duck = con.sql(sql).to_arrow_table()
    with spark_rows(spark, re.sub(r"\b(marts|staging)\.", r"fxcase_\1.", sql)) as result:  # the engine's path
        got = result.toArrow()
    diffs = differences(duck, got)
    assert not diffs, "DuckDB and Spark disagree\n" + "\n".join(diffs)
    on_spark = {}
    for r in sorted(got.to_pylist(), key=lambda r: (r["subscription_id"], r["start_date"])):
        if r["subscription_id"] in FX_PERIODS:
            on_spark.setdefault(r["subscription_id"], []).append((
                r["start_date"].strftime("%m-%d"), r["end_date"] and r["end_date"].strftime("%m-%d"),
                float(r["fx_rate"]), float(r["mrr"]), float(r["list_mrr"]), r["is_delinquent"]))
    assert on_spark == FX_PERIODS
