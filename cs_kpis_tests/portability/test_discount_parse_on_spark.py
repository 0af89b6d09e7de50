"""The shared parse of Stripe's lists of expanded discounts (defs/marts/sql/parts/expanded_discounts.sql) on
hand-made lists, on DuckDB and on local Spark Connect: the same rows on both, and the rows the lists hold.

The tiny company's lists are all fully expanded; real exports also hold lists of bare ids (an object listed
without its ``expand[]``) and, in older event exports, lists mixing ids and objects. Each entry is read from
the list's text by path, so an id gives no row and an object beside it still gives its own, on both engines
(parsed into typed objects, a list with ids lost its discounts on Spark while DuckDB kept them).
"""

from pathlib import Path

import pytest

from cs_kpis.lib.engine import register, spark_rows
from cs_kpis.lib.portable import lint, tables_read
from cs_kpis.lib.sql import sql_part
from cs_kpis_tests.portability.compare import differences, rows
from cs_kpis_tests.portability.conftest import duckdb_over

pytestmark = pytest.mark.portability

MARTS_SQL = Path(__file__).resolve().parents[2] / "cs_kpis" / "defs" / "marts" / "sql"

PCT = '{"id": "di_pct", "coupon": {"id": "PCT10", "duration": "forever", "percent_off": 10, "amount_off": null, ' \
      '"currency": null}, "start": 1700000000, "end": null}'
AMT = '{"id": "di_amt", "coupon": {"id": "EUR5", "duration": "repeating", "percent_off": null, "amount_off": 500, ' \
      '"currency": "eur"}, "start": 1700000000, "end": 1710000000}'
ONCE = '{"id": "di_once", "coupon": {"id": "HALF", "duration": "once", "percent_off": 25.5}, "start": 1700086400}'
LISTS = {
    "expanded": f"[{PCT}, {AMT}]",
    "ids": '["di_pct", "di_amt"]',
    "mixed": f'["di_pct", {ONCE}]',
    "empty": "[]",
}


def _sql() -> str:
    lists = "\n    union all\n".join(
        f"    select '{name}' as list_name, '{text}' as discounts" for name, text in LISTS.items())
    return (f"with discount_lists as (\n{lists}\n    union all\n"
            "    select 'missing' as list_name, cast(null as varchar) as discounts\n),\n\n"
            f"entries as (\n{sql_part(MARTS_SQL, 'expanded_discounts')}\n)\n\n"
            "select list_name, position, discount_id, coupon_id, coupon_duration, percent_off, amount_off,\n"
            "    coupon_currency, discount_start, discount_end\nfrom entries")


# its lists are inline and it reads only marts.dim_position, registered here: it must not take the package's
# ``spark_tables`` early, since test_lake_on_spark.py then replaces that registration with its own lake's tables
# and test_models_on_spark compared DuckDB's tiny company with the lake's few rows
def test_the_discount_parse_reads_ids_objects_and_mixed_lists_alike_on_duckdb_and_spark(parquet_inputs, spark):
    sql = _sql()
    assert lint(sql) == []
    assert tables_read(sql) == {("marts", "dim_position")}
    register(spark, "marts", "dim_position", parquet_inputs[("marts", "dim_position")])
    with duckdb_over(parquet_inputs, sql) as con:
        duck = con.sql(sql).to_arrow_table()
    with spark_rows(spark, sql) as result:  # the engine's path (its steps)
        got = result.toArrow()
    assert rows(duck) == [
        ["expanded", 0, "di_pct", "PCT10", "forever", 10.0, None, None, "2023-11-14T22:13:20", None],
        ["expanded", 1, "di_amt", "EUR5", "repeating", None, 500.0, "EUR", "2023-11-14T22:13:20",
         "2024-03-09T16:00:00"],
        ["mixed", 1, "di_once", "HALF", "once", 25.5, None, None, "2023-11-15T22:13:20", None],
    ]
    diffs = differences(duck, got)
    assert not diffs, "DuckDB and Spark disagree\n" + "\n".join(diffs)
