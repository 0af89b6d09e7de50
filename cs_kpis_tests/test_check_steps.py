"""The checks of one asset in one step (cs_kpis.lib.checks.batch_checks, as the code location runs them): the
same check keys and results as one step per check, a failed blocking check still stops the assets downstream,
one check can still be run alone, and a check that raises leaves the other checks' results."""

import dagster as dg
import duckdb
import pytest
from dagster_duckdb import DuckDBResource

from cs_kpis import run
from cs_kpis.lib.checks import batch_checks, not_null_check, sql_check, unique_key_check

T = dg.AssetKey(["toy", "t"])
DOWN = dg.AssetKey(["toy", "down"])
WARN = {"blocking": False, "severity": dg.AssetCheckSeverity.WARN}


@dg.asset(key=T)
def toy_t() -> dg.MaterializeResult:
    return dg.MaterializeResult()


@dg.asset(key=DOWN, deps=[T])
def toy_down() -> dg.MaterializeResult:
    return dg.MaterializeResult()


def _checks(blocking_error: bool = False) -> list[dg.AssetChecksDefinition]:
    return [
        unique_key_check(T, "main.t", ["id"]),  # blocking; fails: id 1 twice
        sql_check(T, "t_reads_a_missing_table", "raises", "select * from main.missing") if blocking_error
        else not_null_check(T, "main.t", ["id"]),  # blocking; passes
        sql_check(T, "t_no_big_values", "v at most 100", "select * from main.t where v > 100", **WARN),  # fails
        sql_check(T, "t_has_rows", "t is not empty", "select 1 where not exists (select * from main.t)", **WARN),
    ]


@pytest.fixture
def warehouse(tmp_path):
    path = tmp_path / "wh.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("create table t as select * from (values (1, 10), (1, 200), (2, null)) as v(id, v)")
    return path


def _run(checks, warehouse, selection=None) -> dg.ExecuteInProcessResult:
    return dg.materialize([toy_t, toy_down, *checks], selection=selection, raise_on_error=False,
                          resources={"duckdb": DuckDBResource(database=str(warehouse))},
                          instance=dg.DagsterInstance.ephemeral())


def _outcome(result: dg.ExecuteInProcessResult) -> dict:
    return {e.check_name: (e.passed, e.severity, e.blocking, e.metadata["violations"].value, e.description)
            for e in result.get_asset_check_evaluations()}


def _check_steps(result: dg.ExecuteInProcessResult) -> set[str]:
    return {e.step_key for e in result.all_events
            if e.event_type == dg.DagsterEventType.STEP_START and e.step_key not in ("toy__t", "toy__down")}


def test_an_assets_checks_run_in_one_step_per_blocking_with_the_same_results(warehouse):
    batched = batch_checks(_checks())
    assert len(batched) == 2
    assert {spec.key for c in batched for spec in c.check_specs} == {spec.key for c in _checks() for spec in c.check_specs}
    result = _run(batched, warehouse)
    assert len(_check_steps(result)) == 2
    # what each check's own step reports (name, passed, severity, blocking, violations, description)
    error, warn = dg.AssetCheckSeverity.ERROR, dg.AssetCheckSeverity.WARN
    assert _outcome(result) == {
        "t_unique_id": (False, error, True, 1, "1 rows break the rule: main.t has exactly one row per (id)"),
        "t_not_null": (True, error, True, 0, None),
        "t_no_big_values": (False, warn, False, 1, "1 rows break the rule: v at most 100"),
        "t_has_rows": (True, warn, False, 0, None),
    }
    # the failed blocking check stops the asset downstream, as it did in a step of its own
    assert not result.success
    assert DOWN not in {e.asset_key for e in result.get_asset_materialization_events()}


def test_one_check_of_a_step_can_run_alone(warehouse):
    result = _run(batch_checks(_checks()), warehouse,
                  selection=dg.AssetSelection.checks(dg.AssetCheckKey(T, "t_no_big_values")))
    assert list(_outcome(result)) == ["t_no_big_values"]


def test_a_check_that_raises_fails_its_step_and_leaves_the_others_results(warehouse):
    checks = batch_checks(_checks(blocking_error=True))
    result = _run(checks, warehouse)
    assert set(_outcome(result)) == {"t_unique_id", "t_no_big_values", "t_has_rows"}
    [failure] = result.get_step_failure_events()
    assert "missing" in str(failure.step_failure_data.error)
    assert DOWN not in {e.asset_key for e in result.get_asset_materialization_events()}
    # the run command's summary: the failed check, and the step's error (not hidden behind the failed check)
    defs = dg.Definitions(assets=[toy_t, toy_down], asset_checks=checks,
                          resources={"duckdb": DuckDBResource(database=str(warehouse))})
    lines = run.failure_lines(result, defs)
    assert any(x.startswith("FAILED check toy/t:t_unique_id (ERROR, blocking)") for x in lines), lines
    assert any(x.startswith("FAILED step toy__t__blocking_checks ") and "missing" in x for x in lines), lines


def test_a_rule_reads_utc_days_whatever_the_connections_time_zone():
    """a check's cast of a timestamptz to a date is the UTC day, as in the models (a connection left at the
    machine's or a user's time zone named, or missed, rows a day off: the revenue history's discount ends)"""
    from cs_kpis.lib.checks import run_rule

    with duckdb.connect() as con:
        con.execute("set TimeZone = 'Pacific/Kiritimati'")  # UTC+14: noon UTC is the next day there
        sql = "select 1 as wrong_day where cast(timestamptz '2026-01-01 12:00:00+00' as date) <> date '2026-01-01'"
        assert run_rule(con, sql) == (0, "")
