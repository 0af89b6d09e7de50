"""Billing, support and product events against DuckDB's own read of the same files, back to back (issue 18).

    python -m benchmarks.pages --landing <landing> [--systems billing support product] [--rounds 3] \
        [--before <checkout of an earlier commit>] [--work bench_out/pages]

Per round and system: the loader CLI (``python -m cs_kpis.sources.pipelines --systems <system>``) of this
checkout into an empty warehouse, the same from ``--before`` (another checkout's root, to compare a change),
then DuckDB's read of the same pages (benchmarks/run.py's ``page_baseline``; for the product events its typed
``create table as`` of the event files, ``events_baseline``), each in a fresh process. It
prints one JSON line per measurement: the loader's own seconds (``seconds``, from the CLI), wall seconds,
CPU seconds (user + system of the process and its children), peak RSS, the machine's load average, and the
ratios to DuckDB's read of the same round. CPU seconds are what a loaded machine distorts least.
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.run import ROOT, events_baseline, page_baseline


def _cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _load_average() -> float:
    return os.getloadavg()[0]


def load_once(code: Path, landing: Path, system: str, work: Path) -> dict:
    """The loader CLI of the checkout at ``code`` for ``system``, into a fresh warehouse under ``work``."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    cpu, started = _cpu_of_children(), time.perf_counter()
    res = subprocess.run(
        [sys.executable, "-m", "cs_kpis.sources.pipelines", "--landing", str(landing), "--warehouse",
         str(work / "warehouse.duckdb"), "--pipelines-dir", str(work / "dlt"), "--systems", system],
        cwd=code, capture_output=True, text=True, check=False,
        env={**os.environ, "RUNTIME__DLTHUB_TELEMETRY": "false", "PYTHONPATH": str(code)})
    wall, cpu = time.perf_counter() - started, _cpu_of_children() - cpu
    shutil.rmtree(work, ignore_errors=True)
    if res.returncode:
        raise SystemExit(f"{system} load from {code} failed:\n{res.stderr[-3000:]}")
    out = json.loads(res.stdout.strip().splitlines()[-1])
    return {"system": system, "rows_read": out["rows_read"], "seconds": out["seconds"], "wall_seconds": round(wall, 2),
            "cpu_seconds": round(cpu, 2), "peak_rss_mb": out["peak_rss_mb"]}


def duckdb_once(landing: Path, system: str, work: Path) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    cpu = _cpu_of_children()
    r = events_baseline(landing, work) if system == "product" else page_baseline(landing, system, work)
    return {"system": system, "mb": r["mb"], "seconds": r["seconds"], "wall_seconds": r["wall_seconds"],
            "cpu_seconds": round(_cpu_of_children() - cpu, 2), "peak_rss_mb": r["peak_rss_mb"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--landing", type=Path, required=True)
    parser.add_argument("--systems", nargs="+", default=["billing", "support"], choices=["billing", "support", "product"])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--before", type=Path, help="another checkout's root: its loader runs before this one's")
    parser.add_argument("--work", type=Path, default=ROOT / "bench_out" / "pages")
    args = parser.parse_args(argv)
    landing = args.landing.resolve()
    codes = ([("before", args.before.resolve())] if args.before else []) + [("this", ROOT)]
    for round_number in range(1, args.rounds + 1):
        for system in args.systems:
            loads = {label: {**load_once(code, landing, system, args.work / label), "load_average": _load_average()}
                     for label, code in codes}
            base = {**duckdb_once(landing, system, args.work / "duckdb"), "load_average": _load_average()}
            for label, r in loads.items():
                r.update({"round": round_number, "code": label,
                          "vs_duckdb_seconds": round(r["seconds"] / base["seconds"], 2),
                          "vs_duckdb_cpu": round(r["cpu_seconds"] / base["cpu_seconds"], 2)})
                print(json.dumps(r), flush=True)
            print(json.dumps({"round": round_number, "code": "duckdb_read", **base}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
