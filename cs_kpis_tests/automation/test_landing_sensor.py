"""new_extract_day_sensor: a complete extract day triggers one nightly run; a half-written one none."""

import json
import shutil

import dagster as dg
import pytest

from cs_kpis import config
from cs_kpis.defs.automation import landing_sensor
from cs_kpis.defs.automation.landing_sensor import EXTRACT_DAY_TAG, new_extract_day_sensor
from cs_kpis.defs.config_resources import LandingResource
from cs_kpis_tests.landing_fakes import write_fake_landing


@pytest.fixture
def instance(tmp_path):
    (tmp_path / "dagster_home").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster_home")) as inst:
        yield inst


def _tick(instance, cursor=None):
    ctx = dg.build_sensor_context(instance=instance, cursor=cursor,
                                  resources={"landing": LandingResource.from_settings()})
    result = new_extract_day_sensor(ctx)
    return result, ctx.cursor


def _half_write_day(landing, day: str) -> None:
    """An exporter writing a new day: its folders appear, the manifest does not list it yet."""
    part = landing / "crm" / "Account" / day / "part-00001.json"
    part.parent.mkdir(parents=True)
    part.write_text(json.dumps({"totalSize": 0, "done": False, "records": []}))


def test_half_written_first_export_does_not_trigger(project_env, instance):
    landing = project_env.landing_dir
    write_fake_landing(landing, extract_days=("2026-11-30",))
    (landing / "_manifest.json").unlink()  # the manifest is written last: not yet
    result, cursor = _tick(instance)
    assert isinstance(result, dg.SkipReason) and "no _manifest.json" in result.skip_message
    assert str(landing) in result.skip_message and cursor is None


def test_complete_day_triggers_once_and_a_half_written_next_day_waits(project_env, instance):
    landing = project_env.landing_dir
    manifest = write_fake_landing(landing, extract_days=("2026-11-30",))
    first, cursor = _tick(instance)
    assert isinstance(first, dg.RunRequest)
    assert first.run_key == "extract-day-2026-11-30" and first.tags[EXTRACT_DAY_TAG] == "2026-11-30"
    assert json.loads(cursor) == {"day": "2026-11-30"}

    again, cursor2 = _tick(instance, cursor)  # the same folder, evaluated again: no second request
    assert isinstance(again, dg.SkipReason) and "already requested" in again.skip_message and cursor2 == cursor

    _half_write_day(landing, "2026-12-01")  # next day's folders appear, manifest still lists only 11-30
    waiting, cursor3 = _tick(instance, cursor)
    assert isinstance(waiting, dg.SkipReason) and cursor3 == cursor

    # the manifest lists the new day before all its folders exist (an exporter out of order): still waits
    shutil.rmtree(landing / "crm" / "Account" / "2026-12-01")
    (landing / "_manifest.json").write_text(json.dumps({**manifest, "extract_days": ["2026-11-30", "2026-12-01"]}))
    listed, cursor4 = _tick(instance, cursor)
    assert isinstance(listed, dg.SkipReason) and "2026-12-01" in listed.skip_message and cursor4 == cursor

    _half_write_day(landing, "2026-12-01")  # the day's folder lands: complete, one run for it
    second, cursor5 = _tick(instance, cursor)
    assert isinstance(second, dg.RunRequest) and second.run_key == "extract-day-2026-12-01"
    assert json.loads(cursor5) == {"day": "2026-12-01"}


def test_a_day_with_a_run_is_not_requested_again_after_a_cursor_reset(project_env, instance):
    write_fake_landing(project_env.landing_dir, extract_days=("2026-11-30",))

    @dg.op
    def noop():
        return None

    @dg.job(tags={EXTRACT_DAY_TAG: "2026-11-30"})
    def earlier_run():
        noop()

    assert earlier_run.execute_in_process(instance=instance).success
    result, cursor = _tick(instance, cursor=None)
    assert isinstance(result, dg.SkipReason) and "already has a run" in result.skip_message
    assert json.loads(cursor) == {"day": "2026-11-30"}


def test_no_system_in_files_mode_skips(project_env, instance, monkeypatch):
    cfg = config.DEMO.model_copy(update={"systems": config.Systems(
        **{s: {"mode": "api"} for s in ("crm", "billing", "product", "support", "nps")})})
    ctx = dg.build_sensor_context(instance=instance)
    result = landing_sensor.extract_day_request(ctx, cfg, project_env.landing_dir)
    assert isinstance(result, dg.SkipReason) and "files mode" in result.skip_message


def test_sensor_targets_nightly_and_starts_stopped(monkeypatch):
    assert new_extract_day_sensor.job_name == "nightly"
    monkeypatch.delenv("CS_KPIS_AUTOMATION", raising=False)
    assert new_extract_day_sensor.default_status == dg.DefaultSensorStatus.STOPPED


def test_company_profile_switches_automation_on(tmp_path, monkeypatch):
    from cs_kpis.defs.automation import switch

    text = (config.Path(__file__).resolve().parents[2] / "examples" / "company.yaml").read_text()
    for value, expected in (("on", True), ("off", False), ('"on"', True)):
        path = tmp_path / f"company_{expected}.yaml"
        path.write_text(text.replace("\nautomation: off", f"\nautomation: {value}"))
        monkeypatch.setenv(config.ENV_CONFIG, str(path))
        monkeypatch.delenv(switch.ENV_AUTOMATION, raising=False)
        assert switch.automation_enabled() is expected, value
        monkeypatch.setenv(switch.ENV_AUTOMATION, "off" if expected else "on")  # the variable wins
        assert switch.automation_enabled() is not expected
