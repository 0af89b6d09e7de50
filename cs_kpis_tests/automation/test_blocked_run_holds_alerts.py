"""A corrupted input fails a blocking check upstream of the alerts: the alerts are held visibly, on-call is paged.

End to end with the project's own pieces: the nightly job definition, the alerts multi-asset and its checks,
the health score's blocking unique-key check, the alerts_after_failed_run / failed_check / digest sensors and
the alerts_refresh job, on the hand-built warehouse (cs_kpis_tests/alerts/fixtures.py). The upstream assets
are stubs (the warehouse is already built); every alert input is one, so the job covers the whole alert graph.
"""

import json

import dagster as dg
import pandas as pd
import pytest
from dagster_duckdb import DuckDBResource

from cs_kpis.defs.alerts import assets as alert_assets
from cs_kpis.defs.alerts import checks as alert_checks
from cs_kpis.defs.alerts import engine
from cs_kpis.defs.automation import jobs, notify, sensors
from cs_kpis.defs.health.checks import health_checks
from cs_kpis.lib.settings_resources import AlertingResource
from cs_kpis_tests.alerts.fixtures import Warehouse, set_cells

UNIQUE_CHECK = "health_scores_daily_unique_account_id_day"


def alerting_resources() -> dict:
    """the alerting resource as the environment set by the test fills it"""
    return {"alerting": AlertingResource.from_settings()}


def _stub(key: dg.AssetKey) -> dg.AssetsDefinition:
    @dg.asset(key=key, group_name="stub")
    def _a():
        return dg.MaterializeResult()

    return _a


def _defs(path) -> dg.Definitions:
    [unique] = [c for c in health_checks if any(k.name == UNIQUE_CHECK for k in c.check_keys)]
    stubs = [_stub(k) for k in alert_assets.all_deps(engine.load_rules())]
    alert_check_defs = [v for v in vars(alert_checks).values() if isinstance(v, dg.AssetChecksDefinition)]
    return dg.Definitions(
        assets=[*stubs, alert_assets.alerts], asset_checks=[unique, *alert_check_defs],
        jobs=[jobs.nightly_job, jobs.alerts_refresh_job, jobs.alert_digest_job],
        sensors=[sensors.alerts_after_failed_run_sensor, sensors.failed_check_sensor, sensors.alert_digest_sensor],
        resources={"duckdb": DuckDBResource(database=str(path)), "alerting": AlertingResource.from_settings()})


SCORES_DAILY = dg.AssetKey(["kpis", "health_scores_daily"])


def _warehouse(path, corrupt: bool) -> None:
    """A turns red on the as-of day (health_red reads kpis/health_scores_daily); B's usage has been down 50%
    for the 7 days usage_drop needs, up to the as-of day (it reads only kpis/account_indicators_daily).
    Corrupt: one score row twice."""
    wh = Warehouse()
    set_cells(wh.scores, "A", "2025-03-31", "2025-03-31", band="red", score=30.0, delta_30d=-50.0)
    set_cells(wh.indicators, "B", "2025-03-25", "2025-03-31", events_prior_30d=400, events_30d=200, usage_trend=-0.5)
    if corrupt:
        wh.scores = pd.concat([wh.scores, wh.scores.iloc[[0]]], ignore_index=True)
    wh.build(path).close()


def _query(path, sql):
    with DuckDBResource(database=str(path)).get_connection() as con:
        return con.execute(sql).fetchall()


@pytest.fixture
def outbox(tmp_path, monkeypatch):
    monkeypatch.setenv(notify.ENV_OUTBOX, str(tmp_path / "outbox"))
    monkeypatch.delenv(notify.ENV_WEBHOOK, raising=False)
    monkeypatch.delenv(notify.ENV_ONCALL_WEBHOOK, raising=False)
    return tmp_path / "outbox"


def test_blocking_check_failure_holds_alerts_and_pages_oncall(tmp_path, outbox):
    path = tmp_path / "wh.duckdb"
    _warehouse(path, corrupt=True)
    defs = _defs(path)
    instance = dg.DagsterInstance.ephemeral()

    # 1. the nightly job: the blocking check fails, the run fails and Dagster skips the alerts step
    nightly = defs.resolve_job_def("nightly").execute_in_process(instance=instance, raise_on_error=False)
    assert not nightly.success
    materialized = {e.asset_key for e in nightly.get_asset_materialization_events()}
    assert SCORES_DAILY in materialized and alert_assets.CANDIDATES not in materialized
    assert _query(path, "select count(*) from information_schema.tables where table_schema = 'alerts'") == [(0,)]
    assert sensors.alerts_left_unbuilt(instance, nightly.run_id)

    # 2. the run-failure sensor asks for an alerts-only run, once per failed run
    repo = defs.get_repository_def()
    ctx = dg.build_run_status_sensor_context(
        sensor_name="alerts_after_failed_run_sensor", dagster_instance=instance, dagster_run=nightly.dagster_run,
        dagster_event=nightly.get_run_failure_event(), repository_def=repo)
    request = sensors.alerts_after_failed_run_sensor(ctx)
    assert isinstance(request, dg.RunRequest)
    assert request.run_key == f"alerts-after-{nightly.run_id}"

    # 3. that run builds the alerts: health_red held (its input failed the check), usage_drop raised as usual
    refresh = defs.resolve_job_def("alerts_refresh").execute_in_process(instance=instance, tags=request.tags)
    assert refresh.success
    assert {e.asset_key for e in refresh.get_asset_materialization_events()} == {
        alert_assets.CANDIDATES, alert_assets.LOG}  # nothing upstream is rebuilt; the alert checks run too
    assert {e.check_name for e in refresh.get_asset_check_evaluations()} >= {"alert_candidates_held_have_a_reason"}
    cand = _query(path, "select alert_type, account_id, status, hold_reason from alerts.alert_candidates order by 1")
    assert cand == [
        ("health_red", "A", "held",
         f"input not trustworthy: kpis/health_scores_daily: blocking check {UNIQUE_CHECK} failed"),
        ("usage_drop", "B", "new", None),
    ]
    meta = refresh.asset_materializations_for_node("alerts")[0].metadata
    assert meta["held_count"].value == 1 and "health_red" in meta["held_types"].value
    assert "renewal_risk" in meta["held_types"].value  # every type that reads the broken input is held
    assert meta["rebuilt_after_failed_run"].value == nightly.run_id
    # the held raise is not logged, so no digest carries it; usage_drop's raise is
    assert _query(path, "select alert_type, event from alerts.alert_log order by log_seq") == [("usage_drop", "raised")]
    # the refresh run's own failure would not launch another one (no loop)
    again = sensors.alerts_refresh_request(instance, refresh.dagster_run)
    assert isinstance(again, dg.SkipReason)

    # 4. on-call is paged about the failed check, with the runbook's kpis hint
    sensors.failed_check_sensor(dg.build_sensor_context(instance=instance, definitions=defs, cursor=None, resources=alerting_resources()))
    pages = [json.loads(f.read_text()) for f in sorted((outbox / "oncall").glob("*.json"))]
    assert [(p["asset"], p["check"]) for p in pages] == [("kpis/health_scores_daily", UNIQUE_CHECK)]
    assert pages[0]["metadata"]["violations"] == 1 and "HELD" in pages[0]["runbook"]

    # 5. the CSM digest carries usage_drop only
    tick = sensors.alert_digest_sensor(dg.build_sensor_context(
        instance=instance, cursor=None, resources={"duckdb": DuckDBResource(database=str(path)),
                                                   "alerting": AlertingResource.from_settings()}))
    assert isinstance(tick, dg.RunRequest)
    jobs.alert_digest_job.execute_in_process(run_config=tick.run_config, instance=instance,
                                             resources={"duckdb": DuckDBResource(database=str(path)),
                                                        "alerting": AlertingResource.from_settings()})
    digests = [json.loads(f.read_text()) for f in sorted(outbox.glob("*.json"))]
    assert [(a["alert_type"], a["account_id"]) for d in digests for a in d["alerts"]] == [("usage_drop", "B")]

    # 6. the data is fixed: the next nightly run succeeds, builds the alerts in-run and releases the hold
    with DuckDBResource(database=str(path)).get_connection() as con:
        con.execute("create or replace table kpis.health_scores_daily as select distinct * from kpis.health_scores_daily")
    fixed = defs.resolve_job_def("nightly").execute_in_process(instance=instance)
    assert fixed.success
    assert not sensors.alerts_left_unbuilt(instance, fixed.run_id)
    assert _query(path, "select alert_type, status from alerts.alert_candidates order by 1") == [
        ("health_red", "new"), ("usage_drop", "new")]
    assert _query(path, "select alert_type, event, notify from alerts.alert_log order by log_seq") == [
        ("usage_drop", "raised", True), ("health_red", "raised", True)]  # appended now, so notified now
