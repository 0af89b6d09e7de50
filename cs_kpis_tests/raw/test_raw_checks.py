"""The files-mode raw checks: records reconciled with the manifest's counts, files the source skips named."""

from pathlib import Path

import dagster as dg
import pytest

from cs_kpis.defs.raw.assets import build_raw_assets
from cs_kpis.defs.raw.checks import MANIFEST_COUNTS_CHECK, UNRECOGNIZED_FILES_CHECK, build_raw_checks
from cs_kpis.defs.raw.resources import RawDltResource
from cs_kpis.lib.checks import batch_checks
from cs_kpis_tests.landing_builder import write_landing
from cs_kpis_tests.sources.landing_builder import DAYS, price, tiny_company, tiny_events

SYSTEMS = ("billing", "product", "nps")


@pytest.fixture(autouse=True)
def _dlt_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RUNTIME__DLTHUB_TELEMETRY", "false")
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt_global"))


def _evaluate(tmp_path: Path, landing: Path, batched: bool = False) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    """Each check in a step of its own, or (``batched``) as the code location runs them: an asset's blocking
    checks in one step (cs_kpis.lib.checks.batch_checks)."""
    warehouse = tmp_path / "w.duckdb"
    assets = build_raw_assets(landing_dir=landing, warehouse=warehouse, pipelines_dir=tmp_path / "dlt", systems=SYSTEMS)
    checks = build_raw_checks(assets, landing_dir=landing, warehouse=warehouse)
    if batched:
        checks = batch_checks(checks)
        assert len(checks) == 2 * 13  # each of the 13 assets: its quarantine share check and one blocking step
    result = dg.materialize([*assets, *checks], resources={"dlt": RawDltResource()},
                            instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    return {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}


def _landing(tmp_path: Path) -> Path:
    history = tiny_company()
    history[DAYS[0]][("billing", "prices")] = [price(n, amount=1000 + n) for n in range(1, 11)]
    events = {day: tiny_events(day, i * 100, 10) for i, day in enumerate(DAYS)}
    return write_landing(tmp_path / "landing", history, events=events)


def test_a_complete_landing_passes_both_checks(tmp_path: Path) -> None:
    evaluations = _evaluate(tmp_path, _landing(tmp_path))
    ours = {k: e for k, e in evaluations.items() if k[1] in (MANIFEST_COUNTS_CHECK, UNRECOGNIZED_FILES_CHECK)}
    assert len(ours) == 2 * 10  # billing 8 entities (not the 2 children, not fx rates), product events, nps
    assert all(e.passed for e in ours.values()), [k for k, e in ours.items() if not e.passed]


def test_lost_records_and_skipped_files_fail_blocking_checks_that_name_them(tmp_path: Path) -> None:
    landing = _landing(tmp_path)
    # a Stripe page cut mid-object: 6 prices parse, 4 are lost
    part = landing / "billing" / "prices" / DAYS[0] / "part-00001.json"
    text = part.read_text()
    part.write_text(text[: text.index('"price_00000000000007"') + 5])
    # a received-day folder of events deleted
    for path in (landing / "product" / "events" / DAYS[1]).iterdir():
        path.unlink()
    (landing / "product" / "events" / DAYS[1]).rmdir()
    # a part named off-pattern, skipped by the source
    survey = landing / "nps" / "survey_responses" / DAYS[1]
    (survey / "part-00001.json").rename(survey / "part-1.json")

    evaluations = _evaluate(tmp_path, landing, batched=True)
    prices = evaluations[("raw/billing/prices", MANIFEST_COUNTS_CHECK)]
    assert not prices.passed and prices.blocking
    assert prices.description.startswith("4 of the manifest's 10 billing/prices records")
    events = evaluations[("raw/product/events", MANIFEST_COUNTS_CHECK)]
    assert not events.passed and events.description.startswith("10 of the manifest's 30 product/events records")
    skipped = evaluations[("raw/nps/survey_responses", UNRECOGNIZED_FILES_CHECK)]
    assert not skipped.passed and skipped.blocking
    assert "nps/survey_responses/2026-01-02/part-1.json" in skipped.description
    # the others still pass
    assert evaluations[("raw/billing/customers", MANIFEST_COUNTS_CHECK)].passed
    assert evaluations[("raw/billing/prices", UNRECOGNIZED_FILES_CHECK)].passed
