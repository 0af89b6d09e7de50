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
from cs_kpis.lib.engine import ENV_SPARK_STEPS, spark_rows
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


# each would be read wrongly once renamed (the reviewer's case: the column list swapped x and y, no error)
UNSAFE = {
    "a nested WITH reusing a top-level name": (
        "with a as (select 1 as x) select * from a, a as a2, (with a as (select 2 as x) select x from a) as inner_a"),
    "a column list on a CTE": "with a(y, x) as (select x, x + 1 from nums) select a.x, a2.y from a, a as a2",
    "a column list on a read's alias": "with a as (select x from nums) select p.q, a.x from a as p(q), a",
    "a recursive WITH": ("with recursive r as (select 1 as n union all select n + 1 from r where n < 3) "
                         "select r.n from r, r as r2"),
    "a CTE read in other letter case": "with a as (select x from nums) select * from a, A as a2",
}


@pytest.mark.parametrize("sql", UNSAFE.values(), ids=UNSAFE.keys())
def test_a_query_the_renaming_could_misread_is_left_as_one_statement(sql):
    assert to_spark_steps(sql, "q") == ([], to_spark(sql))


def test_a_column_list_keeps_its_meaning():
    sql = UNSAFE["a column list on a CTE"] + " order by 1, 2"
    with duckdb.connect() as con:
        con.execute("create table nums as select range as x from range(6)")
        expected = con.execute(sql).fetchall()
    assert expected[0] == (1, 0)  # a.x is the select's second column
    assert _run_steps(*to_spark_steps(sql, "q")) == expected


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


class _FakeSpark:
    """Records what spark_rows asks of a Spark session (no Spark needed)."""

    def __init__(self):
        self.calls: list[tuple] = []
        self.catalog = self

    def sql(self, text, args=None):
        self.calls.append(("sql", text, args))
        return self

    def localCheckpoint(self):
        self.calls.append(("checkpoint",))
        return self

    def createOrReplaceTempView(self, name):
        self.calls.append(("view", name))

    def dropTempView(self, name):
        self.calls.append(("drop", name))


def test_spark_rows_runs_the_steps_then_the_final_select_and_drops_the_views_even_on_an_error(monkeypatch):
    monkeypatch.delenv(ENV_SPARK_STEPS, raising=False)
    spark = _FakeSpark()
    with pytest.raises(RuntimeError, match="the caller failed"), spark_rows(spark, QUERY, {"p": 1}):
        raise RuntimeError("the caller failed")
    kinds = [c[0] for c in spark.calls]
    assert kinds == ["sql", "checkpoint", "view", "sql", "checkpoint", "view", "sql", "drop", "drop"]
    views = [c[1] for c in spark.calls if c[0] == "view"]
    assert [c[1] for c in spark.calls if c[0] == "drop"] == views[::-1]
    assert all(c[2] == {"p": 1} for c in spark.calls if c[0] == "sql")  # every step gets the parameters


def test_spark_rows_inlines_everything_when_steps_are_switched_off(monkeypatch):
    monkeypatch.setenv(ENV_SPARK_STEPS, "0")
    spark = _FakeSpark()
    with spark_rows(spark, QUERY):
        pass
    assert spark.calls == [("sql", to_spark(QUERY), None)]
