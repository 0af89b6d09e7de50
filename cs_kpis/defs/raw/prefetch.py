"""Extracting the file systems ahead of their raw steps, in one background process (issue 18).

``python -m cs_kpis.run`` executes its steps in-process, one at a time, so a raw step's per-record Python
(dlt's extract and normalize: reading landing files, validating, Arrow) used one core while the other
idled. Extract and normalize do not need the warehouse; only syncing dlt's state from it and the load do.
So, in a run of the command (``PREFETCH_ENV`` set, which ``cs_kpis.run`` does), the first raw step to run:

1. does, for every other files-mode system whose whole multi-asset the run selects, the warehouse phase
   a raw step starts with: drop the local dlt state (:func:`reset_local_state`), discard the rows of
   incomplete loads, and restore the state and schema from the warehouse (dlt's ``sync_destination``,
   as ``Pipeline.run`` does before extracting); all in this process, one at a time, as the step would;
2. starts one background process that extracts and normalizes those systems one after the other into
   their pipelines' working folders (the load packages dlt's ``run`` would load next). That process never
   opens the warehouse: ``duckdb.connect`` raises there, so a dlt change that would need it falls back to
   the serial path instead of contending for the file;
3. then does its own step as before, while the background process runs on the other core.

The raw steps run in :data:`STEP_ORDER` (Dagster's ``dagster/priority`` op tag, :func:`step_tags`): billing
first (it starts the background process), then product (serial, below), then support, crm and nps, which the
background process extracts in that order while billing's and product's long steps run, so that their steps
only load. Unless the pending input is too small to pay for the process: when the landing files of those
systems after the extract days their state says were loaded add up to less than :data:`MIN_BYTES`
(``MIN_BYTES_ENV``; a nightly's one day), no process starts and each of their steps extracts itself, from the
state step 1 restored (:data:`IN_STEP`: the path below without the background process).

When a prefetched system's own step comes, it waits for its packages and loads them with a pipeline
object read from the working folder (its state restored already, so dlt does not sync it again): the
same ``run_until_caught_up`` (discard, column types, ``pipeline.run`` which loads the pending packages,
then further extract days if any, the bookkeeping tables, the row accounting), and the step's metadata
are built as before. Only the extract and normalize moved; the loads keep the order of the steps, in
this process, so nothing else writes the warehouse at the same time and no lock is needed.

If the background process fails, dies, or the run is not the command's (the UI's multiprocess executor
runs each step in its own process), the step runs its serial path: the working folder is dropped and the
system is extracted again. A run killed at any point leaves only local packages that the next run drops
(``reset_local_state``), as a killed serial run does.

Product stays serial: its source writes events into the warehouse during extract
(``runner.DIRECT_TABLES``); a lake (filesystem destination) and api-mode systems stay serial too.
"""

import contextlib
import dataclasses
import multiprocessing
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cs_kpis.sources.common.landing import extract_days, pending_days
from cs_kpis.sources.common.runner import (
    DIRECT_TABLES,
    LOADER_FILE_FORMAT,
    discard_incomplete_loads,
    resource_states,
)

PREFETCH_ENV = "CS_KPIS_RAW_PREFETCH"
"""``1``: extract file systems ahead of their raw steps (set by ``cs_kpis.run`` unless already set; ``0``
turns it off). Unset (the UI, tests), the raw steps run serially as before."""

STEP_ORDER = ("billing", "product", "support", "crm", "nps")
"""the order the raw steps run in (their ``dagster/priority`` op tag, :func:`step_tags`): the two systems whose
steps extract themselves first, billing (which starts the background process) and product; then the systems
extracted ahead, so that the background process has both long serial steps (on the large company ~400 s, for
~275 s of extraction) to finish in, and their steps only load"""

ORDER = tuple(system for system in STEP_ORDER if system not in DIRECT_TABLES)
"""the order the background process extracts in: the order their steps come in (billing's, the first, starts
it), support (the longest: ~200 s of the ~275 on the large company) first, so that what may still run while
product's step loads its events (DuckDB on both cores) is the short tail of crm and nps, and a step that has
to wait is the first one"""

MIN_BYTES_ENV = "CS_KPIS_RAW_PREFETCH_MIN_BYTES"
"""below this many bytes of landing files pending for the systems to extract ahead, no background process is
started (:func:`start_others`); default :data:`MIN_BYTES`"""

MIN_BYTES = 16 * 1024**2
"""the default of :data:`MIN_BYTES_ENV`, between the inputs where the process was measured to lose and to win
(BENCHMARKS.md, session 19): its start alone (a spawned interpreter importing dlt and the sources) is 0.8 s
and 0.75 CPU s, and the whole process cost the demo's nightly (0.1 MiB pending) 1-5 CPU s; the large
company's nightly (7.6 MiB) was 2 s slower with it; the demo's first load (23.8 MiB) had its raw steps 4-6 s
faster in two rounds of three (slower in the third), the large company's (4.2 GiB) was 238 s faster"""


@dataclass
class Spec:
    """What the background process needs to rebuild a system's pipeline and source."""

    system: str
    warehouse: Path
    pipelines_dir: Path
    landing_dir: Path
    fx_rates_path: Path | None
    keys: frozenset = frozenset()  # the system's asset keys (set once built): prefetched only if all selected

    def pipeline(self):
        from cs_kpis.sources.pipelines import make_pipeline

        return make_pipeline(self.system, self.warehouse, self.pipelines_dir)

    def source(self):
        from cs_kpis.sources.pipelines import make_source

        return make_source(self.system, landing_dir=self.landing_dir, mode="files", fx_rates_path=self.fx_rates_path)


_SPECS: dict[tuple[Path, Path, str], Spec] = {}
"""(warehouse, pipelines folder, system) -> the spec registered by the raw assets when the definitions load"""


def register(spec: Spec) -> Spec | None:
    """Register a files-mode system's spec; returns it, or None when the system is always serial."""
    from cs_kpis.sources import lake

    if spec.system in DIRECT_TABLES or lake.raw_destination() != "duckdb":
        return None
    _SPECS[(spec.warehouse, spec.pipelines_dir, spec.system)] = spec
    return spec


PRIORITY_TAG = "dagster/priority"
"""Dagster's op tag for a step's priority: among the steps ready at the same time, the executors start the highest
first (``ActiveExecution.get_steps_to_execute`` sorts them by it; ties keep the plan's order); unset is 0"""


def step_tags(system: str) -> dict[str, str]:
    """The op tags of ``system``'s raw step: its place in :data:`STEP_ORDER` as its priority (billing 5 ... nps 1).
    Every other step has 0, so the raw steps still run before anything downstream of them that is ready; the
    asset graph (keys, dependencies) does not change."""
    if system not in STEP_ORDER:
        return {}
    return {PRIORITY_TAG: str(len(STEP_ORDER) - STEP_ORDER.index(system))}


def enabled() -> bool:
    return os.environ.get(PREFETCH_ENV, "").strip() == "1"


def min_bytes(log=None) -> int:
    """:data:`MIN_BYTES_ENV` as a whole number of bytes; unset or not a whole number (then said in ``log``, a
    logger): :data:`MIN_BYTES`. A tuning switch: a typo must not fail billing's step, which calls this."""
    value = os.environ.get(MIN_BYTES_ENV, "").strip()
    if not value:
        return MIN_BYTES
    try:
        return int(value)
    except ValueError:
        if log is not None:
            log.warning(f"{MIN_BYTES_ENV}={value!r} is not a whole number of bytes: using {MIN_BYTES}")
        return MIN_BYTES


def pending_bytes(spec: Spec, pipeline, source, limit: int) -> int:
    """The bytes of ``spec``'s landing files that its step will extract: every file of the system's entity
    folders (``<landing>/<system>/<entity>/<day>/``) for the extract days after the last one that all its
    resources loaded, by the state ``pipeline`` holds (restored from the warehouse); counted up to ``limit``."""
    states = resource_states(pipeline, source.name)
    loaded = [(states.get(name) or {}).get("last_extract_day") for name in source.selected_resources]
    since = None if None in loaded else min(loaded)
    system_dir = spec.landing_dir / spec.system
    total = 0
    for day in pending_days(extract_days(spec.landing_dir), since):
        for folder in system_dir.glob(f"*/{day}"):
            with os.scandir(folder) as entries:
                for entry in entries:
                    total += entry.stat().st_size
                    if total >= limit:
                        return total
    return total


@contextlib.contextmanager
def extracting_ahead() -> Iterator[None]:
    """``PREFETCH_ENV=1`` while the block runs, unless set already; unset again afterwards (a test that calls
    ``cs_kpis.run.main`` in its own process leaves the switch as it found it)."""
    before = os.environ.get(PREFETCH_ENV)
    os.environ.setdefault(PREFETCH_ENV, "1")
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(PREFETCH_ENV, None)


IN_STEP = "in its own step"
"""the outcome of a system not extracted ahead because the pending input was too small to pay for the process"""


class _Run:
    """The background process of one Dagster run (None: none started, every system :data:`IN_STEP`) and what
    it has reported so far."""

    def __init__(self, systems: list[str], process=None, conn=None):
        self.systems, self.process, self.conn = systems, process, conn
        self.results: dict[str, str] = {} if process is not None else dict.fromkeys(systems, IN_STEP)

    def wait(self, system: str) -> str:
        """``ok`` once ``system``'s packages are normalized, else the reason it was not prefetched."""
        while system not in self.results:
            try:
                while not self.conn.poll(1.0):  # a process gone without a word (killed) is not waited for
                    if not self.process.is_alive():
                        raise EOFError
                name, outcome = self.conn.recv()
            except (EOFError, OSError):
                self.process.join(5)
                return f"the prefetch process ended (exit code {self.process.exitcode})"
            self.results[name] = outcome
        return self.results[system]


_RUNS: dict[str, _Run | None] = {}

LOADED_AHEAD = "loading the packages extracted ahead"
"""what a step that loads a prefetched system's packages logs"""
EXTRACTED_IN_STEP = "extracting in this step, from the state the first raw step restored"
"""what the step of a system not extracted ahead (:data:`IN_STEP`) logs"""


def start_others(context, spec: Spec) -> None:
    """At the first raw step of a command run: prefetch every other files-mode system of the same warehouse
    whose assets the run selects, all of them."""
    from cs_kpis.sources.pipelines import reset_local_state

    run_id = context.run_id
    if not enabled() or run_id in _RUNS:
        return
    _RUNS[run_id] = None
    selection = context.dagster_run.asset_selection  # None or empty: every asset of the job
    selected = set(selection) if selection else set(context.job_def.asset_layer.executable_asset_keys)
    specs = [other for name in ORDER if name != spec.system
             and (other := _SPECS.get((spec.warehouse, spec.pipelines_dir, name))) is not None
             and other.keys <= selected]
    if not specs:
        return
    limit, pending = min_bytes(context.log), 0
    for other in specs:  # the warehouse phase of each, in this process, as its step would do it first
        pipeline, source = other.pipeline(), other.source()
        reset_local_state(pipeline)
        discard_incomplete_loads(pipeline, other.system, source)
        if pipeline.config.restore_from_destination and not pipeline.dev_mode:
            pipeline.sync_destination()
        if pending < limit:
            pending += pending_bytes(other, pipeline, source, limit - pending)
    systems = [other.system for other in specs]
    if pending < limit:  # a nightly's one day: the process would cost more than the extraction it takes over
        _RUNS[run_id] = _Run(systems)
        context.log.info(f"{', '.join(systems)}: {pending / 1024**2:.1f} MiB of landing files pending, under "
                         f"{limit / 1024**2:.0f} MiB ({MIN_BYTES_ENV}): extracted in their own steps, from the "
                         f"state restored here")
        return
    parent, child = multiprocessing.get_context("spawn").Pipe(duplex=False)
    process = multiprocessing.get_context("spawn").Process(
        target=extract_worker, args=([dataclasses.replace(s, keys=frozenset()) for s in specs], child, os.getpid()),
        daemon=True, name="cs_kpis-raw-prefetch")
    process.start()
    child.close()
    _RUNS[run_id] = _Run(systems, process, parent)
    context.log.info(f"extracting {', '.join(systems)} ahead of their steps in process {process.pid}")


def take(context, spec: Spec):
    """The prefetched pipeline of ``spec``'s system in this run (packages normalized, state restored), the
    pipeline with its state restored and nothing extracted when the input was too small (:data:`IN_STEP`), or
    None (the serial path)."""
    system = spec.system
    run = _RUNS.get(context.run_id)
    if run is None or system not in run.systems:
        return None
    started = time.monotonic()
    outcome = run.wait(system)
    waited = time.monotonic() - started
    if outcome == IN_STEP:
        context.log.info(f"{system}: {EXTRACTED_IN_STEP}")
    elif outcome != "ok":
        context.log.warning(f"{system}: not prefetched ({outcome}); extracting it in this step")
        return None
    else:
        context.log.info(f"{system}: {LOADED_AHEAD} (waited {waited:.1f} s for them)")
    pipeline = spec.pipeline()  # read from the working folder (the background process's packages, if any)
    pipeline._state_restored = True  # synced by start_others; Pipeline.run must not sync (and wipe) again
    return pipeline


def _no_warehouse(*args: Any, **kwargs: Any):
    raise RuntimeError("the prefetch process must not open a DuckDB database")


def _die_with(parent: int) -> None:
    """End this process when ``parent`` ends, however it ends (Linux: PR_SET_PDEATHSIG): a killed run must not
    leave it writing into a working folder the next run drops and refills."""
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the pipe's EOF below still ends it, at its next send
        pass
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)


def extract_worker(specs: list[Spec], conn, parent: int) -> None:
    """The background process: extract and normalize each system; report ``(system, "ok" | error)``."""
    _die_with(parent)
    import duckdb

    from cs_kpis.sources.common.runner import keep_stored_column_types

    duckdb.connect = _no_warehouse  # extract and normalize need no database; anything else falls back
    for spec in specs:
        try:
            pipeline, source = spec.pipeline(), spec.source()
            keep_stored_column_types(pipeline, source)
            pipeline.extract(source, loader_file_format=LOADER_FILE_FORMAT)
            pipeline.normalize()
            outcome = "ok"
        except Exception as exc:  # noqa: BLE001 - the step reruns the system serially and reports the error
            outcome = f"{type(exc).__name__}: {exc}"[:2000]
        conn.send((spec.system, outcome))
    conn.close()
