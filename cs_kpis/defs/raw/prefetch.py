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

from cs_kpis.sources.common.runner import DIRECT_TABLES, LOADER_FILE_FORMAT, discard_incomplete_loads

PREFETCH_ENV = "CS_KPIS_RAW_PREFETCH"
"""``1``: extract file systems ahead of their raw steps (set by ``cs_kpis.run`` unless already set; ``0``
turns it off). Unset (the UI, tests), the raw steps run serially as before."""

ORDER = ("billing", "crm", "nps", "support")
"""the order the background process extracts in: the order the in-process executor runs the raw steps in
(by name), so that the step it reaches next is the one extracted first"""


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


def enabled() -> bool:
    return os.environ.get(PREFETCH_ENV, "").strip() == "1"


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


class _Run:
    """The background process of one Dagster run and what it has reported so far."""

    def __init__(self, systems: list[str], process, conn):
        self.systems, self.process, self.conn = systems, process, conn
        self.results: dict[str, str] = {}

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
    for other in specs:  # the warehouse phase of each, in this process, as its step would do it first
        pipeline = other.pipeline()
        reset_local_state(pipeline)
        discard_incomplete_loads(pipeline, other.system, other.source())
        if pipeline.config.restore_from_destination and not pipeline.dev_mode:
            pipeline.sync_destination()
    systems = [other.system for other in specs]
    parent, child = multiprocessing.get_context("spawn").Pipe(duplex=False)
    process = multiprocessing.get_context("spawn").Process(
        target=extract_worker, args=([dataclasses.replace(s, keys=frozenset()) for s in specs], child, os.getpid()),
        daemon=True, name="cs_kpis-raw-prefetch")
    process.start()
    child.close()
    _RUNS[run_id] = _Run(systems, process, parent)
    context.log.info(f"extracting {', '.join(systems)} ahead of their steps in process {process.pid}")


def take(context, spec: Spec):
    """The prefetched pipeline of ``spec``'s system in this run (packages normalized, state restored), or None."""
    system = spec.system
    run = _RUNS.get(context.run_id)
    if run is None or system not in run.systems:
        return None
    started = time.monotonic()
    outcome = run.wait(system)
    waited = time.monotonic() - started
    if outcome != "ok":
        context.log.warning(f"{system}: not prefetched ({outcome}); extracting it in this step")
        return None
    context.log.info(f"{system}: {LOADED_AHEAD} (waited {waited:.1f} s for them)")
    pipeline = spec.pipeline()  # read from the working folder the background process wrote
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
