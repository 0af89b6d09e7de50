"""A process that starts two page workers (cs_kpis/sources/common/workers.py) and keeps one busy without
end (one part after another), so that tests can stop it the ways a load is stopped: ``python -m cs_kpis_tests.sources.page_worker_driver
<mode>``, mode ``default`` (a terminal's signals), ``dagster`` (SIGTERM handled as SIGINT, as Dagster's run
worker does) or ``background`` (SIGINT ignored, as in a shell's background job, and SIGTERM mapped to it).
It prints the workers' pids, then ``waiting``."""

import json
import signal
import sys
import time

from cs_kpis.sources.common import workers
from cs_kpis.sources.common.landing import EnvelopePages


def sleeping(seconds: float) -> list:
    """A ``PassJob.build`` that keeps its worker busy."""
    time.sleep(seconds)
    return []


def failing() -> list:
    raise ValueError("this build fails in the worker")


def job(build, args: tuple) -> workers.PassJob:
    return workers.PassJob(build, args, "nothing", (), EnvelopePages("billing", "data"), ".", "invoices")


def main(mode: str) -> None:
    if mode in ("dagster", "background"):
        if mode == "background":
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.getsignal(signal.SIGINT))
    pool = workers.Pool(2)
    try:
        print(json.dumps([worker.proc.pid for worker in pool.workers]), flush=True)
        print("waiting", flush=True)
        while True:  # parts of two seconds each, one after the other
            pool.result(pool.submit((0, job(sleeping, (2,)), "part-00001.json")))
    finally:
        pool.close()


if __name__ == "__main__":
    main(sys.argv[1])
