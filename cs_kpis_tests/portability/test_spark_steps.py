"""``to_spark_steps``: a query's CTEs read at two places or more become steps computed once (no Spark needed).

The steps' Spark SQL is read back into DuckDB here (sqlglot, Spark -> DuckDB), each step made a temporary table
under its view name, and the final select run over them: it must give the rows of the original query. The
Spark comparisons (test_models_on_spark.py) run every model through the same steps on Spark.
"""

import duckdb
import pytest
import sqlglot
from sqlglot import exp

from cs_kpis.config import render_sql
from cs_kpis.lib.incremental import with_account_range
from cs_kpis.lib.portable import to_spark, to_spark_steps
from cs_kpis_tests.portability.test_models_on_spark import MODELS

pytestmark = pytest.mark.portability

QUERY = """
with a as (select x, x * 10 as y from nums),
b as (select x from a where x % 2 = 0),
c as (select b.x, a.y from b inner join a on a.x = b.x),
d as (select x from a where x > 3)
select c.x, c.y, (select count(*) from d) as n, e.x as ex
from c
left join (select x from b) as e on e.x = c.x
order by c.x
"""


def _run_steps(steps: list[tuple[str, str]], final: str) -> list[tuple]:
    with duckdb.connect() as con:
        con.execute("create table nums as select range as x from range(6)")
        for view, select in steps:
            con.execute(f"create temp table {view} as {sqlglot.transpile(select, read='spark', write='duckdb')[0]}")
        return con.execute(sqlglot.transpile(final, read="spark", write="duckdb")[0]).fetchall()


def test_a_cte_read_twice_becomes_a_step_and_one_read_once_stays_a_cte():
    steps, final = to_spark_steps(QUERY, "q")
    # a: read by b, c and d; b: by c and the main select; c and d once each
    assert [view for view, _ in steps] == ["q_a", "q_b"]
    # a step reads an earlier step's view under the CTE's name; a CTE read once stays a CTE where it is read
    assert "q_a AS a" in steps[1][1]
    assert final.startswith("WITH c AS") and "d AS (" in final and "q_b AS b" in final
    with duckdb.connect() as con:
        con.execute("create table nums as select range as x from range(6)")
        expected = con.execute(QUERY).fetchall()
    assert len(expected) == 3
    assert _run_steps(steps, final) == expected


def test_a_query_without_a_cte_read_twice_is_one_statement():
    sql = "with a as (select 1 as x) select x from a"
    assert to_spark_steps(sql, "q") == ([], to_spark(sql))
    assert to_spark_steps("select 1 as x", "q") == ([], to_spark("select 1 as x"))


def test_a_nested_with_that_reuses_a_top_level_name_is_left_as_one_statement():
    sql = ("with a as (select 1 as x) "
           "select * from a, a as a2, (with a as (select 2 as x) select x from a) as inner_a")
    assert to_spark_steps(sql, "q") == ([], to_spark(sql))


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.table)
def test_every_step_of_a_model_names_only_its_own_ctes_earlier_steps_and_warehouse_tables(model):
    """Each statement is run alone on Spark: every unqualified name it reads must be a CTE it defines itself or
    the view of an earlier step (a lost CTE would fail there as an unknown table, and only on Spark)."""
    sql = with_account_range(render_sql(model.sql, where=f"model {model.table}"), "", None)
    steps, final = to_spark_steps(sql, "q")
    made: set[str] = set()
    for view, select in [*steps, ("", final)]:
        tree = sqlglot.parse_one(select, read="spark")
        own = {c.alias for c in tree.find_all(exp.CTE)}
        unknown = {t.name for t in tree.find_all(exp.Table) if not t.db} - own - made
        assert not unknown, f"{model.table}: {view or 'the final select'} reads {sorted(unknown)}"
        made.add(view)
    if model.table == "kpis.account_indicators_daily":
        assert "q_segments" in made and len(steps) >= 10
