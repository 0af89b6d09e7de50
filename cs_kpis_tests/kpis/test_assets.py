"""The kpis assets and their checks run in Dagster against a tmp DuckDB, as in a real run."""

import dagster as dg
import pytest
from dagster_duckdb import DuckDBResource

from cs_kpis.defs.kpis import checks, checks_periods
from cs_kpis.defs.kpis.assets import extra_metadata, kpi_models
from cs_kpis.lib.settings_resources import CheckThresholdsResource
from cs_kpis.lib.sql import sql_assets
from cs_kpis_tests.kpis.conftest import MOVEMENT_ACCOUNTS, MOVEMENT_CHANGES
from cs_kpis_tests.kpis.warehouse import connect, marts_period_models, write_contract, write_dim_day


@pytest.fixture
def warehouse(tmp_path):
    con = connect(tmp_path)
    write_contract(con, MOVEMENT_CHANGES, MOVEMENT_ACCOUNTS, data_as_of="2024-06-15")
    write_dim_day(con)  # the day spine marts.dim_period reads
    con.close()
    return tmp_path / "warehouse.duckdb"


def materialize(warehouse, check_defs):
    assets = sql_assets(marts_period_models(), group="marts") + sql_assets(
        kpi_models(), group="kpis", extra_metadata=extra_metadata)
    return dg.materialize(
        [*assets, *check_defs],
        resources={"duckdb": DuckDBResource(database=str(warehouse)),
                   "check_thresholds": CheckThresholdsResource.from_settings()},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def test_assets_build_with_a_bridge_preview_and_checks_pass(warehouse):
    wanted = {checks.MRR_BRIDGE_RECONCILES, checks.MRR_MONTHLY_NO_NEGATIVE_MRR,
              checks.MRR_MONTHLY_NO_MISSING_ACCOUNT_MONTHS, checks.GRR_NEVER_ABOVE_ONE,
              checks.ALL_SEGMENT_EQUALS_SUM_OF_SEGMENTS, "mrr_monthly_unique_month_account_id"}
    check_defs = [c for c in checks.build_kpi_checks() if {s.name for s in c.check_specs} & wanted]
    result = materialize(warehouse, check_defs)
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) >= 7 and all(e.passed for e in evaluations)

    meta = {m.asset_key.to_user_string(): m.metadata
            for m in result.get_asset_materialization_events() for m in [m.materialization]}
    assert set(meta) == {"marts/mrr_monthly", "kpis/mrr_monthly_parent", "kpis/revenue_monthly",
                         "kpis/revenue_monthly_parent", "kpis/cohort_retention", "marts/dim_period", "marts/mrr_period_ends",
                         "kpis/mrr_periods", "kpis/revenue_periods", "kpis/revenue_by_grain"}
    preview = meta["kpis/revenue_monthly"]["mrr_bridge_preview"].value
    lines = preview.splitlines()
    # header, separator, then the latest six months oldest first; June: 480 + 40 - 30 = 490
    assert len(lines) == 2 + 6 and lines[2].startswith("| 2024-01") and lines[-1].startswith("| 2024-06")
    assert "490.00" in lines[-1] and "0.9375" in lines[-1]
    assert meta["marts/mrr_monthly"]["dagster/row_count"].value == 18


def test_a_failed_blocking_check_stops_the_kpis(warehouse):
    # a negative MRR upstream: the blocking negative-MRR checks on the two tables that carry the period-end
    # MRR (kpis.mrr_periods and marts.mrr_monthly, both rows of marts.mrr_period_ends) fail, and nothing
    # downstream of them builds
    con = connect_existing(warehouse)
    con.execute("insert into marts.mrr_daily_changes values ('a_contract', '2024-06-12', -10)")
    con.close()
    negative = {checks.MRR_MONTHLY_NO_NEGATIVE_MRR, checks_periods.MRR_PERIODS_NO_NEGATIVE_MRR}
    check_defs = [c for c in checks.build_kpi_checks() + checks_periods.build_period_checks()
                  if negative & {s.name for s in c.check_specs}]
    result = materialize(warehouse, check_defs)
    assert not result.success
    evaluations = result.get_asset_check_evaluations()
    assert sorted(e.check_name for e in evaluations) == sorted(negative)
    assert all(not e.passed and e.metadata["violations"].value >= 1 for e in evaluations)
    built = {m.asset_key.to_user_string() for m in result.get_asset_materialization_events() for m in [m.materialization]}
    assert built == {"marts/dim_period", "marts/mrr_period_ends", "kpis/mrr_periods", "marts/mrr_monthly"}


def connect_existing(path):
    import duckdb

    return duckdb.connect(str(path))
