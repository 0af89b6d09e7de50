"""The nightly, end to end: the tiny company with two increments, each extract day exported and loaded by Dagster
(raw and the events' staging table, no full refresh) as the nightly job runs it. stg_product__events appends each day's raw load,
and after every run equals a full rebuild of the same raw table (``except all`` both ways).

Slow (three raw runs): ``pytest -m slow cs_kpis_tests/staging/test_incremental_loads_nightly.py``.
The demo-sized version, with marts and kpis compared too, is ``python -m benchmarks.staging --compare``.
"""

import shutil

import dagster as dg
import duckdb
import pytest

from benchmarks.full import landing_view
from cs_kpis.defs.staging.assets import STAGING_MODELS
from cs_kpis.lib import sql as sqllib
from cs_kpis_tests.conftest import TEST_ENV

pytestmark = pytest.mark.slow

MODEL = next(m for m in STAGING_MODELS if m.name == "stg_product__events")


def test_each_nightly_run_appends_the_new_day_and_equals_a_full_rebuild(tmp_path, monkeypatch):
    from cs_kpis.simulator import generate

    generate(tmp_path / "company", tmp_path / "ground_truth", size="tiny", seed=5, increments=2)
    for name, relative in TEST_ENV.items():
        monkeypatch.setenv(name, str(tmp_path / relative))
    monkeypatch.setenv("CS_KPIS_LANDING_DIR", str(tmp_path / "landing"))
    monkeypatch.setenv("CS_KPIS_GROUND_TRUTH_DIR", str(tmp_path / "ground_truth"))
    monkeypatch.setenv("CS_KPIS_DEMO_SIZE", "tiny")
    monkeypatch.setenv("CS_KPIS_DEMO_SEED", "5")
    monkeypatch.setenv("RUNTIME__DLTHUB_TELEMETRY", "false")
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt_global"))
    from cs_kpis.definitions import defs as load_defs

    defs = load_defs()
    graph = defs.resolve_asset_graph()
    # the raw layer and the events' staging table (with its checks); not the other staging models: on this
    # seed's first extract day stg_support__tickets fails (no ticket has a satisfaction rating id yet, so raw has
    # no such column: a separate issue)
    keys = [k for k in graph.get_all_asset_keys() if graph.get(k).group_name in ("landing", "raw")] + [MODEL.key]
    warehouse = tmp_path / TEST_ENV["CS_KPIS_WAREHOUSE"]
    instance = dg.DagsterInstance.ephemeral()
    seen = []
    for day in (1, 2, 3):
        landing_view(tmp_path / "company", tmp_path / "landing", day)
        result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            asset_selection=keys, instance=instance, raise_on_error=False)
        assert result.success, [e.message for e in result.all_events if e.is_step_failure]
        meta = result.asset_materializations_for_node("staging__stg_product__events")[0].metadata
        seen.append((meta["build_mode"].value, meta["raw_loads_read"].value, meta["raw_rows_read"].value))
        copy = tmp_path / f"full{day}.duckdb"
        shutil.copy(warehouse, copy)
        with duckdb.connect(str(copy)) as con:
            con.execute(f"create table main.nightly as select * from {MODEL.table}")
            raw_rows = con.execute("select count(*) from raw.product__events").fetchall()[0][0]
            _plan, rows = sqllib.build_by_load(con, MODEL, full_refresh=True)
            q = "select count(*) from (select * from {} except all select * from {})"
            assert [con.execute(q.format(a, b)).fetchall()[0][0] for a, b in (
                ("main.nightly", MODEL.table), (MODEL.table, "main.nightly"))] == [0, 0]
            assert rows == raw_rows > 0
    assert seen[0][0] == "full"
    # each nightly read only the day's new raw load (a load per run; its rows: that day's events)
    assert [s[:2] for s in seen[1:]] == [("incremental", 1), ("incremental", 1)], seen
    assert all(s[2] > 0 for s in seen[1:]), seen
