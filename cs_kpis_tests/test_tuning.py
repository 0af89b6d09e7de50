"""Settings (cs_kpis/tuning.py): the company file's ``settings:``, each key overridden by its variable, shown on
the check_thresholds and alerting resources, read by the checks when they run; webhook URLs never in the file."""

import json
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from cs_kpis import config, tuning
from cs_kpis.lib.checks import sql_check
from cs_kpis.lib.settings_resources import AlertingResource, CheckThresholdsResource
from cs_kpis_tests.check_call import call_check


def _company(tmp_path, settings: dict | None = None, **extra) -> str:
    body = {"profile": "tuned-co", "landing_dir": "exports", "product": config.DEMO_PRODUCT.as_dict(), **extra}
    if settings is not None:
        body["settings"] = settings
    path = tmp_path / "company.yaml"
    path.write_text(json.dumps(body))
    return str(path)


@pytest.fixture
def clean_env(monkeypatch):
    for setting in tuning.SETTINGS.values():
        monkeypatch.delenv(setting.env, raising=False)
    for name in ("CS_KPIS_CONFIG", "CS_KPIS_ALERT_WEBHOOK_URL", "CS_KPIS_ONCALL_WEBHOOK_URL",
                 "CS_KPIS_ALERT_WEBHOOK_CHECK_URL"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_default_then_file_then_environment(tmp_path, clean_env):
    assert tuning.get("checks.nrr_low") == 0.5 and tuning.source("checks.nrr_low") == "default"
    clean_env.setenv("CS_KPIS_CONFIG", _company(tmp_path, {"checks": {"nrr_low": 0.4},
                                                          "health": {"history_days": 365}}))
    assert tuning.get("checks.nrr_low") == 0.4 and tuning.source("checks.nrr_low").startswith("file ")
    assert tuning.get("health.history_days") == 365
    clean_env.setenv("CS_KPIS_NRR_LOW", "0.3")
    assert tuning.get("checks.nrr_low") == 0.3 and tuning.source("checks.nrr_low") == "env CS_KPIS_NRR_LOW"
    clean_env.setenv("CS_KPIS_HEALTH_HISTORY_DAYS", "all")
    assert tuning.get("health.history_days") == "all"


def test_paths_in_the_file_are_relative_to_it(tmp_path, clean_env):
    clean_env.setenv("CS_KPIS_CONFIG", _company(tmp_path, {"alerts": {"outbox_dir": "out", "rules_file": "r.yaml"},
                                                          "health": {"config_file": "h.yaml"}}))
    assert tuning.get_path("alerts.outbox_dir") == tmp_path / "out"
    assert tuning.get_path("alerts.rules_file") == tmp_path / "r.yaml"
    assert tuning.get_path("health.config_file") == tmp_path / "h.yaml"
    assert AlertingResource.from_settings().outbox == tmp_path / "out"


def test_a_bad_value_names_the_variable_or_the_key_and_file(tmp_path, clean_env):
    clean_env.setenv("CS_KPIS_MRR_INVOICE_MAX_GAP", "ten percent")
    with pytest.raises(ValueError, match="CS_KPIS_MRR_INVOICE_MAX_GAP='ten percent'"):
        tuning.get("checks.mrr_invoice_max_gap")
    clean_env.setenv("CS_KPIS_HEALTH_LOOKBACK_DAYS", "0")
    with pytest.raises(ValueError, match="CS_KPIS_HEALTH_LOOKBACK_DAYS"):
        tuning.get("health.lookback_days")
    path = _company(tmp_path, {"checks": {"grr_low": 2}})
    with pytest.raises(config.ConfigError, match=rf"{path}: settings\.checks\.grr_low"):
        config.load_file(path)
    path = _company(tmp_path, {"schedule": {"nightly_timezone": "Mars/Olympus"}})
    with pytest.raises(config.ConfigError, match=r"settings\.schedule\.nightly_timezone: .*IANA"):
        config.load_file(path)
    path = _company(tmp_path, {"checks": {"nrr_lowest": 0.1}})
    with pytest.raises(config.ConfigError, match=r"settings\.checks\.nrr_lowest"):
        config.load_file(path)


@pytest.mark.parametrize("key", ["alert_webhook_url", "oncall_webhook_url", "webhook_check_url"])
def test_a_webhook_url_is_refused_in_the_file(tmp_path, clean_env, key):
    secret = "https://hooks.example.com/services/T000/B000/XXXXSECRET"
    path = _company(tmp_path, {"alerts": {key: secret}})
    with pytest.raises(config.ConfigError, match=rf"settings\.alerts\.{key}: credentials never go in this file") as e:
        config.load_file(path)
    assert "XXXXSECRET" not in str(e.value)


def test_the_resources_show_the_values_in_force_and_never_a_webhook_url(tmp_path, clean_env):
    secret = "https://hooks.example.com/services/T000/B000/XXXXSECRET"
    clean_env.setenv("CS_KPIS_CONFIG", _company(tmp_path, {"checks": {"nrr_high": 1.8, "source_max_age_hours": 50},
                                                          "schedule": {"nightly_cron": "15 3 * * *"}}))
    clean_env.setenv("CS_KPIS_ALERT_WEBHOOK_URL", secret)
    clean_env.setenv("CS_KPIS_GRR_LOW", "0.7")
    from cs_kpis.definitions import defs

    d = defs()
    repo = d.get_repository_def()
    thresholds = d.resources["check_thresholds"]
    assert (thresholds.nrr_high, thresholds.grr_low, thresholds.source_max_age_hours) == (1.8, 0.7, 50)
    assert thresholds.nrr_low == 0.5  # neither file nor variable: the default
    assert repo.get_schedule_def("nightly_schedule").cron_schedule == "15 3 * * *"
    # the UI shows the variable's name (an EnvVar, resolved in the run process), never the URL
    assert isinstance(d.resources["alerting"].webhook_url, dg.EnvVar)
    shown = repo.get_top_level_resources()["alerting"].config_field.default_value
    assert shown["webhook_url"] == {"env": "CS_KPIS_ALERT_WEBHOOK_URL"} and "XXXXSECRET" not in json.dumps(shown)
    assert "oncall_webhook_url" not in shown  # not set: no webhook, the outbox


def test_a_check_reads_its_threshold_when_it_runs(tmp_path):
    """The same check definition passes or fails with the threshold the resource holds at run time."""
    path = tmp_path / "wh.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("create table t as select 1.6 as nrr")
    check = sql_check(dg.AssetKey(["kpis", "t"]), "t_nrr_within_bounds", "NRR within bounds",
                      lambda t: f"select * from t where nrr > {t.nrr_high}", thresholds=("nrr_high",))
    strict = call_check(check, path, CheckThresholdsResource.from_settings(nrr_high=1.5))
    lax = call_check(check, path, CheckThresholdsResource.from_settings(nrr_high=2.0))
    assert not strict.passed and strict.metadata["threshold_nrr_high"].value == 1.5
    assert lax.passed and lax.metadata["threshold_nrr_high"].value == 2.0


def test_the_check_command_names_a_bad_variable(tmp_path, clean_env, capsys):
    from cs_kpis import check

    clean_env.setenv("CS_KPIS_CONFIG", _company(tmp_path, {"checks": {"nrr_low": 0.4}}))
    assert check.settings_line(config.load()).ok
    assert "1 from the file, 0 from the environment" in check.settings_line(config.load()).render()
    clean_env.setenv("CS_KPIS_SOURCE_MAX_AGE_HOURS", "a day")
    line = check.settings_line(config.load())
    assert not line.ok and "CS_KPIS_SOURCE_MAX_AGE_HOURS='a day'" in line.render()
    assert check.main([]) == 1
    assert "CS_KPIS_SOURCE_MAX_AGE_HOURS" in capsys.readouterr().out


def test_the_warehouse_memory_limit_reaches_every_step_connection(tmp_path, clean_env):
    from cs_kpis.defs.resources import WarehouseResource

    clean_env.setenv("CS_KPIS_CONFIG", _company(tmp_path, {"warehouse": {"memory_limit": "1GB"}}))
    assert tuning.get("warehouse.memory_limit") == "1GB"
    resource = WarehouseResource(database=str(tmp_path / "w.duckdb"), memory_limit=tuning.get("warehouse.memory_limit"))
    with resource.get_connection() as con:
        assert con.execute("select current_setting('memory_limit')").fetchone()[0] == "953.6 MiB"  # 1 GB in MiB
    clean_env.setenv("CS_KPIS_DUCKDB_MEMORY_LIMIT", "lots")
    with pytest.raises(ValueError, match="CS_KPIS_DUCKDB_MEMORY_LIMIT='lots'.*memory size"):
        tuning.get("warehouse.memory_limit")


def test_the_warehouse_spill_limits_reach_every_step_connection(tmp_path, clean_env):
    from cs_kpis.defs.resources import WarehouseResource, resources

    clean_env.setenv("CS_KPIS_WAREHOUSE", str(tmp_path / "w.duckdb"))
    clean_env.setenv("CS_KPIS_CONFIG", _company(tmp_path, {"warehouse": {
        "memory_limit": "1GB", "max_temp_directory_size": "2GB", "temp_directory": "spill"}}))
    resource = resources().resources["duckdb"]
    assert isinstance(resource, WarehouseResource)
    with resource.get_connection() as con:
        got = con.execute("select current_setting('memory_limit'), current_setting('max_temp_directory_size'), "
                          "current_setting('temp_directory')").fetchone()
    # the folder is relative to the company file; DuckDB writes sizes in MiB/GiB
    assert got == ("953.6 MiB", "1.8 GiB", str((Path(config.config_path()).parent / "spill").resolve()))
    clean_env.setenv("CS_KPIS_DUCKDB_MAX_TEMP_SIZE", "all of it")
    with pytest.raises(ValueError, match="CS_KPIS_DUCKDB_MAX_TEMP_SIZE='all of it'.*memory size"):
        tuning.get("warehouse.max_temp_directory_size")
