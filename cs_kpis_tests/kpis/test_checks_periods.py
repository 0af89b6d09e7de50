"""The checks on kpis.mrr_periods and kpis.revenue_periods pass on clean data and fail on data corrupted the way
they are meant to catch; the period models and their checks run in Dagster like every kpis asset."""

import dagster as dg
import pytest
from dagster_duckdb import DuckDBResource

from cs_kpis.defs.kpis import checks_periods as cp
from cs_kpis.defs.kpis.assets import extra_metadata, kpi_models
from cs_kpis.lib.checks import run_rule
from cs_kpis.lib.settings_resources import CheckThresholdsResource
from cs_kpis.lib.sql import sql_assets
from cs_kpis_tests.kpis.periods import (
    QUARTER_ACCOUNTS,
    QUARTER_CHANGES,
    make_period_warehouse,
    month_rows_mismatch_sql,
    mrr_month_rows_mismatch_sql,
)
from cs_kpis_tests.kpis.warehouse import connect, marts_period_models, write_contract, write_dim_day

REV = cp.REVENUE_PERIODS_TABLE
Q3 = "cadence = 'quarter' and period_start = '2023-07-01'"

RULES = [
    ("bridge-tampered", cp.period_bridge_violations_sql(),
     f"update {REV} set new_mrr = new_mrr + 1 where {Q3} and segment = 'all'"),
    # ending and a movement changed together: the quarter adds up, the chain to Q4 breaks
    ("bridge-chain-broken", cp.period_bridge_violations_sql(),
     f"update {REV} set ending_mrr = ending_mrr + 1, expansion_mrr = expansion_mrr + 1 where {Q3} and segment = 'smb'"),
    ("period-missing", cp.period_bridge_violations_sql(),
     f"delete from {REV} where cadence = 'week' and period_start = '2023-03-06'"),
    ("all-segment", cp.period_all_segment_violations_sql(),
     f"update {REV} set churned_accounts = 5 where {Q3} and segment = 'smb'"),
    ("grr-above-one", cp.period_grr_above_one_sql(), f"update {REV} set grr = 1.0001 where {Q3}"),
    ("month-rows-differ", month_rows_mismatch_sql(),
     f"update {REV} set nrr = nrr + 0.001 where cadence = 'month' and period_start = '2023-08-01' and segment = 'all'"),
    ("month-row-missing", month_rows_mismatch_sql(),
     f"delete from {REV} where cadence = 'month' and period_start = '2023-08-01' and segment = 'smb'"),
    ("mrr-month-rows-differ", mrr_month_rows_mismatch_sql(),
     # kpis.mrr_periods is a view of marts.mrr_period_ends: the rows are corrupted there
     "update marts.mrr_period_ends set movement = 'expansion' where cadence = 'month' and movement = 'reactivation'"),
    ("no-negative-mrr", cp.NEGATIVE_MRR_SQL,
     "update marts.mrr_period_ends set mrr = -5 where account_id = 'q_d' and cadence = 'week'"),
    ("revenue-periods-unique", f"select cadence, period_start, segment from {REV} group by 1, 2, 3 having count(*) > 1",
     f"insert into {REV} select * from {REV} where {Q3}"),
    ("nrr-grr-bounds", cp.period_retention_bounds_sql(0.5, 1.5, 0.5, 1).replace("where", "where segment = 'all' and"),
     f"update {REV} set nrr = 1.6 where {Q3} and segment = 'all'"),
]


@pytest.fixture
def quarters(tmp_path):
    con = make_period_warehouse(tmp_path, QUARTER_CHANGES, QUARTER_ACCOUNTS, data_as_of="2024-04-15")
    yield con
    con.close()


@pytest.mark.parametrize(("rule", "corruption"), [r[1:] for r in RULES], ids=[r[0] for r in RULES])
def test_rule_passes_on_clean_data_and_fails_on_corrupted(quarters, rule, corruption):
    assert run_rule(quarters, rule) == (0, "")
    quarters.execute(corruption)
    count, sample = run_rule(quarters, rule)
    assert count >= 1 and sample.startswith("|")


def test_bounds_judge_only_segments_with_enough_accounts(quarters):
    # Q3-23: 'all' loses b (200 of 730, NRR 0.73); smb loses 200 of 330 (NRR 0.39) with 2 accounts at the start
    assert run_rule(quarters, cp.period_retention_bounds_sql(0.5, 1.5, 0.5, 1))[0] >= 1
    assert run_rule(quarters, cp.period_retention_bounds_sql(0.5, 1.5, 0.5, 4))[0] == 0


def test_check_names_and_severities():
    specs = {(s.key.asset_key, s.key.name): s for d in cp.build_period_checks() for s in d.check_specs}
    blocking = {name for (_, name), spec in specs.items() if spec.blocking}
    warning = {name for (_, name), spec in specs.items() if not spec.blocking}
    assert blocking == {
        "dim_period_unique_cadence_period_start", "mrr_periods_unique_cadence_period_start_account_id", "mrr_periods_not_null",
        cp.MRR_PERIODS_NO_NEGATIVE_MRR,
        "revenue_periods_unique_cadence_period_start_segment", "revenue_periods_not_null",
        cp.PERIOD_BRIDGE_RECONCILES, cp.PERIOD_ALL_SEGMENT_EQUALS_SUM_OF_SEGMENTS, cp.PERIOD_GRR_NEVER_ABOVE_ONE}
    assert warning == {cp.PERIOD_NRR_GRR_WITHIN_PLAUSIBLE_BOUNDS}
    assert all(s.description for s in specs.values())


def materialize(tmp_path, changes):
    con = connect(tmp_path)
    write_contract(con, changes, QUARTER_ACCOUNTS, data_as_of="2024-04-15")
    write_dim_day(con)
    con.close()
    assets = sql_assets(marts_period_models(), group="marts") + sql_assets(
        kpi_models(), group="kpis", extra_metadata=extra_metadata)
    result = dg.materialize(
        [*assets, *cp.build_period_checks()],
        resources={"duckdb": DuckDBResource(database=str(tmp_path / "warehouse.duckdb")),
                   "check_thresholds": CheckThresholdsResource.from_settings()},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    return assets, result


def test_a_negative_mrr_stops_revenue_periods(tmp_path):
    _, result = materialize(tmp_path, [*QUARTER_CHANGES, ("q_d", "2024-01-10", -10)])
    assert not result.success
    failed = {e.check_name for e in result.get_asset_check_evaluations() if not e.passed}
    assert cp.MRR_PERIODS_NO_NEGATIVE_MRR in failed
    built = {m.materialization.asset_key.to_user_string() for m in result.get_asset_materialization_events()}
    assert "kpis/mrr_periods" in built and "kpis/revenue_periods" not in built


def test_period_assets_and_checks_run_in_dagster(tmp_path):
    assets, result = materialize(tmp_path, QUARTER_CHANGES)
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) == 10 and all(e.passed for e in evaluations), [
        (e.check_name, e.metadata) for e in evaluations if not e.passed]
    meta = {m.materialization.asset_key.to_user_string(): m.materialization.metadata
            for m in result.get_asset_materialization_events()}
    # 6 quarters + 16 months + 69 weeks for all, smb and enterprise, less enterprise's January (q_c starts on
    # Feb 1) and its five weeks before the week of Jan 30
    assert meta["kpis/revenue_periods"]["dagster/row_count"].value == (6 + 16 + 69) * 3 - 1 - 5
    def deps(name):
        key = dg.AssetKey(["kpis", name])
        spec = next(a for a in assets if key in a.keys).specs_by_key[key]
        return {d.asset_key.to_user_string() for d in spec.deps}

    # revenue_periods is grain account of the one revenue model, which reads both grains' account rows
    assert deps("revenue_periods") == {"kpis/revenue_by_grain"}
    assert deps("revenue_by_grain") == {"marts/dim_period", "kpis/mrr_periods", "kpis/mrr_monthly_parent",
                                        "marts/accounts"}
