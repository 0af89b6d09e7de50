"""`python -m cs_kpis.run`, executed in this process against tmp paths and a fake simulator."""

import re

import dagster as dg
import duckdb

from cs_kpis import run


def test_run_materializes_everything_and_prints_the_summary(project_env, monkeypatch, capsys):
    # the real simulator's tiny company, so every layer has data to build on
    monkeypatch.setenv("CS_KPIS_DEMO_SIZE", "tiny")
    assert run.main([]) == 0
    out = capsys.readouterr().out
    assert f"warehouse: {project_env.warehouse}" in out
    # warning checks may fail on a 60-account company; the landing check may not
    assert re.search(r"^landing_manifest_complete +1 +0$", out, re.MULTILINE), out
    assert re.search(r"^checks: \d+ passed, \d+ failed$", out, re.MULTILINE), out
    assert (project_env.dagster_home / "dagster.yaml").is_file()

    # the run is in the persistent instance, where `make ui` will find it
    with dg.DagsterInstance.from_config(str(project_env.dagster_home)) as instance:
        [record] = instance.get_run_records()
        assert record.dagster_run.is_success
        assert instance.get_latest_materialization_event(dg.AssetKey(["landing", "demo_company"]))


def test_run_exits_non_zero_when_the_run_fails(project_env, fake_simulator, capsys):
    fake_simulator.fail = True
    assert run.main([]) == 1
    assert "run failed: landing__demo_company" in capsys.readouterr().err


def test_warehouse_tables_lists_data_and_hides_bookkeeping(tmp_path):
    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("create schema raw_billing; create schema raw_billing_staging; create schema staging")
        con.execute("create table raw_billing.invoices as select * from range(3)")
        con.execute("create table raw_billing._dlt_loads as select 1 as x")
        con.execute("create table raw_billing_staging.invoices as select 1 as x")
        con.execute("create view staging.stg_billing__invoices as select * from raw_billing.invoices")
    assert run.warehouse_tables(path) == [
        ("raw_billing", "invoices", 3),
        ("staging", "stg_billing__invoices", 3),
    ]
    assert run.warehouse_tables(tmp_path / "absent.duckdb") == []


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
