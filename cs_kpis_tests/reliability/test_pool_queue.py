"""Overlapping runs queue on the warehouse pool instead of failing on DuckDB's file lock.

Two separate processes (as a nightly run and a manual one would be) materialize the raw product events
asset against one DAGSTER_HOME whose dagster.yaml is the project's (``concurrency: pools: default_limit:
1``). Run A is held, via the test-only pause point, while it has the warehouse open for writing; run B
starts then. B's step must wait ("Step blocked by limit for pool warehouse") and start only after A's
step ended, and both runs succeed.
"""

import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from cs_kpis import settings
from cs_kpis_tests.reliability import pause as hooks
from cs_kpis_tests.reliability.conftest import ROOT, child_env


def _step_times(instance: dg.DagsterInstance, run_id: str) -> dict[str, float]:
    times = {}
    for record in instance.all_logs(run_id):
        if record.dagster_event is None:
            continue
        kind = record.dagster_event.event_type_value
        if kind in ("STEP_START", "STEP_SUCCESS", "STEP_FAILURE"):
            times.setdefault(kind, record.timestamp)
    return times


def test_second_run_waits_for_the_pool(tiny_landing: Path, tmp_path: Path) -> None:
    home = settings.ensure_dagster_home(tmp_path / "dagster_home")
    assert "default_limit: 1" in (home / "dagster.yaml").read_text()
    warehouse, dlt_dir, marker = tmp_path / "w.duckdb", tmp_path / "dlt", tmp_path / "paused"
    args = [str(tiny_landing), str(warehouse), str(dlt_dir)]
    cmd = [sys.executable, "-m", "cs_kpis_tests.reliability.pool_child", *args]
    env = child_env(tmp_path, DAGSTER_HOME=str(home))
    env_a = {**env, hooks.PAUSE_AT_ENV: "product.after_insert", hooks.MARKER_ENV: str(marker),
             hooks.SECONDS_ENV: "5"}
    run_a = subprocess.Popen(cmd, env=env_a, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run_b = None
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert run_a.poll() is None, run_a.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "run A never reached the pause point"
            time.sleep(0.05)
        # A holds the warehouse now: without the pool, B's write would hit this very lock
        with pytest.raises(duckdb.IOException, match="lock"):
            duckdb.connect(str(warehouse), read_only=True)
        run_b = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out_a, err_a = run_a.communicate(timeout=180)
        out_b, err_b = run_b.communicate(timeout=180)
    finally:
        for proc in (run_a, run_b):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
    assert run_a.returncode == 0, err_a[-3000:]
    assert run_b.returncode == 0, err_b[-3000:]
    run_id_a, run_id_b = out_a.split()[-1], out_b.split()[-1]

    with dg.DagsterInstance.from_config(str(home)) as instance:
        for run_id in (run_id_a, run_id_b):
            assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.SUCCESS
        messages = [r.dagster_event.message or "" for r in instance.all_logs(run_id_b) if r.dagster_event]
        assert any("blocked by limit for pool warehouse" in m for m in messages), messages
        a, b = _step_times(instance, run_id_a), _step_times(instance, run_id_b)
        assert b["STEP_START"] >= a["STEP_SUCCESS"]
    with duckdb.connect(str(warehouse), read_only=True) as con:
        total, distinct = con.execute("select count(*), count(distinct message_id) from raw.product__events").fetchall()[0]
    assert total == distinct > 0
