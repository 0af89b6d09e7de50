"""Every SQL model (staging, account xref, marts, kpis, health) on DuckDB and on local Spark Connect, rows compared.

Both engines read the tiny company's inputs from the same Parquet files (conftest.py); the model's SQL is
the file as ``cs_kpis/lib/sql.py`` builds it, transpiled DuckDB -> Spark by sqlglot for Spark. One test per
model. ``pytest -m portability`` runs only these.
"""

import duckdb
import pytest

from cs_kpis.config import render_sql
from cs_kpis.defs.alerts.engine import ALERT_TYPES, condition_sql, load_rules
from cs_kpis.defs.health.assets import models as HEALTH_MODELS
from cs_kpis.defs.kpis.assets import kpi_models
from cs_kpis.defs.marts.assets import models as MARTS_MODELS
from cs_kpis.defs.staging.assets import STAGING_MODELS
from cs_kpis.defs.xref.assets import XREF_MODELS
from cs_kpis.lib.engine import spark_rows
from cs_kpis.lib.incremental import with_account_range
from cs_kpis.lib.portable import lint, to_spark, to_spark_steps
from cs_kpis_tests.portability.compare import differences
from cs_kpis_tests.portability.conftest import duckdb_over

pytestmark = pytest.mark.portability

# the health activity and indicator models are built incrementally (cs_kpis/lib/incremental.py); their SQL is
# the same in every mode, reading the window from kpis._build_window, so it is compared as it stands
MODELS = [*STAGING_MODELS, *XREF_MODELS, *MARTS_MODELS, *kpi_models(), *HEALTH_MODELS]

# model -> (the lint rule that finds the cause, why it cannot run on Spark yet); each is also in test_lint.py's
# allow-list. The skip holds only while the lint still finds that construct in the model: once the SQL is
# fixed, the model is compared again without anyone having to remember this list.
CANNOT_RUN_ON_SPARK: dict[str, tuple[str, str]] = {
    "alerts.champion_inactive": (
        "asof-join",
        ("ASOF LEFT JOIN (the last product activity per contact) is DuckDB-only: sqlglot emits it verbatim and "
        "Spark 4.3 fails with PARSE_SYNTAX_ERROR at 'LEFT'")
    ),
    "alerts.usage_drop": (
        "interval-expression",
        ("interval ($min_days - 1) day (rendered `interval (7 - 1) day`) in a RANGE frame: Spark 4.3 fails with "
        "PARSE_SYNTAX_ERROR at 'DAY'; a computed interval is DuckDB-only")
    ),
    "alerts.health_drop": (
        "interval-expression",
        ("interval ($window_days) day (:window_days on Spark): Spark 4.3 fails with PARSE_SYNTAX_ERROR at 'DAY'; "
        "a bound parameter as an interval's quantity is DuckDB-only")
    ),
    "alerts.low_nps_high_value": (
        "interval-expression",
        ("interval ($active_days - 1) day (rendered `interval (14 - 1) day`): Spark 4.3 fails with "
        "PARSE_SYNTAX_ERROR at 'DAY'; a computed interval is DuckDB-only")
    ),
}


# Expressions measured to differ between the engines (docs/PORTABILITY.md): the harness must see each one,
# or a passing model test would prove nothing.
KNOWN_DIVERGENCES = {
    "date_diff_month": "select date_diff('month', cast('2024-01-31' as date), cast('2024-02-01' as date)) as m",
    "isodow_sunday": "select isodow(cast('2024-02-04' as date)) as d",
    "constant_ratio": "select 1.0 / 12 as r",
}


@pytest.mark.parametrize("sql", KNOWN_DIVERGENCES.values(), ids=KNOWN_DIVERGENCES.keys())
def test_the_comparison_sees_a_known_divergence(sql, spark):
    with duckdb.connect() as con:
        duck = con.sql(sql).to_arrow_table()
    got = spark.sql(to_spark(sql)).toArrow()
    assert differences(duck, got), f"DuckDB {duck.to_pylist()} and Spark {got.to_pylist()} compared equal"


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.table)
def test_model_gives_the_same_rows_on_duckdb_and_spark(model, parquet_inputs, spark, spark_tables):
    # {{ name }} placeholders (the company's field names) rendered as the build renders them (demo profile);
    # an incremental model's account range lines as a range of every account renders them (a lower bound below
    # every id), so that the constants run on Spark too
    sql = with_account_range(render_sql(model.sql, where=f"model {model.table}"), "", None)
    _skip_if_known_unportable(model.table, sql)
    _assert_same_rows(model.table, sql, parquet_inputs, spark)


@pytest.mark.parametrize("alert_type", ALERT_TYPES)
def test_alert_condition_gives_the_same_rows_on_duckdb_and_spark(alert_type, parquet_inputs, spark, spark_tables,
                                                                alert_days):
    """alerts/sql/<type>.sql rendered by the alert engine with the shipped rules (string.Template)."""
    first_day, as_of = alert_days
    # rule values are bound parameters ($name on DuckDB, :name on Spark), never SQL text
    sql, params = condition_sql(alert_type, load_rules()["types"][alert_type], first_day, as_of)
    _skip_if_known_unportable(f"alerts.{alert_type}", sql)
    _assert_same_rows(f"alert {alert_type}", sql, parquet_inputs, spark, may_be_empty=True, params=params)


def _skip_if_known_unportable(name: str, sql: str) -> None:
    if name in CANNOT_RUN_ON_SPARK:
        rule, why = CANNOT_RUN_ON_SPARK[name]
        if rule in {v.rule for v in lint(sql)}:
            pytest.skip(f"{name}: {why}")


def _assert_same_rows(name: str, sql: str, parquet_inputs, spark, may_be_empty: bool = False,
                      params: dict | None = None) -> None:
    with duckdb_over(parquet_inputs, sql) as con:
        duck = con.execute(sql, params).to_arrow_table() if params else con.sql(sql).to_arrow_table()
    # the engine's path: each CTE read twice or more computed once first, a local checkpoint (engine.spark_rows)
    with spark_rows(spark, sql, params) as rows:
        got = rows.toArrow()
    if not may_be_empty:
        assert duck.num_rows > 0, f"{name} is empty on the tiny company: the comparison would prove nothing"
    diffs = differences(duck, got)
    if diffs:
        steps, final = to_spark_steps(sql, "cte")
        ran = "".join(f"\n-- step {view}\n{select}\n" for view, select in steps) + f"\n-- final select\n{final}"
        pytest.fail(f"{name}: DuckDB and Spark disagree\n" + "\n".join(diffs) + f"\n\nSpark SQL as run:{ran}")
