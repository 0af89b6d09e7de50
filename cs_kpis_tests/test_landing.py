"""The landing asset and its check: landing/demo_company (demo profile, simulator replaced by a fake) and
landing/exports (company profile), and the manifest rules of docs/LANDING.md."""

import json

import dagster as dg
import pytest

from cs_kpis.defs.config_resources import LandingResource
from cs_kpis.defs.landing.assets import CompanyConfigResource, build_demo_asset, build_exports_asset
from cs_kpis.defs.landing.checks import LANDING_MANIFEST_COMPLETE, build_landing_check
from cs_kpis.defs.landing.keys import DEMO_KEY, EXPORTS_KEY
from cs_kpis.defs.landing.manifest import ManifestError, manifest_problems, read_manifest
from cs_kpis_tests.landing_fakes import FAKE_ENTITIES, write_fake_landing


def _materialize(run_config=None) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [build_demo_asset(), build_landing_check(DEMO_KEY)],
        instance=dg.DagsterInstance.ephemeral(),
        run_config=run_config,
        # the landing resource as the code location builds it, from the environment the test set
        resources={"landing": LandingResource.from_settings()},
        raise_on_error=False,
    )


def _metadata(result, node="landing__demo_company"):
    return result.asset_materializations_for_node(node)[0].metadata


def test_generates_when_the_folder_is_absent(project_env, fake_simulator):
    result = _materialize()
    assert result.success
    assert fake_simulator.calls == [{"landing_dir": project_env.landing_dir, "size": "demo", "seed": 42}]
    meta = _metadata(result)
    assert meta["generated"].value is True
    assert meta["complete"].value is True
    assert meta["dagster/row_count"].value == 3 * len(FAKE_ENTITIES)
    assert meta["extract_days"].value == ["2026-01-31"]
    assert "| crm/Account | 3 |" in meta["counts"].value
    assert meta["path"].value == str(project_env.landing_dir)
    [check] = result.get_asset_check_evaluations()
    assert check.check_name == LANDING_MANIFEST_COMPLETE and check.passed


def test_generates_into_an_empty_folder(project_env, fake_simulator):
    project_env.landing_dir.mkdir(parents=True)
    assert _materialize().success
    assert len(fake_simulator.calls) == 1


def test_reads_an_existing_manifest_without_generating(project_env, fake_simulator):
    write_fake_landing(project_env.landing_dir, size="small", seed=7)
    result = _materialize()
    assert result.success
    assert fake_simulator.calls == []
    meta = _metadata(result)
    assert meta["generated"].value is False
    assert (meta["size"].value, meta["seed"].value) == ("small", 7)


def test_a_folder_with_files_but_no_manifest_fails_and_is_not_generated(project_env, fake_simulator):
    part = project_env.landing_dir / "crm" / "Account" / "2026-11-30" / "part-00001.json"
    part.parent.mkdir(parents=True)
    part.write_text('{"totalSize": 0, "done": true, "records": []}')
    result = _materialize()
    assert not result.success
    assert fake_simulator.calls == []
    [check] = result.get_asset_check_evaluations()
    assert not check.passed and check.metadata["missing_manifest"].value
    assert str(project_env.landing_dir) in check.description and "_manifest.json" in check.description
    assert _metadata(result)["complete"].value is False


def test_regenerate_refuses_a_folder_the_simulator_did_not_write(project_env, fake_simulator):
    write_fake_landing(project_env.landing_dir)  # a complete export, but not the simulator's
    config = {"ops": {"landing__demo_company": {"config": {"regenerate": True}}}}
    result = _materialize(config)
    assert not result.success
    assert fake_simulator.calls == []
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    message = failure.step_failure_data.user_failure_data.description
    assert str(project_env.landing_dir) in message and "simulator did not write" in message


def test_config_and_env_choose_size_seed_and_regeneration(project_env, fake_simulator, monkeypatch):
    # a folder the simulator generated (its mark), so regenerating it is allowed
    from cs_kpis import folder_guard

    write_fake_landing(project_env.landing_dir)
    folder_guard.write_mark(project_env.landing_dir, "landing")
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
    assert str(project_env.landing_dir) in check.description


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


# ------------------------------------------------------------------------------------------ the manifest

def test_manifest_problems_on_a_complete_folder_and_a_missing_one(tmp_path):
    assert not any(manifest_problems(tmp_path, write_fake_landing(tmp_path)).values())
    assert manifest_problems(tmp_path / "nothing", None)["missing_folder"] == [str(tmp_path / "nothing")]
    assert manifest_problems(tmp_path, None)["missing_manifest"]


def test_manifest_problems_ignores_event_folders_for_extract_days(tmp_path):
    manifest = write_fake_landing(tmp_path)
    manifest["extract_days"].append("2026-03-01")
    (tmp_path / "product" / "events" / "2026-03-01").mkdir(parents=True)
    assert manifest_problems(tmp_path, manifest)["missing_extract_days"] == ["2026-03-01"]


@pytest.mark.parametrize("entity", ["reference/fx_rates"])
def test_manifest_problems_accepts_single_file_entities(tmp_path, entity):
    manifest = write_fake_landing(tmp_path)
    (tmp_path / "reference" / "fx_rates.csv").unlink()
    manifest["counts"][entity] = 10
    assert manifest_problems(tmp_path, manifest)["missing_entities"] == [entity]
    (tmp_path / "reference" / "fx_rates.csv").write_text("date,currency,rate\n")
    assert manifest_problems(tmp_path, manifest)["missing_entities"] == []
    assert read_manifest(tmp_path)["size"] == "demo"


def test_an_exporters_manifest_needs_only_extract_days(tmp_path):
    write_fake_landing(tmp_path)
    (tmp_path / "_manifest.json").write_text('{"extract_days": ["2026-01-31"]}')
    assert not any(manifest_problems(tmp_path, read_manifest(tmp_path)).values())


def test_a_missing_entity_snapshot_names_the_entity_and_only_enabled_systems_count(tmp_path):
    manifest = write_fake_landing(tmp_path)
    for part in (tmp_path / "nps" / "survey_responses" / "2026-01-31").iterdir():
        part.unlink()
    problems = manifest_problems(tmp_path, manifest)
    assert problems["missing_snapshot"] == ["nps/survey_responses/2026-01-31/part-*.json"]
    assert not manifest_problems(tmp_path, manifest, systems=["crm", "billing", "product", "support"])[
        "missing_snapshot"]


@pytest.mark.parametrize("body", [
    b'\xef\xbb\xbf{"extract_days": ["2026-01-31"]}',       # byte-order mark
    b'{\r\n "extract_days": [\r\n  "2026-01-31"\r\n ]\r\n}\r\n',  # CRLF
])
def test_a_bom_or_crlf_manifest_is_accepted(tmp_path, body):
    write_fake_landing(tmp_path)
    (tmp_path / "_manifest.json").write_bytes(body)
    assert read_manifest(tmp_path)["extract_days"] == ["2026-01-31"]
    assert not any(manifest_problems(tmp_path, read_manifest(tmp_path)).values())


@pytest.mark.parametrize(("body", "parses"), [
    (b'{"extract_days": ["2026-01-31"', False), (b"[1, 2]", False), (b"\xff\xfe{}", False),
    (b'{"extract_days": []}', True), (b'{"extract_days": ["31/01/2026"]}', True)])
def test_a_malformed_manifest_fails_the_check_not_the_run_setup(project_env, fake_simulator, body, parses):
    write_fake_landing(project_env.landing_dir)
    (project_env.landing_dir / "_manifest.json").write_bytes(body)
    if parses:
        [check] = _materialize().get_asset_check_evaluations()
        assert check.metadata["bad_extract_days"].value
    else:
        with pytest.raises(ManifestError, match="_manifest.json"):
            read_manifest(project_env.landing_dir)
        result = _materialize()
        assert not result.success  # files but no usable manifest: nothing generated, the check fails
        assert fake_simulator.calls == []
        [check] = result.get_asset_check_evaluations()
        assert check.metadata["malformed_manifest"].value and "_manifest.json" in check.description


def test_a_malformed_manifest_does_not_break_loading_the_code_location(project_env, tmp_path):
    from cs_kpis.definitions import defs as load_defs

    write_fake_landing(project_env.landing_dir)
    (project_env.landing_dir / "_manifest.json").write_bytes(b'\xef\xbb\xbf{"extract_days": ["2026-01-31"]')
    (project_env.landing_dir / "reference" / "fx_rates.csv").write_text("date,currency,rate\n2026-01-31,EUR,1.1\n")
    defs = load_defs()
    assert DEMO_KEY in defs.resolve_all_asset_keys()


# ------------------------------------------------------------------------------------ company profile

def _company(tmp_path, monkeypatch, systems=None):
    cfg = tmp_path / "company.yaml"
    body = {"profile": "acme", "landing_dir": "exports",
            "product": {"key_features": ["A"], "plan_features": {"pro": 1}, "onboarding_milestones": ["A"],
                        "value_event": "A", "top_plan": "pro"}}
    if systems:
        body["systems"] = systems
    cfg.write_text(json.dumps(body))
    monkeypatch.setenv("CS_KPIS_CONFIG", str(cfg))
    return tmp_path / "exports"


def _materialize_exports():
    return dg.materialize(
        [build_exports_asset(), build_landing_check(EXPORTS_KEY)],
        instance=dg.DagsterInstance.ephemeral(),
        resources={"company_config": CompanyConfigResource(config_file=""),
                   "landing": LandingResource.from_settings()},
        raise_on_error=False,
    )


def test_company_profile_reads_a_complete_export(project_env, tmp_path, monkeypatch):
    landing = _company(tmp_path, monkeypatch)
    write_fake_landing(landing)
    result = _materialize_exports()
    [check] = result.get_asset_check_evaluations()
    assert result.success and check.passed
    assert _metadata(result, "landing__exports")["path"].value == str(landing)


def test_company_profile_never_generates_and_an_empty_folder_fails_naming_it(project_env, tmp_path, monkeypatch):
    landing = _company(tmp_path, monkeypatch)
    landing.mkdir()
    result = _materialize_exports()
    [check] = result.get_asset_check_evaluations()
    assert not result.success and not check.passed
    assert str(landing) in check.description and "_manifest.json" in check.description
    assert list(landing.iterdir()) == []


def test_company_profile_with_nps_off_does_not_require_nps(project_env, tmp_path, monkeypatch):
    landing = _company(tmp_path, monkeypatch, systems={"nps": {"mode": "off"}})
    write_fake_landing(landing)
    for part in (landing / "nps" / "survey_responses" / "2026-01-31").iterdir():
        part.unlink()
    [check] = _materialize_exports().get_asset_check_evaluations()
    assert check.passed, check.description
