"""`python -m cs_kpis.run`, executed in this process against tmp paths (real, fake or toy definitions)."""

import re
import warnings
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from cs_kpis import run
from cs_kpis.defs.staging.assets import STAGING_MODELS


def test_run_materializes_everything_and_prints_the_summary(project_env, monkeypatch, capsys):
    # the real simulator's tiny company, so every layer has data to build on
    monkeypatch.setenv("CS_KPIS_DEMO_SIZE", "tiny")
    assert run.main([]) == 0  # WARN checks may fail on a 60-account company, ERROR checks may not
    out = capsys.readouterr().out
    assert f"warehouse: {project_env.warehouse}" in out
    assert re.search(r"^landing_manifest_complete +1 +0$", out, re.MULTILINE), out
    assert re.search(r"^checks: \d+ passed, \d+ failed \(0 of severity ERROR\)$", out, re.MULTILINE), out
    assert (project_env.dagster_home / "dagster.yaml").is_file()
    # the three reports, with their paths
    reports = dict(re.findall(r"^  (monthly|weekly|quarterly) +(\S+\.html)$", out, re.MULTILINE))
    assert set(reports) == {"monthly", "weekly", "quarterly"}, out
    assert all(Path(p).is_file() for p in reports.values())
    # data tables in the table; bookkeeping in one footnote
    table_lines = [line for line in out.splitlines() if re.match(r"^(raw|staging|marts|kpis|alerts) ", line)]
    assert any(" mrr_monthly " in line for line in table_lines)
    assert not any(re.search(r" _\w+ ", line) for line in table_lines), table_lines
    [note] = [line for line in out.splitlines() if line.startswith("* internal tables")]
    assert "raw._row_accounting (" in note and "_dlt_loads" in note
    # marts.mrr_daily is a view: its rows come from this run's materialization, not a second count, and match it
    [mrr_daily] = [line for line in table_lines if re.match(r"^marts +mrr_daily +[\d,]+$", line)]
    with duckdb.connect(str(project_env.warehouse), read_only=True) as con:
        (rows,) = con.execute("select count(*) from marts.mrr_daily").fetchone()
        assert con.execute("select table_type from information_schema.tables "
                           "where table_schema = 'marts' and table_name = 'mrr_daily'").fetchone() == ("VIEW",)
    assert rows > 0 and mrr_daily.split()[-1] == f"{rows:,}", (mrr_daily, rows)

    # the run is in the persistent instance, where `make ui` will find it
    with dg.DagsterInstance.from_config(str(project_env.dagster_home)) as instance:
        [record] = instance.get_run_records()
        assert record.dagster_run.is_success
        assert instance.get_latest_materialization_event(dg.AssetKey(["landing", "demo_company"]))

    # then only the report, for one cadence and a chosen period: one asset, one file named for the period
    assert run.main(["--select", "key:reports/kpi_report", "--cadences", "quarter", "--period", "current"]) == 0
    out = capsys.readouterr().out
    assert "materializing 1 asset (key:reports/kpi_report)" in out
    assert "assets materialized: 1" in out
    [(cadence, path)] = re.findall(r"^  (monthly|weekly|quarterly) +(\S+\.html)$", out, re.MULTILINE)
    assert cadence == "quarterly" and re.search(r"kpi_report_quarterly_\d{4}-Q[1-4]\.html$", path), out
    assert Path(path).is_file()

    # and the health scores rebuilt in full: the step says why it rebuilt everything
    assert run.main(["--select", "key:kpis/health_scores_daily", "--full-refresh"]) == 0
    out = capsys.readouterr().out
    assert "materializing 2 assets" in out  # health_score_changes comes with it: one step builds both
    with dg.DagsterInstance.from_config(str(project_env.dagster_home)) as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey(["kpis", "health_scores_daily"]))
        metadata = event.asset_materialization.metadata
        assert metadata["build_mode"].value == "full"
        assert metadata["build_reason"].value == "full_refresh requested"


def test_run_exits_non_zero_when_the_run_fails(project_env, fake_simulator, capsys):
    fake_simulator.fail = True
    assert run.main([]) == 1
    captured = capsys.readouterr()
    assert "run failed: landing__demo_company" in captured.err
    # one line for the failed step, with its reason and runbook section, instead of a stack trace and a
    # "Not executing" line for each of the ~200 steps behind it
    [line] = [x for x in captured.out.splitlines() if x.startswith("FAILED step")]
    assert line.startswith("FAILED step landing__demo_company (landing/demo_company): RuntimeError: "
                           "simulated simulator failure"), line
    assert line.endswith("[runbook §landing, cs_kpis/defs/automation/README.md]"), line
    assert re.search(r"^NOT RUN \d+ steps downstream of a failure", captured.out, re.MULTILINE)
    both = captured.out + captured.err
    assert "Not executing" not in both
    assert "Stack Trace" not in both
    assert captured.out.index("FAILED step") < captured.out.index("assets materialized:")


def test_summary_reads_the_warehouse_after_a_failed_sql_step(project_env, capsys):
    """A failed SQL model left its DuckDB connection open, and the summary's read-only connection then
    crashed: "Can't open a connection to same database file with a different configuration"."""
    from cs_kpis import settings

    settings.prepare_state()
    project_env.warehouse.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(project_env.warehouse)) as con:
        con.execute("create schema raw; create table raw.crm__accounts as select 1 as x")
    # raw.billing__invoices does not exist: the model's SQL fails
    assert run.main(["--select", "key:staging/stg_billing__invoices"]) == 1
    out = capsys.readouterr().out
    [line] = [x for x in out.splitlines() if x.startswith("FAILED step")]
    assert "staging__stg_billing__invoices (staging/stg_billing__invoices): " in line
    assert "raw.billing__invoices" in line and "[runbook §staging," in line
    assert "could not read the warehouse" not in out
    assert re.search(r"^raw +crm__accounts +1$", out, re.MULTILINE), out


def _toy_definitions(severity, blocking: bool):
    @dg.asset(group_name="toy")
    def toy_table() -> dg.MaterializeResult:
        return dg.MaterializeResult()

    @dg.asset(group_name="toy", deps=[toy_table])
    def toy_downstream() -> dg.MaterializeResult:
        return dg.MaterializeResult()

    @dg.asset_check(asset=toy_table, blocking=blocking)
    def toy_rule() -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=False, severity=severity, description="3 rows break the rule",
                                   metadata={"violations": 3})

    return dg.Definitions(assets=[toy_table, toy_downstream], asset_checks=[toy_rule])


@pytest.mark.parametrize(("severity", "blocking", "exit_code"), [
    (dg.AssetCheckSeverity.ERROR, False, 1),
    (dg.AssetCheckSeverity.ERROR, True, 1),
    (dg.AssetCheckSeverity.WARN, False, 0),
])
def test_a_failed_error_check_makes_the_run_exit_non_zero_blocking_or_not(
        project_env, monkeypatch, capsys, severity, blocking, exit_code):
    monkeypatch.setattr(run, "_load_definitions", lambda: _toy_definitions(severity, blocking))
    assert run.main([]) == exit_code
    captured = capsys.readouterr()
    [line] = [x for x in captured.out.splitlines() if x.startswith("FAILED check")]
    kind = severity.value + (", blocking" if blocking else "")
    assert line == (f"FAILED check toy_table:toy_rule ({kind}): 3 rows break the rule "
                    "[runbook: cs_kpis/defs/automation/README.md]")
    if exit_code:
        assert "toy_table:toy_rule" in captured.err
    else:
        assert captured.err.count("run failed") == 0


def test_select_builds_only_the_selection(project_env, monkeypatch, capsys):
    monkeypatch.setattr(run, "_load_definitions",
                        lambda: _toy_definitions(dg.AssetCheckSeverity.WARN, blocking=False))
    assert run.main(["--select", "key:toy_downstream"]) == 0
    assert "assets materialized: 1" in capsys.readouterr().out
    with dg.DagsterInstance.from_config(str(project_env.dagster_home)) as instance:
        assert instance.get_latest_materialization_event(dg.AssetKey("toy_downstream"))
        assert not instance.get_latest_materialization_event(dg.AssetKey("toy_table"))
    # a selection that matches nothing, or does not parse, is an argument error
    assert run.main(["--select", "key:no_such_asset"]) == 2
    assert "matches no asset" in capsys.readouterr().err
    assert run.main(["--select", "key:((("]) == 2
    assert "--select 'key:((('" in capsys.readouterr().err


@pytest.fixture(scope="module")
def project_defs(tmp_path_factory):
    """The project's definitions, loaded once for the module with every path under a tmp folder."""
    from cs_kpis.definitions import defs
    from cs_kpis_tests.conftest import TEST_ENV

    root = tmp_path_factory.mktemp("defs")
    with pytest.MonkeyPatch.context() as mp:
        for name, relative in TEST_ENV.items():
            mp.setenv(name, str(root / relative))
        yield defs()


def _run_config(project_defs, *argv):
    args = run.parse_args(list(argv))
    keys = run.select_assets(project_defs, args.select)
    job = project_defs.resolve_implicit_global_asset_job_def()
    subset = job if args.select == "*" else job.get_subset(asset_selection=set(keys))
    return subset, run.run_config_for(subset, args)


def test_selection_syntax_resolves_like_dagsters(project_defs):
    kpis = run.select_assets(project_defs, "key:kpis/*")
    assert kpis and all(k.path[0] == "kpis" for k in kpis)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no framework warning on the console for a plain selection
        marts_down = run.select_assets(project_defs, "group:marts+")
    assert {k.path[0] for k in marts_down} >= {"marts", "kpis"}
    assert dg.AssetKey(["staging", "stg_billing__events"]) not in marts_down
    everything = run.select_assets(project_defs, "*")
    assert len(everything) == len(project_defs.resolve_all_asset_keys())


def test_options_set_the_same_run_config_as_the_launchpad(project_defs):
    job, config = _run_config(project_defs, "--full-refresh", "--period", "2026-Q3", "--cadences", "quarter,month")
    assert sum(m.by_load for m in STAGING_MODELS) == 15
    assert config["ops"] == {
        "alerts": {"config": {"full_refresh": True}},
        "kpis__account_activity_daily": {"config": {"full_refresh": True}},
        "kpis__account_indicators_daily": {"config": {"full_refresh": True}},
        "health_scores_daily": {"config": {"full_refresh": True}},
        # every staging model built by raw load (stg_product__events, and the models over merged raw tables)
        **{f"staging__{m.name}": {"config": {"full_refresh": True}} for m in STAGING_MODELS if m.by_load},
        "reports__kpi_report": {"config": {"period": "2026-Q3", "cadences": ["quarter", "month"]}},
    }
    # Dagster accepts it against each asset's Config class: the same keys and meanings as in the UI
    assert dg.validate_run_config(job, config)
    # nothing asked, nothing set: the assets' defaults apply
    _, config = _run_config(project_defs)
    assert "ops" not in config
    # only the selected assets get it
    job, config = _run_config(project_defs, "--select", "key:kpis/account_indicators_daily", "--full-refresh")
    assert config["ops"] == {"kpis__account_indicators_daily": {"config": {"full_refresh": True}}}
    assert dg.validate_run_config(job, config)


def test_an_option_no_selected_asset_takes_is_refused(project_defs, project_env, capsys):
    with pytest.raises(run.UsageError, match="--full-refresh: none of the selected assets"):
        _run_config(project_defs, "--select", "key:marts/*", "--full-refresh")
    with pytest.raises(run.UsageError, match="--period"):
        _run_config(project_defs, "--select", "key:kpis/*", "--period", "current")
    assert run.main(["--select", "key:marts/*", "--cadences", "week"]) == 2
    assert "--cadences: none of the selected assets" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run.parse_args(["--cadences", "fortnight"])


def test_the_cadence_choices_are_the_reports():
    from cs_kpis.defs.reports import render

    assert set(run.CADENCES) == set(render.CADENCES)


def test_warehouse_tables_lists_everything_and_marks_bookkeeping(tmp_path, capsys):
    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("create schema raw_billing; create schema raw_billing_staging; create schema staging")
        con.execute("create table raw_billing.invoices as select * from range(3)")
        con.execute("create table raw_billing._dlt_loads as select 1 as x")
        con.execute("create table raw_billing._quarantine as select 1 as x")
        con.execute("create table raw_billing_staging.invoices as select 1 as x")
        con.execute("create view staging.stg_billing__invoices as select * from raw_billing.invoices")
    tables = run.warehouse_tables(path)
    assert tables == [
        ("raw_billing", "_dlt_loads", 1),
        ("raw_billing", "_quarantine", 1),
        ("raw_billing", "invoices", 3),
        ("staging", "stg_billing__invoices", 3),
    ]
    assert run.warehouse_tables(tmp_path / "absent.duckdb") == []
    run.print_tables(tables)
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == ("* internal tables, not listed above: raw_billing._quarantine (1 row); "
                       "1 dlt bookkeeping tables (_dlt_loads)")
    assert not any("_dlt_loads" in line or "_quarantine" in line for line in out[:-1])


def test_the_summary_takes_a_views_rows_from_the_runs_materialization(tmp_path):
    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("create schema marts; create table marts.periods as select * from range(5)")
        con.execute("create view marts.mrr_daily as select * from marts.periods, range(2)")
    # a view this run materialized: the rows its materialization counted (a different number here, to tell
    # them apart), not counted again; a table is always counted; a view the run did not build is counted
    recorded = {("marts", "mrr_daily"): 7, ("marts", "periods"): 99}
    assert run.warehouse_tables(path, recorded) == [("marts", "mrr_daily", 7), ("marts", "periods", 5)]
    assert run.warehouse_tables(path, {("marts", "periods"): 99}) == [("marts", "mrr_daily", 10),
                                                                      ("marts", "periods", 5)]

    class Event:  # what `result.get_asset_materialization_events()` hands over: its materialization's metadata
        def __init__(self, **metadata):
            self.materialization = dg.AssetMaterialization("x", metadata=metadata)

    events = [Event(**{"dagster/table_name": "marts.mrr_daily", "dagster/row_count": dg.MetadataValue.int(10)}),
              Event(**{"dagster/table_name": "cs_kpis.kpis.health_scores", "dagster/row_count": 3}),
              Event(**{"dagster/row_count": 4}), Event(**{"dagster/table_name": "kpis.no_count"})]
    assert run.materialized_row_counts(events) == {("marts", "mrr_daily"): 10, ("kpis", "health_scores"): 3}


def test_abandoned_runs_of_this_command_release_their_pool_slots(project_env):
    import socket
    import subprocess
    import sys

    from cs_kpis import settings

    settings.prepare_state()
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], check=True, capture_output=True, text=True
    )
    dead_pid = dead.stdout.strip()
    tags = {run.LAUNCHED_BY_TAG: run.LAUNCHED_BY, run.HOST_TAG: socket.gethostname()}
    with dg.DagsterInstance.get() as instance:
        abandoned = instance.add_run(
            dg.DagsterRun(
                job_name="__ASSET_JOB",
                status=dg.DagsterRunStatus.STARTED,
                tags={**tags, run.PID_TAG: dead_pid},
            )
        )
        alive = instance.add_run(
            dg.DagsterRun(
                job_name="__ASSET_JOB", status=dg.DagsterRunStatus.STARTED, tags={**tags, run.PID_TAG: "1"}
            )
        )
        from_ui = instance.add_run(dg.DagsterRun(job_name="__ASSET_JOB", status=dg.DagsterRunStatus.STARTED))
        storage = instance.event_log_storage
        storage.initialize_concurrency_limit_to_default("warehouse")
        assert storage.claim_concurrency_slot("warehouse", abandoned.run_id, "step").is_claimed

        assert run.release_abandoned_runs(instance) == [abandoned.run_id]
        assert instance.get_run_by_id(abandoned.run_id).status == dg.DagsterRunStatus.FAILURE
        assert instance.get_run_by_id(alive.run_id).status == dg.DagsterRunStatus.STARTED
        assert instance.get_run_by_id(from_ui.run_id).status == dg.DagsterRunStatus.STARTED
        assert storage.get_concurrency_info("warehouse").claimed_slots == []


def test_pool_slots_left_held_by_finished_or_unknown_runs_are_released(project_env):
    # what a power loss can leave with the event log's synchronous=NORMAL: a step's release of its slot lost while
    # runs.db kept the run's success; a slot of a run still going, or of a run Dagster never finished, stays
    from cs_kpis import settings

    settings.prepare_state()
    with dg.DagsterInstance.get() as instance:
        done = instance.add_run(dg.DagsterRun(job_name="__ASSET_JOB", status=dg.DagsterRunStatus.SUCCESS))
        failed = instance.add_run(dg.DagsterRun(job_name="__ASSET_JOB", status=dg.DagsterRunStatus.FAILURE))
        going = instance.add_run(dg.DagsterRun(job_name="__ASSET_JOB", status=dg.DagsterRunStatus.STARTED))
        storage = instance.event_log_storage
        storage.set_concurrency_slots("warehouse", 3)
        for r in (done, going):
            assert storage.claim_concurrency_slot("warehouse", r.run_id, "step").is_claimed
        assert storage.claim_concurrency_slot("warehouse", "gone-from-runs-db", "step").is_claimed
        storage.set_concurrency_slots("other", 0)  # a pending step of a failed run, which never got a slot
        assert not storage.claim_concurrency_slot("other", failed.run_id, "step").is_claimed
        assert failed.run_id in storage.get_concurrency_run_ids()

        assert run.release_slots_of_finished_runs(instance) == sorted([done.run_id, failed.run_id, "gone-from-runs-db"])
        assert [s.run_id for s in storage.get_concurrency_info("warehouse").claimed_slots] == [going.run_id]
        assert failed.run_id not in storage.get_concurrency_run_ids()
        assert run.release_slots_of_finished_runs(instance) == []
