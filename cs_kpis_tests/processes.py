"""Subprocess helpers for the tests that stop helper processes with signals (the simulator's writers, the
loaders' page workers)."""

import selectors
import subprocess
import time
from pathlib import Path

AS_FROM_A_SHELL = ("import signal\nsignal.signal(signal.SIGINT, signal.default_int_handler)\n"
                   "signal.signal(signal.SIGTERM, signal.SIG_DFL)\n")
"""a subprocess's signals as a shell gives them: CI may run the suite as a background job, whose SIGINT is
ignored (and Dagster maps SIGTERM to SIGINT's handler in a process that ran a job), and an ignored signal
stays ignored across exec"""


def read_line(proc: subprocess.Popen, timeout: float) -> str:
    """The subprocess's next line of output, or fail after ``timeout`` seconds."""
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            raise AssertionError(f"no output within {timeout} s")
    return proc.stdout.readline()


def wait_for(what, timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        if time.monotonic() > deadline:
            raise AssertionError(message)
        time.sleep(0.05)


def proc_stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command's name (state, ppid, ...), or None if it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def running(pid: int) -> bool:
    """The process exists and has not exited (an orphan's zombie, if nothing reaps it, has exited)."""
    stat = proc_stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def started_at(pid: int) -> str | None:
    """The process's start time (clock ticks since boot): with its pid, it names one process, even once the pid
    is reused."""
    stat = proc_stat(pid)
    return None if stat is None else stat[19]  # field 22 of stat; the state is field 3
