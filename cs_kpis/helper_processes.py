"""Helper processes started with ``spawn`` that stop when told, whatever signals their parent inherited.

An ignored signal stays ignored across exec. A background job ignores SIGINT, and Dagster's handlers map
SIGTERM to SIGINT's handler, so a helper started from such a process would inherit an ignored SIGTERM, and
:func:`stop`'s ``terminate`` would not stop it. Hence: a helper starts with SIGTERM at its default
(:func:`start`), sets it to default again first thing (:func:`started`) and leaves Ctrl-C (SIGINT, sent to
the terminal's whole process group) to its parent, which stops it; :func:`stop` kills a helper that
``terminate`` did not stop. Used by the simulator's writers (cs_kpis/simulator/writer.py) and the loaders'
page workers (cs_kpis/sources/common/workers.py)."""

import signal
import threading
from typing import Any


def start(proc: Any) -> None:
    """Start ``proc`` (a ``multiprocessing`` process) with SIGTERM at its default, even where this process
    ignores it (a helper still starting up when it is stopped must not have inherited ``SIG_IGN``)."""
    ignored = (threading.current_thread() is threading.main_thread()
               and signal.getsignal(signal.SIGTERM) is signal.SIG_IGN)
    if ignored:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        proc.start()
    finally:
        if ignored:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)


def started() -> None:
    """The first thing a helper does: Ctrl-C is its parent's to handle (one traceback, not one per process),
    SIGTERM at its default whatever it inherited."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def stop(proc: Any, timeout: float = 10) -> None:
    """Stop ``proc`` if it still runs: SIGTERM, then SIGKILL if SIGTERM did not stop it."""
    if proc.is_alive():
        proc.terminate()
        proc.join(timeout)
    if proc.is_alive():  # SIGTERM ignored after all
        proc.kill()
        proc.join(timeout)
