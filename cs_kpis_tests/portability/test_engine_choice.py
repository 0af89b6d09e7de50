"""Which engine the SQL models run on: the company config's ``engine`` section, overridden by the environment,
validated; and the lake folder guard. No Spark here (cheap)."""

import os
from pathlib import Path

import pytest

from cs_kpis.config import ConfigError, load_file
from cs_kpis.lib.engine import LAKE_MARKER, ensure_lake, resolve
from cs_kpis_tests.test_settings import TEMPLATE


@pytest.fixture
def no_engine_env(monkeypatch, tmp_path):
    for name in ("CS_KPIS_ENGINE", "CS_KPIS_SPARK_REMOTE", "CS_KPIS_LAKE_DIR", "CS_KPIS_CONFIG",
                 "CS_KPIS_RAW_DESTINATION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CS_KPIS_STATE_DIR", str(tmp_path / "state"))


def _company(tmp_path: Path, engine: str) -> Path:
    path = tmp_path / "company.yaml"
    text = TEMPLATE.read_text().split("\nengine:\n")[0]  # the template without its engine section
    path.write_text(text + "\nengine:\n" + engine)
    return path


def test_default_is_duckdb(no_engine_env, tmp_path):
    chosen = resolve()
    assert (chosen.engine, chosen.spark_remote, chosen.lake_dir) == ("duckdb", "local[2]", tmp_path / "state" / "lake")


def test_the_company_config_chooses_spark_and_the_environment_overrides_it(no_engine_env, monkeypatch, tmp_path):
    path = _company(tmp_path, "  kind: spark\n  spark_remote: sc://spark.internal:15002\n  lake_dir: lake\n")
    monkeypatch.setenv("CS_KPIS_CONFIG", str(path))
    chosen = resolve()
    assert (chosen.engine, chosen.spark_remote, chosen.lake_dir) == (
        "spark", "sc://spark.internal:15002", tmp_path / "lake")
    monkeypatch.setenv("CS_KPIS_ENGINE", "duckdb")
    assert resolve().engine == "duckdb"


def test_the_template_loads_with_its_engine_section(no_engine_env):
    assert load_file(TEMPLATE).engine.kind == "duckdb"
    assert load_file(TEMPLATE).engine.raw_destination == "duckdb"


def test_the_raw_destination_comes_from_the_config_and_the_environment_overrides_it(no_engine_env, monkeypatch,
                                                                                     tmp_path):
    from cs_kpis.sources.lake import raw_destination

    assert raw_destination() == "duckdb"
    monkeypatch.setenv("CS_KPIS_CONFIG", str(_company(tmp_path, "  raw_destination: filesystem\n")))
    assert raw_destination() == "filesystem"
    monkeypatch.setenv("CS_KPIS_RAW_DESTINATION", "duckdb")
    assert raw_destination() == "duckdb"


@pytest.mark.parametrize(("engine", "message"), [
    ("  kind: snowflake\n", "engine.kind"),
    ("  spark_remote: http://host:15002\n", "not a Spark Connect URL"),
    ("  spark_remote: sc://host:15002/;token=abc\n", "carries a credential"),
    ("  kind: spark\n  cluster: big\n", "engine.cluster"),
    ("  raw_destination: s3\n", "engine.raw_destination"),
])
def test_a_bad_engine_section_names_the_key(no_engine_env, tmp_path, engine, message):
    with pytest.raises(ConfigError, match=message):
        load_file(_company(tmp_path, engine))


def test_a_bad_engine_in_the_environment_is_an_error(no_engine_env, monkeypatch):
    monkeypatch.setenv("CS_KPIS_ENGINE", "postgres")
    with pytest.raises(ValueError, match="CS_KPIS_ENGINE"):
        resolve()


def test_the_lake_is_never_a_folder_of_someone_else(tmp_path):
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "data.parquet").write_text("not ours")
    with pytest.raises(RuntimeError, match="did not write"):
        ensure_lake(theirs)
    assert (theirs / "data.parquet").read_text() == "not ours"
    ours = ensure_lake(tmp_path / "ours")
    assert (ours / LAKE_MARKER).exists()
    assert ensure_lake(ours) == ours  # ours, with files in it: fine


def test_a_token_may_come_from_the_environment_only(no_engine_env, monkeypatch):
    url = "sc://dbc-1.cloud.databricks.com:443/;use_ssl=true;token=dapi123;x-databricks-cluster-id=0101"
    monkeypatch.setenv("CS_KPIS_SPARK_REMOTE", url)
    assert resolve().spark_remote == url
    monkeypatch.setenv("CS_KPIS_SPARK_REMOTE", "spark.internal:15002")
    with pytest.raises(ValueError, match="not a Spark Connect URL"):
        resolve()


def test_the_url_shown_in_metadata_has_no_token():
    from cs_kpis.lib.engine import redacted

    assert redacted("sc://h:443/;use_ssl=true;token=dapi123") == "sc://h:443/"
    assert redacted("local[2]") == "local[2]"


class _FakeServer:
    """What engine._start_local calls on pyspark's Connect session class, recorded (no JVM)."""

    def __init__(self):
        self.opts = None

        class Builder:
            def remote(self, url):
                return self

            def getOrCreate(self):
                return "session"

        self.builder = Builder()

    def _start_connect_server(self, master, opts):
        self.opts = dict(opts)


@pytest.mark.parametrize("flags", ["", "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"])
def test_the_local_servers_jvm_flags_come_from_the_environment_only(flags, monkeypatch, tmp_path):
    from cs_kpis.lib import engine

    # _start_local sets variables for the server it starts (SPARK_CONNECT_MODE_ENABLED...): a copy takes them
    monkeypatch.setattr(os, "environ", {**os.environ, engine.ENV_SPARK_DRIVER_JAVA_OPTIONS: flags})
    server = _FakeServer()
    assert engine._start_local(server, "local[2]", tmp_path) == "session"
    assert server.opts.get("spark.driver.extraJavaOptions") == (flags or None)
    assert server.opts["spark.driver.memory"] == "3g"


class _FakeCatalogTable:
    def __init__(self, name, temporary=False):
        self.name, self.isTemporary = name, temporary


class _FakeSpark:
    """Records the statements; its catalog lists ``there`` (schema -> table names) and a temporary view."""

    def __init__(self, there):
        self.statements, self.there = [], there
        outer = self

        class Catalog:
            def listTables(self, schema):
                return [_FakeCatalogTable(t) for t in outer.there.get(schema, [])] + [
                    _FakeCatalogTable("cte_step", temporary=True)]

        self.catalog = Catalog()

    def sql(self, statement):
        self.statements.append(statement)


def test_register_many_creates_each_database_once_and_drops_only_what_is_there(monkeypatch, tmp_path):
    """The statements of register() for each table, less the repeated ones: each database created once, a
    relation dropped only where the catalog holds one (a table or a view: drop_relation), then each table."""
    from cs_kpis.lib import engine

    monkeypatch.setattr(engine, "declared_columns", lambda path: "")  # the files' schemas: not read here
    paths = {(s, t): tmp_path / f"{s}-{t}.parquet" for s, t in
             [("raw", "a"), ("raw", "b"), ("marts", "c"), ("raw", "cte_step")]}
    spark = _FakeSpark({"raw": ["b"], "marts": []})
    engine.register_many(spark, paths)
    assert spark.statements == [
        "create database if not exists marts",
        "create database if not exists raw",
        f"create table raw.a using parquet location '{paths[('raw', 'a')]}'",
        "drop table if exists raw.b",
        f"create table raw.b using parquet location '{paths[('raw', 'b')]}'",
        f"create table marts.c using parquet location '{paths[('marts', 'c')]}'",
        f"create table raw.cte_step using parquet location '{paths[('raw', 'cte_step')]}'",
    ]
