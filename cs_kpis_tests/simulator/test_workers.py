"""The simulator on two processes (cs_kpis/simulator/writer.py) writes the same bytes as on one; a failed,
interrupted or killed run leaves no scratch store and no helper process behind."""

import contextlib
import datetime as dt
import hashlib
import multiprocessing as mp
import os
import selectors
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pytest

from cs_kpis import simulator
from cs_kpis.folder_guard import simulator_may_replace, write_mark
from cs_kpis.simulator import generate, writer
from cs_kpis.simulator.writer import RemoteStore, WriterDied

# a subprocess's signals as a shell gives them: CI may run the suite as a background job, whose SIGINT is
# ignored (and Dagster maps SIGTERM to SIGINT's handler in a process that ran a job), and an ignored signal
# stays ignored across exec
_AS_FROM_A_SHELL = ("import signal\nsignal.signal(signal.SIGINT, signal.default_int_handler)\n"
                    "signal.signal(signal.SIGTERM, signal.SIG_DFL)\n")


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
    # where the seconds went, returned to the caller (the CLI prints it), not written into the manifest
    assert set(m["phases"]) == {"simulation_s", "truth_s", "waited_for_landing_s", "landing_s"}, m["phases"]
    sim, landing = m["phases"]["simulation_s"], m["phases"]["landing_s"]
    assert 0 < sim and 0 < landing and sim + landing <= m["seconds"] + 0.02  # each rounded to 0.01 s
    assert "phases" not in (tmp_path / "landing" / "_manifest.json").read_text()
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


def _event_rows() -> pa.Table:
    """One day's product events as the events process gets them (integer columns): one event."""
    return pa.table({c: pa.array([0], pa.int64()) for c in ("event", "seq", "account", "k", "ts_ms", "rcv_ms")})


def test_a_failed_events_writer_stops_the_simulation_with_its_error(tmp_path):
    # the product events are written by a process of their own: its failure (here the landing is a file, so
    # no events folder can be made) reaches the main process as well, with its traceback
    (tmp_path / "landing").write_text("not a folder")
    remote = RemoteStore(tmp_path / "versions.duckdb", tmp_path / "landing", seed=1)
    try:
        files = remote.event_files
        files.accounts(["u0000"], ["ws_0"])
        rows = _event_rows()
        with pytest.raises(WriterDied, match="events writer process failed"):
            for _ in range(200):  # more than its queue holds: the main process must notice, not hang
                files.day(dt.date(2026, 1, 1), rows, [])
            remote.write_landing(tmp_path / "landing", None, [], 30)
            remote.result()
    finally:
        remote.close()


def test_a_failed_writer_lets_the_process_exit(tmp_path):
    # after the failure the queue's feeder thread still holds batches no one reads: the process must exit anyway
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
    done = subprocess.run([sys.executable, "-c", _AS_FROM_A_SHELL + script, str(tmp_path)],
                          check=False, capture_output=True, text=True,
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


@pytest.mark.parametrize(("workers", "stop"), [(1, RuntimeError), (2, KeyboardInterrupt)])
def test_a_failed_or_interrupted_run_deletes_its_scratch_store(tmp_path, monkeypatch, workers, stop):
    # the run stops once the scratch store is open (the simulation fails, or Ctrl-C): the store (15 GB on the
    # large company) must not stay behind
    partial = tmp_path / "landing.partial"
    seen = []

    def fail(self):
        seen.append((partial / "_scratch").is_dir())
        raise stop("stopped by the test")

    monkeypatch.setattr(simulator.Company, "run", fail)
    children = set(mp.active_children())
    with pytest.raises(stop, match="stopped by the test"):
        generate(tmp_path / "landing", tmp_path / "truth", size="tiny", seed=7, workers=workers)
    assert seen == [True] and partial.is_dir() and not (partial / "_scratch").exists()
    simulator_may_replace(partial, "partial")  # still recognisably the simulator's: the next run replaces it
    assert not (tmp_path / "landing").exists() and not (tmp_path / "truth").exists()
    assert set(mp.active_children()) <= children  # the helper processes were stopped


def _events_dying(q, result, landing: str, seed: int, temp_directory: str) -> None:
    """An events process that dies at its first message without posting a result (killed, out of memory)."""
    q.get()
    os._exit(3)


def test_an_events_process_that_dies_without_a_result_stops_the_run(tmp_path, monkeypatch):
    monkeypatch.setattr(writer, "_events_main", _events_dying)  # the spawned process runs it
    with pytest.raises(WriterDied, match=r"events writer process died \(exit code 3\)"):
        generate(tmp_path / "landing", tmp_path / "truth", size="tiny", seed=7, workers=2)
    assert not (tmp_path / "landing.partial" / "_scratch").exists() and not (tmp_path / "landing").exists()


def test_the_helpers_start_only_once_nothing_else_can_fail(tmp_path, monkeypatch):
    # the main process's version buffer is built before the helper processes start: if it cannot be built,
    # no helper is left running (no one would stop it)
    def broken(*args):
        raise ValueError("no buffer")

    monkeypatch.setattr(writer, "VersionBuffer", broken)
    children = set(mp.active_children())
    with pytest.raises(ValueError, match="no buffer"):
        RemoteStore(tmp_path / "versions.duckdb", tmp_path, seed=1)
    assert set(mp.active_children()) <= children


def test_the_events_process_spills_into_the_scratch_folder(tmp_path):
    # its DuckDB is in memory: without a temp_directory it would spill into ./.tmp, wherever the run started
    assert writer._events_temp(tmp_path / "_scratch" / "versions.duckdb") == tmp_path / "_scratch" / "events.tmp"
    con = writer._events_connection(str(tmp_path / "events.tmp"))
    try:
        assert con.execute("select current_setting('temp_directory')").fetchone()[0] == str(tmp_path / "events.tmp")
    finally:
        con.close()


def test_a_waiting_helper_stops_when_the_main_process_is_gone(monkeypatch):
    # the backstop for a queue whose pipe never reports its end (another process holds its write end, here
    # this one): while no message comes, the helper checks that its parent is still the main process
    import threading

    q = mp.get_context("spawn").Queue()
    held = os.dup(q._writer.fileno())  # a write end that stays open: the pipe reports no end
    ppids = iter([4242] + [1] * 1000)  # the main process, then init: the main process is gone
    monkeypatch.setattr(writer, "_parent_pid", lambda: next(ppids))
    monkeypatch.setattr(writer, "_POLL", 0.05)
    got = []
    waiting = threading.Thread(target=lambda: got.extend(writer._messages(q)), daemon=True)
    try:
        waiting.start()
        waiting.join(10)
        assert not waiting.is_alive() and got == []
    finally:
        os.close(held)


def _read_line(proc: subprocess.Popen, timeout: float) -> str:
    """The subprocess's next line of output, or fail after ``timeout`` seconds."""
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            raise AssertionError(f"no output within {timeout} s")
    return proc.stdout.readline()


def _wait_for(what, timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        if time.monotonic() > deadline:
            raise AssertionError(message)
        time.sleep(0.05)


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command's name (state, ppid, ...), or None if it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _running(pid: int) -> bool:
    """The process exists and has not exited (an orphan's zombie, if nothing reaps it, has exited)."""
    stat = _stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def _started_at(pid: int) -> str | None:
    """The process's start time (clock ticks since boot): with its pid, it names one process, even once the pid
    is reused."""
    stat = _stat(pid)
    return None if stat is None else stat[19]  # field 22 of stat; the state is field 3


_HELPERS_WAITING = """
import datetime as dt, os, struct, sys, time
from pathlib import Path
import pyarrow as pa
from cs_kpis.simulator.writer import RemoteStore

tmp = Path(sys.argv[1])
remote = RemoteStore(tmp / "versions.duckdb", tmp / "landing", seed=1)
try:
    remote.event_files.accounts(["u0000"], ["ws_0"])
    remote.event_files.day(dt.date(2026, 1, 1), pa.table({c: pa.array([0], pa.int64())
                           for c in ("event", "seq", "account", "k", "ts_ms", "rcv_ms")}), [])
    # the events process waits for its next message; the writer is in the middle of one (its first bytes of
    # a MB, written as the queue's thread writes a message, under its lock) and waits for the rest
    q = remote._writer.q
    with q._wlock:
        os.write(q._writer.fileno(), struct.pack("!i", 1 << 20) + b"the start of a message")
        print(*(h.proc.pid for h in remote._helpers), flush=True)
        time.sleep(120)
except KeyboardInterrupt:
    time.sleep(0.5)  # the helpers had the signal too: give them the time to act on it
    print("helpers running:", [h.proc.is_alive() for h in remote._helpers], flush=True)
finally:
    remote.close()
"""

_STOPS_BEFORE_THE_LANDING = """
import os, struct, sys, time
from pathlib import Path
from cs_kpis.simulator import generate, writer

def stop(self, *args):  # the simulation is done; the helpers wait for the landing, the main process hangs
    q = self._writer.q
    with q._wlock:  # and the writer waits for the rest of a message, as in _HELPERS_WAITING
        os.write(q._writer.fileno(), struct.pack("!i", 1 << 20) + b"the start of a message")
        print(*(h.proc.pid for h in self._helpers), flush=True)
        time.sleep(600)

writer.RemoteStore.write_landing = stop
generate(Path(sys.argv[1]) / "landing", Path(sys.argv[1]) / "truth", size="tiny", seed=7, workers=2)
"""


def _start_helpers(tmp_path: Path, script: str, landing: str, scratch: str) -> tuple[subprocess.Popen, list[int]]:
    """Run ``script`` (its own process group, as a terminal's command) until both its helpers are waiting:
    the writer has opened its store, the events process has written a day. Returns it and the helpers' pids."""
    proc = subprocess.Popen([sys.executable, "-c", _AS_FROM_A_SHELL + script, str(tmp_path)],
                            stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        pids = [int(p) for p in _read_line(proc, 120).split()]
        assert len(pids) == 2
        _wait_for(lambda: (tmp_path / scratch).exists() and any((tmp_path / landing).glob("product/events/*/*")),
                  60, "the helpers did not start")
    except BaseException:  # the caller's cleanup does not know the process yet: it would be left running
        proc.kill()
        proc.wait(30)
        raise
    return proc, pids


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the helpers' state in /proc")
@pytest.mark.parametrize(("script", "landing", "scratch"), [
    (_HELPERS_WAITING, "landing", "versions.duckdb"),
    # the same in a whole run of the tiny company (slow: a few seconds more)
    pytest.param(_STOPS_BEFORE_THE_LANDING, "landing.partial", "landing.partial/_scratch/versions.duckdb",
                 marks=pytest.mark.slow),
])
def test_the_helpers_exit_when_the_main_process_is_killed(tmp_path, script, landing, scratch):
    started = {}
    proc = None
    try:
        proc, pids = _start_helpers(tmp_path, script, landing, scratch)
        started = {pid: _started_at(pid) for pid in pids}  # before the kill: the pids may be reused after it
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
        _wait_for(lambda: not any(_running(p) for p in pids), writer._POLL + 20,
                  "a helper process outlived the main process")
        assert not (tmp_path / scratch).exists()  # the writer deleted its store, which no one else would
    finally:
        if proc is not None:
            proc.kill()
            proc.wait(30)
        for pid, at in started.items():  # the test's own helper processes, if they are still there
            if at is not None and _running(pid) and _started_at(pid) == at:
                with contextlib.suppress(ProcessLookupError):  # it may exit meanwhile
                    os.kill(pid, signal.SIGKILL)


_TERMINATED_WHILE_RUNNING = """
import multiprocessing as mp, sys, time
from pathlib import Path
from cs_kpis import simulator

def run(self):  # the helpers are running, the scratch store open: the simulation takes its time
    print(*(p.pid for p in mp.active_children()), flush=True)
    time.sleep(120)

simulator.Company.run = run
simulator.generate(Path(sys.argv[1]) / "landing", Path(sys.argv[1]) / "truth", size="tiny", seed=7,
                   workers=int(sys.argv[2]))
"""


@pytest.mark.skipif(not hasattr(os, "killpg") or not Path("/proc/self/stat").exists(),
                    reason="signals a process group; finds the helpers' state in /proc")
@pytest.mark.parametrize("workers", [1, 2])
def test_a_sigterm_deletes_the_scratch_store(tmp_path, workers):
    # a process manager (or `kill`) stopping the run with SIGTERM, to its process group: the run cleans up as
    # after Ctrl-C (the scratch store is 15 GB on the large company) and exits with 128 + 15
    proc = subprocess.Popen([sys.executable, "-c", _AS_FROM_A_SHELL + _TERMINATED_WHILE_RUNNING, str(tmp_path), str(workers)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    scratch = tmp_path / "landing.partial" / "_scratch"
    try:
        pids = [int(p) for p in _read_line(proc, 120).split()]
        assert len(pids) == (2 if workers == 2 else 0)
        _wait_for(lambda: (scratch / "versions.duckdb").exists(), 60, "the scratch store was not opened")
        os.killpg(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait(30)
    assert proc.returncode == 128 + signal.SIGTERM, err[-3000:]
    assert not scratch.exists() and (tmp_path / "landing.partial").is_dir()
    assert not any(_running(p) for p in pids)


def test_sigterm_handling_is_generate_s_only():
    # the handler is set only while generate runs, and only over the default one
    before = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        with simulator._sigterm_stops_the_run():
            # (checked first: with the default handler, the signal would kill this test run)
            assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
            with pytest.raises(SystemExit) as stopped:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5)  # the handler runs at the next bytecode; never reached
            assert stopped.value.code == 128 + signal.SIGTERM
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # someone else's choice: left alone
        with simulator._sigterm_stops_the_run():
            assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, before)


_HOLDS_THE_LOCK = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_SH)  # as a helper process does (writer._hold_lock)
print("locked", flush=True)
time.sleep(120)
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="flock (fcntl): Linux and macOS")
def test_a_run_refuses_while_an_earlier_run_s_helper_still_works_in_its_folder(tmp_path):
    # an earlier run killed with SIGKILL: its helper still closes its store in <landing>.partial (a checkpoint
    # takes seconds); replacing the folder now would let it delete the new run's store by path
    partial = tmp_path / "landing.partial"
    (partial / "_scratch").mkdir(parents=True)
    write_mark(partial, "partial")
    lock = writer._lock_file(partial / "_scratch" / "versions.duckdb")
    holder = subprocess.Popen([sys.executable, "-c", _AS_FROM_A_SHELL + _HOLDS_THE_LOCK, str(lock)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert _read_line(holder, 30) == "locked\n"
        with pytest.raises(writer.HelperStillRunning, match="earlier run's helper process is still running"):
            generate(tmp_path / "landing", tmp_path / "truth", size="tiny", seed=7)
        assert lock.exists()  # nothing was changed
    finally:
        holder.kill()
        holder.wait(30)
    writer.no_helper_running(partial / "_scratch")  # once it is gone, a run may go ahead


@pytest.mark.skipif(not hasattr(os, "fork"), reason="flock (fcntl): Linux and macOS")
def test_the_helpers_hold_the_lock_while_they_run(tmp_path):
    remote = RemoteStore(tmp_path / "versions.duckdb", tmp_path / "landing", seed=1)
    try:
        def held():
            try:
                writer.no_helper_running(tmp_path)
            except writer.HelperStillRunning:
                return True
            return False

        _wait_for(held, 60, "the helpers took no lock")
    finally:
        remote.close()
    _wait_for(lambda: not held(), 10, "the lock outlived the helpers")


def test_a_helper_deletes_only_the_store_it_made(tmp_path):
    # the store's path now holds another store (a new run's): the old helper leaves it alone
    scratch = tmp_path / "versions.duckdb"
    scratch.write_text("the old run's store")
    made = writer._identity(str(scratch))
    old = tmp_path / "old"
    scratch.rename(old)  # keeps the old inode alive, so the new file cannot get its number
    scratch.write_text("the new run's store")
    (tmp_path / "versions.duckdb.wal").write_text("the new run's wal")
    writer._delete_store(str(scratch), made)
    assert scratch.exists() and (tmp_path / "versions.duckdb.wal").exists()
    writer._delete_store(str(scratch), writer._identity(str(scratch)))  # its own: deleted
    assert not scratch.exists() and not (tmp_path / "versions.duckdb.wal").exists()


def test_ctrl_c_is_the_main_process_s_to_handle(tmp_path):
    # a terminal's Ctrl-C sends SIGINT to the whole process group: the helpers leave it to the main process,
    # which stops them; they printed a traceback each
    proc, _ = _start_helpers(tmp_path, _HELPERS_WAITING, "landing", "versions.duckdb")
    try:
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait(30)
    assert "helpers running: [True, True]" in out, err[-3000:]
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err[-3000:]
