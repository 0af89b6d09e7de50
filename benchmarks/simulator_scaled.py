"""The large company's simulator workload at a smaller number of accounts (benchmark only).

The simulator's large size (100,000 accounts, 60 months) writes 31 GB, too much to generate for a
profile. This runs ``generate`` on a size with large's parameters (dates, product users per account,
event rate) and fewer accounts, so that the per-object costs (subscriptions, invoices, tickets, events
per account) look like large's; the counts of unmatched customers and organizations are scaled with the
accounts. The size is registered at run time only: the CLI's sizes stay tiny, demo and large.

    PYTHONPATH=. .venv/bin/python benchmarks/simulator_scaled.py --accounts 2500 --workers 2 \
        --landing <work>/landing --ground-truth <work>/ground_truth [--profile <out.prof>]

``--profile`` writes a cProfile of the main process (with two workers the writer process is not in it).
PYTHONPATH picks the code tree, so the same script runs an older export of the package for comparison.
"""

import argparse
import dataclasses
import json
import resource
import time
from pathlib import Path


def scaled_spec(accounts: int):
    from cs_kpis.simulator.sizes import SIZES

    large = SIZES["large"]
    share = accounts / large.accounts
    return dataclasses.replace(
        large, name=f"large{accounts}", accounts=accounts,
        unmatched_customers=max(1, round(large.unmatched_customers * share)),
        unmatched_organizations=max(1, round(large.unmatched_organizations * share)))


def _track_version_buffers() -> list:
    """The main process's version buffers, to count versions (an older package without them: none)."""
    buffers: list = []
    try:
        from cs_kpis.simulator.store import VersionBuffer
    except ImportError:
        return buffers
    init = VersionBuffer.__init__

    def tracked(self, *a, **kw):
        init(self, *a, **kw)
        buffers.append(self)

    VersionBuffer.__init__ = tracked
    return buffers


def _time_waits() -> dict:
    """Seconds the main process spends blocked on the writer process (two workers): sending while the queue
    is full, and waiting at the end for the writer's final parts (an older package without them: none)."""
    waits = {"queue_full_s": 0.0, "final_parts_s": 0.0}
    try:
        from cs_kpis.simulator import writer
    except ImportError:
        return waits
    # the sends: each helper process's queue (_Helper.send) or, in older packages, RemoteStore._send
    helper = getattr(writer, "_Helper", None)
    send = (helper, "send", "queue_full_s") if helper is not None else (writer.RemoteStore, "_send", "queue_full_s")
    for owner, name, key in (send, (writer.RemoteStore, "result", "final_parts_s")):
        method = getattr(owner, name, None)
        if method is None:
            continue

        def timed(self, *a, _method=method, _key=key, **kw):
            t = time.perf_counter()
            try:
                return _method(self, *a, **kw)
            finally:
                waits[_key] += time.perf_counter() - t

        setattr(owner, name, timed)
    return waits


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--accounts", type=int, default=2500)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--workers", type=int, choices=(1, 2), default=2)
    p.add_argument("--increments", type=int, default=1)
    p.add_argument("--landing", type=Path, required=True)
    p.add_argument("--ground-truth", type=Path, required=True)
    p.add_argument("--profile", type=Path, default=None, help="write a cProfile of the main process here")
    p.add_argument("--batch", type=int, default=None,
                   help="versions per store batch (store.BATCH, 50,000): the window in which superseded versions "
                        "are dropped spans fewer days with fewer accounts; 50,000 x accounts / 100,000 mimics large's")
    args = p.parse_args()
    from cs_kpis.simulator import SIZES, generate

    spec = scaled_spec(args.accounts)
    SIZES[spec.name] = spec  # this process only
    buffers = _track_version_buffers()
    waits = _time_waits()
    if args.batch:
        from cs_kpis.simulator import store

        store.BATCH = args.batch

    def run():
        return generate(args.landing, args.ground_truth, size=spec.name, seed=args.seed,
                        increments=args.increments, workers=args.workers)

    started = time.perf_counter()
    if args.profile:
        import cProfile

        prof = cProfile.Profile()
        m = prof.runcall(run)
        prof.dump_stats(str(args.profile))
    else:
        m = run()
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    print(json.dumps({"size": spec.name, "accounts": spec.accounts, "workers": args.workers,
                      "seconds": round(time.perf_counter() - started, 1),
                      # CPU seconds (user + system) of this process, and of the writer process (two workers)
                      "cpu_main_s": round(own.ru_utime + own.ru_stime, 1),
                      "cpu_writer_s": round(children.ru_utime + children.ru_stime, 1),
                      "peak_rss_main_mb": own.ru_maxrss // 1024, "peak_rss_writer_mb": children.ru_maxrss // 1024,
                      # versions added by the simulation, and dropped as superseded before storing (if counted)
                      "versions": sum(b.seq for b in buffers),
                      "versions_dropped": sum(getattr(b, "dropped", 0) for b in buffers),
                      # the main process blocked on the writer: sends to a full queue, the wait for the final parts
                      **{k: round(v, 1) for k, v in waits.items()},
                      "counts": m["counts"]}))


if __name__ == "__main__":
    main()
