"""The raw @dlt_assets in Dagster: keys and specs, metadata, checks, two materializations in one process."""

from pathlib import Path

import dagster as dg
import pytest

from cs_kpis.defs.raw.assets import build_raw_assets
from cs_kpis.defs.raw.checks import QUARANTINE_SHARE_CHECK, ROW_ACCOUNTING_CHECK, build_raw_checks
from cs_kpis.defs.raw.resources import RawDltResource
from cs_kpis_tests.landing_builder import write_landing
from cs_kpis_tests.sources.landing_builder import DAYS, customer, tiny_company, tiny_events


@pytest.fixture(autouse=True)
def _dlt_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RUNTIME__DLTHUB_TELEMETRY", "false")
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt_global"))


def _assets(tmp_path: Path, landing: Path, systems: tuple[str, ...]) -> list[dg.AssetsDefinition]:
    return build_raw_assets(
        landing_dir=landing, warehouse=tmp_path / "w.duckdb", pipelines_dir=tmp_path / "dlt", systems=systems
    )


def test_asset_specs(tmp_path: Path) -> None:
    landing = write_landing(tmp_path / "landing", tiny_company())
    assets = _assets(tmp_path, landing, ("crm", "billing", "product", "support", "nps"))
    specs = {spec.key.to_user_string(): spec for a in assets for spec in a.specs}
    assert "raw/billing/subscription_items" in specs and "raw/product/events" in specs
    assert len(specs) == 22  # billing: 9 Stripe tables + invoice_items + fx_rates; crm: 4 + account_history
    for key, spec in specs.items():
        assert key.startswith("raw/")
        assert spec.group_name == "raw"
        assert spec.kinds == {"dlt", "duckdb"}
        assert spec.owners == ["team:data-eng"]
        assert spec.description
        assert spec.freshness_policy is not None
        assert [d.asset_key for d in spec.deps] == [dg.AssetKey(["landing", "demo_company"])]
    assert all(a.node_def.pool == "warehouse" for a in assets)


def test_materialize_twice_in_one_process_with_accounting_metadata(tmp_path: Path) -> None:
    history = tiny_company()
    no_id = customer(9, 1)
    del no_id["id"]
    history[DAYS[0]][("billing", "customers")].append(no_id)
    events = {day: tiny_events(day, i * 100, 10) for i, day in enumerate(DAYS)}
    landing = write_landing(tmp_path / "landing", history, events=events)
    assets = _assets(tmp_path, landing, ("crm", "billing", "product"))
    checks = build_raw_checks(assets)
    instance = dg.DagsterInstance.ephemeral()

    first = dg.materialize([*assets, *checks], resources={"dlt": RawDltResource()}, instance=instance)
    assert first.success
    meta = {
        m.asset_key.to_user_string(): m.metadata
        for m in (e.event_specific_data.materialization for e in first.get_asset_materialization_events())
    }
    customers = meta["raw/billing/customers"]
    assert customers["rows_read"].value == 4
    assert customers["rows_loaded"].value == 3
    assert customers["rows_quarantined"].value == 1
    assert customers["rows_deduplicated"].value == 0
    assert customers["dagster/row_count"].value == 3
    assert meta["raw/crm/accounts"]["dlt_loads"].value == 3  # scd2: one load per extract day
    assert meta["raw/product/events"]["rows_loaded"].value == 30
    evaluations = {
        (e.asset_key.to_user_string(), e.check_name): e.passed for e in first.get_asset_check_evaluations()
    }
    assert evaluations[("raw/billing/customers", QUARANTINE_SHARE_CHECK)] is False  # 1 of 4 > 1%
    assert evaluations[("raw/billing/customers", ROW_ACCOUNTING_CHECK)] is True
    assert evaluations[("raw/product/events", QUARANTINE_SHARE_CHECK)] is True

    # the second materialization in the same process is the one dagster-dlt#34052 breaks
    second = dg.materialize(assets, resources={"dlt": RawDltResource()}, instance=instance)
    assert second.success
    again = {
        m.asset_key.to_user_string(): m.metadata
        for m in (e.event_specific_data.materialization for e in second.get_asset_materialization_events())
    }
    assert again["raw/billing/customers"]["rows_read"].value == 0
    assert again["raw/billing/customers"]["dagster/row_count"].value == 3
