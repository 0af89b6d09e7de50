"""landing/demo_company and its manifest check, with the simulator replaced by a fake."""

import json

import dagster as dg
import pytest

from cs_kpis.defs.landing.assets import demo_company
from cs_kpis.defs.landing.checks import LANDING_MANIFEST_COMPLETE, landing_manifest_complete
from cs_kpis.defs.landing.manifest import manifest_problems, read_manifest
from cs_kpis_tests.landing_fakes import FAKE_ENTITIES, write_fake_landing

KEY = dg.AssetKey(["landing", "demo_company"])


def _materialize(run_config=None) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [demo_company, landing_manifest_complete],
        instance=dg.DagsterInstance.ephemeral(),
        run_config=run_config,
        raise_on_error=False,
    )


def _metadata(result):
    return result.asset_materializations_for_node("landing__demo_company")[0].metadata


def test_generates_when_the_manifest_is_absent(project_env, fake_simulator):
    result = _materialize()
    assert result.success
    assert fake_simulator.calls == [{"landing_dir": project_env.landing_dir, "size": "demo", "seed": 42}]
    meta = _metadata(result)
    assert meta["generated"].value is True
    assert meta["dagster/row_count"].value == 3 * len(FAKE_ENTITIES)
    assert meta["extract_days"].value == ["2026-01-31"]
    assert "| crm/Account | 3 |" in meta["counts"].value
    assert meta["path"].value == str(project_env.landing_dir)
    [check] = result.get_asset_check_evaluations()
    assert check.check_name == LANDING_MANIFEST_COMPLETE and check.passed


def test_reads_an_existing_manifest_without_generating(project_env, fake_simulator):
    write_fake_landing(project_env.landing_dir, size="small", seed=7)
    result = _materialize()
    assert result.success
    assert fake_simulator.calls == []
    meta = _metadata(result)
    assert meta["generated"].value is False
    assert (meta["size"].value, meta["seed"].value) == ("small", 7)


def test_config_and_env_choose_size_seed_and_regeneration(project_env, fake_simulator, monkeypatch):
    write_fake_landing(project_env.landing_dir)
    monkeypatch.setenv("CS_KPIS_DEMO_SIZE", "large")
    config = {"ops": {"landing__demo_company": {"config": {"seed": 5, "regenerate": True}}}}
    assert _materialize(config).success
    assert fake_simulator.calls == [{"landing_dir": project_env.landing_dir, "size": "large", "seed": 5}]


def test_data_version_changes_only_with_the_landing_content(project_env, fake_simulator):
    def version():
        result = _materialize()
        [event] = result.get_asset_materialization_events()
        return event.materialization.tags["dagster/data_version"]

    first = version()
    assert version() == first
    write_fake_landing(project_env.landing_dir, extract_days=("2026-01-31", "2026-02-01"))
    assert version() != first


def test_a_failing_simulator_fails_the_run(project_env, fake_simulator):
    fake_simulator.fail = True
    result = _materialize()
    assert not result.success


def _corrupt_and_check(landing, corrupt) -> dg.AssetCheckEvaluation:
    manifest = write_fake_landing(landing, extract_days=("2026-01-31", "2026-02-01"))
    corrupt(landing, manifest)
    (landing / "_manifest.json").write_text(json.dumps(manifest))
    result = _materialize()
    [check] = result.get_asset_check_evaluations()
    return check


def test_check_fails_when_an_extract_day_has_no_folder(project_env, fake_simulator):
    def drop_day(landing, manifest):
        manifest["extract_days"].append("2026-02-02")

    check = _corrupt_and_check(project_env.landing_dir, drop_day)
    assert not check.passed
    assert check.severity == dg.AssetCheckSeverity.ERROR
    assert check.metadata["missing_extract_days"].value == ["2026-02-02"]


def test_check_fails_when_an_entity_counts_zero(project_env, fake_simulator):
    def zero(landing, manifest):
        manifest["counts"]["billing/customers"] = 0

    check = _corrupt_and_check(project_env.landing_dir, zero)
    assert not check.passed
    assert check.metadata["zero_counts"].value == ["billing/customers"]


def test_a_failed_check_blocks_the_run(project_env, fake_simulator):
    def zero(landing, manifest):
        manifest["counts"]["crm/User"] = 0

    _corrupt_and_check(project_env.landing_dir, zero)
    assert not _materialize().success


def test_manifest_problems_on_a_complete_folder_and_a_missing_one(tmp_path):
    assert not any(manifest_problems(tmp_path, write_fake_landing(tmp_path)).values())
    assert manifest_problems(tmp_path / "nothing", None)["missing_manifest"]


def test_manifest_problems_ignores_event_folders_for_extract_days(tmp_path):
    manifest = write_fake_landing(tmp_path)
    manifest["extract_days"].append("2026-03-01")
    (tmp_path / "product" / "events" / "2026-03-01").mkdir(parents=True)
    assert manifest_problems(tmp_path, manifest)["missing_extract_days"] == ["2026-03-01"]


@pytest.mark.parametrize("entity", ["reference/fx_rates"])
def test_manifest_problems_accepts_single_file_entities(tmp_path, entity):
    manifest = write_fake_landing(tmp_path)
    manifest["counts"][entity] = 10
    assert manifest_problems(tmp_path, manifest)["missing_entities"] == [entity]
    (tmp_path / "reference").mkdir()
    (tmp_path / "reference" / "fx_rates.csv").write_text("date,currency,rate\n")
    assert manifest_problems(tmp_path, manifest)["missing_entities"] == []
    assert read_manifest(tmp_path)["size"] == "demo"
