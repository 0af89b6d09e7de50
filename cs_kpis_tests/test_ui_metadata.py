"""What the Dagster UI shows about tables: every table asset, raw included, has its column schema, a row count
and a ``dagster/table_name`` that exists in the warehouse; no metadata value is unserializable; counts are
BIGINT, not HUGEINT.

Issue 16: the raw assets showed "No table schema columns", ``dagster_dlt/source [DltSource] (unserializable)``
and ``jobs []``, because dagster-dlt looks tables up under ``normalize_table_identifier(table_name)``
(``billing__subscriptions`` -> ``billing_subscriptions``, dagster-io/dagster#33573), and the project's own
``dagster/table_name`` repeated it. The definition-level test runs over the whole graph; the materialization
tests over the raw layer (every system) and, marked slow, over every asset of a full tiny run.
"""


import dagster as dg
import duckdb
import pytest

from cs_kpis.defs.raw.assets import build_raw_assets
from cs_kpis.defs.raw.resources import RawDltResource
from cs_kpis.lib.sql import SqlModel, bigint_instead_of_hugeint, build
from cs_kpis_tests.landing_builder import write_landing
from cs_kpis_tests.sources.landing_builder import tiny_company, tiny_events

NOT_TABLES = {"landing/demo_company", "reports/kpi_report"}  # a folder of files, HTML reports


@pytest.fixture
def whole_graph(project_env):
    from cs_kpis.definitions import defs

    loaded = defs()
    loaded.get_repository_def().load_all_definitions()
    return loaded


def test_every_asset_spec_has_serializable_metadata(whole_graph):
    specs = {s.key.to_user_string(): s for s in whole_graph.resolve_all_asset_specs()}
    assert len(specs) > 60
    for key, spec in specs.items():
        dg.serialize_value(dict(spec.metadata))  # raises on a live object (dagster's public serializer)
        assert not any(k.startswith("dagster_dlt/") for k in spec.metadata), key
    raw = {k: s for k, s in specs.items() if k.startswith("raw/")}
    assert len(raw) == 22  # crm: 5 (with account_history), billing: 11, product: 1, support: 4, nps: 1
    for key, spec in raw.items():
        _, system, entity = key.split("/")
        assert spec.metadata["dagster/table_name"] == f"raw.{system}__{entity}", key


def _warehouse_columns(con, qualified: str) -> list[tuple[str, str]]:
    schema, table = qualified.split(".")
    return con.execute("select column_name, data_type from information_schema.columns "
                       "where table_schema = ? and table_name = ? order by ordinal_position", [schema, table]).fetchall()


def assert_table_metadata(key: str, metadata: dict, con) -> None:
    """The materialization's metadata matches the table it names, as the warehouse has it."""
    dg.serialize_value(dict(metadata))  # raises on a live object
    assert "jobs" not in metadata, key
    qualified = metadata["dagster/table_name"]
    qualified = qualified.value if hasattr(qualified, "value") else qualified
    actual = _warehouse_columns(con, qualified)
    assert actual, f"{key}: dagster/table_name {qualified} is not a table in the warehouse"
    schema = metadata["dagster/column_schema"].schema
    shown = [(c.name, c.type) for c in schema.columns]
    assert shown == actual, f"{key}: column schema differs from {qualified}"
    assert not [c for c, t in shown if t.upper() == "HUGEINT"], f"{key}: HUGEINT columns"
    rows = con.execute(f"select count(*) from {qualified}").fetchall()[0][0]
    assert metadata["dagster/row_count"].value == rows, key


def test_raw_materializations_name_real_tables_with_columns_and_counts(tmp_path, monkeypatch):
    monkeypatch.setenv("RUNTIME__DLTHUB_TELEMETRY", "false")
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt_global"))
    from cs_kpis_tests.sources.landing_builder import DAYS

    events = {day: tiny_events(day, i * 100, 5) for i, day in enumerate(DAYS)}
    landing = write_landing(tmp_path / "landing", tiny_company(), events=events)
    warehouse = tmp_path / "w.duckdb"
    assets = build_raw_assets(landing_dir=landing, warehouse=warehouse, pipelines_dir=tmp_path / "dlt",
                              systems=("crm", "billing", "product", "support", "nps"))
    result = dg.materialize(assets, resources={"dlt": RawDltResource()}, instance=dg.DagsterInstance.ephemeral())
    assert result.success
    meta = {m.asset_key.to_user_string(): m.metadata
            for m in (e.event_specific_data.materialization for e in result.get_asset_materialization_events())}
    assert len(meta) == 22
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for key, metadata in meta.items():
            assert_table_metadata(key, metadata, con)
    assert meta["raw/billing/subscriptions"]["dagster/table_name"].value == "raw.billing__subscriptions"


def test_counts_are_bigint(tmp_path):
    """DuckDB's sum() of integers is HUGEINT; a SQL model's table stores it as BIGINT, and the UI says so."""
    model = SqlModel(schema="kpis", name="t", description="counts",
                     sql="select sum(range) as total, count(*) as n from range(10)")
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        meta = build(con, model)
        types = dict(con.execute("select column_name, data_type from information_schema.columns "
                                 "where table_name = 't'").fetchall())
        assert types == {"total": "BIGINT", "n": "BIGINT"}
        assert [c.type for c in meta["dagster/column_schema"].columns] == ["BIGINT", "BIGINT"]
        assert con.execute("select * from kpis.t").fetchall() == [(45, 10)]
        assert bigint_instead_of_hugeint(con, "kpis", "t") == []


@pytest.mark.slow
def test_every_table_of_a_full_run(project_env, monkeypatch):
    """Slow (a full tiny run): every asset of the graph that is a table shows what the warehouse holds."""
    from cs_kpis import run

    monkeypatch.setenv("CS_KPIS_DEMO_SIZE", "tiny")
    run.main([])
    with dg.DagsterInstance.from_config(str(project_env.dagster_home)) as instance:
        keys = [k for k in instance.get_asset_keys() if k.to_user_string() not in NOT_TABLES]
        assert len(keys) > 60
        with duckdb.connect(str(project_env.warehouse), read_only=True) as con:
            for key in keys:
                event = instance.get_latest_materialization_event(key)
                assert event, key
                assert_table_metadata(key.to_user_string(), event.asset_materialization.metadata, con)
