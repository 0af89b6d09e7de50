"""Dagster's SQLite event log with its connections kept open (dagster.yaml's ``event_log_storage``).

Dagster's ``SqliteEventLogStorage`` makes a new SQLAlchemy engine and SQLite connection for every event it
stores and closes them after the event's transaction; closing the last connection to a WAL database
checkpoints the WAL into the database file. A nightly stores about 1,200 events (each step's start, outputs,
materializations, check evaluations and the run's planned events, most of them twice: in the run's shard and
in the index shard) and claims and frees a pool slot per step, so the engines, connections and checkpoints
cost seconds of every run (BENCHMARKS.md, "The nightly's event log, marts and checks").

This subclass keeps one engine per shard (the index, and the few run shards used last), whose pool keeps its
SQLite connection open between transactions: an event is still a committed transaction (a few things Dagster
writes in several are one here, below), in the same files, tables and WAL mode, so any other Dagster process (``dagster dev``'s webserver and daemon) reads and
writes the same instance as before. The one thing closing did besides checkpointing: it changed the run shard's
file, which is what the webserver's live view of a run watches (``SqliteEventLogStorageWatchdog`` listens for
changes of ``<run_id>.db``); after each transaction on a run shard its file's modification time is set, so the
view still follows a run in progress. Engines are made again in a child process (a fork's inherited
connections are never used) and disposed when the storage is.

Each connection also sets SQLite's ``synchronous`` (the storage's ``synchronous`` config: ``FULL``, SQLite's and
Dagster's default, or ``NORMAL``). In WAL mode, ``FULL`` syncs the WAL to disk at every commit, and a run commits
about 4,600 transactions (events, pool slots); ``NORMAL`` syncs at each WAL checkpoint instead (1,000 commits of a
small row: 2.8-3.6 s against 0.05-0.08 s on this project's benchmark machine). The default stays ``FULL``:
``NORMAL`` saved 5-14 s of a tiny company's run, but on the large company's nightly it was not faster in three
alternated pairs and slower in the quiet one (BENCHMARKS.md "The event log's commits without a sync each"). What
``NORMAL`` gives up, as SQLite documents it: the database stays consistent in every case and a crash of the
process loses nothing, but a power loss or an operating-system crash may lose the transactions committed since the
last checkpoint: the run history's latest materializations and check evaluations, and pool slot claims and
releases. The run storage (``runs.db``, Dagster's own, always ``FULL``) can then say a run finished while a slot it
released is claimed again: ``python -m cs_kpis.run`` frees the slots of finished runs before it starts
(cs_kpis/run.py release_slots_of_finished_runs), or a later run would wait for that slot forever. The warehouse is
not affected either way: its tables and the builds' control tables are DuckDB's, which syncs its own commits.

What Dagster writes to the index in several transactions for one thing is written in one here: an asset check's
event (its copy in the index, then its row in ``asset_check_executions``), a step's claim of a pool slot (its
pending step, then the slot) and its release (the slot, the pending step, the next pending step's assignment).
Each was a commit, and so a sync under ``FULL``. The rows are the same; a reader sees all of them or none, and an
error rolls back all of them (it did only the last one's).

Dagster hands a storage a batch of events when ``DAGSTER_EVENT_BATCH_SIZE`` is set (its default, unset, stores them
one by one): a run's planned events (one per asset and check it will run, 274 for ``python -m cs_kpis.run``, each
stored in the run's shard and in the index), which Dagster tags as one batch. This storage stores a batch of one
run in one transaction per shard (:meth:`store_event_batch`), and ``python -m cs_kpis.run`` sets the variable for
its run (:func:`event_batches`). With both changes a second run of the tiny company made 1,451 write transactions
instead of 2,510 (BENCHMARKS.md "What every step and check pays").

Should the batch fail before the run shard's commit, both shards roll back and Dagster stores the events again one
by one: each once. Should the index's commit fail after the run shard's (a full disk, or another process holding the
index past SQLite's 30 s busy timeout), Dagster's fallback stores them again in both: the run's log then shows its
planned events twice (the index has them once). Only planned events come in batches here (the project has no
partitions), so no materialization or check result is doubled; the run goes on.
"""

import os
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress

from dagster import Enum, EnumValue, Field, StringSource
from dagster._core.events import ASSET_CHECK_EVENTS
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    INDEX_SHARD_NAME,
    SQLITE_BUSY_TIMEOUT_SECONDS,
)
from dagster._serdes import ConfigurableClassData
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine

RUN_SHARDS_KEPT = 4
"""run shards whose engine stays open besides the index (the webserver reads many runs: older ones are closed)"""
EVENT_BATCH_SIZE = "1000"
"""``DAGSTER_EVENT_BATCH_SIZE`` for ``python -m cs_kpis.run`` (:func:`event_batches`): at most this many events of a
batch (the run's planned events) in one ``store_event_batch``"""
SYNCHRONOUS_MODES = ("FULL", "NORMAL")
SYNCHRONOUS_DEFAULT = "FULL"
"""SQLite's ``synchronous`` on the event log's connections (module docstring: what each mode gives up)"""


class KeptOpenSqliteEventLogStorage(SqliteEventLogStorage):
    """``SqliteEventLogStorage`` whose shards' connections stay open between transactions (module docstring);
    configured as Dagster's (``base_dir``: the folder of the shards, <DAGSTER_HOME>/history/runs by default)."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None,
                 synchronous: str = SYNCHRONOUS_DEFAULT):
        if synchronous not in SYNCHRONOUS_MODES:
            raise ValueError(f"event_log_storage synchronous is {synchronous!r}: one of {', '.join(SYNCHRONOUS_MODES)}")
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._engines_pid = os.getpid()
        self._synchronous = synchronous
        self._held: dict[str, Connection] = {}
        """the shards whose one transaction a block of this thread holds (:meth:`_one_transaction`)"""
        super().__init__(base_dir, inst_data)
        # re-entrant: a transaction held for a whole store or slot claim is taken again by each of its parts
        self._db_lock = threading.RLock()

    @classmethod
    def config_type(cls):
        return {"base_dir": StringSource,
                "synchronous": Field(Enum("SqliteSynchronous", [EnumValue(m) for m in SYNCHRONOUS_MODES]),
                                     is_required=False, default_value=SYNCHRONOUS_DEFAULT,
                                     description="SQLite's synchronous on each connection: NORMAL syncs the WAL at "
                                                 "checkpoints, FULL at every commit (cs_kpis/lib/event_log.py)")}

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> "KeptOpenSqliteEventLogStorage":
        # a dagster.yaml names its home's folder (cs_kpis.settings.EVENT_LOG_YAML): a home moved elsewhere would
        # otherwise make a new, empty event log where the old one was
        home = os.path.dirname(os.path.dirname(os.path.abspath(config_value["base_dir"])))
        if inst_data is not None and not os.path.isfile(os.path.join(home, "dagster.yaml")):
            raise ValueError(f"dagster.yaml's event_log_storage base_dir {config_value['base_dir']} is not in a "
                             "Dagster home (<home>/history/runs with <home>/dagster.yaml): a moved home? set base_dir to "
                             "its history/runs, or delete dagster.yaml to have it written again")
        return cls(inst_data=inst_data, **config_value)

    def _engine(self, shard: str) -> Engine:
        if self._engines_pid != os.getpid():  # a child process: its parent's connections are not its own
            self._engines, self._engines_pid = OrderedDict(), os.getpid()
        engine = self._engines.get(shard)
        if engine is None:
            engine = create_engine(self.conn_string_for_shard(shard), pool_size=1,
                                   connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False})
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            self._engines[shard] = engine
            runs = [s for s in self._engines if s != INDEX_SHARD_NAME]
            for old in runs[:-RUN_SHARDS_KEPT]:
                self._engines.pop(old).dispose()
        self._engines.move_to_end(shard)
        return engine

    def _set_synchronous(self, conn: Connection) -> None:
        """``synchronous`` on this SQLite connection, once it is in WAL mode (a new shard's first connection makes
        the file and only then switches it to WAL: until then it keeps SQLite's FULL, which rollback-journal mode
        needs to stay consistent)."""
        info = conn.connection.info
        if info.get("synchronous") == self._synchronous:
            return
        sqlite = conn.connection.dbapi_connection
        if sqlite.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
            sqlite.execute(f"PRAGMA synchronous={self._synchronous}")  # one of SYNCHRONOUS_MODES (checked)
            info["synchronous"] = self._synchronous

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            held = self._held.get(shard)
            if held is not None:  # inside _one_transaction (the lock is held: this thread's): a part of it
                yield held
                return
            engine = self._engine(shard)
            with engine.connect() as conn:
                self._set_synchronous(conn)
                sqlite = conn.connection.dbapi_connection
                changes = sqlite.total_changes
                with conn.begin():
                    yield conn
                wrote = sqlite.total_changes != changes
            if wrote and shard != INDEX_SHARD_NAME:
                # what closing the connection did (the WAL checkpoint wrote the file): the run's live view
                # watches this file for changes (gone: a wipe by another process; nothing to tell). Only after
                # a write: the view reads the shard when it hears of a change, and a read that touched the
                # file would make it hear of one again, without end
                with suppress(FileNotFoundError):
                    os.utime(self.path_for_shard(shard))

    @contextmanager
    def _one_transaction(self, shard: str) -> Iterator[None]:
        """Every transaction on ``shard`` begun in the block (this thread's: the lock is held) is one, committed
        when the block ends or rolled back as a whole on an error. SQLite (pysqlite) begins a transaction at its
        first write, so the reads before it take no lock, as before, and the first write takes the file's write
        lock, waiting for another process's as any write does."""
        with self._db_lock, self._connect(shard) as conn:
            if self._held.get(shard) is conn:  # within another such block: its transaction
                yield
                return
            self._held[shard] = conn
            try:
                yield
            finally:
                del self._held[shard]

    def store_event(self, event) -> None:
        if event.is_dagster_event and event.dagster_event_type in ASSET_CHECK_EVENTS:
            with self._one_transaction(INDEX_SHARD_NAME):  # its copy in the index and its check execution row
                super().store_event(event)
            return
        super().store_event(event)

    def store_event_batch(self, events: Sequence) -> None:
        """A batch of one run's events in one transaction on its shard and one on the index (module docstring)."""
        runs = {event.run_id for event in events}
        if len(runs) != 1 or not next(iter(runs)):  # Dagster's batches are one run's; anything else one by one
            super().store_event_batch(events)
            return
        # the index's transaction outside the run's: the run's commits first, and should it fail the index's rolls
        # back, so that Dagster's fallback (each event again, one by one) cannot copy an event twice into the index
        with ExitStack() as stack:
            stack.enter_context(self._one_transaction(INDEX_SHARD_NAME))
            stack.enter_context(self._one_transaction(next(iter(runs))))
            for event in events:
                self.store_event(event)

    def claim_concurrency_slot(self, concurrency_key: str, run_id: str, step_key: str, priority: int | None = None):
        with self._one_transaction(INDEX_SHARD_NAME):  # the pending step and the slot
            return super().claim_concurrency_slot(concurrency_key, run_id, step_key, priority)

    def free_concurrency_slot_for_step(self, run_id: str, step_key: str) -> None:
        with self._one_transaction(INDEX_SHARD_NAME):  # the slot, the pending step, the next one's assignment
            super().free_concurrency_slot_for_step(run_id, step_key)

    def _dispose_engines(self) -> None:
        with self._db_lock:
            engines, self._engines = self._engines, OrderedDict()
            for engine in engines.values():
                engine.dispose()

    def wipe(self) -> None:
        self._dispose_engines()  # the files are deleted: no connection may outlive them
        super().wipe()

    def dispose(self) -> None:
        super().dispose()  # the watch's thread first: it reads through _connect, and could open an engine again
        self._dispose_engines()

    def register_instance(self, instance) -> None:
        super().register_instance(instance)
        # the yaml's base_dir is absolute (cs_kpis.settings.EVENT_LOG_YAML): a copied home would otherwise store
        # its events, asset history and pool slots in the original's files while its runs stay in its own
        home = os.path.dirname(os.path.dirname(os.path.abspath(self._base_dir)))
        if self.inst_data is not None and os.path.realpath(instance.root_directory) != os.path.realpath(home):
            raise ValueError(f"dagster.yaml's event_log_storage base_dir {self._base_dir} is not this Dagster home's "
                             f"({instance.root_directory}): a copied home? set base_dir to its history/runs, or "
                             "delete dagster.yaml to have it written again")


@contextmanager
def event_batches() -> Iterator[None]:
    """``DAGSTER_EVENT_BATCH_SIZE`` set (unless it is already) for the block, as it was after it: Dagster then hands
    the storage its batches (a run's planned events) whole (module docstring)."""
    before = os.environ.get("DAGSTER_EVENT_BATCH_SIZE")
    if before is None:
        os.environ["DAGSTER_EVENT_BATCH_SIZE"] = EVENT_BATCH_SIZE
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("DAGSTER_EVENT_BATCH_SIZE", None)
