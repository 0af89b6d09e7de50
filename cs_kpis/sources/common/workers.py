"""A files-mode pass with its per-record work in worker processes: the second core for billing and support.

``settings.warehouse.load_workers`` (``CS_KPIS_LOAD_WORKERS``) is the number of processes that share a pass:
1, the loading process alone (the path of cs_kpis/sources/common/steps.py as it always ran); N, the loading
process and N - 1 page workers, started with ``spawn`` (the loaders run inside Dagster's process, which has
threads). Only a pass over at least :data:`MIN_PASS_BYTES` of pages uses them: starting a worker costs
about a second of CPU (its imports).

What moves, per landing part (:meth:`PassJob.check_part`, in a worker): reading and parsing the part, each
record's contract and preparation (:func:`~cs_kpis.sources.common.steps.record_outcomes`: the parent's rows,
each child's), its keys, and the leaf types its type check will compare
(:func:`~cs_kpis.sources.common.helpers.leaf_types`). What stays in the loading process, in the order of the
records: the numbering, the type check (it learns field types record by record, so it runs on the leaf
types in record order, :meth:`~cs_kpis.sources.common.helpers.FieldTypes.check_leaves`, with the same
sharing between a parent and its children: ``CheckShared.settle``), deduplication, quarantine rows,
accounting and the Arrow batches. The loading process takes the parts' results in part order, so every
ordinal, winner, rejection and row is the one the single process gives, by construction; a record the type
check rejects is read again from its part for its quarantine row and reason (the worker does not send the
objects of valid records). Parts are handed out ahead (:data:`PARTS_AHEAD` per pass), so the workers parse
while the loading process runs the key pass and emits rows.

Stopping: a worker failing ends the pass with its traceback; the pool is closed when the last pass using it
ends, when a pass fails, and after every load (``run_until_caught_up``). Each worker holds only its own ends
of two pipes, so it exits when the loading process is gone, even killed with SIGKILL (its next read of a
task sees the pipe's end, its next result cannot be sent); it ignores Ctrl-C, which is the loading
process's, and starts with SIGTERM at its default whatever it inherited (cs_kpis/helper_processes.py).
"""

from __future__ import annotations

import gc
import itertools
import multiprocessing as mp
import os
import pickle
import queue
import threading
import traceback
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cs_kpis import helper_processes
from cs_kpis.sources.common.helpers import FieldTypes, Reject, leaf_types
from cs_kpis.sources.common.landing import EnvelopePages, relative_origin
from cs_kpis.sources.common.steps import (
    Checked,
    CheckShared,
    checked_objects,
    record_key,
    record_outcomes,
    same_check,
    unparsed,
)
from cs_kpis.sources.records import RawRecord

if TYPE_CHECKING:
    from cs_kpis.sources.common.entity import Entity
    from cs_kpis.sources.common.steps import ChildFeed, FilesRead

MIN_PASS_BYTES = 16 * 1024 * 1024
"""a pass over fewer bytes of pages stays in the loading process (``CS_KPIS_LOAD_WORKERS_MIN_BYTES`` replaces
it, for tests and benchmarks)"""
PARTS_AHEAD = 12
"""parts of one pass handed to the workers ahead of the one the loading process is taking"""
DEPTH = 3
"""tasks sent to one worker at a time (it works on one while the next wait in its pipe)"""
_POLL = 1.0
"""seconds between checks that a busy worker is still alive"""


def process_count() -> int:
    """``settings.warehouse.load_workers``: processes sharing a pass, the loading process included."""
    from cs_kpis import tuning

    return int(tuning.get("warehouse.load_workers") or 1)


# ---- what a worker does --------------------------------------------------------------------------------

@dataclass(frozen=True)
class WorkerSource:
    """How a worker process builds a source's entities: ``build(*args, window)`` of a module-level function
    (pickled by name), the date window resolved in the loading process (``window``, called once per pass),
    and how its pages are read."""

    build: Callable[..., list[Entity]]
    args: tuple
    pages: EnvelopePages
    window: Callable[[], Any] | None = None

    def job(self, landing_dir: Path, spec: Entity, children: tuple[str, ...]) -> PassJob:
        args = (*self.args, self.window()) if self.window is not None else self.args
        return PassJob(self.build, args, spec.name, children, self.pages, str(landing_dir), spec.reads)


@dataclass(frozen=True)
class PassJob:
    """One pass's work on a part, as a worker does it (pickled to it)."""

    build: Callable[..., list[Entity]]
    args: tuple
    name: str
    children: tuple[str, ...]
    pages: EnvelopePages
    landing_dir: str
    folder: str

    def checker(self) -> PartChecker:
        specs = {one.name: one for one in self.build(*self.args)}
        return PartChecker(self, specs[self.name], tuple(specs[name] for name in self.children))


class PartChecker:
    """A worker's check of a pass's parts: per record, the outcomes before the type check, the keys, and the
    leaf types of each distinct type check of the pass's tables (a parent and a child sharing their check
    share them)."""

    def __init__(self, job: PassJob, spec: Entity, children: tuple[Entity, ...]) -> None:
        self.job = job
        self.spec = spec
        self.children = children
        self.tables = (spec, *children)
        self.checks: list[Entity] = []
        self.slots: list[int] = []
        for table in self.tables:
            slot = next((index for index, one in enumerate(self.checks)
                         if same_check(one.type_checked, table.type_checked) and one.json_paths == table.json_paths),
                        None)
            if slot is None:
                slot = len(self.checks)
                self.checks.append(table)
            self.slots.append(slot)

    def check_part(self, path: str, known: tuple[dict[str, str], ...]) -> tuple[list[Any], list[tuple]]:
        """The entries of a part's records, in order, and the distinct leaf types they refer to. An entry is
        the RawRecord of an unparsed record, else (position, keys, outcomes, per table the id of its leaf
        types or None, the object when a table rejected it): outcomes as (rows, None) or (None, (reason,
        field)). ``known``: each table's field types as the loading process had learned them when it sent the
        part; a table whose objects have no type outside them needs no leaf types (None): its type check
        can neither reject nor learn anything (what the loading process knows only grows)."""
        job = self.job
        types: dict[tuple[int, int], FieldTypes] = {}
        tables = []
        for slot, one in zip(self.slots, known, strict=True):
            key = (slot, id(one))
            if key not in types:
                types[key] = FieldTypes(one, self.checks[slot].json_paths)
            tables.append((key, types[key]))
        signatures: dict[tuple, int] = {}
        entries: list[Any] = []
        for record in job.pages.part_records(job.landing_dir, job.folder, path):
            obj = record.obj
            if obj is None:
                entries.append(record)
                continue
            outcomes = record_outcomes(self.spec, self.children, obj)
            keys = tuple(record_key(table, obj) for table in self.tables)
            rejected = [error is not None for _, error in outcomes]
            ids = None
            if not all(rejected):
                found: dict[tuple[int, int], int | None] = {}
                ids = tuple(self._leaves(found, signatures, key, table_types, obj) for key, table_types in tables)
            sent = [(rows, None) if error is None else (None, (str(error), error.field)) for rows, error in outcomes]
            entries.append((record.position, keys, sent, ids, obj if any(rejected) else None))
        gc.collect(0)  # the cycles of this part's rejections (an exception and its traceback)
        return entries, list(signatures)

    def _leaves(self, found: dict, signatures: dict[tuple, int], key: tuple[int, int], types: FieldTypes,
                obj: dict[str, Any]) -> int | None:
        """The id of the leaf types of ``obj`` as table check ``key[0]`` sees them, or None when ``types`` knows
        every one of them already, with the same category."""
        check = self.checks[key[0]]
        if key not in found:
            objects = checked_objects(check, obj)
            if all(types.conforms(one) for one in objects):
                found[key] = None
            else:
                found[key] = signatures.setdefault(tuple(leaf_types(one, check.json_paths) for one in objects),
                                                   len(signatures))
        return found[key]


_checkers: dict[int, PartChecker] = {}
"""a worker's checkers, by the pass's job id"""


def run_task(message: tuple[int, PassJob, str, tuple]) -> Any:
    """A worker's task: (the pass's job id, its job, a part's path, its tables' field types) ->
    :meth:`PartChecker.check_part`."""
    job_id, job, path, known = message
    checker = _checkers.get(job_id)
    if checker is None:
        checker = _checkers[job_id] = job.checker()
    return checker.check_part(path, known)


def _worker_main(tasks: Any, results: Any) -> None:
    """A worker: tasks in, results out, in order, until the loading process closes its end (or is gone). A
    thread sends the results, so the next part is checked while the loading process has not read the last."""
    helper_processes.started()
    gc.disable()  # reference counting frees a part's objects; the collector would traverse them again and again
    outbox: queue.Queue = queue.Queue()

    def send() -> None:
        while (data := outbox.get()) is not None:
            try:
                results.send_bytes(data)
            except OSError:  # the loading process is gone
                os._exit(1)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    while True:
        try:
            message = tasks.recv()
        except (EOFError, OSError):  # the end of the pipe: the loading process closed it, or is gone
            break
        try:
            result = ("ok", run_task(message))
        except BaseException:  # noqa: BLE001 - any failure goes back to the loading process, which stops
            result = ("error", traceback.format_exc())
        outbox.put(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
    outbox.put(None)
    sender.join()


# ---- the pool, in the loading process ----------------------------------------------------------------------

class WorkerFailed(RuntimeError):
    """A page worker failed or died: the pass stops."""


_PENDING = object()


@dataclass
class _Ticket:
    value: Any = _PENDING


@dataclass
class _Worker:
    proc: Any
    tasks: Any
    results: Any
    outstanding: deque = field(default_factory=deque)


class Pool:
    """Page workers fed through their own pipes; results come back in the order of the tasks."""

    def __init__(self, size: int) -> None:
        ctx = mp.get_context("spawn")
        self.workers: list[_Worker] = []
        self.pending: deque[tuple[_Ticket, Any]] = deque()
        try:
            for number in range(size):
                task_reader, task_writer = ctx.Pipe(duplex=False)
                result_reader, result_writer = ctx.Pipe(duplex=False)
                proc = ctx.Process(target=_worker_main, args=(task_reader, result_writer),
                                   name=f"cs_kpis-page-worker-{number}", daemon=True)
                try:
                    helper_processes.start(proc)
                finally:
                    task_reader.close()  # the worker's ends: only the worker holds them now
                    result_writer.close()
                self.workers.append(_Worker(proc, task_writer, result_reader))
        except BaseException:
            self.close()
            raise

    def submit(self, message: Any) -> _Ticket:
        ticket = _Ticket()
        self.pending.append((ticket, message))
        self._dispatch()
        return ticket

    def _dispatch(self) -> None:
        while self.pending:
            worker = min(self.workers, key=lambda one: len(one.outstanding))
            if len(worker.outstanding) >= DEPTH:
                return
            ticket, message = self.pending.popleft()
            worker.outstanding.append(ticket)
            try:
                worker.tasks.send(message)
            except OSError:
                raise self._died(worker) from None

    def result(self, ticket: _Ticket) -> Any:
        """The task's result, once its worker sent it (taking the others' on the way)."""
        while ticket.value is _PENDING:
            busy = {one.results: one for one in self.workers if one.outstanding}
            if not busy:
                raise WorkerFailed("a page task was never sent")
            ready = wait(list(busy), timeout=_POLL)
            if not ready:
                for worker in busy.values():
                    if not worker.proc.is_alive():
                        raise self._died(worker)
            for connection in ready:
                worker = busy[connection]
                try:
                    data = connection.recv_bytes()
                except (EOFError, OSError):
                    raise self._died(worker) from None
                worker.outstanding.popleft().value = pickle.loads(data)
            self._dispatch()
        kind, value = ticket.value
        if kind == "error":
            raise WorkerFailed(f"a page worker failed:\n{value}")
        return value

    def _died(self, worker: _Worker) -> WorkerFailed:
        worker.proc.join(1)
        return WorkerFailed(f"page worker {worker.proc.name} died (exit code {worker.proc.exitcode})")

    def close(self) -> None:
        """Stop every worker: the end of its task pipe lets an idle one exit; one still busy is terminated."""
        for worker in self.workers:
            worker.tasks.close()
        for worker in self.workers:
            worker.proc.join(1)
            helper_processes.stop(worker.proc)
            worker.results.close()
        self.workers = []


_local = threading.local()
"""this thread's pool and how many passes use it (a source's passes run interleaved in one thread)"""


@contextmanager
def shared_pool(processes: int) -> Iterator[Pool]:
    """The thread's pool of ``processes - 1`` workers, started by the first pass that needs it, closed when
    the last one ends, or at once when one fails."""
    if getattr(_local, "pool", None) is None:
        _local.pool, _local.users = Pool(processes - 1), 0
    pool = _local.pool
    _local.users += 1
    try:
        yield pool
    except BaseException:
        close_pool()
        raise
    finally:
        _local.users -= 1
        if _local.users <= 0 and _local.pool is pool:
            close_pool()


def close_pool() -> None:
    """Stop this thread's workers, if any (after a load, whatever happened to its passes)."""
    pool, _local.pool, _local.users = getattr(_local, "pool", None), None, 0
    if pool is not None:
        pool.close()


_job_ids = itertools.count()


# ---- the pass, in the loading process ----------------------------------------------------------------------

def start_pass(stack: ExitStack, source: WorkerSource | None, spec: Entity, field_types: dict[str, str],
               feeds: list[ChildFeed], read: FilesRead) -> WorkerPass | None:
    """The pass's parts handed to workers (the first ones at once), or None when it runs in this process: one
    process configured, no ``source``, or fewer than :data:`MIN_PASS_BYTES` of pages."""
    if source is None:
        return None
    processes = process_count()
    if processes <= 1:
        return None
    parts = [(day, path) for day in read.days for path in source.pages.parts(read.landing_dir, spec.reads, day)]
    smallest = int(os.environ.get("CS_KPIS_LOAD_WORKERS_MIN_BYTES") or MIN_PASS_BYTES)
    if not parts or sum(path.stat().st_size for _, path in parts) < smallest:
        return None
    pool = stack.enter_context(shared_pool(processes))
    job = source.job(read.landing_dir, spec, tuple(feed.spec.name for feed in feeds))
    return WorkerPass(pool, job, parts, lambda: (field_types, *(feed.field_types for feed in feeds)))


class WorkerPass:
    """The second pass over the files with the workers' results: ``checked(check)`` gives what
    ``check_records`` gives in this process, record by record; ``count`` is how many records came so far."""

    def __init__(self, pool: Pool, job: PassJob, parts: list[tuple[str, Path]],
                 known: Callable[[], tuple[dict[str, str], ...]]) -> None:
        self.pool = pool
        self.known = known
        """each table's field types (the parent's, then each child's) as they stand"""
        self.job = job
        self.job_id = next(_job_ids)
        self.parts = parts
        self.count = 0
        self.tickets: deque[_Ticket] = deque()
        self.sent = 0
        self.canonical: dict[tuple, tuple] = {}
        """leaf types by value -> one object for all parts: the type check remembers settled ones by identity"""
        self._fill()

    def _fill(self) -> None:
        while self.sent < len(self.parts) and len(self.tickets) < PARTS_AHEAD:
            # the tables' field types go as they stand when the part is sent (pickled then)
            self.tickets.append(self.pool.submit((self.job_id, self.job, str(self.parts[self.sent][1]), self.known())))
            self.sent += 1

    def checked(self, check: CheckShared) -> Iterator[list[Checked]]:
        for day, path in self.parts:
            entries, signatures = self.pool.result(self.tickets.popleft())
            self._fill()
            yield from self._part(check, day, path, entries, signatures)

    def _part(self, check: CheckShared, day: str, path: Path, entries: list[Any],
              signatures: list[tuple]) -> Iterator[list[Checked]]:
        origin = relative_origin(self.job.landing_dir, path)
        leaves = [self.canonical.setdefault(one, one) for one in signatures]
        again = _PartAgain(self.job, path)
        for index, entry in enumerate(entries):
            ordinal = self.count
            self.count += 1
            if isinstance(entry, RawRecord):
                yield unparsed(day, ordinal, entry, check.tables)
                continue
            position, keys, sent, ids, obj = entry
            record = RawRecord(obj if obj is not None else _NOT_SENT, origin, position)
            if obj is None and all(one is None for one in ids):
                # valid for every table, every type known already: settle would change nothing
                yield [Checked(day, ordinal, record, rows, None, key) for (rows, _), key in zip(sent, keys, strict=True)]
                continue
            outcomes = [(rows, None) if error is None else (None, Reject(*error)) for rows, error in sent]
            types_of = _LeafTypes(None if ids is None else [None if one is None else leaves[one] for one in ids],
                                  again, index)
            outcomes = check.settle(record, outcomes, types_of)
            if obj is None and any(error is not None for _, error in outcomes):
                record = record._replace(obj=again.obj(index))  # rejected by the type check: its quarantine row
            yield [Checked(day, ordinal, record, rows, error, key)
                   for (rows, error), key in zip(outcomes, keys, strict=True)]


_NOT_SENT: dict[str, Any] = {}
"""``RawRecord.obj`` of a valid record whose object stayed in the worker (its rows and keys came instead)"""


class _PartAgain:
    """A part read again in the loading process, only when a record of it needs its object."""

    def __init__(self, job: PassJob, path: Path) -> None:
        self.job = job
        self.path = path
        self.records: list[RawRecord] | None = None

    def obj(self, index: int) -> dict[str, Any]:
        if self.records is None:
            self.records = self.job.pages.part_records(self.job.landing_dir, self.job.folder, self.path)
        return self.records[index].obj


class _LeafTypes:
    """``CheckShared.settle``'s type check of one record from the leaf types a worker read: table ``index``'s
    (one tuple per checked object) checked against ``types`` in order; leaf types already settled in
    ``types`` pass without a look."""

    def __init__(self, leaves: list[tuple] | None, again: _PartAgain, entry: int) -> None:
        self.leaves = leaves
        self.again = again
        self.entry = entry

    def __call__(self, index: int, spec: Entity, types: FieldTypes, where: str) -> None:
        signature = self.leaves[index]
        if signature is None:
            return  # the worker found every type already known: nothing to reject, nothing to learn
        settled = types.settled_signatures
        if id(signature) in settled:
            return
        for number, one in enumerate(signature):
            types.check_leaves(one, where, lambda number=number: checked_objects(spec, self.again.obj(self.entry))[number])
        if all(types.settled(one) for one in signature):
            settled[id(signature)] = signature
