"""Benchmarks: speed and peak memory, measured in fresh processes (not timed tests).

    .venv/bin/python -m benchmarks.run simulator --sizes tiny demo large
    .venv/bin/python -m benchmarks.run ingest [--sizes demo large] [--no-incremental]
    .venv/bin/python -m benchmarks.run full --size demo [--landing PATH] [--work DIR]   (benchmarks/full.py)

Each measurement runs in its own Python process so that peak RSS belongs to that step alone. Output
goes to ``bench_out/`` (git-ignored) and a JSON summary is printed; BENCHMARKS.md records the figures.
"""

import argparse
import json
import os
import platform
import shutil
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
                             check=False, capture_output=True, text=True, cwd=ROOT)
        if res.returncode:
            raise SystemExit(f"simulator {size} failed:\n{res.stderr[-3000:]}")
        # the simulator may print progress lines of its own: the result is the line the child wrote last
        r = json.loads(next(line for line in reversed(res.stdout.splitlines()) if line.startswith('{"seconds"')))
        events = r["counts"]["product/events"]
        rows.append({"size": size, "seconds": r["seconds"], "wall_seconds": round(time.perf_counter() - started, 1),
                     "peak_rss_mb": r["peak_rss_mb"], "landing_mb": _du_mb(landing), "events": events,
                     "events_per_second": round(events / r["seconds"]), "subscriptions":
                     r["counts"]["billing/subscriptions"], "invoices": r["counts"]["billing/invoices"],
                     "tickets": r["counts"]["support/tickets"], "accounts": r["counts"]["crm/Account"]})
        print(json.dumps(rows[-1]), flush=True)
    return rows


# --------------------------------------------------------------------------------------------------
# ingest: every source in a fresh process, DuckDB's read_json baseline, and a nightly increment

SYSTEMS = ("crm", "billing", "product", "support", "nps")

_GENERATE = """
import sys, datetime as dt
from pathlib import Path
from cs_kpis.simulator import generate
as_of = dt.date.fromisoformat(sys.argv[5]) if sys.argv[5] != "-" else None
m = generate(Path(sys.argv[1]), Path(sys.argv[2]), size=sys.argv[3], seed=int(sys.argv[4]), as_of=as_of,
             increments=int(sys.argv[6]))
print('{"extract_days": %d}' % len(m["extract_days"]))
"""

_READ_JSON = """
import glob, json, resource, sys, time, duckdb
from pathlib import Path
from cs_kpis.sources.product import helpers
files = sorted(glob.glob(sys.argv[1] + "/product/events/*/part-*.jsonl"))
fl = helpers.file_list(files)
out = {"files": len(files), "mb": round(sum(Path(f).stat().st_size for f in files) / 1e6)}
only = sys.argv[3].split(",") if len(sys.argv) > 3 else ["count", "ctas_auto", "ctas_columns"]
con = duckdb.connect()
if "count" in only:
    t = time.perf_counter()
    out["rows"] = con.execute(f"select count(*) from read_json({fl}, format='newline_delimited')").fetchall()[0][0]
    out["count_seconds"] = round(time.perf_counter() - t, 3)
for label, cols in (("ctas_auto", ""), ("ctas_columns", f", columns = {helpers.struct_spec()}")):
    if label not in only:
        continue
    con = duckdb.connect(sys.argv[2] + f".{label}.duckdb")
    t = time.perf_counter()
    con.execute(f"create table t as select * from read_json({fl}, format='newline_delimited'{cols})")
    out[label + "_seconds"] = round(time.perf_counter() - t, 3)
    out["rows"] = con.execute("select count(*) from t").fetchall()[0][0]
    con.close()
    Path(sys.argv[2] + f".{label}.duckdb").unlink()
out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
print(json.dumps(out))
"""


_READ_PAGES = """
import glob, json, resource, sys, time, duckdb
from pathlib import Path
landing, system, scratch, memory = sys.argv[1:5]
LIST_KEY = {"billing": lambda entity: "data", "support": lambda entity: entity}[system]
CHILDREN = {"billing": {"subscriptions": ["items"], "invoices": ["lines"]}}.get(system, {})
con = duckdb.connect(scratch, config={"memory_limit": memory})
out = {"system": system, "entities": {}}
started, size = time.perf_counter(), 0
for folder in sorted(Path(landing, system).iterdir()):
    files = sorted(glob.glob(f"{folder}/*/part-*.json"))
    if not files:
        continue
    size += sum(Path(f).stat().st_size for f in files)
    t = time.perf_counter()
    # every record of every page, its fields as columns, nested objects and lists typed as DuckDB reads them
    con.execute(f"create table {folder.name} as select unnest({LIST_KEY(folder.name)}, max_depth := 2) "
                f"from read_json({files!r}, format='unstructured')")
    entry = {"rows": con.execute(f"select count(*) from {folder.name}").fetchone()[0],
             "seconds": round(time.perf_counter() - t, 3)}
    for child in CHILDREN.get(folder.name, []):
        # the nested list (subscription items, invoice lines) as a table of its own
        con.execute(f"create table {folder.name}_{child} as select unnest(p.{child}.data, max_depth := 2) "
                    f"from {folder.name} p")
        entry[child] = con.execute(f"select count(*) from {folder.name}_{child}").fetchone()[0]
    out["entities"][folder.name] = entry
out["mb"] = round(size / 1e6)
out["seconds"] = round(time.perf_counter() - started, 3)
out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
con.close()
Path(scratch).unlink()
print(json.dumps(out))
"""
"""DuckDB's own read of a system's JSON pages (billing, support): each entity's records into a table, and
billing's nested item and line lists into tables of their own; the yardstick of the issue-18 target (the
source within 2x of it, same sitting)"""

PAGE_SYSTEMS = ("billing", "support")


def page_baseline(landing: Path, system: str, work: Path, memory: str = "4GB") -> dict:
    """DuckDB's read of ``system``'s pages (:data:`_READ_PAGES`) in a fresh process, wall time from here."""
    started = time.perf_counter()
    r = _child(["-c", _READ_PAGES, str(landing), system, str(work / f"pages_{system}.duckdb"), memory],
               f"{system} page baseline")
    r["wall_seconds"] = round(time.perf_counter() - started, 2)
    return r


def events_baseline(landing: Path, work: Path) -> dict:
    """DuckDB's typed ``create table as select * from read_json(..., columns = <our columns>)`` of the product
    events (:data:`_READ_JSON`, that read alone) in a fresh process: the yardstick of the events target (1.5x)."""
    started = time.perf_counter()
    r = _child(["-c", _READ_JSON, str(landing), str(work / "events_baseline"), "ctas_columns"], "events baseline")
    return {**r, "seconds": r["ctas_columns_seconds"], "wall_seconds": round(time.perf_counter() - started, 2)}


def _child(args: list[str], what: str) -> dict:
    res = subprocess.run([sys.executable, *args], check=False, capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "RUNTIME__DLTHUB_TELEMETRY": "false"})
    if res.returncode:
        raise SystemExit(f"{what} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def _load(system: str, landing: Path, work: Path) -> dict:
    """Load one system in a fresh process (the CLI of cs_kpis.sources.pipelines); wall time from here."""
    started = time.perf_counter()
    r = _child(["-m", "cs_kpis.sources.pipelines", "--landing", str(landing), "--warehouse",
                str(work / "warehouse.duckdb"), "--pipelines-dir", str(work / "dlt"), "--systems", system], system)
    r["wall_seconds"] = round(time.perf_counter() - started, 2)
    return r


def _snapshot_view(landing: Path, view: Path) -> None:
    """The landing folder as of its first extract day, without copying: symlinks and a cut manifest."""
    if view.exists():
        shutil.rmtree(view)
    view.mkdir(parents=True)
    for child in landing.iterdir():
        if child.name != "_manifest.json":
            (view / child.name).symlink_to(child.resolve())
    manifest = json.loads((landing / "_manifest.json").read_text())
    manifest["extract_days"] = sorted(manifest["extract_days"])[:1]
    (view / "_manifest.json").write_text(json.dumps(manifest))


def _row(r: dict) -> dict:
    return {"system": r["system"], "rows_read": r["rows_read"], "rows_loaded": r["rows_loaded"],
            "seconds": r["seconds"], "wall_seconds": r["wall_seconds"],
            "rows_per_second": round(r["rows_read"] / r["seconds"]) if r["seconds"] else None,
            "peak_rss_mb": r["peak_rss_mb"], "dlt_loads": r["dlt_loads"]}


def bench_ingest(size: str, seed: int, incremental: bool, generate: bool, keep: bool = False,
                 systems: tuple[str, ...] = SYSTEMS, wipe: bool = True, landing: Path | None = None) -> dict:
    base = OUT / size
    landing = landing or base / "landing"
    if not (landing / "_manifest.json").exists():
        if not generate:
            raise SystemExit(f"{landing} missing: run `python -m benchmarks.run simulator --sizes {size}` first")
        _child(["-c", _GENERATE, str(landing), str(base / "ground_truth"), size, str(seed), "-", "0"], "simulator")
    work = base / "ingest_work"
    if wipe:
        shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    full = []
    for system in systems:
        full.append(_row(_load(system, landing, work)))
        print(json.dumps({"size": size, **full[-1]}), flush=True)
    pages = {}
    for r in full:
        if r["system"] in PAGE_SYSTEMS:
            # DuckDB's own read of the same pages, right after the source's load (same sitting)
            base = page_baseline(landing, r["system"], work)
            base["source_seconds"] = r["seconds"]
            base["source_vs_duckdb"] = round(r["seconds"] / base["seconds"], 2)
            pages[r["system"]] = base
            print(json.dumps({"size": size, "page_baseline": base}), flush=True)
    events = next((r for r in full if r["system"] == "product"), None)
    if events is None:
        return {"size": size, "landing": str(landing), "full": full, "page_baselines": pages}
    baseline = _child(["-c", _READ_JSON, str(landing), str(work / "baseline")], "read_json baseline")
    baseline.update({
        "loader_seconds": events["seconds"],
        "loader_rows_per_second": events["rows_per_second"],
        "count_rows_per_second": round(baseline["rows"] / baseline["count_seconds"]),
        "ctas_auto_rows_per_second": round(baseline["rows"] / baseline["ctas_auto_seconds"]),
        "ctas_columns_rows_per_second": round(baseline["rows"] / baseline["ctas_columns_seconds"]),
        "loader_vs_ctas_columns": round(events["seconds"] / baseline["ctas_columns_seconds"], 2),
        "loader_vs_count": round(events["seconds"] / baseline["count_seconds"], 2),
    })
    print(json.dumps({"size": size, "events_baseline": baseline}), flush=True)
    result = {"size": size, "landing": str(landing), "full": full, "events_baseline": baseline, "page_baselines": pages}
    if incremental:
        result["incremental"] = bench_incremental(size, seed, base, generate)
    if keep:
        result["warehouse"] = str(work / "warehouse.duckdb")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return result


def bench_incremental(size: str, seed: int, base: Path, generate: bool) -> dict:
    """A company as of the day before the end with one increment: load the snapshot, then time the
    nightly load of the new day, per system, each in a fresh process."""
    inc = base / "incremental"
    landing = inc / "landing"
    if not (landing / "_manifest.json").exists():
        if not generate:
            return {"skipped": f"{landing} missing (generate it with --generate)"}
        probe = json.loads((base / "landing" / "_manifest.json").read_text())
        end = max(probe["extract_days"])
        import datetime as dt

        as_of = (dt.date.fromisoformat(end) - dt.timedelta(days=1)).isoformat()
        _child(["-c", _GENERATE, str(landing), str(inc / "ground_truth"), size, str(seed), as_of, "1"], "simulator")
    work = inc / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    _snapshot_view(landing, inc / "snapshot_view")
    snapshot = [_row(_load(system, inc / "snapshot_view", work)) for system in SYSTEMS]
    nightly = [_row(_load(system, landing, work)) for system in SYSTEMS]
    snap_s = sum(r["seconds"] for r in snapshot)
    night_s = sum(r["seconds"] for r in nightly)
    out = {"snapshot": snapshot, "nightly": nightly, "snapshot_seconds": round(snap_s, 2),
           "nightly_seconds": round(night_s, 2), "nightly_share_of_full": round(night_s / snap_s, 3),
           "snapshot_wall_seconds": round(sum(r["wall_seconds"] for r in snapshot), 2),
           "nightly_wall_seconds": round(sum(r["wall_seconds"] for r in nightly), 2)}
    out["nightly_wall_share_of_full"] = round(out["nightly_wall_seconds"] / out["snapshot_wall_seconds"], 3)
    print(json.dumps({"size": size, "incremental": {k: v for k, v in out.items() if k not in ("snapshot", "nightly")}}),
          flush=True)
    shutil.rmtree(work, ignore_errors=True)
    return out


def ingest_markdown(result: dict) -> str:
    size = result["size"]
    lines = [f"### ingest, {size}", "",
             "| source | rows read | rows loaded | seconds (load) | wall s (process) | rows/s | peak RSS MB | dlt loads |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in result["full"]:
        lines.append(f"| {r['system']} | {r['rows_read']:,} | {r['rows_loaded']:,} | {r['seconds']:.2f} | "
                     f"{r['wall_seconds']:.2f} | {r['rows_per_second'] or 0:,} | {r['peak_rss_mb']:,} | {r['dlt_loads']} |")
    pages = result.get("page_baselines") or {}
    if pages:
        lines += ["", "| pages: same files, same run | source s | DuckDB read s | source / DuckDB | MB |",
                  "|---|---:|---:|---:|---:|"]
        lines += [f"| {system} | {b['source_seconds']:.2f} | {b['seconds']:.2f} | {b['source_vs_duckdb']}x | {b['mb']:,} |"
                  for system, b in pages.items()]
    b = result.get("events_baseline")
    if b is None:
        return "\n".join(lines)
    lines += ["", "| events: same files, same run | seconds | rows/s |", "|---|---:|---:|",
              f"| DuckDB `select count(*) from read_json` | {b['count_seconds']:.2f} | {b['count_rows_per_second']:,} |",
              (f"| DuckDB `create table as select * from read_json` (auto schema) | {b['ctas_auto_seconds']:.2f} | "
              f"{b['ctas_auto_rows_per_second']:,} |"),
              (f"| DuckDB `create table as select * from read_json` (our columns) | {b['ctas_columns_seconds']:.2f} | "
              f"{b['ctas_columns_rows_per_second']:,} |"),
              (f"| product source (dlt run, dedup, casts, quarantine check) | {b['loader_seconds']:.2f} | "
              f"{b['loader_rows_per_second']:,} |"),
              "", f"loader / CTAS(our columns) = {b['loader_vs_ctas_columns']}x; loader / count(*) = {b['loader_vs_count']}x"]
    inc = result.get("incremental")
    if inc and "skipped" not in inc:
        lines += ["", "| nightly increment (one new day) | load seconds | process wall s |", "|---|---:|---:|",
                  f"| snapshot (full load, as of end-1) | {inc['snapshot_seconds']:.2f} | {inc['snapshot_wall_seconds']:.2f} |",
                  f"| the new day | {inc['nightly_seconds']:.2f} | {inc['nightly_wall_seconds']:.2f} |",
                  f"| share of the full load | {inc['nightly_share_of_full']:.1%} | {inc['nightly_wall_share_of_full']:.1%} |"]
        lines += ["", "| source | nightly rows read | nightly seconds |", "|---|---:|---:|"]
        lines += [f"| {r['system']} | {r['rows_read']:,} | {r['seconds']:.2f} |" for r in inc["nightly"]]
    elif inc:
        lines += ["", f"nightly increment: {inc['skipped']}"]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run")
    sub = p.add_subparsers(dest="what", required=True)
    s = sub.add_parser("simulator", help="generation speed and peak memory per size")
    s.add_argument("--sizes", nargs="+", default=["tiny", "demo", "large"])
    s.add_argument("--seed", type=int, default=42)
    i = sub.add_parser("ingest", help="load speed and peak memory per source, read_json baseline, nightly increment")
    i.add_argument("--sizes", nargs="+", default=None,
                   help="default: demo, plus large when bench_out/large/landing exists")
    i.add_argument("--seed", type=int, default=42)
    i.add_argument("--no-incremental", action="store_true", help="skip the nightly increment measurement")
    i.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=SYSTEMS)
    i.add_argument("--keep", action="store_true",
                   help="keep the loaded warehouse (bench_out/<size>/ingest_work) for the health benchmark")
    i.add_argument("--no-wipe", action="store_true",
                   help="load into the kept warehouse of an earlier --keep run (other systems already loaded)")
    i.add_argument("--generate", action="store_true",
                   help="generate missing landing folders (always done for demo; large takes many minutes)")
    i.add_argument("--landing", type=Path, default=None,
                   help="load this landing folder instead of bench_out/<size>/landing (e.g. the incremental one)")
    i.add_argument("--incremental-only", action="store_true",
                   help="only the nightly increment: snapshot of every system, then the new day "
                        "(bench_out/<size>/incremental/landing, made with --generate)")
    f = sub.add_parser("full", help="the run command's whole graph, per stage, then the nightly one-day increment "
                                    "(benchmarks/full.py)")
    f.add_argument("--size", choices=["tiny", "demo", "large"], default="demo")
    f.add_argument("--seed", type=int, default=42)
    f.add_argument("--landing", type=Path, default=None,
                   help="reuse this landing folder (only read; the nightly needs a second extract day) instead of "
                        "generating one with two extract days into the work folder")
    f.add_argument("--work", type=Path, default=None,
                   help="work folder for the state and the generated landing (default <CS_KPIS_BENCH_DIR>/full/<size>, "
                        "CS_KPIS_BENCH_DIR defaulting to bench_out/)")
    f.add_argument("--keep", action="store_true", help="keep the warehouse and Dagster state afterwards")
    f.add_argument("--memory-limit", default=None,
                   help="DuckDB's memory limit in the run (CS_KPIS_DUCKDB_MEMORY_LIMIT), e.g. 8GB; default: none set")
    f.add_argument("--max-temp-size", default=None,
                   help="the most DuckDB may spill to disk past the memory limit (CS_KPIS_DUCKDB_MAX_TEMP_SIZE), "
                        "e.g. 20GB: beyond it the step fails instead of filling the disk; default: DuckDB's, 90%% of "
                        "the free disk")
    f.add_argument("--temp-dir", type=Path, default=None,
                   help="where DuckDB spills (CS_KPIS_DUCKDB_TEMP_DIR); default: beside the warehouse file")
    f.add_argument("--serial-raw", action="store_true",
                   help="extract each file system in its own raw step (CS_KPIS_RAW_PREFETCH=0), not ahead of it in a "
                        "background process as the run command does by default")
    f.add_argument("--rerun-without-new-day", action="store_true",
                   help="with a one-day landing, run the command again on the same day (labelled 'no new day') "
                        "instead of skipping the nightly")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.what == "full":
        return run_full(args)
    OUT.mkdir(parents=True, exist_ok=True)
    env = {"python": platform.python_version(), "cpus": os.cpu_count(), "machine": platform.machine(),
           "load_average": os.getloadavg()}
    if args.what == "simulator":
        rows = bench_simulator(args.sizes, args.seed)
        (OUT / "simulator.json").write_text(json.dumps({"env": env, "rows": rows}, indent=1))
        return 0
    sizes = args.sizes or ["demo"] + (["large"] if (OUT / "large" / "landing" / "_manifest.json").exists() else [])
    for size in sizes:
        if args.incremental_only:
            result = {"size": size, "incremental": bench_incremental(size, args.seed, OUT / size, args.generate),
                      "env": {**env, "load_average_after": os.getloadavg()}}
            (OUT / f"ingest_{size}_incremental.json").write_text(json.dumps(result, indent=1))
            continue
        result = bench_ingest(size, args.seed, not args.no_incremental, args.generate or size != "large",
                              keep=args.keep, systems=tuple(args.systems), wipe=not args.no_wipe,
                              landing=args.landing)
        result["env"] = {**env, "load_average_after": os.getloadavg()}
        (OUT / f"ingest_{size}.json").write_text(json.dumps(result, indent=1))
        print()
        print(ingest_markdown(result))
        print()
    return 0


def run_full(args: argparse.Namespace) -> int:
    from benchmarks import full

    work = args.work or OUT / "full" / args.size
    result = full.bench_full(args.size, args.seed, work, landing=args.landing, keep=args.keep,
                             memory_limit=args.memory_limit, rerun_without_new_day=args.rerun_without_new_day,
                             max_temp_size=args.max_temp_size, temp_dir=args.temp_dir, serial_raw=args.serial_raw)
    (Path(result["work"]) / f"full_{result['size']}.json").write_text(json.dumps(result, indent=1))
    print()
    print(full.markdown(result))
    failed = [p for p in ("full", "nightly", "nightly_no_new_day") if result.get(p, {}).get("exit_code", 0)]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
