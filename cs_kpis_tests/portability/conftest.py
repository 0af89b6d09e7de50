"""The tiny company's warehouse inputs as Parquet, and one local Spark Connect session, for the whole run.

Both engines read the same Parquet files: DuckDB through views ``raw.x`` over ``read_parquet``, Spark through
external tables ``raw.x`` (``USING parquet``) in its in-memory catalog. The Spark session starts once
(about 10-20 s) and is skipped, with the reason, only when Java or pyspark is missing.
"""

import os
import shutil
import subprocess
from pathlib import Path

import duckdb
import pytest

from cs_kpis.lib.engine import ENV_SPARK_DRIVER_JAVA_OPTIONS, ensure_lake, register_many, spark_session
from cs_kpis.lib.portable import tables_read
from cs_kpis_tests.tiny_build import build_tiny_company

SPARK_REMOTE = "local[2]"
TEST_JVM_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
"""The test JVM's flags: it lives a few minutes over tiny data, and with the JVM's defaults spent much of its
CPU compiling Spark's own code a second time (C2) and in G1's concurrent threads: with the JIT's first tier only
and the serial collector, its CPU for the same work fell by about a quarter (BENCHMARKS.md, session 28). They
change how the JVM runs Spark's code, not Spark's settings, plans or rows."""
INPUT_SCHEMAS = ("raw", "staging", "marts", "kpis")


@pytest.fixture(scope="session")
def tiny_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny simulator company built by Dagster through raw, staging, marts and kpis (not alerts, reports).

    The recipe of cs_kpis_tests/tiny_build.py (as staging's ``tiny_company``), with the later layers too: the
    SQL models of every layer read their inputs from it. Without the asset checks (182 of them; about 11 of
    the build's 38 CPU s, measured loaded): they write only their own bookkeeping (``kpis._build_checks``,
    ``staging._build_loads.grain_checked``), which no model reads; every other table's rows are those of a
    build with them (compared, session 28), and the checks run in the staging package's and the run's tests.
    """
    env, _ = build_tiny_company(tmp_path_factory.mktemp("tiny_warehouse"), lambda k: k.path[0] in INPUT_SCHEMAS,
                                checks=False)
    return env.warehouse


def java_problem() -> str | None:
    """Why Spark cannot start here, or None."""
    java = shutil.which("java") or (os.environ.get("JAVA_HOME") and Path(os.environ["JAVA_HOME"], "bin", "java"))
    if not java:
        return "Java is not installed (no `java` on PATH, no JAVA_HOME): Spark needs Java 17 or newer"
    try:
        subprocess.run([str(java), "-version"], capture_output=True, timeout=60, check=True)
    except (OSError, subprocess.SubprocessError) as e:
        return f"`{java} -version` failed: {e}"
    return None


@pytest.fixture(scope="package")  # the JVM stops when this package's tests are done, not at the suite's end
def spark(tmp_path_factory: pytest.TempPathFactory):
    problem = java_problem()
    if problem:
        pytest.skip(problem)
    try:
        import pyspark.sql  # noqa: F401
    except ImportError as e:  # the project installs it (extra `spark`); a bare `pip install -e .` does not
        pytest.skip(f"pyspark is not installed ({e}); `pip install -e '.[dev,spark]'` (make venv) installs it")
    # the engine's own session (cs_kpis/lib/engine.py): a local server on a free port, not pyspark's fixed
    # 15002, so parallel test runs on one machine do not collide
    # with the engine's own settings (SPARK_RUNTIME_CONF), as `make run ENGINE=spark` runs: no test-only Spark
    # setting. Only the JVM's own flags are the tests' (TEST_JVM_OPTIONS), unless the environment sets them
    with pytest.MonkeyPatch.context() as mp:
        if not os.environ.get(ENV_SPARK_DRIVER_JAVA_OPTIONS, "").strip():
            mp.setenv(ENV_SPARK_DRIVER_JAVA_OPTIONS, TEST_JVM_OPTIONS)
        session = spark_session(SPARK_REMOTE, ensure_lake(tmp_path_factory.mktemp("spark")))
    yield session
    session.stop()


def _export(con: duckdb.DuckDBPyConnection, schema: str, table: str, to: Path) -> Path:
    # never a leading underscore: Spark (Hadoop) skips files named _x as hidden (kpis._build_window)
    path = to / schema / f"table-{table}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    con.execute(f"copy (select * from {schema}.{table}) to '{path}' (format parquet)")
    return path


@pytest.fixture(scope="session")
def parquet_inputs(tiny_warehouse, tmp_path_factory) -> dict[tuple[str, str], Path]:
    """Every raw, staging, marts and kpis table of the tiny company, exported once: ``(schema, table) -> file``;
    a view's rows too (kpis.mrr_periods is a view of marts.mrr_period_ends that kpis.revenue_by_grain reads)."""
    out = tmp_path_factory.mktemp("parquet_inputs")
    with duckdb.connect(str(tiny_warehouse), read_only=True) as con:
        con.execute("set TimeZone = 'UTC'")
        tables = con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema in ('raw', 'staging', 'marts', 'kpis') and table_type in ('BASE TABLE', 'VIEW') "
            # dlt's bookkeeping and the quarantine are no model's input; the health build-window logs are
            "and not (table_schema = 'raw' and table_name like '\\_%' escape '\\')"
        ).fetchall()
        return {(s, t): _export(con, s, t, out) for s, t in tables}


@pytest.fixture(scope="package")
def spark_tables(spark, parquet_inputs):
    """The Parquet inputs as Spark tables under the same ``schema.table`` names."""
    # replaced if there: an end-to-end build on the same session may have registered its own tables
    register_many(spark, parquet_inputs)
    return parquet_inputs


@pytest.fixture(scope="session")
def alert_days(tiny_warehouse) -> tuple:
    """(first_day, as_of) the alert engine renders its SQL with on the tiny company (alerts/engine.py)."""
    with duckdb.connect(str(tiny_warehouse), read_only=True) as con:
        return tuple(con.execute("select min(day), max(day) from kpis.account_indicators_daily").fetchall()[0])


def duckdb_over(parquet_inputs, sql: str) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with views over the Parquet inputs ``sql`` reads."""
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    for schema, table in sorted(tables_read(sql)):
        path = parquet_inputs.get((schema, table))
        if path is None:
            raise LookupError(f"{schema}.{table} is not among the exported inputs")
        con.execute(f"create schema if not exists {schema}")
        con.execute(f"create view {schema}.{table} as select * from read_parquet('{path}')")
    return con
