"""The portable-subset lint (cs_kpis/lib/portable.py) over every .sql model, with the known exceptions named.

A new violation fails here; a fixed one fails too until its allow-list line is removed, so the list stays
the true set of exceptions. The lint's own rules are tested on small statements first, so it can fail.
"""

from collections import Counter
from pathlib import Path

import pytest

from cs_kpis.lib.portable import lint, strip_templating, to_spark
from cs_kpis.lib.sql import with_sql_parts

DEFS = Path(__file__).resolve().parents[2] / "cs_kpis" / "defs"
SQL_FILES = sorted(DEFS.glob("*/sql/*.sql"))

# file (relative to cs_kpis/defs) -> rule -> (how many, why it is tolerated for now)
ALLOWED: dict[str, dict[str, tuple[int, str]]] = {
    "marts/sql/subscription_states.sql": {
        "ratio-not-double": (2, ("weekly/daily interval -> months (12.0 * n / 52.0, / 365.0): DECIMAL on Spark, "
                                "DOUBLE on DuckDB")),
    },
    "marts/sql/subscription_periods.sql": {
        "ratio-not-double": (2, ("effective_mrr_minor / 100.0 and list_mrr_minor / 100.0 before the FX rate; rounded "
                                "to the cent afterwards, so the type difference should vanish (to verify on Spark)")),
    },
    "alerts/sql/ticket_spike.sql": {
        "ratio-not-double": (1, "90-day ticket sum / 12.0 (weekly average): integer sum over a decimal literal"),
    },
    "alerts/sql/champion_inactive.sql": {
        "asof-join": (1, ("the last product activity on or before each day per contact; Spark has no ASOF JOIN "
                          "(PARSE_SYNTAX_ERROR, measured in test_models_on_spark). Nor can the model run on its own "
                          "on either engine: it reads the temp table _alert_last_active, which the alerts engine "
                          "creates first on the same DuckDB connection (engine.load_last_active)")),
        "generator": (1, ("unnest of a bound list parameter (rule values are bound, never spliced): Spark runs "
                           "it as EXPLODE(:param); renewal_risk and expansion_opportunity give equal rows on Spark "
                           "(measured in test_models_on_spark)")),
    },
    "alerts/sql/expansion_opportunity.sql": {
        "generator": (1, ("unnest of a bound list parameter (rule values are bound, never spliced): Spark runs "
                           "it as EXPLODE(:param); renewal_risk and expansion_opportunity give equal rows on Spark "
                           "(measured in test_models_on_spark)")),
    },
    "alerts/sql/renewal_risk.sql": {
        "generator": (2, ("unnest of a bound list parameter (rule values are bound, never spliced): Spark runs "
                           "it as EXPLODE(:param); renewal_risk and expansion_opportunity give equal rows on Spark "
                           "(measured in test_models_on_spark)")),
    },
    "alerts/sql/health_drop.sql": {
        "interval-expression": (1, ("interval ($window_days) day: Spark rejects a bound parameter as an interval's "
                                    "quantity (PARSE_SYNTAX_ERROR at DAY, measured)")),
    },
    "alerts/sql/low_nps_high_value.sql": {
        "interval-expression": (1, "interval ($active_days - 1) day: Spark rejects a computed interval (measured)"),
    },
    "alerts/sql/usage_drop.sql": {
        "interval-expression": (2, ("interval ($min_days - 1) day in a RANGE frame and a date filter: Spark rejects a "
                                    "computed interval (measured)")),
    },
    "marts/sql/subscription_history_states.sql": {
        "ratio-not-double": (4, ("price x quantity per interval / months per interval, and the weekly/daily month "
                                "factors (12.0 * n / 52.0, / 365.0): DOUBLE on DuckDB, DECIMAL on Spark; "
                                "cast the numerators to DOUBLE (open: issue 19)")),
    },
}


def _rel(path: Path) -> str:
    return path.relative_to(DEFS).as_posix()


@pytest.mark.parametrize(
    ("sql", "rule"),
    [
        ("select * from generate_series(1, 3) t(m)", "generator"),
        ("select unnest(generate_series(1, 2)) as n", "generator"),
        ("select a from t qualify row_number() over (order by a) = 1", "qualify"),
        ("select list(x order by y) as xs from t", "ordered-list-agg"),
        ("select array_agg(distinct x order by x) as xs from t", "ordered-list-agg"),
        ("select date_diff('month', a, b) as m from t", "date-diff-calendar"),
        ("select datediff('year', a, b) as y from t", "date-diff-calendar"),
        ("select isodow(d) as w from t", "day-of-week"),
        ("select dayofweek(d) as w from t", "day-of-week"),
        ("select extract(dow from d) as w from t", "day-of-week"),
        ("select date_part('isodow', d) as w from t", "day-of-week"),
        ("select a / b as r from t", "ratio-not-double"),
        # json_transform with a structure that is not a literal: no Spark schema can be derived from it
        ("select json_transform(j, s) as o from t", "duckdb-json"),
        ("select json_keys(j) as k from t", "duckdb-json"),
        ("select * from t union all by name select 1 as a", "union-by-name"),
        ("select d + interval (n - 1) day as e from t", "interval-expression"),
        # a bound parameter ($days on DuckDB, :days on Spark) as an interval's quantity: Spark rejects it
        ("select d + interval ($days) day as g from t", "interval-expression"),
        ("select list_sum(xs) as s from t", "duckdb-list"),
        ("select list_sum(cast(json_extract(j, '$[*].amount') as double[])) as s from t", "duckdb-list"),
        ("select * from a asof left join b on a.k = b.k and a.t >= b.t", "asof-join"),
    ],
)
def test_lint_rejects(sql, rule):
    assert [v.rule for v in lint(sql)] == [rule]


@pytest.mark.parametrize(
    "sql",
    [
        "select date_diff('day', a, b) as d from t",
        "select cast(a as double) / b as r, a::double / nullif(b, 0) as s from t",
        "select cast(a / b as double) as r from t",
        "select string_agg(a, ', ' order by a) as s from t",
        "select list(x) as xs from t",
        "select d + interval 7 day as e, d - interval (7) day as f from t",
        "select json_extract_string(j, '$.a.b') as v, x::date as d from t",
        # the portable forms spark_rewrites translates (portable.py): a literal JSON structure, an integer field sum
        "select json_transform(j, '{\"a\": \"VARCHAR\", \"b\": [{\"end\": \"BIGINT\"}]}') as o from t",
        "select list_sum(cast(json_extract(j, '$[*].amount') as bigint[])) as s from t",
        "with w as (select a, row_number() over (partition by b order by c) as rn from t) select a from w where rn = 1",
    ],
)
def test_lint_accepts_the_portable_forms(sql):
    assert lint(sql) == []


def test_template_tokens_lint_as_identifiers():
    sql = "select a from {{ source }} where days > {{ min_days }} and n > $min_term_days"
    assert strip_templating(sql) == "select a from __tpl_source where days > __tpl_min_days and n > __tpl_min_term_days"
    assert lint(sql) == []
    assert [v.rule for v in lint("select date_diff('month', a, {{ as_of }}) as m from t")] == ["date-diff-calendar"]


def test_there_are_sql_models_to_lint():
    assert len(SQL_FILES) >= 40, SQL_FILES


@pytest.mark.parametrize("path", SQL_FILES, ids=_rel)
def test_model_is_in_the_portable_subset(path):
    found = lint(with_sql_parts(path.read_text(), path.parent))  # with the shared parts it includes
    counts = Counter(v.rule for v in found)
    allowed = ALLOWED.get(_rel(path), {})
    new = [str(v) for v in found if counts[v.rule] > allowed.get(v.rule, (0, ""))[0]]
    assert not new, (f"{_rel(path)} has constructs outside the portable subset (docs/PORTABILITY.md):\n"
                     + "\n".join(new))
    stale = {rule: (n, counts[rule]) for rule, (n, _) in allowed.items() if counts[rule] < n}
    assert not stale, (f"{_rel(path)}: fewer violations than allowed (allowed, found) {stale}; "
                       "lower or remove its ALLOWED entry in this file")


def test_allow_list_names_existing_files():
    assert set(ALLOWED) <= {_rel(p) for p in SQL_FILES}


@pytest.mark.parametrize(
    ("duckdb_sql", "spark_sql"),
    [
        ("select json_transform(j, '{\"a\": \"VARCHAR\", \"b\": [{\"end\": \"BIGINT\"}]}') as o from t",
         "SELECT FROM_JSON(j, 'struct<`a`: string, `b`: array<struct<`end`: bigint>>>') AS o FROM t"),
        ("select list_sum(cast(json_extract(j, '$[*].amount') as bigint[])) as s from t",
         ("SELECT AGGREGATE(TRANSFORM(FROM_JSON(j, 'array<struct<`amount`: bigint>>'), __e -> __e.`amount`), "
          "CAST(NULL AS BIGINT), (__acc, __v) -> CASE WHEN __v IS NULL THEN __acc ELSE COALESCE(__acc, 0) + __v END) "
          "AS s FROM t")),
        # DuckDB lists are 1-based and NULL out of range (and at 0): Spark's get is 0-based and NULL out of
        # range, never an error; a negative literal counts from the end, which only try_element_at does
        ("select a[1] as x, a[p + 1] as y, a[-1] as z, a[p] as w from t",
         "SELECT GET(a, 0) AS x, GET(a, p) AS y, TRY_ELEMENT_AT(a, -1) AS z, GET(a, (p) - 1) AS w FROM t"),
        ("select m['k'] as v from t", "SELECT m['k'] AS v FROM t"),
        # a subscript inside a subscript is rewritten too (subscription_states' item discounts)
        ("select e.items[i + 1].discounts[d + 1].coupon as c from t as e",
         "SELECT GET(GET(e.items, i).discounts, d).coupon AS c FROM t AS e"),
    ],
)
def test_to_spark_rewrites_the_portable_forms(duckdb_sql, spark_sql):
    assert to_spark(duckdb_sql) == spark_sql


def test_a_json_structure_without_a_spark_type_is_an_error():
    with pytest.raises(ValueError, match="no Spark type"):
        to_spark("select json_transform(j, '{\"a\": \"HUGEINT\"}') as o from t")


def test_no_model_calls_len():
    """DuckDB's len() counts a list's elements; sqlglot writes it for Spark as length(), which takes only a
    string, so a list's len() fails there (seen on subscription_states' discounts). Lists use
    array_length(), strings length()."""
    import re

    offenders = [f"{p.relative_to(DEFS)}:{n}" for p in SQL_FILES
                 for n, line in enumerate(with_sql_parts(p.read_text(), p.parent).splitlines(), 1)
                 if re.search(r"\blen\s*\(", line.split("--", 1)[0], re.IGNORECASE)]
    assert not offenders, offenders
