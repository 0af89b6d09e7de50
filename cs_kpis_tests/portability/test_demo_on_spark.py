"""End to end on Spark with the DEMO company (size demo, seed 42, the simulator's default 30 days of Stripe
events): issue 19's "the demo's KPI tables built on local Spark Connect equal DuckDB's".

The tests and the Spark build are test_build_on_spark.py's own, imported, not copied: this module only swaps
the warehouse they compare against (the fixture ``tiny_warehouse``, overridden here for this module) for the
demo company built on DuckDB through raw, staging, marts and kpis by the recipe of cs_kpis_tests/tiny_build.py,
with the simulator asked for the demo company instead of the tiny one. The Spark build then copies that
warehouse's raw layer, drops every later schema and builds staging, marts and kpis with ``CS_KPIS_ENGINE=spark``
on local[2]; kpis.revenue_monthly, marts.mrr_monthly and kpis.health_scores_daily are compared row for row
(cs_kpis_tests/portability/compare.py: sorted, decimals exact, doubles within 1e-9, dates ISO).

(The Spark build sets CS_KPIS_DEMO_SIZE=tiny and CS_KPIS_DEMO_SEED=1; they are read only by the landing
asset, cs_kpis/defs/landing/assets.py, which that build does not select: it starts from the copied raw layer.)
"""

import duckdb
import pytest

from cs_kpis import simulator
from cs_kpis_tests.portability.conftest import INPUT_SCHEMAS
from cs_kpis_tests.portability.test_build_on_spark import (  # noqa: F401  (collected here, on the demo)
    SPARK_BUILT_TABLES,
    spark_build,
    test_health_scores_on_the_spark_built_inputs_equal_the_duckdb_build,
    test_spark_build_equals_the_duckdb_build,
    test_spark_built_the_sql_models_and_read_only_raw_and_python_tables_from_duckdb,
)
from cs_kpis_tests.tiny_build import build_tiny_company

# builds the demo company twice (DuckDB, then Spark): out of the default run (`pytest -m slow`)
pytestmark = [pytest.mark.portability, pytest.mark.slow]

DEMO = {"size": "demo", "seed": 42}
COMPARED = [*SPARK_BUILT_TABLES, ("kpis", "health_scores_daily")]


@pytest.fixture(scope="module")
def tiny_warehouse(tmp_path_factory):
    """Here: the DEMO company's DuckDB warehouse (raw, staging, marts, kpis), under the name the imported
    Spark build and tests ask for."""
    generate = simulator.generate

    def demo_company(landing_dir, ground_truth_dir, **_tiny):
        return generate(landing_dir, ground_truth_dir, **DEMO)  # default event_retention_days: 30 days

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(simulator, "generate", demo_company)
        env, _ = build_tiny_company(tmp_path_factory.mktemp("demo_warehouse"), lambda k: k.path[0] in INPUT_SCHEMAS)
    with duckdb.connect(str(env.warehouse), read_only=True) as con:
        counts = {f"{s}.{t}": con.execute(f"select count(*) from {s}.{t}").fetchone()[0] for s, t in COMPARED}
    print(f"demo company (size demo, seed 42) on DuckDB: rows compared per table {counts}")
    return env.warehouse


def test_the_compared_warehouse_is_the_demo_company(tiny_warehouse):
    """Guards the swap above: the tiny company has 60 accounts, the demo one 1000."""
    with duckdb.connect(str(tiny_warehouse), read_only=True) as con:
        accounts = con.execute("select count(distinct account_id) from marts.mrr_monthly").fetchone()[0]
    assert accounts > 60 * 5, f"{accounts} accounts with MRR: not the demo company"
