"""The simulator's second process: it stores the object versions and writes the files while the
simulation runs on.

``generate(..., workers=2)`` splits the work in two, as a pipeline rather than by account:

- the main process runs the simulation (the day loop, every random draw, every id) and serializes each
  object version to JSON, exactly as with one process;
- the writer process (this module, started with ``spawn``) owns the scratch version store: it inserts the
  versions the main process sends (batches of up to 50,000 versions, each in chunks of 10,000 as flat
  buffers: ``store.VersionBuffer``, which also drops the versions no extract can show), formats and writes
  each day's product events with DuckDB, and at the end writes every entity's extract-day parts
  (``landing.write_bodies``) while the main
  process writes the ground truth into ``<ground truth>.partial``; ``generate`` moves it into place only
  after the writer reported success and the landing is in place, so a failed writer leaves no ground truth
  for a landing that does not exist.

Every draw, id and sequence number is made in the main process in the same order as with one process, and
the writer runs the same code on the same rows, so the landing folder and the ground truth are the same
bytes whatever the number of processes (cs_kpis_tests/simulator/test_workers.py checks it). Why not a split
by account: the simulation draws from streams shared by all accounts and numbers ids company-wide
(BENCHMARKS.md, "Demo company simulator"), so a split by account would change the company for every seed.

The queue to the writer is bounded, so a slow writer slows the simulation down instead of filling memory.
A writer that fails or dies stops the simulation with its error; the main process never waits on a dead one.
"""

import multiprocessing as mp
import queue
import traceback
from pathlib import Path

from .store import VersionBuffer

_QUEUE_SIZE = 16
"""messages in flight to the writer (a message is a chunk of 10,000 versions or one day of events)"""


class WriterDied(RuntimeError):
    pass


class RemoteStore:
    """The main process's side of the version store: :meth:`add` serializes and buffers like
    :class:`~cs_kpis.simulator.store.VersionStore.add` (the same :class:`~cs_kpis.simulator.store.VersionBuffer`),
    and full batches go to the writer process as a few flat buffers."""

    def __init__(self, scratch: Path, landing: Path, seed: int, cutoffs: list[int] | None = None,
                 floors: dict[str, int] | None = None):
        ctx = mp.get_context("spawn")
        self._q = ctx.Queue(maxsize=_QUEUE_SIZE)
        self._result = ctx.Queue()
        self._proc = ctx.Process(target=_writer_main, args=(self._q, self._result, str(scratch), str(landing), seed),
                                 name="cs_kpis-simulator-writer", daemon=True)
        self._proc.start()
        self._buf = VersionBuffer(cutoffs, floors)
        self._done = False

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
                self._send(("versions", chunk, i == len(chunks) - 1))

    def events_sink(self, day, table, lines) -> None:
        """SegmentWriter's sink: the day's events are formatted and written by the writer process."""
        self._send(("events", day, table, lines))

    def write_landing(self, tmp: Path, as_of, days, retention: int) -> None:
        """Ask the writer to write every entity's extract-day parts (then it closes the store)."""
        self.flush()
        self._send(("landing", str(tmp), as_of, days, retention))

    def result(self) -> dict:
        """Wait for the writer to finish the landing parts; return their counts (or raise its error)."""
        while True:
            try:
                kind, value = self._result.get(timeout=5)
                break
            except queue.Empty:
                if not self._proc.is_alive():
                    try:  # it may have posted its result just before it exited
                        kind, value = self._result.get(timeout=1)
                        break
                    except queue.Empty:
                        raise WriterDied(
                            f"the simulator's writer process died (exit code {self._proc.exitcode})") from None
        self._proc.join()
        if kind == "error":
            raise WriterDied(f"the simulator's writer process failed:\n{value}")
        self._done = True
        return value

    def _send(self, msg) -> None:
        while True:
            try:
                self._q.put(msg, timeout=5)
                return
            except queue.Full:
                self._check()

    def _check(self) -> None:
        if not self._proc.is_alive():
            try:
                _, value = self._result.get_nowait()
            except queue.Empty:
                raise WriterDied(f"the simulator's writer process died (exit code {self._proc.exitcode})") from None
            raise WriterDied(f"the simulator's writer process failed:\n{value}")

    def close(self) -> None:
        """Stop the writer if it is still running (after an error in the main process). After a failure the
        queues' feeder threads may hold batches no one will read: they are cancelled, or this process would
        wait for them forever when it exits."""
        if not self._done:
            if self._proc.is_alive():
                self._proc.terminate()
                self._proc.join(10)
            for q in (self._q, self._result):
                q.cancel_join_thread()
                q.close()
        self._done = True


def _writer_main(q, result, scratch: str, landing: str, seed: int) -> None:
    from .segment import write_day
    from .store import VersionStore

    store = None
    try:
        store = VersionStore(Path(scratch))
        # one thread while the simulation runs on the other core; all of them for the final writing
        store.con.execute("set threads = 1")
        pending = []  # the chunks of a batch received so far
        while True:
            msg = q.get()
            if msg[0] == "versions":
                pending.append(msg[1])
                if msg[2]:
                    store.insert_chunks(pending)
                    pending = []
            elif msg[0] == "events":
                _, day, table, lines = msg
                write_day(store.con, Path(landing), seed, day, table, lines)
            elif msg[0] == "landing":
                from . import write_entities

                _, tmp, as_of, days, retention = msg
                store.con.execute("reset threads")
                counts = write_entities(store, Path(tmp), as_of, days, retention)
                store.close()
                store = None
                result.put(("ok", counts))
                return
    except Exception:  # noqa: BLE001 - handed to the main process, which raises it as WriterDied
        result.put(("error", traceback.format_exc()))
    finally:
        if store is not None:
            store.close()
