"""The health assets run through Dagster on the hand-built warehouse, then every check passes on the result
and fails on a corrupted copy of it."""

import shutil

import dagster as dg
import duckdb
import pytest
from dagster_duckdb import DuckDBResource

from cs_kpis.defs.health import assets as health_assets
from cs_kpis.defs.health import checks as health_checks
from cs_kpis_tests.check_call import call_check
from cs_kpis_tests.health import fixtures
from cs_kpis_tests.health.fixtures import write_company_config, write_inputs

HEALTH_ASSETS = [health_assets.health_product_config, *health_assets.health_sql_assets,
                 health_assets.health_scores_daily, health_assets.health_scores, health_assets.health_backtest]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The fixture inputs, then every health asset materialized by Dagster; returns the warehouse path."""
    root = tmp_path_factory.mktemp("health_assets")
    path = root / "wh.duckdb"
    con = duckdb.connect(str(path))
    write_inputs(con)
    con.execute("drop table kpis.health_product_config")  # the asset must write it from the company config
    con.close()
    mp = pytest.MonkeyPatch()
    mp.setenv("CS_KPIS_CONFIG", str(write_company_config(root)))
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(HEALTH_ASSETS, resources={"duckdb": DuckDBResource(database=str(path))},
                                instance=instance)
    mp.undo()
    assert result.success
    return path


@pytest.fixture
def copy_of(built, tmp_path):
    """A private copy of the built warehouse, to corrupt."""
    path = tmp_path / "copy.duckdb"
    shutil.copy(built, path)
    return path


def run_check(path, name: str):
    check = next(c for c in health_checks.health_checks if next(iter(c.check_specs)).name == name)
    return call_check(check, path)


def corrupt(path, *statements):
    with duckdb.connect(str(path)) as con:
        for sql in statements:
            con.execute(sql)


ALL_CHECKS = [next(iter(c.check_specs)).name for c in health_checks.health_checks]


def test_assets_write_every_table(built):
    with duckdb.connect(str(built), read_only=True) as con:
        counts = dict(con.execute(
            "select 'daily', count(*) from kpis.health_scores_daily union all "
            "select 'latest', count(*) from kpis.health_scores union all "
            "select 'product', count(*) from kpis.health_product_config").fetchall())
        latest = con.execute("select account_id, day, parent_score, arr, score, config_version "
                             "from kpis.health_scores order by account_id").fetchall()
        versions = con.execute("select distinct config_version from kpis.health_scores_daily").fetchall()
    assert counts["daily"] == 120 + 61 + 120           # one score per indicator row
    assert counts["product"] == 5 + 3 + 4 + 2          # key features, plans, milestones, value event, top plan
    assert [r[0] for r in latest] == ["acc_a", "acc_b", "acc_c"]
    live = health_assets.load_current_config()
    assert versions == [(live.version,)]
    by_id = {r[0]: r for r in latest}
    # acc_b rolls up to acc_a: ARR 1,200 (a) and 600 (b)
    a, b = by_id["acc_a"][4], by_id["acc_b"][4]
    assert by_id["acc_a"][2] == pytest.approx((a * 1200 + b * 600) / 1800)


def test_backtest_and_summary(built):
    with duckdb.connect(str(built), read_only=True) as con:
        summary = health_assets.backtest_summary(con)
    # only January has its 90 days in the data: acc_a and acc_c had MRR on 01-01, acc_c churned 02-15
    assert list(summary["auc_by_month"]) == ["2025-01-01"]
    assert summary["accounts"] == 2 and summary["churned"] == 1
    assert 0 <= summary["auc_pooled"] <= 1
    assert set(summary["churn_rate_by_band"]) == {"green", "yellow", "red"}
    assert len(summary["by_version"]) >= 2  # live and archived configs


def test_backtest_computes_the_outcomes_once_for_every_config(built, tmp_path):
    """build_backtest holds the outcomes (config-independent) in a temporary table for all config versions; the
    result equals each version's observations with the outcomes computed in its own query, and the table is gone
    afterwards."""
    import pandas as pd

    from cs_kpis.defs.health import backtest

    copy = tmp_path / "wh.duckdb"
    shutil.copy(built, copy)
    with duckdb.connect(str(copy)) as con:
        got = backtest.build_backtest(con)
        configs = backtest.load_all_configs()
        want = pd.concat([backtest.backtest_table(backtest.backtest_observations(con, c), c).assign(is_current=cur)
                          for c, cur in configs], ignore_index=True)
        assert len(configs) >= 2 and len(got) == 2 * len(configs)  # January and pooled, per version
        pd.testing.assert_frame_equal(got, want, check_exact=True)
        assert con.execute("select count(*) from duckdb_tables() where table_name = ?",
                           [backtest.OUTCOME_TABLE]).fetchall() == [(0,)]


def test_every_check_passes_on_good_data(built):
    for name in ALL_CHECKS:
        result = run_check(built, name)
        assert result.passed, (name, result.metadata)


@pytest.mark.parametrize("name, statements", [
    (health_checks.SCORE_IN_RANGE, ["update kpis.health_scores_daily set score = 101 where account_id = 'acc_a'"]),
    (health_checks.SCORE_IN_RANGE, ["update kpis.health_scores_daily set usage_score = -1 where account_id = 'acc_c'"]),
    (health_checks.SCORE_IN_RANGE, [("update kpis.health_scores_daily set score = null, band = null "
                                    "where account_id = 'acc_b'")]),
    ("health_scores_daily_unique_account_id_day",
     [("insert into kpis.health_scores_daily select * from kpis.health_scores_daily where account_id = 'acc_a' "
      "and day = '2025-02-01'")]),
    ("health_scores_unique_account_id",
     ["insert into kpis.health_scores select * from kpis.health_scores where account_id = 'acc_a'"]),
    (health_checks.EVERY_ACTIVE_ACCOUNT_SCORED,
     ["delete from kpis.health_scores_daily where account_id = 'acc_b' and day = '2025-04-30'"]),
    (health_checks.CONTRIBUTIONS_ADD_UP,
     ["update kpis.health_scores_daily set contrib_usage = contrib_usage + 5 where account_id = 'acc_a'"]),
])
def test_blocking_checks_fail_on_corrupted_data(copy_of, name, statements):
    corrupt(copy_of, *statements)
    result = run_check(copy_of, name)
    assert not result.passed
    assert result.severity == dg.AssetCheckSeverity.ERROR
    assert result.metadata["violations"].value >= 1


def test_every_active_account_check_reads_only_the_as_of_days_row_groups(copy_of, tmp_path):
    """The check filters the scores on the as-of day before its join, so DuckDB skips the row groups of other days
    (zone maps on day): joined on the day, it read every row of the table, 33 M rows on the large company for
    100,000 (BENCHMARKS.md, session 22). Here 300,000 scores of other accounts on an older day are added after the
    fixture's rows: their row groups hold no as-of day. The check still passes, and fails without acc_b's score."""
    filler = 300_000
    corrupt(copy_of, "insert into kpis.health_scores_daily by name select date '2024-01-01' as day, "
            f"'zz' || lpad(cast(i as varchar), 7, '0') as account_id, 50.0 as score from range({filler}) as r(i)")
    with duckdb.connect(str(copy_of)) as con:
        table_rows = con.execute("select count(*) from kpis.health_scores_daily").fetchall()[0][0]
        counted = fixtures.ScanCounter(con, tmp_path / "profile.json", "kpis.health_scores_daily")
        missing = counted.execute(health_checks.EVERY_ACTIVE_ACCOUNT_SCORED_SQL).fetchall()
        counted.stop()
    assert missing == []
    assert counted.scans >= 1 and min(counted.rows_scanned) > 0, counted.rows_scanned
    assert sum(counted.rows_scanned) < filler / 2, (counted.rows_scanned, table_rows)
    assert run_check(copy_of, health_checks.EVERY_ACTIVE_ACCOUNT_SCORED).passed
    corrupt(copy_of, "delete from kpis.health_scores_daily where account_id = 'acc_b' and day = '2025-04-30'")
    assert not run_check(copy_of, health_checks.EVERY_ACTIVE_ACCOUNT_SCORED).passed


def test_band_shift_warns_without_blocking(copy_of):
    # on 04-30 all three accounts turn red: every band moves by far more than 10 points from 04-29
    corrupt(copy_of, "update kpis.health_scores_daily set band = 'red' where day = '2025-04-30'")
    result = run_check(copy_of, health_checks.BAND_SHIFT)
    assert not result.passed
    assert result.severity == dg.AssetCheckSeverity.WARN
    spec = next(iter(next(c for c in health_checks.health_checks
                          if next(iter(c.check_specs)).name == health_checks.BAND_SHIFT).check_specs))
    assert not spec.blocking


def test_band_shift_threshold_from_env(monkeypatch, copy_of):
    """Every band moves far on 04-30: with the threshold at 100 points (the variable, read into the resource
    when the check runs) nothing moved more than that, and the threshold used is in the result."""
    corrupt(copy_of, "update kpis.health_scores_daily set band = 'red' where day = '2025-04-30'")
    assert not run_check(copy_of, health_checks.BAND_SHIFT).passed
    monkeypatch.setenv(health_checks.ENV_BAND_SHIFT, "100")
    result = run_check(copy_of, health_checks.BAND_SHIFT)
    assert result.passed and result.metadata["threshold_health_band_shift_pp"].value == 100
    spec = next(iter(next(c for c in health_checks.build_health_checks()
                          if next(iter(c.check_specs)).name == health_checks.BAND_SHIFT).check_specs))
    assert health_checks.ENV_BAND_SHIFT in spec.description


def test_product_config_needs_every_setting():
    with pytest.raises(ValueError, match="value_event"):
        health_assets.product_config_rows({"key_features": ["x"], "plan_features": {"a": 1},
                                           "onboarding_milestones": ["y"], "top_plan": "a"})
