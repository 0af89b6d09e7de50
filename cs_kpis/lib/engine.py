"""The engine seam: where the ``.sql`` models run, DuckDB (default) or Spark through Spark Connect.

:class:`SqlEngineResource` is the Dagster resource every SQL model asset (``cs_kpis/lib/sql.py``) builds
through. Its choice comes, first match wins, from the resource's own config (the UI's Launchpad), the
environment (``CS_KPIS_ENGINE``, ``CS_KPIS_SPARK_REMOTE``, ``CS_KPIS_LAKE_DIR``) or the company
configuration's ``engine:`` section (cs_kpis/config.py); without any, DuckDB, exactly as before.

- ``duckdb``: the model is (re)built in the DuckDB warehouse (``cs_kpis.lib.sql.build``), unchanged.
- ``spark``: the same file, rendered the same way, is transpiled DuckDB -> Spark by sqlglot
  (``cs_kpis.lib.portable.to_spark``) and run on the Spark Connect session at ``spark_remote``, in steps: each
  CTE read twice or more is computed once before the query (:func:`spark_rows`)
  (``local[2]`` starts a local server; ``sc://host:15002`` is a cluster or Databricks Connect). The result
  is written as Parquet to ``<lake>/<schema>/<table>/`` and registered in Spark's catalog as
  ``<schema>.<table>``, so the next model reads it there. The raw tables dlt wrote to the lake
  (``CS_KPIS_RAW_DESTINATION=filesystem``, cs_kpis/sources/lake.py) are registered from dlt's own files.
  The other tables Spark did not build in this process (raw tables loaded into DuckDB, the Python-built
  tables) are handed over from the DuckDB warehouse as Parquet under the same layout just before a Spark
  model reads them. The result is then
  mirrored into the DuckDB warehouse (``create or replace table ... as select * from read_parquet(...)``),
  because the asset checks, the reports, the alerts and the Python-built tables still read DuckDB
  (docs/SCALE_OUT.md names each one).

The lake folder is the project's own: it is created with a marker file, and a folder that holds anything
else without that marker is refused, never overwritten.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field

ENGINES = ("duckdb", "spark")
ENV_ENGINE = "CS_KPIS_ENGINE"
ENV_SPARK_REMOTE = "CS_KPIS_SPARK_REMOTE"
ENV_LAKE_DIR = "CS_KPIS_LAKE_DIR"
ENV_SPARK_STEPS = "CS_KPIS_SPARK_STEPS"
"""``0``: Spark runs each query as one inlined statement instead of in steps (:func:`spark_rows`)"""
ENV_SPARK_DRIVER_JAVA_OPTIONS = "CS_KPIS_SPARK_DRIVER_JAVA_OPTIONS"
"""JVM flags for a ``local[N]`` server's JVM (``spark.driver.extraJavaOptions``); the test suite's short-lived
JVM runs with ``-XX:TieredStopAtLevel=1`` (cs_kpis_tests/portability/conftest.py)"""
DEFAULT_SPARK_REMOTE = "local[2]"
LAKE_MARKER = ".cs_kpis_lake"

SPARK_RUNTIME_CONF = {
    "spark.sql.session.timeZone": "UTC",  # casts of timestamps to dates are UTC days, as on DuckDB
    "spark.sql.ansi.enabled": "true",
    # DuckDB reads INT96 as a naive timestamp; microsecond timestamps keep their UTC adjustment
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    # constraint propagation (inferred filters) fails on Spark 4.3 inside the optimizer when a union's branches
    # read the same checkpointed step (spark_rows): kpis.revenue_by_grain raised "NoSuchElementException: key
    # not found: segment#..." in UnionBase.rewriteConstraints (measured, session 25; without steps it passed).
    # An optimization only (no row changes); it also costs time growing with the plan's size
    "spark.sql.constraintPropagation.enabled": "false",
}

_LOCK = threading.Lock()
_SPARK_BUILT: set[tuple[str, str, str]] = set()
"""(remote, schema, table) built by Spark in this process: read in place, never handed over again"""
_SESSIONS: dict[str, Any] = {}
HANDED_OVER: list[tuple[str, str]] = []
"""(schema, table) handed over from DuckDB to Spark in this process, in order (tests read it)"""
DUCKDB_ONLY_RULES = ("asof-join", "interval-expression")
"""lint rules (cs_kpis/lib/portable.py) whose constructs Spark 4.3 fails to parse (measured: PARSE_SYNTAX_ERROR);
the lint's other rules flag SQL that runs on Spark but is compared model by model (pytest -m portability)"""
RAN_ON_DUCKDB: list[tuple[str, str]] = []
"""(the query's first line, the lint violation) of each :func:`query` Spark mode ran on DuckDB (tests read it)"""
LAKE_REGISTERED: list[tuple[str, str]] = []
"""(schema, table) registered in Spark from dlt's lake files in this process (tests read it)"""


@dataclass(frozen=True)
class EngineSettings:
    engine: str
    spark_remote: str
    lake_dir: Path


def resolve(engine: str = "", spark_remote: str = "", lake_dir: str = "") -> EngineSettings:
    """The engine to use: explicit values, then the environment, then the company config, then DuckDB."""
    from cs_kpis import settings
    from cs_kpis.config import load

    company = load()
    cfg = company.engine
    chosen = (engine or os.environ.get(ENV_ENGINE, "") or cfg.kind).strip().lower()
    if chosen not in ENGINES:
        raise ValueError(f"{ENV_ENGINE} (or engine.kind in the company config) must be one of {ENGINES}, "
                         f"not {chosen!r}")
    remote = (spark_remote or os.environ.get(ENV_SPARK_REMOTE, "") or cfg.spark_remote).strip()
    from cs_kpis.config import check_spark_remote

    # a URL from the environment (a secret store) may carry a token; the config file's may not (validated there)
    check_spark_remote(remote, credentials_allowed=True)
    lake = lake_dir or os.environ.get(ENV_LAKE_DIR, "")
    if lake:
        lake_path = Path(lake).expanduser().resolve()
    elif cfg.lake_dir is not None:
        source = company.source_file
        lake_path = cfg.lake_dir if cfg.lake_dir.is_absolute() or source is None else (source.parent / cfg.lake_dir)
        lake_path = lake_path.resolve()
    else:
        lake_path = settings.state_dir() / "lake"
    return EngineSettings(chosen, remote, lake_path)


def redacted(remote: str) -> str:
    """The Spark Connect URL without its parameters (``;token=...``): safe for logs and metadata."""
    return remote.split(";", 1)[0]


def ensure_lake(lake: Path) -> Path:
    """Create the lake folder with its marker; refuse a non-empty folder the project did not create."""
    if lake.exists() and any(lake.iterdir()) and not (lake / LAKE_MARKER).exists():
        raise RuntimeError(f"{lake}: the lake folder holds files cs_kpis did not write (no {LAKE_MARKER}); "
                           f"point {ENV_LAKE_DIR} at an empty or cs_kpis-made folder")
    lake.mkdir(parents=True, exist_ok=True)
    (lake / LAKE_MARKER).touch()
    return lake


def spark_session(remote: str, lake: Path):
    """The Spark Connect session at ``remote`` (one per process).

    ``local[N]`` starts a Spark Connect server in this process on a free loopback port (pyspark's own
    ``remote("local[N]")`` always binds 15002, so two processes on one machine collide: measured, the second
    failed with "BindException: Failed to bind to address 0.0.0.0:15002"). ``sc://...`` connects as it is."""
    cached = _SESSIONS.get(remote)
    if cached is not None and not cached.is_stopped:
        return cached
    from pyspark.sql.connect.session import SparkSession as RemoteSparkSession

    # a new session (a local server restarted) has an empty catalog: nothing there was built by Spark yet
    _SPARK_BUILT.difference_update({key for key in _SPARK_BUILT if key[0] == remote})
    if remote.startswith("local"):
        session = _start_local(RemoteSparkSession, remote, lake)
    else:
        session = RemoteSparkSession.builder.remote(remote).getOrCreate()
    for key, value in SPARK_RUNTIME_CONF.items():
        session.conf.set(key, value)
    _SESSIONS[remote] = session
    return session


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_local(RemoteSparkSession, master: str, lake: Path):
    port = _free_port()
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    opts = {
        "spark.connect.grpc.binding.address": "127.0.0.1",
        "spark.connect.grpc.binding.port": str(port),
        "spark.sql.warehouse.dir": str(lake / "_spark_warehouse"),
        "spark.local.dir": str(lake / "_spark_tmp"),
        "spark.driver.host": "127.0.0.1",
        # the server runs in the driver's JVM, whose heap is 1 GB by default: the test suite's Spark build of
        # marts.subscription_history_states failed with "Java heap space" in a fresh clone (it passed on a
        # warm machine). Read when the JVM starts; CS_KPIS_SPARK_DRIVER_MEMORY overrides it
        "spark.driver.memory": os.environ.get("CS_KPIS_SPARK_DRIVER_MEMORY", "3g"),
        "spark.sql.shuffle.partitions": "2",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        **SPARK_RUNTIME_CONF,
    }
    # the driver JVM's own flags (its JIT, its garbage collector); none by default. Read when the JVM starts
    java_options = os.environ.get(ENV_SPARK_DRIVER_JAVA_OPTIONS, "").strip()
    if java_options:
        opts["spark.driver.extraJavaOptions"] = java_options
    # what pyspark 4.3's builder.remote("local[N]") does (pyspark/sql/session.py), with our port: the server
    # runs in this process's JVM and stops with session.stop(); the client authenticates with the token
    # _start_connect_server puts in SPARK_CONNECT_AUTHENTICATE_TOKEN
    os.environ["SPARK_LOCAL_REMOTE"] = "1"
    # with SPARK_TESTING set, pyspark replaces the binding port by 0 (an ephemeral port it does not report),
    # so the client below waited on a port nobody listened on until pytest's timeout (measured, 600 s per
    # test); the port chosen here is already free, so the server starts without it
    testing = os.environ.pop("SPARK_TESTING", None)
    try:
        RemoteSparkSession._start_connect_server(master, opts)
    finally:
        if testing is not None:
            os.environ["SPARK_TESTING"] = testing
    os.environ["SPARK_CONNECT_MODE_ENABLED"] = "1"
    # "localhost": pyspark sends the token over local (not TLS) credentials only to that host name
    return RemoteSparkSession.builder.remote(f"sc://localhost:{port}").getOrCreate()


def declared_columns(path: Path) -> str:
    """Spark cannot infer a schema from Parquet without rows: the column list from the file's own schema."""
    import pyarrow.parquet as pq
    from pyspark.sql.pandas.types import from_arrow_schema

    files = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
    if not files or sum(pq.ParquetFile(f).metadata.num_rows for f in files) > 0:
        return ""
    struct = from_arrow_schema(pq.read_schema(files[0]), prefer_timestamp_ntz=True)
    return "(" + ", ".join(f"`{f.name}` {f.dataType.simpleString()}" for f in struct.fields) + ") "


def drop_relation(spark, name: str) -> None:
    """Drop the table or view ``name`` if there (an external table's files stay): a raw table may be a view
    from dlt's lake in one run and a handed-over table in another, on the same session."""
    from pyspark.errors import AnalysisException

    try:
        spark.sql(f"drop table if exists {name}")
    except AnalysisException:  # WRONG_COMMAND_FOR_OBJECT_TYPE: it is a view
        spark.sql(f"drop view if exists {name}")


def register(spark, schema: str, table: str, path: Path) -> None:
    """``schema.table`` in Spark's catalog as an external Parquet table at ``path`` (replaced if there)."""
    spark.sql(f"create database if not exists {schema}")
    drop_relation(spark, f"{schema}.{table}")
    _create_table(spark, schema, table, path)


def register_many(spark, paths: dict[tuple[str, str], Path]) -> None:
    """:func:`register` for each ``(schema, table) -> path``, with each database created once and only the
    relations already in the catalog dropped: each statement is a round trip to the server (20-50 ms of its
    CPU for a ``create database if not exists``, measured), and most of them would change nothing."""
    schemas = sorted({schema for schema, _ in paths})
    for schema in schemas:
        spark.sql(f"create database if not exists {schema}")
    there = {(schema, t.name) for schema in schemas for t in spark.catalog.listTables(schema) if not t.isTemporary}
    for (schema, table), path in paths.items():
        if (schema, table) in there:
            drop_relation(spark, f"{schema}.{table}")
        _create_table(spark, schema, table, path)


def _create_table(spark, schema: str, table: str, path: Path) -> None:
    spark.sql(f"create table {schema}.{table} {declared_columns(path)}using parquet location '{path}'")


def register_lake_raw(spark, lake: Path, table: str, dataset: str = "raw") -> bool:
    """``raw.<table>`` in Spark from dlt's own files in the lake (``CS_KPIS_RAW_DESTINATION=filesystem``):
    the appended Parquet files as the external table ``raw_lake.<table>``, and ``raw.<table>`` as a view with
    the same merge-on-read SQL the warehouse's view runs (cs_kpis/sources/lake.py), transpiled. False when
    the lake holds no such table (then the caller hands the warehouse's table over instead)."""
    from cs_kpis.lib.portable import to_spark
    from cs_kpis.sources import lake as dlt_lake

    rules = dlt_lake.read_rules(lake)
    files = dlt_lake.data_files(lake, dataset, table)
    if table not in rules or not files:
        return False
    folder = dlt_lake.table_dir(lake, dataset, table)
    spark.sql(f"create database if not exists {dlt_lake.LAKE_SCHEMA}")
    spark.sql(f"create database if not exists {dataset}")
    drop_relation(spark, f"{dataset}.{table}")
    drop_relation(spark, f"{dlt_lake.LAKE_SCHEMA}.{table}")
    # a later load may add columns: Spark merges the files' schemas as DuckDB's union_by_name does
    spark.sql(f"create table {dlt_lake.LAKE_SCHEMA}.{table} {declared_columns(folder)}using parquet "
              f"options (mergeSchema 'true') location '{folder}'")
    sql = dlt_lake.view_sql(table, rules[table], dlt_lake.columns_of(files), f"{dlt_lake.LAKE_SCHEMA}.{table}")
    spark.sql(f"create view {dataset}.{table} as {to_spark(sql)}")
    LAKE_REGISTERED.append((dataset, table))
    return True


def export_and_register(con, spark, lake: Path, schema: str, table: str) -> Path:
    """Export a DuckDB table to ``<lake>/<schema>/<table>/`` and register it in Spark."""
    path = lake / schema / table
    path.mkdir(parents=True, exist_ok=True)
    for old in path.glob("*.parquet"):  # files of an earlier export (the lake is the project's own)
        old.unlink()
    con.execute(f"copy (select * from {schema}.{table}) to '{path / 'duckdb.parquet'}' (format parquet)")
    register(spark, schema, table, path)
    return path


def hand_over(con, spark, lake: Path, schema: str, table: str) -> Path:
    """A DuckDB-built table a Spark query reads, handed over on demand (:func:`export_and_register`)."""
    path = export_and_register(con, spark, lake, schema, table)
    HANDED_OVER.append((schema, table))
    return path


class SqlEngineResource(dg.ConfigurableResource):
    """Where the SQL models run: ``duckdb`` (default) or ``spark`` (a Spark Connect URL).

    Empty fields fall back to CS_KPIS_ENGINE / CS_KPIS_SPARK_REMOTE / CS_KPIS_LAKE_DIR, then to the
    company config's ``engine:`` section, then to DuckDB (docs/SCALE_OUT.md)."""

    engine: str = Field("", description="duckdb or spark; empty: CS_KPIS_ENGINE, the company config, duckdb")
    spark_remote: str = Field("", description="Spark Connect URL: local[2] or sc://host:15002; empty: "
                                              "CS_KPIS_SPARK_REMOTE, the company config, local[2]")
    lake_dir: str = Field("", description="where Spark's tables are written as Parquet; empty: CS_KPIS_LAKE_DIR, "
                                          "the company config, <state>/lake")

    def settings(self) -> EngineSettings:
        return resolve(self.engine, self.spark_remote, self.lake_dir)

    def build(self, con, model) -> dict:
        """(Re)build ``model`` on the chosen engine; the DuckDB table afterwards is the result either way.
        Returns the UI metadata (row count, column schema, table name, engine)."""
        from cs_kpis.lib import sql as sqllib

        chosen = self.settings()
        if getattr(model, "by_load", False):  # @incremental by=load: only the raw loads not built yet
            _plan, _rows, meta = self.build_by_load(con, model)
            return {**meta, **sqllib.table_metadata(con, model.schema, model.name, model.columns)}
        if chosen.engine == "duckdb":
            return sqllib.build(con, model)  # unchanged: no extra metadata
        return build_on_spark(con, model, chosen)

    def build_by_load(self, con, model, *, full_refresh: bool = False):
        """Build an ``@incremental by=load`` model (cs_kpis/lib/incremental_loads.py) on the chosen engine:
        (plan, rows in the table, extra UI metadata)."""
        from cs_kpis.lib import sql as sqllib

        chosen = self.settings()
        if chosen.engine == "duckdb":
            plan, rows = sqllib.build_by_load(con, model, full_refresh=full_refresh)
            return plan, rows, {}
        return build_by_load_on_spark(con, model, chosen, full_refresh=full_refresh)

    def query(self, con, sql: str, params: dict | None = None):
        """One SELECT's rows (pandas) from the chosen engine: :func:`query`."""
        return query(con, sql, params, self.settings())

    def publish(self, con, schema: str, table: str) -> dict[str, Any]:
        """A Python-written warehouse table made the engine's own: :func:`publish_table`."""
        return publish_table(con, schema, table, self.settings())


def _spark_inputs(con, spark, lake: Path, remote: str, sql: str) -> None:
    """Make every warehouse table ``sql`` reads readable in Spark: Spark's own tables as they are, dlt's lake
    files registered, anything else handed over from DuckDB. Call with :data:`_LOCK` held."""
    from cs_kpis.lib.portable import tables_read

    con.execute("set TimeZone = 'UTC'")
    for schema, table in sorted(tables_read(sql)):
        if (remote, schema, table) in _SPARK_BUILT:
            continue
        # raw tables dlt wrote to the lake are read there; everything else is handed over from DuckDB
        if not (schema == "raw" and register_lake_raw(spark, lake, table)):
            hand_over(con, spark, lake, schema, table)


@contextmanager
def spark_rows(spark, sql: str, params: dict | None = None):
    """The Spark DataFrame of one SELECT (DuckDB SQL, rendered), inside a ``with``: each CTE the query reads at
    two places or more is computed once before the query, as a local checkpoint behind a temporary view
    (cs_kpis/lib/portable.py, :func:`~cs_kpis.lib.portable.to_spark_steps`). Spark would otherwise copy the CTE
    into the plan at every read and plan, optimize and compute it there each time: the indicators' query
    inlines to thousands of CTE bodies. A checkpoint, not ``CACHE TABLE``: a cached view keeps its plan, and
    the next queries' plans were matched against every cached one (measured: slower than no steps at all).
    Consume the DataFrame inside the ``with``: the views are dropped and the checkpoints released when it
    ends.

    Where steps do not suit: a local checkpoint lives on the executors without its lineage, so a lost executor
    (a cluster's dynamic allocation, a pre-empted node) fails the query instead of recomputing it; Spark Connect
    has ``localCheckpoint`` from Spark 4.0 on (this project tests 4.3); and a step computes its CTE's every row,
    where an inlined CTE may first be filtered by the query reading it (DuckDB computes such a CTE whole too).
    ``CS_KPIS_SPARK_STEPS=0`` runs every query inlined, as one statement (measured on the tiny company only)."""
    from cs_kpis.lib.portable import to_spark, to_spark_steps

    if os.environ.get(ENV_SPARK_STEPS, "1") == "0":
        steps, final = [], to_spark(sql)
    else:
        steps, final = to_spark_steps(sql, f"cte_{uuid.uuid4().hex[:10]}")
    views: list[str] = []
    kept: list[Any] = []
    try:
        for view, select in steps:
            rows = spark.sql(select, args=params) if params else spark.sql(select)
            kept.append(rows.localCheckpoint())
            kept[-1].createOrReplaceTempView(view)
            views.append(view)
        yield spark.sql(final, args=params) if params else spark.sql(final)
    finally:
        for view in reversed(views):
            spark.catalog.dropTempView(view)
        # a checkpoint is released when its DataFrame is (pyspark's Connect client tells the server then)
        kept.clear()


def query(con, sql: str, params: dict | None = None, chosen: EngineSettings | None = None):
    """The rows of one SELECT as a pandas DataFrame, run on the chosen engine.

    DuckDB: on ``con`` with ``params`` as named parameters (``$name``), exactly as before. Spark: transpiled
    (``$name`` becomes ``:name``, bound by Spark) and run on the Spark Connect session over the same tables.
    A query with a construct Spark cannot parse (:data:`DUCKDB_ONLY_RULES` of the portable-SQL lint: an ASOF
    join, a computed interval) runs on DuckDB in both modes; :data:`RAN_ON_DUCKDB` names each such query."""
    chosen = chosen or resolve()
    if chosen.engine == "duckdb":
        return con.execute(sql, params).df() if params else con.execute(sql).df()
    from cs_kpis.lib.portable import lint

    problems = [v for v in lint(sql) if v.rule in DUCKDB_ONLY_RULES]
    if problems:
        RAN_ON_DUCKDB.append((sql.strip().splitlines()[0][:120], str(problems[0])))
        return con.execute(sql, params).df() if params else con.execute(sql).df()
    lake = ensure_lake(chosen.lake_dir)
    with _LOCK:
        spark = spark_session(chosen.spark_remote, lake)
        _spark_inputs(con, spark, lake, chosen.spark_remote, sql)
        with spark_rows(spark, sql, params) as result:
            return result.toPandas()


def publish_table(con, schema: str, table: str, chosen: EngineSettings | None = None) -> dict[str, Any]:
    """A table Python just wrote to the DuckDB warehouse becomes the engine's table too: in Spark mode it is
    written to ``<lake>/<schema>/<table>/`` and registered in Spark at once (Spark's own table from then on,
    never handed over again); on DuckDB nothing happens. Returns extra UI metadata."""
    chosen = chosen or resolve()
    if chosen.engine == "duckdb":
        return {}
    lake = ensure_lake(chosen.lake_dir)
    with _LOCK:
        spark = spark_session(chosen.spark_remote, lake)
        con.execute("set TimeZone = 'UTC'")
        path = export_and_register(con, spark, lake, schema, table)
        _SPARK_BUILT.add((chosen.spark_remote, schema, table))
    return {"engine": f"spark ({redacted(chosen.spark_remote)})", "lake_path": str(path)}


def build_on_spark(con, model, chosen: EngineSettings) -> dict[str, Any]:
    from cs_kpis.config import render_sql
    from cs_kpis.lib import sql as sqllib
    from cs_kpis.lib import systems

    lake = ensure_lake(chosen.lake_dir)
    sql = systems.read_nothing_when_off(model.table, render_sql(model.sql, where=f"model {model.table}"))
    with _LOCK:
        spark = spark_session(chosen.spark_remote, lake)
        _spark_inputs(con, spark, lake, chosen.spark_remote, sql)
        out = lake / model.schema / model.name
        t0 = time.perf_counter()
        with spark_rows(spark, sql) as rows:
            rows.write.mode("overwrite").parquet(str(out))
        spark_seconds = time.perf_counter() - t0
        register(spark, model.schema, model.name, out)
        _SPARK_BUILT.add((chosen.spark_remote, model.schema, model.name))
    # the mirror in the warehouse: checks, reports, alerts and the Python-built tables read DuckDB
    con.execute(f"create schema if not exists {model.schema}")
    sqllib.drop_other_kind(con, model.schema, model.name, "table")
    con.execute(f"create or replace table {model.table} as select * from read_parquet('{out}/*.parquet')")
    meta = sqllib.table_metadata(con, model.schema, model.name, model.columns)
    return {**meta, "engine": f"spark ({redacted(chosen.spark_remote)})", "spark_seconds": round(spark_seconds, 2),
            "lake_path": str(out)}


def _parquet_rows(folder: Path) -> int:
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(f).metadata.num_rows for f in folder.glob("*.parquet")) if folder.is_dir() else -1


def build_by_load_on_spark(con, model, chosen: EngineSettings, *, full_refresh: bool = False):
    """An ``@incremental by=load`` model on Spark: planned on the warehouse (cs_kpis/lib/incremental_loads.py);
    a full build is :func:`build_on_spark`, an incremental one appends the new loads' rows to the table's
    Parquet folder as new files and inserts those files into the DuckDB mirror. The version includes the lake
    folder, and a folder whose rows differ from the mirror's makes the build full. The build is logged only
    once both hold the rows (a failed build is found by the next plan and rebuilt whole); files appended by a
    build that failed afterwards are deleted."""
    from cs_kpis.lib import incremental_loads as load_builds
    from cs_kpis.lib import sql as sqllib

    lake = ensure_lake(chosen.lake_dir)
    out = lake / model.schema / model.name
    con.execute("set TimeZone = 'UTC'")
    sql = sqllib.render_model(model)
    raw = load_builds.raw_table(model.sql, model.table)
    label = f"spark {redacted(chosen.spark_remote)} {out}"
    # a merged model's nightly build deletes rows, which appended Parquet files cannot: it is rebuilt whole
    plan = load_builds.plan(con, model.table, raw, load_builds.version(con, sql, raw, label),
                            full_refresh=full_refresh, stored_rows=lambda: _parquet_rows(out),
                            rebuild="a merged model is rebuilt whole on Spark" if getattr(model, "merge", ()) else "")
    load_builds.ensure_control_tables(con)
    seq = load_builds.record(con, model.table, plan)  # committed: Spark reads the loads from its hand-over
    meta: dict[str, Any] = {}
    if plan.mode == "full":
        meta = build_on_spark(con, model, chosen)
    elif plan.loads:
        new: list[Path] = []
        try:
            with _LOCK:
                spark = spark_session(chosen.spark_remote, lake)
                _spark_inputs(con, spark, lake, chosen.spark_remote, sql)
                before = set(out.glob("*.parquet"))
                t0 = time.perf_counter()
                with spark_rows(spark, sql) as rows:
                    rows.write.mode("append").parquet(str(out))
                meta["spark_seconds"] = round(time.perf_counter() - t0, 2)
                new = sorted(set(out.glob("*.parquet")) - before)
                register(spark, model.schema, model.name, out)
                _SPARK_BUILT.add((chosen.spark_remote, model.schema, model.name))
            if new:
                con.execute(f"insert into {model.table} by name select * from read_parquet({[str(p) for p in new]!r})")
        except Exception:
            for path in new:
                path.unlink(missing_ok=True)
            raise
        meta.update({"engine": f"spark ({redacted(chosen.spark_remote)})", "lake_path": str(out)})
    rows = load_builds.finish(con, model.table, plan, seq, label)
    return plan, rows, meta


def forget_spark_built() -> None:
    """Forget which tables Spark built in this process: the next build reads nothing from an earlier build's
    lake (a second build on the same session, as the slow tests do)."""
    _SPARK_BUILT.clear()


def spark_built() -> set[tuple[str, str]]:
    """(schema, table) Spark built in this process."""
    return {(s, t) for _, s, t in _SPARK_BUILT}


SQL_ENGINE = SqlEngineResource()
"""the one instance every SQL model asset carries (one object, so Dagster sees no conflicting definitions)"""
