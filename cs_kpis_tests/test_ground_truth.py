"""End to end on the demo company: every asset, then the numbers against the simulator's ground truth.

The simulator writes each account's true month-end MRR (computed from its own subscription history,
in exact arithmetic) to a folder the pipeline never reads. Every account-month must match to the cent,
the months where accounts churn and come back must match, and the health score, which never sees the
hidden health, must predict the churn that follows.
"""

import csv

import dagster as dg
import duckdb
import pytest


@pytest.fixture(scope="module")
def demo_warehouse(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("demo_e2e")
    for name, rel in {"CS_KPIS_STATE_DIR": "state", "CS_KPIS_WAREHOUSE": "state/wh.duckdb",
                      "CS_KPIS_DLT_DIR": "state/dlt", "DAGSTER_HOME": "state/dagster_home",
                      "CS_KPIS_LANDING_DIR": "landing", "CS_KPIS_GROUND_TRUTH_DIR": "truth"}.items():
        mp.setenv(name, str(root / rel))
    mp.setenv("CS_KPIS_DEMO_SIZE", "demo")
    mp.setenv("CS_KPIS_DEMO_SEED", "42")
    from cs_kpis import settings
    from cs_kpis.definitions import defs as lazy_defs

    settings.prepare_state()
    defs = lazy_defs()
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(list(defs.assets) + list(defs.asset_checks or []), resources=defs.resources,
                                instance=instance, raise_on_error=False)
    assert result.success
    yield root
    mp.undo()


def _truth(root):
    with (root / "truth" / "mrr_month_end.csv").open() as f:
        return {(r["month"], r["account_id"]): r["mrr"] for r in csv.DictReader(f)}


def test_month_end_mrr_equals_ground_truth_to_the_cent(demo_warehouse):
    truth = _truth(demo_warehouse)
    with duckdb.connect(str(demo_warehouse / "state" / "wh.duckdb"), read_only=True) as con:
        rows = con.execute("""
            select cast(m.month as varchar), c.account_id, cast(c.mrr as varchar)
            from marts.dim_month as m
            join marts.mrr_daily_changes as c
              on c.change_date <= m.read_day and (c.next_change_date is null or c.next_change_date > m.read_day)
        """).fetchall()
    ours = {(m, a): v for m, a, v in rows}
    keys = set(truth) | set(ours)
    diffs = sorted((k, truth.get(k, "0.00"), ours.get(k, "0.00")) for k in keys
                   if float(truth.get(k, 0)) != float(ours.get(k, 0)))
    assert len(truth) > 10_000
    assert diffs == [], f"{len(diffs)} account-months differ, e.g. {diffs[:5]}"


def test_churn_and_reactivation_months_match_ground_truth(demo_warehouse):
    with (demo_warehouse / "truth" / "churn_events.csv").open() as f:
        expected = {(r["account_id"], r["month"], r["event"]) for r in csv.DictReader(f)}
    with duckdb.connect(str(demo_warehouse / "state" / "wh.duckdb"), read_only=True) as con:
        rows = con.execute("""
            with me as (
                select m.month, c.account_id, c.mrr
                from marts.dim_month as m
                join marts.mrr_daily_changes as c
                  on c.change_date <= m.read_day and (c.next_change_date is null or c.next_change_date > m.read_day)
            ), series as (
                select month, account_id, mrr,
                       lag(mrr) over (partition by account_id order by month) as prev,
                       max(mrr) over (partition by account_id order by month
                                      rows between unbounded preceding and 1 preceding) as max_before
                from me
            )
            select account_id, cast(month as varchar),
                   case when prev > 0 and mrr = 0 then 'churn' else 'reactivation' end
            from series
            where (prev > 0 and mrr = 0) or (coalesce(prev, 0) = 0 and mrr > 0 and max_before > 0)
        """).fetchall()
    got = set(rows)
    assert len(expected) > 100
    assert got == expected, (sorted(expected - got)[:5], sorted(got - expected)[:5])


def test_monthly_movements_match_ground_truth_churn_and_reactivation(demo_warehouse):
    with (demo_warehouse / "truth" / "churn_events.csv").open() as f:
        expected = {(r["account_id"], r["month"], r["event"]) for r in csv.DictReader(f)}
    with duckdb.connect(str(demo_warehouse / "state" / "wh.duckdb"), read_only=True) as con:
        got = set(con.execute("select account_id, cast(month as varchar), movement from marts.mrr_monthly "
                              "where movement in ('churn', 'reactivation')").fetchall())
    assert got == expected


def test_health_score_predicts_churn_on_the_demo_company(demo_warehouse):
    from cs_kpis.defs.health.assets import backtest_summary

    with duckdb.connect(str(demo_warehouse / "state" / "wh.duckdb"), read_only=True) as con:
        summary = backtest_summary(con)
    assert summary["auc_pooled"] >= 0.75, summary
    assert summary["red_to_green_ratio"] >= 3, summary
