"""End to end on the demo company: every asset, then the numbers against the simulator's ground truth.

The simulator writes each account's true month-end MRR (computed from its own subscription history,
in exact arithmetic) to a folder the pipeline never reads. Every account-month must match to the cent,
the months where accounts churn and come back must match, and the health score, which never sees the
hidden health, must predict the churn that follows.

Two event histories: the ~30 days a real Stripe account keeps (the default landing: history before them
from invoices, pending invoice items and the subscriptions list) and the full one
(``event_retention_days=0``, which exercises the event ledger alone). Both match on every account-month,
the demo company with 30 days and the tiny company either way; the slow tests add the demo company with
the full history and with the event ledger emptied entirely.
"""

import datetime as dt
import json

import dagster as dg
import duckdb
import pytest

from cs_kpis_tests.ground_truth import (
    CHURN_AND_REACTIVATION_FROM_DAILY_CHANGES,
    MONTH_END_FROM_DAILY_CHANGES,
    MONTH_END_FROM_PERIODS,
    MOVEMENTS_FROM_MRR_MONTHLY,
    differences,
    month_end,
    revenue_monthly_differences,
    truth_churn_events,
    truth_month_end,
    warehouse_rows,
)


def _materialize_retained(tmp_path_factory, name: str, size: str, retention: int):
    """Generate the company with ``retention`` days of events, materialize everything; (root, result)."""
    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp(name)
    for var, rel in {"CS_KPIS_STATE_DIR": "state", "CS_KPIS_WAREHOUSE": "state/wh.duckdb",
                     "CS_KPIS_DLT_DIR": "state/dlt", "DAGSTER_HOME": "state/dagster_home",
                     "CS_KPIS_LANDING_DIR": "landing", "CS_KPIS_GROUND_TRUTH_DIR": "truth"}.items():
        mp.setenv(var, str(root / rel))
    mp.setenv("CS_KPIS_DEMO_SIZE", size)
    mp.setenv("CS_KPIS_DEMO_SEED", "42")
    from cs_kpis import settings
    from cs_kpis.definitions import defs as lazy_defs
    from cs_kpis.simulator import generate

    manifest = generate(root / "landing", root / "truth", size=size, seed=42, event_retention_days=retention)
    assert manifest["event_retention_days"] == retention
    settings.prepare_state()
    defs = lazy_defs()
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(list(defs.assets) + list(defs.asset_checks or []), resources=defs.resources,
                                instance=instance, raise_on_error=False)
    mp.undo()
    return root, result


def _failed_checks(result) -> set[str]:
    return {e.event_specific_data.check_name for e in result.all_events
            if e.event_type_value == "ASSET_CHECK_EVALUATION" and not e.event_specific_data.passed}


def _month_end(root, sql: str) -> dict:
    return month_end(root / "state" / "wh.duckdb", sql)


_differences = differences


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
    assert result.success, _failed_checks(result)
    yield root
    mp.undo()


def _truth(root):
    return truth_month_end(root / "truth")


def test_month_end_mrr_equals_ground_truth_to_the_cent(demo_warehouse):
    """The default landing keeps 30 days of Stripe events, as a real account does."""
    manifest = json.loads((demo_warehouse / "landing" / "_manifest.json").read_text())
    assert manifest["event_retention_days"] == 30
    truth = _truth(demo_warehouse)
    diffs = differences(truth, _month_end(demo_warehouse, MONTH_END_FROM_DAILY_CHANGES))
    assert len(truth) > 10_000
    assert diffs == [], f"{len(diffs)} account-months differ, e.g. {diffs[:5]}"


def test_churn_and_reactivation_months_match_ground_truth(demo_warehouse):
    expected = truth_churn_events(demo_warehouse / "truth")
    got = set(warehouse_rows(demo_warehouse / "state" / "wh.duckdb", CHURN_AND_REACTIVATION_FROM_DAILY_CHANGES))
    assert len(expected) > 100
    assert got == expected, (sorted(expected - got)[:5], sorted(got - expected)[:5])


def test_monthly_movements_match_ground_truth_churn_and_reactivation(demo_warehouse):
    expected = truth_churn_events(demo_warehouse / "truth")
    got = set(warehouse_rows(demo_warehouse / "state" / "wh.duckdb", MOVEMENTS_FROM_MRR_MONTHLY))
    assert got == expected


def test_revenue_monthly_kpis_match_the_bridge_of_the_ground_truth(demo_warehouse):
    """kpis.revenue_monthly (segment 'all'): every bridge amount and count exactly, NRR, GRR and logo churn to
    1e-9, against the same KPIs worked out in Python from the simulator's month-end MRR."""
    diffs = revenue_monthly_differences(demo_warehouse / "state" / "wh.duckdb", _truth(demo_warehouse))
    assert diffs == [], f"{len(diffs)} month/column values differ, e.g. {diffs[:5]}"


def test_health_score_predicts_churn_on_the_demo_company(demo_warehouse):
    from cs_kpis.defs.health.assets import backtest_summary

    with duckdb.connect(str(demo_warehouse / "state" / "wh.duckdb"), read_only=True) as con:
        summary = backtest_summary(con)
    assert summary["auc_pooled"] >= 0.75, summary
    assert summary["red_to_green_ratio"] >= 3, summary


@pytest.fixture(scope="module")
def tiny_30_day_events(tmp_path_factory):
    root, result = _materialize_retained(tmp_path_factory, "tiny_30d", "tiny", 30)
    return root, result


def test_thirty_days_of_events_tiny_company_matches_ground_truth(tiny_30_day_events):
    root, result = tiny_30_day_events
    assert result.success, _failed_checks(result)
    truth = _truth(root)
    with duckdb.connect(str(root / "state" / "wh.duckdb"), read_only=True) as con:
        first_event = con.execute("select min(cast(created_at as date)) from staging.stg_billing__events"
                                  ).fetchall()[0][0]
        first_month = con.execute("select min(month) from marts.dim_month").fetchall()[0][0]
        by_source = dict(con.execute("select source, count(*) from marts.subscription_states group by source"
                                     ).fetchall())
    # the events reach back 30 days only; the history before them comes from the invoices
    assert (first_event - first_month).days > 300
    assert by_source["invoices"] > by_source["events"] > 0
    ours = _month_end(root, MONTH_END_FROM_PERIODS)
    assert len(truth) > 300
    diffs = _differences(truth, ours)
    assert diffs == [], f"{len(diffs)} account-months differ, e.g. {diffs[:5]}"


def test_full_event_history_tiny_company_matches_ground_truth(tmp_path_factory):
    """With the whole event history the ledger alone makes the history (nothing rebuilt from invoices)."""
    root, result = _materialize_retained(tmp_path_factory, "tiny_full", "tiny", 0)
    assert result.success, _failed_checks(result)
    with duckdb.connect(str(root / "state" / "wh.duckdb"), read_only=True) as con:
        by_source = dict(con.execute("select source, count(*) from marts.subscription_states group by source"
                                     ).fetchall())
    assert by_source["events"] > 0 and "invoices" not in by_source
    truth = _truth(root)
    diffs = _differences(truth, _month_end(root, MONTH_END_FROM_PERIODS))
    assert len(truth) > 300
    assert diffs == [], f"{len(diffs)} account-months differ, e.g. {diffs[:5]}"


@pytest.mark.slow
def test_full_event_history_demo_company_matches_ground_truth(tmp_path_factory):
    root, result = _materialize_retained(tmp_path_factory, "demo_full", "demo", 0)
    assert result.success, _failed_checks(result)
    truth = _truth(root)
    diffs = _differences(truth, _month_end(root, MONTH_END_FROM_PERIODS))
    assert len(truth) > 10_000
    assert diffs == [], f"{len(diffs)} account-months differ, e.g. {diffs[:5]}"


@pytest.mark.slow
def test_no_events_at_all_demo_company_matches_ground_truth(tmp_path_factory):
    """The event ledger emptied entirely: history from invoices, pending invoice items and the
    subscriptions list alone still gives every account-month of the demo company."""
    root, result = _materialize_retained(tmp_path_factory, "demo_no_events", "demo", 30)
    assert result.success, _failed_checks(result)
    with duckdb.connect(str(root / "state" / "wh.duckdb")) as con:
        con.execute("delete from raw.billing__events")
    mp = pytest.MonkeyPatch()
    for var, rel in {"CS_KPIS_STATE_DIR": "state", "CS_KPIS_WAREHOUSE": "state/wh.duckdb",
                     "CS_KPIS_DLT_DIR": "state/dlt", "DAGSTER_HOME": "state/dagster_home",
                     "CS_KPIS_LANDING_DIR": "landing", "CS_KPIS_GROUND_TRUTH_DIR": "truth"}.items():
        mp.setenv(var, str(root / rel))
    mp.setenv("CS_KPIS_DEMO_SIZE", "demo")
    from cs_kpis.definitions import defs as lazy_defs

    defs = lazy_defs()
    after_raw = dg.AssetSelection.all() - dg.AssetSelection.groups("raw", "landing")
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(list(defs.assets) + list(defs.asset_checks or []), resources=defs.resources,
                                instance=instance, raise_on_error=False, selection=after_raw)
    mp.undo()
    assert result.success, _failed_checks(result)
    with duckdb.connect(str(root / "state" / "wh.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from staging.stg_billing__events").fetchall()[0][0] == 0
    truth = _truth(root)
    diffs = _differences(truth, _month_end(root, MONTH_END_FROM_PERIODS))
    assert len(truth) > 10_000
    assert diffs == [], f"{len(diffs)} account-months differ, e.g. {diffs[:5]}"


CRM_FIELDS = ("owner_id", "csm_id", "segment", "csm_sentiment")


def crm_history_differences(root, warehouse) -> dict:
    """Day by day, from the start of the field history's window (18 months before the first extract day, or
    the account's creation) to the last extract day: the CRM state marts.account_states and the health
    indicators give against the simulator's truth (``crm_account_fields.csv``, from its own record of every
    Account version). Returns the number of account-days compared, how many have no state or more than one,
    and the differing values, per table and field."""
    from cs_kpis.simulator import FIELD_HISTORY_MONTHS, months_before

    manifest = json.loads((root / "landing" / "_manifest.json").read_text())
    first, last = (dt.date.fromisoformat(d) for d in (manifest["extract_days"][0], manifest["extract_days"][-1]))
    cut = months_before(first, FIELD_HISTORY_MONTHS)
    con = duckdb.connect()
    con.execute(f"attach '{warehouse}' as wh (read_only)")
    con.execute("""create table steps as select account_id, field, cast(from_day as date) as from_day,
            lead(cast(from_day as date)) over (partition by account_id, field order by from_day) as to_day,
            nullif(value, '') as value
        from read_csv(?, all_varchar = true)""", [str(root / "truth" / "crm_account_fields.csv")])
    con.execute("""create table days as
        select account_id, cast(unnest(generate_series(cast(greatest(created, ?) as timestamp),
                                                       cast(? as timestamp), interval 1 day)) as date) as day
        from (select account_id, min(from_day) as created from steps group by account_id)""", [cut, last])
    con.execute(f"""create table truth as select d.account_id, d.day,
        {", ".join(f"max(case when s.field = '{f}' then s.value end) as {f}" for f in CRM_FIELDS)}
        from days as d join steps as s on s.account_id = d.account_id and s.from_day <= d.day
            and (s.to_day is null or s.to_day > d.day)
        group by d.account_id, d.day""")
    out = {"account_days": con.execute("select count(*) from truth").fetchall()[0][0],
           "before_first_extract": con.execute("select count(*) from truth where day < ?", [first]).fetchall()[0][0]}
    out["states_per_day"] = dict(con.execute("""
        select n, count(*) from (select t.account_id, t.day, count(s.account_id) as n from truth as t
            left join wh.marts.account_states as s on s.account_id = t.account_id and s.valid_from <= t.day
                and (s.valid_to is null or s.valid_to > t.day)
            group by t.account_id, t.day) group by n""").fetchall())
    for table, on in (("marts.account_states", "s.valid_from <= t.day and (s.valid_to is null or s.valid_to > t.day)"),
                      ("kpis.account_indicators_daily", "s.day = t.day")):
        fields = CRM_FIELDS if table == "marts.account_states" else CRM_FIELDS[1:]
        row = con.execute(f"""select count(*), {", ".join(f"count(*) filter (where s.{f} is distinct from t.{f})"
                                                          for f in fields)}
            from truth as t join wh.{table} as s on s.account_id = t.account_id and {on}""").fetchall()[0]
        out[table] = {"compared": row[0], **{f: n for f, n in zip(fields, row[1:], strict=True)}}
    con.close()
    return out


def _assert_crm_history_matches(diff: dict) -> None:
    assert diff["before_first_extract"] > 0.9 * diff["account_days"], diff  # the history is mostly before it
    assert diff["states_per_day"] == {1: diff["account_days"]}, diff  # one state on every day, no gap
    states = diff["marts.account_states"]
    assert states["compared"] == diff["account_days"], diff
    assert all(states[f] == 0 for f in CRM_FIELDS), diff
    indicators = diff["kpis.account_indicators_daily"]
    assert indicators["compared"] > 0.5 * diff["account_days"], diff  # days with a subscription
    assert all(indicators[f] == 0 for f in CRM_FIELDS[1:]), diff


def test_crm_history_before_the_first_load_matches_the_truth_tiny(tiny_30_day_events):
    """Owner, CSM, segment and sentiment on every day before the first load, rebuilt from AccountHistory."""
    root, _result = tiny_30_day_events
    _assert_crm_history_matches(crm_history_differences(root, root / "state" / "wh.duckdb"))


def test_crm_history_before_the_first_load_matches_the_truth_demo(demo_warehouse):
    """The demo company is older than the 18 months Salesforce keeps: compared from the window's start."""
    diff = crm_history_differences(demo_warehouse, demo_warehouse / "state" / "wh.duckdb")
    _assert_crm_history_matches(diff)
