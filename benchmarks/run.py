"""Benchmarks: speed and peak memory, measured in fresh processes (not timed tests).

    .venv/bin/python -m benchmarks.run simulator --sizes tiny demo large

Each measurement runs in its own Python process so that peak RSS belongs to that step alone. Output
goes to ``bench_out/`` (git-ignored) and a JSON summary is printed; BENCHMARKS.md records the figures.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = Path(os.environ.get("CS_KPIS_BENCH_DIR", ROOT / "bench_out"))

_CHILD = """
import json, resource, sys, time
from pathlib import Path
t = time.perf_counter()
from cs_kpis.simulator import generate
m = generate(Path(sys.argv[1]), Path(sys.argv[2]), size=sys.argv[3], seed=int(sys.argv[4]))
print(json.dumps({"seconds": round(time.perf_counter() - t, 1),
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                  "counts": m["counts"]}))
"""


def _du_mb(path: Path) -> int:
    return round(sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6)


def bench_simulator(sizes: list[str], seed: int) -> list[dict]:
    rows = []
    for size in sizes:
        landing, truth = OUT / size / "landing", OUT / size / "ground_truth"
        started = time.perf_counter()
        res = subprocess.run([sys.executable, "-c", _CHILD, str(landing), str(truth), size, str(seed)],
                             capture_output=True, text=True, cwd=ROOT)
        if res.returncode:
            raise SystemExit(f"simulator {size} failed:\n{res.stderr[-3000:]}")
        r = json.loads(res.stdout.strip().splitlines()[-1])
        events = r["counts"]["product/events"]
        rows.append({"size": size, "seconds": r["seconds"], "wall_seconds": round(time.perf_counter() - started, 1),
                     "peak_rss_mb": r["peak_rss_mb"], "landing_mb": _du_mb(landing), "events": events,
                     "events_per_second": round(events / r["seconds"]), "subscriptions":
                     r["counts"]["billing/subscriptions"], "invoices": r["counts"]["billing/invoices"],
                     "tickets": r["counts"]["support/tickets"], "accounts": r["counts"]["crm/Account"]})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run")
    sub = p.add_subparsers(dest="what", required=True)
    s = sub.add_parser("simulator", help="generation speed and peak memory per size")
    s.add_argument("--sizes", nargs="+", default=["tiny", "demo", "large"])
    s.add_argument("--seed", type=int, default=42)
    args = p.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    env = {"python": platform.python_version(), "cpus": os.cpu_count(), "machine": platform.machine()}
    rows = bench_simulator(args.sizes, args.seed)
    (OUT / "simulator.json").write_text(json.dumps({"env": env, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
