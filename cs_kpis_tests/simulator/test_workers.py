"""The simulator on two processes (cs_kpis/simulator/writer.py) writes the same bytes as on one."""

import hashlib
import shutil
from pathlib import Path

import pytest

from cs_kpis.simulator import generate, writer
from cs_kpis.simulator.writer import RemoteStore, WriterDied


def _digest(folder: Path) -> dict[str, str]:
    # every file, hidden ones (the simulator's mark) included
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_two_workers_write_the_same_bytes_as_one(tmp_path, tiny_company):
    m = generate(tmp_path / "landing", tmp_path / "truth", size="tiny", seed=7, workers=2)
    one = _digest(tiny_company / "landing")
    assert len(one) > 100 and _digest(tmp_path / "landing") == one
    assert _digest(tmp_path / "truth") == _digest(tiny_company / "truth")
    assert m["counts"]["product/events"] > 0
    assert not (tmp_path / "landing.partial").exists() and not (tmp_path / "truth.partial").exists()


def test_a_failed_writer_stops_the_simulation_with_its_error(tmp_path):
    # the writer cannot open its version store (no such folder): the main process gets its traceback
    remote = RemoteStore(tmp_path / "missing" / "versions.duckdb", tmp_path, seed=1)
    try:
        with pytest.raises(WriterDied, match="writer process failed"):
            for i in range(200_000):  # more than the queue holds: the main process must notice, not hang
                remote.add("crm/User", str(i), i, {"Id": str(i)})
            remote.write_landing(tmp_path, None, [], 30)
            remote.result()
    finally:
        remote.close()


def test_a_failed_events_writer_stops_the_simulation_with_its_error(tmp_path):
    # the product events are written by a process of their own: its failure (here the landing is a file, so
    # no events folder can be made) reaches the main process as well, with its traceback
    import datetime as dt

    import pyarrow as pa

    (tmp_path / "landing").write_text("not a folder")
    remote = RemoteStore(tmp_path / "versions.duckdb", tmp_path / "landing", seed=1)
    try:
        files = remote.event_files
        files.accounts(["u0000"], ["ws_0"])
        rows = pa.table({c: pa.array([0], pa.int64()) for c in ("event", "seq", "account", "k", "ts_ms", "rcv_ms")})
        with pytest.raises(WriterDied, match="events writer process failed"):
            for _ in range(200):  # more than its queue holds: the main process must notice, not hang
                files.day(dt.date(2026, 1, 1), rows, [])
            remote.write_landing(tmp_path / "landing", None, [], 30)
            remote.result()
    finally:
        remote.close()


def test_a_failed_writer_lets_the_process_exit(tmp_path):
    # after the failure the queue's feeder thread still holds batches no one reads: the process must exit anyway
    import subprocess
    import sys

    script = (
        "import sys; from pathlib import Path\n"
        "from cs_kpis.simulator.writer import RemoteStore, WriterDied\n"
        "remote = RemoteStore(Path(sys.argv[1]) / 'missing' / 'v.duckdb', Path(sys.argv[1]), seed=1)\n"
        "try:\n"
        "    for i in range(200_000):\n"
        "        remote.add('crm/User', str(i), i, {'Id': str(i)})\n"
        "    remote.write_landing(Path(sys.argv[1]), None, [], 30)\n"
        "    remote.result()\n"
        "except WriterDied:\n"
        "    print('writer died')\n"
        "finally:\n"
        "    remote.close()\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=False, capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "writer died" in done.stdout


def _writer_failing_at_the_landing(q, result, scratch: str, landing: str, seed: int) -> None:
    """A writer process that takes every batch, then fails when asked for the landing parts (a full disk)."""
    while True:
        msg = q.get()
        if msg[0] == "landing":
            result.put(("error", "OSError: [Errno 28] No space left on device (the test's writer)"))
            return


def test_a_failed_writer_leaves_no_ground_truth_without_its_landing(tmp_path, tiny_company, monkeypatch):
    # an earlier run's landing and ground truth: both must stay as they were, a matching pair
    shutil.copytree(tiny_company / "landing", tmp_path / "landing")
    shutil.copytree(tiny_company / "truth", tmp_path / "truth")
    before = _digest(tmp_path / "landing"), _digest(tmp_path / "truth")
    monkeypatch.setattr(writer, "_writer_main", _writer_failing_at_the_landing)  # the spawned process runs it
    with pytest.raises(WriterDied, match="No space left on device"):
        generate(tmp_path / "landing", tmp_path / "truth", size="tiny", seed=8, workers=2)
    # no ground truth of seed 8 beside the landing of seed 7 (it was written while the writer worked)
    assert (_digest(tmp_path / "landing"), _digest(tmp_path / "truth")) == before


def test_workers_must_be_one_or_two(tmp_path):
    with pytest.raises(ValueError, match="workers must be 1 or 2"):
        generate(tmp_path / "landing", tmp_path / "truth", size="tiny", seed=7, workers=3)
