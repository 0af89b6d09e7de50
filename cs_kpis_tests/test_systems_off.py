"""A company without an NPS tool and without a support desk: `systems.nps.mode: off`, `systems.support.mode:
off`. Nothing is loaded for them, every table downstream is still built, their health indicators are null (the
score reweights the rest), their alert types are skipped and the report says "not connected".
CRM and billing cannot be turned off (the configuration error names the key)."""

import json
import shutil

import dagster as dg
import duckdb
import pytest

from cs_kpis import config
from cs_kpis.lib import systems
from cs_kpis_tests.conftest import TEST_ENV


def _profile(**modes) -> dict:
    return {"profile": "no-nps-co", "landing_dir": "exports", "product": config.DEMO_PRODUCT.as_dict(),
            "systems": {name: {"mode": mode} for name, mode in modes.items()}}


@pytest.mark.parametrize("system", ["crm", "billing"])
def test_crm_and_billing_cannot_be_turned_off(tmp_path, system):
    path = tmp_path / "company.yaml"
    path.write_text(json.dumps(_profile(**{system: "off"})))
    with pytest.raises(config.ConfigError, match=rf"{path}: systems\.{system}\.mode: .*cannot be off"):
        config.load_file(path)


def test_product_support_and_nps_can_be_turned_off(tmp_path):
    path = tmp_path / "company.yaml"
    path.write_text("profile: x\nlanding_dir: l\nsystems:\n  nps: {mode: off}\n  support:\n    mode: 'off'\n"
                    "  product: {mode: off}\nproduct: " + json.dumps(config.DEMO_PRODUCT.as_dict()))
    cfg = config.load_file(path)
    assert systems.off_systems(cfg) == ["product", "support", "nps"]
    assert set(systems.skipped_alert_types(["nps"])) == {"low_nps_high_value"}
    assert systems.not_connected(["support", "nps"]) == ["Support not connected", "NPS not connected"]
    assert systems.off_systems(config.DEMO) == []


@pytest.mark.slow
def test_nps_and_support_off_on_the_tiny_company(tmp_path):
    from cs_kpis.simulator import generate

    paths = {name: tmp_path / relative for name, relative in TEST_ENV.items()}
    landing = tmp_path / "exports"
    generate(landing, tmp_path / "truth", size="tiny", seed=1)
    for system in ("nps", "support"):  # the company has no such tool: nothing of it in the export
        shutil.rmtree(landing / system)
    cfg = tmp_path / "company.yaml"
    cfg.write_text(json.dumps(_profile(crm="files", billing="files", product="files", support="off", nps="off")))
    with pytest.MonkeyPatch.context() as mp:
        for name, path in paths.items():
            mp.setenv(name, str(path))
        mp.setenv("CS_KPIS_CONFIG", str(cfg))
        mp.setenv("DLT_DATA_DIR", str(tmp_path / "dlt_global"))
        from cs_kpis.definitions import defs as load_defs

        defs = load_defs()
        keys = list(defs.resolve_all_asset_keys())
        result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            asset_selection=keys, instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    failed_steps = [e.message for e in result.all_events if e.is_step_failure]
    assert result.success, failed_steps
    materialized = {e.asset_key for e in result.all_events if e.event_type_value == "ASSET_MATERIALIZATION"}
    assert set(keys) - materialized == set(), "every asset is built"
    checks = [e.event_specific_data for e in result.all_events
              if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    failed = sorted((c.check_name, c.severity.value) for c in checks if not c.passed)
    print("checks failed (severity):", failed)
    assert not [c for c in failed if c[1] == "ERROR"], failed

    with duckdb.connect(str(paths["CS_KPIS_WAREHOUSE"]), read_only=True) as con:
        def one(sql):
            return con.execute(sql).fetchall()[0]

        assert one("select count(*) from raw.nps__survey_responses")[0] == 0
        assert one("select count(*) from staging.stg_support__tickets")[0] == 0
        # the indicators of the systems off are null, not 0; the others are there
        assert one("select count(nps_90d), count(csat_90d), count(tickets_30d), count(open_urgent_high), "
                   "count(*) > 0, count(events_30d) > 0 from kpis.account_indicators_daily") == (0, 0, 0, 0, True, True)
        # support component gone, the score still there for every account-day, reweighted without it
        assert one("select count(support_score), count(score) = count(*), count(*) > 0 from kpis.health_scores_daily"
                   ) == (0, True, True)
        types = {r[0] for r in con.execute("select distinct alert_type from alerts.alert_candidates").fetchall()}
        assert not types & {"low_nps_high_value", "ticket_spike"}
    report = next((paths["CS_KPIS_STATE_DIR"] / "reports").rglob("*.html")).read_text()
    assert "NPS not connected" in report and "Support not connected" in report
