"""The alerts multi-asset under Dagster: inputs with a failed blocking check (or too old) hold their types."""

import time

import dagster as dg
from dagster_duckdb import DuckDBResource

from cs_kpis.defs.alerts import assets as alert_assets
from cs_kpis.defs.alerts import checks as alert_checks
from cs_kpis_tests.alerts.fixtures import Warehouse, set_cells

CHANGES = dg.AssetKey(["kpis", "health_score_changes"])
SCORES = dg.AssetKey(["kpis", "health_scores_daily"])


def _stub(key):
    @dg.asset(key=key, group_name="stub")
    def _a():
        return dg.MaterializeResult()

    return _a


def _blocking_check(key, ok: bool):
    @dg.asset_check(asset=key, name="stub_rule", blocking=True)
    def _c():
        return dg.AssetCheckResult(passed=ok, severity=dg.AssetCheckSeverity.ERROR)

    return _c


def _warehouse(tmp_path):
    wh = Warehouse()
    set_cells(wh.scores, "A", "2025-03-31", "2025-03-31", band="red", score=30.0, delta_30d=-50.0)
    wh.changes.loc[0] = [wh.scores["day"].max(), "B", 30, -25.0, "health 80 → 55 (−25 in 30 d): usage −25",
                          -25.0, 0.0, 0.0, 0.0, 0.0]
    path = tmp_path / "wh.duckdb"
    wh.build(path).close()
    return path


def _run_alerts(instance, path, ok: bool):
    stubs = [_stub(CHANGES), _stub(SCORES)]
    check = _blocking_check(CHANGES, ok)
    res = {"duckdb": DuckDBResource(database=str(path))}
    # run 1: the input and its blocking check; run 2: only the alerts (the check's outcome is history)
    dg.materialize([*stubs, check], instance=instance, resources=res, raise_on_error=False)
    defs = dg.Definitions(assets=[*stubs, alert_assets.alerts], asset_checks=[check], resources=res)
    return defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=instance, asset_selection=[alert_assets.CANDIDATES, alert_assets.LOG])


def test_failed_blocking_check_holds_only_the_types_that_read_the_input(tmp_path):
    path = _warehouse(tmp_path)
    instance = dg.DagsterInstance.ephemeral()
    result = _run_alerts(instance, path, ok=False)
    assert result.success
    with DuckDBResource(database=str(path)).get_connection() as con:
        cand = con.execute("select alert_type, status, hold_reason from alerts.alert_candidates order by 1").fetchall()
        logged = con.execute("select alert_type from alerts.alert_log").fetchall()
    assert cand == [("health_drop", "held", ("input not trustworthy: kpis/health_score_changes: "
                                             "blocking check stub_rule failed")),
                    ("health_red", "new", None)]
    assert logged == [("health_red",)]  # the held raise waits: nobody is notified about a broken pipeline
    meta = result.asset_materializations_for_node("alerts")[0].metadata
    assert "health_drop" in meta["held_types"].value and meta["held_count"].value == 1

    # the check passes again: the hold lifts and the raise is logged (and so notified) now
    _run_alerts(instance, path, ok=True)
    with DuckDBResource(database=str(path)).get_connection() as con:
        statuses = con.execute("select alert_type, status from alerts.alert_candidates order by 1").fetchall()
        logged = con.execute("select alert_type, event from alerts.alert_log order by log_seq").fetchall()
    assert statuses == [("health_drop", "new"), ("health_red", "new")]
    assert logged == [("health_red", "raised"), ("health_drop", "raised")]


def test_stale_input_holds(tmp_path):
    instance = dg.DagsterInstance.ephemeral()
    dg.materialize([_stub(SCORES)], instance=instance)
    graph = dg.Definitions(assets=[_stub(SCORES)]).resolve_asset_graph()
    later = time.time() + 48 * 3600
    problems = alert_assets.input_problems(instance, graph, [SCORES, CHANGES], 36, now=later)
    assert list(problems) == [SCORES] and "(> 36 h)" in problems[SCORES]
    holds = alert_assets.holds_for(alert_assets.engine.load_rules(), problems)
    assert set(holds) == {"health_drop", "health_red", "renewal_risk", "expansion_opportunity"}
    assert alert_assets.input_problems(instance, graph, [SCORES], 36) == {}


def test_alert_checks_pass_on_a_built_warehouse(tmp_path):
    path = _warehouse(tmp_path)
    dg.materialize([alert_assets.alerts], resources={"duckdb": DuckDBResource(database=str(path))},
                   instance=dg.DagsterInstance.ephemeral())
    duck = DuckDBResource(database=str(path))
    for name in ("candidates_unique", "candidates_not_null", "held_have_a_reason", "candidates_have_an_owner",
                 "log_unique", "log_seq_unique"):
        result = getattr(alert_checks, name)(duckdb=duck)
        assert result.passed, name
