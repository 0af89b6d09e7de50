"""The simulator's helper processes: they store the object versions and write the files while the
simulation runs on.

``generate(..., workers=2)`` splits the work as a pipeline rather than by account, over two cores:

- the main process runs the simulation (the day loop, every random draw, every id) and serializes each
  object version to JSON, exactly as with one process; it is the critical path (nearly 60 % of the CPU at
  large's mix), so it has a core to itself and does none of the writing;
- the writer process (:func:`_writer_main`, started with ``spawn``) owns the scratch version store: it
  inserts the versions the main process sends (batches of up to 50,000 versions, each in chunks of 10,000
  as flat buffers: ``store.VersionBuffer``, which also drops the versions no extract can show), and at the
  end writes every entity's extract-day parts (``landing.write_bodies``) while the main process writes the
  ground truth into ``<ground truth>.partial``; ``generate`` moves it into place only after the writers
  reported success and the landing is in place, so a failed writer leaves no ground truth for a landing
  that does not exist;
- the events process (:func:`_events_main`) formats and writes each day's product events with DuckDB. It
  is a process of its own, not more work in the writer's loop, because the version store stalls now and
  then: each checkpoint (one per GB of versions) held it 8-17 s on the large company, a dozen times (the
  gaps between its days' event files), the days' events waited behind it, and the main process behind them
  (BENCHMARKS.md, issue 18, session 15). It gets the events as integer columns and looks up their text
  (segment.EventFiles). The two writers share the second core.

Every draw, id and sequence number is made in the main process in the same order as with one process, and
the writers run the same code on the same rows, so the landing folder and the ground truth are the same
bytes whatever the number of processes (cs_kpis_tests/simulator/test_workers.py checks it). Why not a split
by account: the simulation draws from streams shared by all accounts and numbers ids company-wide
(BENCHMARKS.md, "Demo company simulator"), so a split by account would change the company for every seed.

The queues to the writers are bounded, so a slow writer slows the simulation down instead of filling
memory. A writer that fails or dies stops the simulation with its error (noticed at the next message to it,
or within :data:`_POLL` seconds while the main process waits on it); the main process never waits on a dead
one. The other way round, the helpers never outlive the main process: Ctrl-C is the main process's to
handle (the helpers ignore SIGINT, so one Ctrl-C prints one traceback, not three; ``generate`` then stops
them and deletes the scratch store; a SIGTERM to the process group kills the helpers where they stand,
and the main process, where ``generate`` turns it into ``SystemExit``, deletes the scratch store the same
way), and a helper waiting for a message notices when the main
process is gone (killed with SIGKILL, or crashed without stopping them: :func:`_messages`); it then closes
what it opened and exits, the writer deleting its version store's files (about 15 GB on the large company).
A helper busy with its final work (the writer's landing parts) finishes it first. Each helper holds a shared
``flock`` on ``<landing>.partial/_scratch/helpers.lock`` for its whole life, and a new run refuses to replace
a partial folder while that lock is held (:func:`no_helper_running`): an earlier run's helper still closing
its store (its main process killed) would otherwise delete the new run's store at the same path, or write into
its landing; it deletes its own store only if the file at that path is still the one it made.
"""

import multiprocessing as mp
import os
import queue
import shutil
import signal
import threading
import traceback
from pathlib import Path

from .store import VersionBuffer

_VERSION_QUEUE = 32
"""chunks of versions in flight to the writer (10,000 versions each, about 10-15 MB on the large company): the
simulation goes on through a few seconds of the store's checkpoint (store.py) without waiting; at most about
0.5 GB held in the main process"""
_EVENTS_QUEUE = 16
"""days of product events in flight to the events process (a few MB each on the large company)"""
_POLL = 1.0
"""seconds between the checks that the other side is still there: the main process waiting on a full queue or
for a result checks its helper, a helper waiting for a message checks the main process"""


_parent_pid = os.getppid
"""this process's parent's pid, as :func:`_messages` checks it (a seam: tests replace it, not ``os.getppid``)"""


class WriterDied(RuntimeError):
    pass


class _Helper:
    """One helper process fed through a bounded queue; it posts ("ok", value) or ("error", traceback) on a
    second queue when it is done."""

    def __init__(self, ctx, target, args: tuple, what: str, maxsize: int):
        self.what = what
        self.q = ctx.Queue(maxsize=maxsize)
        self._result = ctx.Queue()
        self.proc = ctx.Process(target=target, args=(self.q, self._result, *args),
                                name=f"cs_kpis-simulator-{what.replace(' ', '-')}", daemon=True)
        # an ignored SIGTERM stays ignored across exec, and close() stops a helper with it: a helper that is
        # still starting up when it comes must not have inherited SIG_IGN (a background job's SIGINT, which
        # Dagster's handlers map SIGTERM to)
        ignored = (threading.current_thread() is threading.main_thread()
                   and signal.getsignal(signal.SIGTERM) is signal.SIG_IGN)
        if ignored:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
        try:
            self.proc.start()
        finally:
            if ignored:
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
        self.done = False

    def send(self, msg) -> None:
        self.check()  # a helper that died is noticed at the next message, not only once its queue is full
        while True:
            try:
                self.q.put(msg, timeout=_POLL)
                return
            except queue.Full:
                self.check()

    def check(self) -> None:
        if not self.proc.is_alive():
            try:
                _, value = self._result.get_nowait()
            except queue.Empty:
                raise self._died() from None
            raise WriterDied(f"the simulator's {self.what} process failed:\n{value}")

    def result(self):
        """Wait for the process's result; return it (or raise its error)."""
        while True:
            try:
                kind, value = self._result.get(timeout=_POLL)
                break
            except queue.Empty:
                if not self.proc.is_alive():
                    try:  # it may have posted its result just before it exited
                        kind, value = self._result.get(timeout=1)
                        break
                    except queue.Empty:
                        raise self._died() from None
        self.proc.join()
        if kind == "error":
            raise WriterDied(f"the simulator's {self.what} process failed:\n{value}")
        self.done = True
        return value

    def _died(self) -> WriterDied:
        return WriterDied(f"the simulator's {self.what} process died (exit code {self.proc.exitcode})")

    def close(self) -> None:
        """Stop the process if it is still running (after an error). After a failure the queues' feeder
        threads may hold messages no one will read: they are cancelled, or this process would wait for them
        forever when it exits."""
        if not self.done:
            if self.proc.is_alive():
                self.proc.terminate()
                self.proc.join(10)
            if self.proc.is_alive():  # SIGTERM ignored after all
                self.proc.kill()
                self.proc.join(10)
            for q in (self.q, self._result):
                q.cancel_join_thread()
                q.close()
        self.done = True


class RemoteStore:
    """The main process's side of the version store: :meth:`add` serializes and buffers like
    :class:`~cs_kpis.simulator.store.VersionStore.add` (the same :class:`~cs_kpis.simulator.store.VersionBuffer`),
    and full batches go to the writer process as a few flat buffers; :meth:`events_sink` hands each day's
    product events to the events process."""

    def __init__(self, scratch: Path, landing: Path, seed: int, cutoffs: list[int] | None = None,
                 floors: dict[str, int] | None = None):
        # first: nothing that can fail comes after the helpers start, or they would be left running
        self._buf = VersionBuffer(cutoffs, floors)
        ctx = mp.get_context("spawn")
        self._writer = _Helper(ctx, _writer_main, (str(scratch), str(landing), seed), "writer", _VERSION_QUEUE)
        self._helpers = [self._writer]
        try:
            self._events = _Helper(ctx, _events_main, (str(landing), seed, str(_events_temp(Path(scratch)))),
                                   "events writer", _EVENTS_QUEUE)
            self._helpers.append(self._events)
        except BaseException:
            self.close()
            raise

    def add(self, entity: str, obj_id: str, ts: int, obj: dict, sort_key: int | None = None,
            superseded_at: int | None = None) -> None:
        if self._buf.add(entity, obj_id, ts, obj, sort_key, superseded_at):
            self.flush()

    def keeps(self, entity: str, ts: int) -> bool:
        return self._buf.keeps(entity, ts)

    def flush(self) -> None:
        if len(self._buf):
            chunks = self._buf.take()
            for i, chunk in enumerate(chunks):
                # the writer inserts the batch when its last chunk arrives
                self._writer.send(("versions", chunk, i == len(chunks) - 1))

    @property
    def event_files(self) -> "_RemoteEventFiles":
        """SegmentWriter's ``files``: the days' events are formatted and written by the events process."""
        return _RemoteEventFiles(self._events)

    def write_landing(self, tmp: Path, as_of, days, retention: int) -> None:
        """Ask the writer to write every entity's extract-day parts (then it closes the store), and the
        events process to finish."""
        self.flush()
        self._writer.send(("landing", str(tmp), as_of, days, retention))
        self._events.send(("done",))

    def result(self) -> dict:
        """Wait for both writers to finish; return the landing parts' counts (or raise a writer's error)."""
        self._events.result()
        return self._writer.result()

    def close(self) -> None:
        """Stop the helper processes that are still running (after an error in the main process)."""
        for helper in self._helpers:
            helper.close()


class _RemoteEventFiles:
    """:class:`~cs_kpis.simulator.segment.EventFiles` in the events process, seen from the main process."""

    def __init__(self, helper: _Helper):
        self._helper = helper

    def accounts(self, prefixes: list[str], workspaces: list[str]) -> None:
        self._helper.send(("accounts", prefixes, workspaces))

    def day(self, day, rows, identify_lines: list[str]) -> None:
        self._helper.send(("day", day, rows, identify_lines))


def _events_temp(scratch: Path) -> Path:
    """Where the events process's in-memory DuckDB spills, beside the version store (not ``./.tmp``)."""
    return scratch.with_name("events.tmp")


class HelperStillRunning(RuntimeError):
    """An earlier run's helper process still works in the partial folder a new run would replace."""


def _lock_file(scratch: Path) -> Path:
    """The file each helper process holds a shared lock on for its whole life: beside the version store, in
    ``<landing>.partial/_scratch``, so it never reaches the landing folder."""
    return Path(scratch).with_name("helpers.lock")


def _hold_lock(scratch: Path) -> None:
    """Take a shared ``flock`` on :func:`_lock_file` and keep it until this process exits (its descriptor is
    never closed): while it is held, no new run deletes or rewrites the partial folder this helper works in
    (:func:`no_helper_running`). Linux and macOS only (no ``fcntl`` elsewhere: nothing is locked)."""
    try:
        import fcntl
    except ImportError:
        return
    fd = os.open(_lock_file(scratch), os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_SH)


def no_helper_running(scratch_dir: Path) -> None:
    """Raise :class:`HelperStillRunning` if a helper process of an earlier run still holds its lock in
    ``scratch_dir`` (``<landing>.partial/_scratch``): its main process was killed with SIGKILL and it is still
    closing its store (a checkpoint may take seconds), or writing. Replacing the partial folder now would let
    it delete the new run's version store (it deletes its own by path) or write into the new landing."""
    try:
        import fcntl
    except ImportError:
        return
    try:
        fd = os.open(_lock_file(Path(scratch_dir) / "versions.duckdb"), os.O_RDWR)
    except FileNotFoundError:
        return  # no helper ever ran there
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise HelperStillRunning(
            f"an earlier run's helper process is still running in {Path(scratch_dir).parent} (its main process "
            f"was killed): wait for it to finish (seconds) or kill it (cs_kpis-simulator-* processes), then run "
            f"again. Nothing was changed.") from None
    finally:
        os.close(fd)


def _helper_started(scratch: Path) -> None:
    """The first thing a helper process does: Ctrl-C (SIGINT, sent to the terminal's whole process group) is
    left to the main process, which stops the helpers; without this each helper printed a traceback too. Then
    it holds its lock (:func:`_hold_lock`). SIGTERM is set to its default whatever the helper inherited: the
    main process stops helpers with it (``terminate``), and a parent that ignores SIGINT (a background job)
    under Dagster's handlers, which map SIGTERM to SIGINT's handler, would pass SIGTERM on ignored."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _hold_lock(scratch)


def _messages(q):
    """The messages from the main process, in order, until it is gone (killed with SIGKILL, or crashed without
    stopping this process), which would otherwise leave this process waiting in ``q.get()`` forever, the
    scratch store open.

    Two signs, either of which ends the messages: the queue's pipe reports its end, even in the middle of a
    message (the main process died while its queue's thread was sending one: up to 15 MB of versions on the
    large company), once this process has closed its own copy of the pipe's write end (spawn hands it both);
    and, checked every :data:`_POLL` seconds while no message comes, the main process is no longer
    this one's parent."""
    # this process only reads: close its copy of the write end, or the pipe never reports its end.
    # multiprocessing has no public way to say so: ``_writer`` is CPython's private attribute, so this is
    # skipped if it is not there (the parent check below still ends the messages, within _POLL seconds)
    write_end = getattr(q, "_writer", None)
    if write_end is not None:
        write_end.close()
    parent, ppid = mp.parent_process(), _parent_pid()
    while True:
        try:
            msg = q.get(timeout=_POLL)
        except queue.Empty:
            if _parent_pid() != ppid or (parent is not None and not parent.is_alive()):
                return
            continue
        except (EOFError, OSError):  # the end of the pipe: no process can write to it any more
            return
        yield msg


def _writer_main(q, result, scratch: str, landing: str, seed: int) -> None:
    store = None
    try:
        _helper_started(Path(scratch))
        from .store import VersionStore

        store = VersionStore(Path(scratch))
        made = _identity(scratch)  # the store this process made: the only one it deletes
        # one thread while the simulation runs on the other core; all of them for the final writing
        store.con.execute("set threads = 1")
        pending = []  # the chunks of a batch received so far
        for msg in _messages(q):
            if msg[0] == "versions":
                pending.append(msg[1])
                if msg[2]:
                    store.insert_chunks(pending)
                    pending = []
            elif msg[0] == "landing":
                from . import write_entities

                _, tmp, as_of, days, retention = msg
                store.con.execute("reset threads")
                counts = write_entities(store, Path(tmp), as_of, days, retention)
                store.close()
                store = None
                _delete_store(scratch, made)  # read for the last time (the main process may be gone by now)
                result.put(("ok", counts))
                return
        # the main process is gone: no one will ask for the landing, nor delete the store
        store.close()
        store = None
        _delete_store(scratch, made)
    except Exception:  # noqa: BLE001 - handed to the main process, which raises it as WriterDied
        result.put(("error", traceback.format_exc()))
    finally:
        if store is not None:
            store.close()


def _identity(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


def _delete_store(scratch: str, made: tuple[int, int]) -> None:
    """Delete the version store's files (about 15 GB on the large company), and only those, and only if the
    store at that path is still the one this process made (``made``: :func:`_identity` when it was opened):
    not a new run's store at the same path (:func:`no_helper_running` keeps a new run from starting while this
    process runs; this is the second guard)."""
    try:
        if _identity(scratch) != made:
            return
    except FileNotFoundError:
        pass  # gone already: its .wal and .tmp may remain
    for path in (Path(scratch), Path(scratch + ".wal")):
        path.unlink(missing_ok=True)
    shutil.rmtree(scratch + ".tmp", ignore_errors=True)


def _events_connection(temp_directory: str):
    """The events process's DuckDB: in memory, it only formats the lines; one thread (the other core runs the
    simulation); spilling, if ever, into ``temp_directory`` (the scratch folder, deleted at the end)."""
    import duckdb

    con = duckdb.connect(config={"temp_directory": temp_directory})
    con.execute("set threads = 1")
    return con


def _events_main(q, result, landing: str, seed: int, temp_directory: str) -> None:
    con = None
    try:
        _helper_started(Path(temp_directory))  # beside the version store (_events_temp), so the same lock file
        from .segment import EventFiles

        con = _events_connection(temp_directory)
        files = EventFiles(con, Path(landing), seed)
        for msg in _messages(q):
            if msg[0] == "accounts":
                files.accounts(*msg[1:])
            elif msg[0] == "day":
                files.day(*msg[1:])
            elif msg[0] == "done":
                result.put(("ok", None))
                return
    except Exception:  # noqa: BLE001 - handed to the main process, which raises it as WriterDied
        result.put(("error", traceback.format_exc()))
    finally:
        if con is not None:
            con.close()
