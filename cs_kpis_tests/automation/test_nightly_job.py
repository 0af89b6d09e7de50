"""The nightly job covers every asset and every check of the code location; the automation is registered."""

import dagster as dg
import pytest


@pytest.fixture(scope="module")
def defs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("defs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CS_KPIS_STATE_DIR", str(tmp / "state"))
        mp.setenv("CS_KPIS_WAREHOUSE", str(tmp / "state" / "warehouse" / "cs_kpis.duckdb"))
        mp.setenv("DAGSTER_HOME", str(tmp / "state" / "dagster_home"))
        mp.setenv("CS_KPIS_LANDING_DIR", str(tmp / "landing"))
        from cs_kpis.definitions import defs as load_defs

        loaded = load_defs()
        loaded.get_repository_def().load_all_definitions()
        yield loaded


def test_nightly_job_selects_every_asset_and_check(defs):
    job = defs.get_job_def("nightly")
    graph = defs.resolve_asset_graph()
    assert job.asset_layer.executable_asset_keys == graph.executable_asset_keys
    assert set(job.asset_layer.asset_graph.asset_check_keys) == set(graph.asset_check_keys)
    assert dg.AssetKey(["alerts", "alert_candidates"]) in job.asset_layer.executable_asset_keys


def test_automation_is_registered(defs):
    repo = defs.get_repository_def()
    assert {s.name for s in repo.sensor_defs} >= {"alert_digest_sensor", "failed_check_sensor",
                                                   "alerts_after_failed_run_sensor", "stale_data_sensor",
                                                   "new_extract_day_sensor"}
    assert repo.get_schedule_def("nightly_schedule").job_name == "nightly"
    assert repo.get_job("alert_digests").executor_def.name == dg.in_process_executor.name
    # the alerts-only job the run-failure sensor launches: the alert tables and their checks, nothing upstream
    refresh = repo.get_job("alerts_refresh")
    assert refresh.asset_layer.executable_asset_keys == {dg.AssetKey(["alerts", "alert_candidates"]),
                                                          dg.AssetKey(["alerts", "alert_log"])}
    assert {k.name for k in refresh.asset_layer.asset_graph.asset_check_keys} >= {
        "alert_candidates_held_have_a_reason"}
    sensor = repo.get_sensor_def("alerts_after_failed_run_sensor")
    assert [t.job_name for t in sensor.targets] == ["alerts_refresh"]


def test_configuration_is_shown_as_resources(defs):
    """The landing folder and the Salesforce target are resources of the code location (the UI lists them)."""
    from cs_kpis.defs.config_resources import LandingResource, SalesforceResource

    landing = defs.resources["landing"]
    assert isinstance(landing, LandingResource) and landing.path.endswith("landing")
    assert landing.fx_rates_file == landing.path + "/reference/fx_rates.csv"
    assert isinstance(defs.resources["salesforce"], SalesforceResource)
