"""A load killed with SIGKILL mid-run and then rerun ends with the same tables as an uninterrupted run.

The ingestion (all five systems, files mode, the tiny simulated company with two increments) runs in a
subprocess; a test-only pause point (``CS_KPIS_TEST_PAUSE_AT``) stops it at a chosen moment, the test
kills it with SIGKILL, reruns it to completion and compares every raw table (rows sorted, dlt load ids,
row ids and wall-clock stamps left out) with an uninterrupted run into another warehouse.
"""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import duckdb
import pytest

from cs_kpis_tests.reliability import pause as hooks
from cs_kpis_tests.reliability.conftest import ROOT, child_env, ingest_cmd, raw_snapshot, run_ingest


def _kill_at(point: str, landing: Path, tmp: Path) -> None:
    """Start the ingestion, wait until it reaches ``point``, SIGKILL it."""
    marker = tmp / "paused"
    env = child_env(tmp, **{hooks.PAUSE_AT_ENV: point, hooks.MARKER_ENV: str(marker),
                            hooks.SECONDS_ENV: "300"})
    proc = subprocess.Popen(ingest_cmd(landing, tmp / "w.duckdb", tmp / "dlt"), env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while not marker.exists():
            if proc.poll() is not None:
                raise AssertionError(f"ended before reaching {point}: {proc.stderr.read()[-3000:]}")
            assert time.monotonic() < deadline, f"{point} not reached in 180 s"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()


POINTS = [
    # product events committed by the direct DuckDB insert, dlt state for them not yet
    "product.after_insert",
    # a batch's insert committed, its duplicates (within it and against earlier loads) not yet deleted
    pytest.param("product.before_duplicate_delete", marks=pytest.mark.slow),
    # every table of the billing package loaded (merges, appends to _row_accounting), not marked complete
    "before_complete.billing.1",
    # crm accounts (scd2) half caught up: the second of three daily loads loaded, not marked complete
    "before_complete.crm.2",
    # between two completed crm loads (slow: each point is a killed run plus a full rerun, ~25 s)
    pytest.param("loaded.crm.1", marks=pytest.mark.slow),
    # mid extract of support: nothing of it in the warehouse yet
    pytest.param("extracted.support__tickets", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("point", POINTS)
def test_killed_then_rerun_matches_uninterrupted(point: str, reference: dict, tiny_landing: Path,
                                                  tmp_path: Path) -> None:
    _kill_at(point, tiny_landing, tmp_path)
    if point.startswith("product."):
        # the dangerous state really happened: events in the table under a load that never completed
        with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
            orphans, distinct = con.execute(
                "select count(*), count(distinct message_id) from raw.product__events").fetchall()[0]
        assert orphans > 0
        if point == "product.before_duplicate_delete":
            assert orphans > distinct  # the batch's duplicates are in the table when the load dies
    out = run_ingest(tiny_landing, tmp_path / "w.duckdb", tmp_path / "dlt", child_env(tmp_path))
    results = {r["system"]: r for r in map(json.loads, out.splitlines())}
    assert all(r["balanced"] for r in results.values())
    tables = raw_snapshot(tmp_path / "w.duckdb")
    assert sorted(tables) == sorted(reference["tables"])
    for name, rows in reference["tables"].items():
        assert tables[name] == rows, f"raw.{name} differs after kill at {point}"
    if point.startswith("product."):
        # the rerun counted the events it re-inserted as loaded, not as duplicates of the dead run's rows
        assert results["product"]["rows_loaded"] == reference["results"]["product"]["rows_loaded"]


@pytest.mark.slow
@pytest.mark.parametrize("fraction", [0.2, 0.4, 0.6, 0.8])
def test_killed_at_a_random_moment(fraction: float, reference: dict, tiny_landing: Path, tmp_path: Path) -> None:
    """Kill after a share of an uninterrupted run's wall time, wherever the load is (slow: ~1 min)."""
    started = time.monotonic()
    run_ingest(tiny_landing, tmp_path / "probe.duckdb", tmp_path / "probe_dlt", child_env(tmp_path))
    took = time.monotonic() - started
    proc = subprocess.Popen(ingest_cmd(tiny_landing, tmp_path / "w.duckdb", tmp_path / "dlt"),
                            env=child_env(tmp_path), cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    time.sleep(took * fraction)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    run_ingest(tiny_landing, tmp_path / "w.duckdb", tmp_path / "dlt", child_env(tmp_path))
    assert raw_snapshot(tmp_path / "w.duckdb") == reference["tables"]
