"""End to end (issue 18): the run command's whole graph on one company, then the nightly one-day increment.

    .venv/bin/python -m benchmarks.run full --size demo
    .venv/bin/python -m benchmarks.run full --size large --landing /path/to/landing

What runs is exactly what a user runs: ``python -m cs_kpis.run`` (``make run``), in a fresh process, with every
state path (warehouse, dlt state, Dagster home, reports, outbox) in a work folder,
``<CS_KPIS_BENCH_DIR>/full/<size>`` (CS_KPIS_BENCH_DIR defaults to the git-ignored ``bench_out/``; ``--work``
to change it), and ``CS_KPIS_HEALTH_HISTORY_DAYS=365``.

1. **full**: a fresh warehouse, the landing folder as of its first extract day (a view: hard links to the
   landing's files of that day, and a manifest cut to it; nothing copied), every asset and check.
2. **nightly**: the view gains the next extract day's files and then its manifest, as an export does, and
   the same command runs again (what the nightly job and ``new_extract_day_sensor`` run: every asset, no
   full refresh).

Per stage (the Dagster asset groups: landing, raw, staging, marts, kpis, health, alerts, reverse_etl,
reports) the seconds are the sum of that stage's step durations, from the run's STEP_START and
STEP_SUCCESS/STEP_FAILURE events in the work folder's Dagster instance (the in-process executor runs one
step at a time), and the peak RSS is the largest resident set of the run's process tree sampled while that
stage's steps ran (every 0.2 s, from /proc). ``outside steps`` is the rest of the wall time: interpreter
start, loading the definitions, run bookkeeping and the command's summary. The process's own peak RSS
comes from ``wait4``.

While a run goes, its stage table so far (finished steps, their seconds and the peak RSS sampled until
then) is rewritten every 30 s to ``<work>/<phase>.progress.json``, and once more, complete, at its end: a
benchmark stopped before the end (a deadline, a full disk) keeps the figures of the stages it finished.

``--memory-limit 8GB`` sets CS_KPIS_DUCKDB_MEMORY_LIMIT for the run (DuckDB's limit in the warehouse's
steps and dlt's loads); without it DuckDB takes its default, 80% of RAM. ``--max-temp-size 20GB`` caps what
DuckDB may spill to disk past that limit (CS_KPIS_DUCKDB_MAX_TEMP_SIZE): a step that needs more fails with
DuckDB's out-of-memory error naming ``max_temp_directory_size`` instead of filling the disk (DuckDB's own
default is 90% of the free disk, which other work on the same disk then finds gone). ``--temp-dir`` moves
the spill folder (CS_KPIS_DUCKDB_TEMP_DIR; default ``<warehouse file>.tmp``).

Without ``--landing`` a company with two extract days is generated into the work folder (as of its size's
last day minus one, one increment), like ``benchmarks.run ingest --incremental-only``. A ``--landing``
with one extract day has no next day: the nightly is skipped and the report says so, or with
``--rerun-without-new-day`` the command runs again on the same day, reported as ``nightly_no_new_day``
(what a nightly costs when no export arrived; not a one-day increment). The landing folder is only read.
"""

import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

STAGES = ("landing", "raw", "staging", "marts", "kpis", "health", "alerts", "reverse_etl", "reports")
"""the Dagster asset groups, in the order a run builds them; a group not listed here is reported after them"""

HISTORY_DAYS = 365
SAMPLE_SECONDS = 0.2
PROGRESS_SECONDS = 30.0
"""how often the stage table of a run in progress is written to ``<work>/<phase>.progress.json``"""

_GENERATE = """
import sys, datetime as dt
from pathlib import Path
from cs_kpis.simulator import generate
m = generate(Path(sys.argv[1]), Path(sys.argv[2]), size=sys.argv[3], seed=int(sys.argv[4]),
             as_of=dt.date.fromisoformat(sys.argv[5]), increments=1)
print('{"extract_days": %d, "seconds": %s}' % (len(m["extract_days"]), m["seconds"]))
"""


# ------------------------------------------------------------------------------------------ the landing

def make_landing(size: str, seed: int, work: Path) -> Path:
    """A company with two extract days (the size's last day minus one, and the last day) in ``work``."""
    from cs_kpis.simulator.sizes import SIZES

    landing = work / "landing"
    if (landing / "_manifest.json").exists():
        return landing
    as_of = SIZES[size].end_date - dt.timedelta(days=1)
    res = subprocess.run([sys.executable, "-c", _GENERATE, str(landing), str(work / "ground_truth"), size, str(seed),
                          as_of.isoformat()], check=False, capture_output=True, text=True, cwd=ROOT)
    if res.returncode:
        raise SystemExit(f"simulator {size} failed:\n{res.stderr[-3000:]}")
    print(res.stdout.strip().splitlines()[-1], flush=True)
    return landing


def _link(src: Path, dst: Path) -> None:
    """``dst`` as a hard link to ``src`` (no space, no symlink for a glob to skip); a symlink across devices."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        return
    try:
        os.link(src, dst)
    except OSError:
        dst.symlink_to(src.resolve())


def landing_view(landing: Path, view: Path, days: int) -> list[str]:
    """``view``: the landing folder as of its first ``days`` extract days, as an exporter would have left it
    then, without copying anything. Returns the days kept.

    Entity folders hold only the kept days' folders, product events only the received days up to the last
    kept day (a day folder the manifest does not list fails the raw layer's blocking check), the manifest
    is a copy with the extract days and ``counts`` cut. Files are hard links to the landing's; calling it
    again with more days adds the new days' files and rewrites the manifest, as a nightly export does.
    Hidden files (the simulator's mark) are left out: the view is read as an export, never regenerated.
    """
    manifest = json.loads((landing / "_manifest.json").read_text())
    every_day = sorted(manifest["extract_days"])
    kept = every_day[:days]
    for path in sorted(landing.rglob("*")):
        relative = path.relative_to(landing)
        if path.is_dir() or relative.name == "_manifest.json" or any(p.startswith(".") for p in relative.parts):
            continue
        parts = relative.parts
        day = next((p for p in parts[:-1] if _is_day(p)), None)
        if day is not None:
            events = parts[:2] == ("product", "events")
            if (events and day > kept[-1]) or (not events and day not in kept):
                continue
        _link(path, view / relative)
    manifest["extract_days"] = kept
    if kept != every_day:
        manifest["counts"] = cut_counts(view, manifest.get("counts") or {}, kept)
    # written last, as an exporter does (docs/LANDING.md)
    (view / "_manifest.json").write_text(json.dumps(manifest, indent=1))
    return kept


def _is_day(name: str) -> bool:
    try:
        return len(name) == 10 and dt.date.fromisoformat(name).isoformat() == name
    except ValueError:
        return False


def _records(payload) -> list:
    """The records of one page: a bare array (Delighted) or the envelope's one list (Stripe ``data``,
    Salesforce ``records``, Zendesk ``tickets``/``organizations``/...)."""
    if isinstance(payload, list):
        return payload
    lists = [v for v in payload.values() if isinstance(v, list)]
    if len(lists) != 1:
        raise ValueError(f"expected one list in the page's envelope, found {len(lists)}")
    return lists[0]


def _lines(path: Path) -> int:
    n, last = 0, b"\n"
    with path.open("rb") as f:
        for buf in iter(lambda: f.read(1 << 24), b""):
            n, last = n + buf.count(b"\n"), buf[-1:]
    return n + (last != b"\n")


def cut_counts(landing: Path, counts: dict[str, int], kept: list[str]) -> dict[str, int]:
    """The manifest's ``counts`` for an export of the ``kept`` extract days only, counted from the files.

    ``counts`` means what the export holds (docs/LANDING.md): distinct record ids per entity folder, lines
    for product events (received-day folders up to the last kept day). The raw layer's blocking
    reconciliation check compares the rows loaded with it, so a view cut to fewer days needs its own.
    Preparation, not measured: it parses every page of the kept days once (orjson), minutes on large.
    """
    import orjson

    out = {}
    for entity in counts:
        folder = landing / entity
        if entity == "product/events":
            n = 0
            for day in folder.iterdir():
                if day.name <= kept[-1]:
                    for part in day.glob("part-*.jsonl"):
                        n += _lines(part)
            out[entity] = n
            continue
        ids = set()
        for day in kept:
            for part in (folder / day).glob("part-*.json"):
                for rec in _records(orjson.loads(part.read_bytes())):
                    ids.add(rec.get("id", rec.get("Id")))
        out[entity] = len(ids)
    return out


def run_env(work: Path, view: Path, ground_truth: Path, size: str, seed: int,
            memory_limit: str | None = None, max_temp_size: str | None = None,
            temp_dir: Path | None = None) -> dict[str, str]:
    """The environment of the run command: every cs_kpis path in ``work``, none inherited from the caller;
    ``memory_limit`` (e.g. ``8GB``) is DuckDB's limit in the warehouse's steps and dlt's loads
    (CS_KPIS_DUCKDB_MEMORY_LIMIT), ``max_temp_size`` the most it may spill to disk past it
    (CS_KPIS_DUCKDB_MAX_TEMP_SIZE) and ``temp_dir`` where (CS_KPIS_DUCKDB_TEMP_DIR)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CS_KPIS_") and k != "DAGSTER_HOME"}
    state = work / "state"
    env.update({
        "CS_KPIS_STATE_DIR": str(state),
        "CS_KPIS_WAREHOUSE": str(state / "warehouse" / "cs_kpis.duckdb"),
        "CS_KPIS_DLT_DIR": str(state / "dlt"),
        "DAGSTER_HOME": str(state / "dagster_home"),
        "CS_KPIS_LANDING_DIR": str(view),
        "CS_KPIS_GROUND_TRUTH_DIR": str(ground_truth),
        "CS_KPIS_DEMO_SIZE": size,
        "CS_KPIS_DEMO_SEED": str(seed),
        "CS_KPIS_HEALTH_HISTORY_DAYS": str(HISTORY_DAYS),
        "RUNTIME__DLTHUB_TELEMETRY": "false",
    })
    if memory_limit:
        env["CS_KPIS_DUCKDB_MEMORY_LIMIT"] = memory_limit
    if max_temp_size:
        env["CS_KPIS_DUCKDB_MAX_TEMP_SIZE"] = max_temp_size
    if temp_dir:
        env["CS_KPIS_DUCKDB_TEMP_DIR"] = str(temp_dir)
    return env



# --------------------------------------------------------------------------------------- measurement

def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def tree_rss_mb(pid: int) -> float:
    """Resident set of ``pid`` and all its descendants, in MB (0 when it is gone)."""
    tree, total, todo = _children(), 0, [pid]
    while todo:
        p = todo.pop()
        todo.extend(tree.get(p, []))
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            continue
    return total / 1024


@dataclass
class Sampler:
    pid: int
    samples: list[tuple[float, float]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> "Sampler":
        threading.Thread(target=self._loop, daemon=True).start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.time(), tree_rss_mb(self.pid)))
            self._stop.wait(SAMPLE_SECONDS)

    def stop(self) -> None:
        self._stop.set()


def run_command(env: dict[str, str], log: Path, progress=None, args: tuple[str, ...] = ()) -> dict:
    """``python -m cs_kpis.run [args]`` in a fresh process: wall seconds, exit code, peak RSS, RSS samples.

    ``progress(samples)``, if given, is called every :data:`PROGRESS_SECONDS` while the command runs, in a
    thread of its own (an error in it is written to the log's ``.progress_error`` file, never raised)."""
    started_at, started = time.time(), time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "cs_kpis.run", *args], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT)
        sampler = Sampler(proc.pid).start()
        done = threading.Event()

        def report() -> None:
            while not done.wait(PROGRESS_SECONDS):
                try:
                    progress(sampler.samples)
                except Exception as e:  # noqa: BLE001  (a report in progress must never stop the run)
                    log.with_suffix(".progress_error").write_text(f"{type(e).__name__}: {e}\n")

        if progress is not None:
            reporter = threading.Thread(target=report, daemon=True)
            reporter.start()
        _, status, usage = os.wait4(proc.pid, 0)
        done.set()
        if progress is not None:
            # a report still writing would otherwise replace the final file written below with a partial one
            reporter.join()
        sampler.stop()
    # reaped by wait4 (for its rusage): tell Popen, which would otherwise think the process still runs
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"exit_code": proc.returncode, "wall_seconds": round(time.perf_counter() - started, 1),
            "started_at": started_at, "peak_rss_mb": round(usage.ru_maxrss / 1024),
            # user + system CPU of the command (and children it waited for): less sensitive to a loaded machine
            "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),
            "samples": sampler.samples, "log": str(log)}


def step_intervals(dagster_home: Path) -> tuple[str, dict[str, tuple[float, float, bool]]]:
    """(run id, {step key: (start, end, succeeded)}) of the newest run in the instance at ``dagster_home``."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        run = instance.get_runs(limit=1)[0]
        return run.run_id, run_step_spans(instance, run.run_id)


def run_step_spans(instance, run_id: str) -> dict[str, tuple[float, float, bool]]:
    """{step key: (start, end, succeeded)} of run ``run_id``, from its STEP_START and STEP_SUCCESS/FAILURE events
    (benchmarks/staging.py reads its runs with it too)."""
    import dagster as dg

    starts, steps = {}, {}
    for rec in instance.all_logs(run_id):
        ev = rec.dagster_event
        if ev is None or not ev.step_key:
            continue
        if ev.event_type == dg.DagsterEventType.STEP_START:
            starts[ev.step_key] = rec.timestamp
        elif ev.event_type in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
            ok = ev.event_type == dg.DagsterEventType.STEP_SUCCESS
            steps[ev.step_key] = (starts.get(ev.step_key, rec.timestamp), rec.timestamp, ok)
    return steps


def step_stages(defs) -> dict[str, str]:
    """{step key: stage} for every step of the global asset job: the Dagster group of the assets the step
    materializes, or for a step that only runs checks, of the assets it checks."""
    job = defs.resolve_implicit_global_asset_job_def()
    graph = defs.resolve_asset_graph()
    out = {}
    for assets_def in graph.assets_defs:
        keys = list(assets_def.keys) or [k.asset_key for k in assets_def.check_keys]
        groups = sorted({graph.get(k).group_name for k in keys if graph.has(k)})
        if not groups:
            continue
        # a step spans one group in this project; should one ever span several, the first (sorted) names it
        out[assets_def.node_def.name] = groups[0]
    nodes = {node.name for node in job.nodes}
    return {name: stage for name, stage in out.items() if name in nodes}


_STAGES = """
import json
from benchmarks import full
from cs_kpis.definitions import defs
print(json.dumps(full.step_stages(defs())))
"""


def stages_in_scratch(work: Path, size: str, seed: int) -> dict[str, str]:
    """:func:`step_stages` of the run's definitions, loaded in a fresh process with every state path in a
    scratch folder (removed afterwards)."""
    scratch = work / "scratch_definitions"
    shutil.rmtree(scratch, ignore_errors=True)
    env = run_env(scratch, scratch / "landing", scratch / "ground_truth", size, seed)
    try:
        res = subprocess.run([sys.executable, "-c", _STAGES], cwd=ROOT, env=env, capture_output=True, text=True,
                             check=False)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if res.returncode:
        raise SystemExit(f"loading the definitions failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def stage_order(stage: str) -> tuple[int, str]:
    return (STAGES.index(stage) if stage in STAGES else len(STAGES), stage)


def stage_table(steps: dict[str, tuple[float, float, bool]], stages: dict[str, str],
                samples: list[tuple[float, float]]) -> list[dict]:
    """One row per stage: steps, seconds (the sum of its steps' durations), failed steps and the peak RSS
    sampled while its steps ran (a step shorter than the sampling interval takes the nearest sample)."""
    rows: dict[str, dict] = {}
    for key, (start, end, ok) in steps.items():
        stage = stages.get(key, "other")
        row = rows.setdefault(stage, {"stage": stage, "steps": 0, "seconds": 0.0, "failed": 0, "peak_rss_mb": 0.0})
        row["steps"] += 1
        row["seconds"] += end - start
        row["failed"] += not ok
        inside = [rss for t, rss in samples if start <= t <= end]
        if not inside and samples:
            inside = [min(samples, key=lambda s: min(abs(s[0] - start), abs(s[0] - end)))[1]]
        row["peak_rss_mb"] = max([row["peak_rss_mb"], *inside])
    out = sorted(rows.values(), key=lambda r: stage_order(r["stage"]))
    for r in out:
        r["seconds"], r["peak_rss_mb"] = round(r["seconds"], 1), round(r["peak_rss_mb"])
    return out


def write_progress(path: Path, name: str, dagster_home: Path, stages_of, samples: list[tuple[float, float]]) -> None:
    """The stage table of the steps finished so far, with the peak RSS sampled until now, in ``path`` (JSON,
    rewritten whole each time): what survives if the benchmark is stopped before the run ends."""
    if not (dagster_home / "storage").exists():  # the run has not created its instance yet
        return
    run_id, steps = step_intervals(dagster_home)
    snapshot = list(samples)
    out = {"phase": name, "run_id": run_id, "partial": True, "written_at": time.time(),
           "steps_finished": len(steps), "stages": stage_table(steps, stages_of(), snapshot),
           "step_seconds": {k: round(end - start, 1) for k, (start, end, _) in steps.items()},
           "sampled_peak_rss_mb_so_far": round(max((s for _, s in snapshot), default=0))}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(out, indent=1))
    tmp.replace(path)


def measure(name: str, env: dict[str, str], work: Path, stages_of, args: tuple[str, ...] = ()) -> dict:
    """One run of the command (``args``: its arguments, e.g. ``("--select", ...)``), per stage."""
    dagster_home = Path(env["DAGSTER_HOME"])
    progress_file = work / f"{name}.progress.json"
    r = run_command(env, work / f"{name}.log",
                    progress=lambda samples: write_progress(progress_file, name, dagster_home, stages_of, samples),
                    args=args)
    run_id, steps = step_intervals(dagster_home)
    rows = stage_table(steps, stages_of(), r["samples"])
    in_steps = sum(end - start for start, end, _ in steps.values())
    first = min((start for start, _, _ in steps.values()), default=r["started_at"])
    last = max((end for _, end, _ in steps.values()), default=first)
    out = {"phase": name, "run_id": run_id, "exit_code": r["exit_code"], "wall_seconds": r["wall_seconds"],
           "seconds_in_steps": round(in_steps, 1), "seconds_outside_steps": round(r["wall_seconds"] - in_steps, 1),
           # outside steps = before the first step (interpreter, imports, definitions, run start) + between
           # steps (Dagster's orchestration and event log) + after the last one (the command's summary)
           "seconds_before_first_step": round(first - r["started_at"], 1),
           "seconds_between_steps": round(last - first - in_steps, 1),
           "seconds_after_last_step": round(r["started_at"] + r["wall_seconds"] - last, 1),
           "cpu_seconds": r["cpu_seconds"], "peak_rss_mb": r["peak_rss_mb"], "sampled_peak_rss_mb": round(max((s for _, s in r["samples"]), default=0)),
           "stages": rows, "step_seconds": {k: round(end - start, 1) for k, (start, end, _) in steps.items()},
           "log": r["log"]}
    print(json.dumps({k: v for k, v in out.items() if k not in ("stages", "step_seconds")}), flush=True)
    progress_file.write_text(json.dumps({**out, "partial": False}, indent=1))
    return out


# ------------------------------------------------------------------------------------------------ run

def bench_full(size: str, seed: int, work: Path, landing: Path | None = None, keep: bool = False,
               memory_limit: str | None = None, rerun_without_new_day: bool = False,
               max_temp_size: str | None = None, temp_dir: Path | None = None, serial_raw: bool = False) -> dict:
    """The full build, then the nightly. A landing with one extract day has no next day: the nightly is
    skipped, or with ``rerun_without_new_day`` the same command runs again on the same day (phase
    ``nightly_no_new_day``: what a nightly costs when no export arrived, not a one-day increment)."""
    work = work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    if landing is None:
        landing = make_landing(size, seed, work)
        ground_truth = work / "ground_truth"
    else:
        landing = landing.resolve()
        ground_truth = landing.parent / "ground_truth"
    manifest = json.loads((landing / "_manifest.json").read_text())
    size, seed = manifest.get("size", size), int(manifest.get("seed", seed))
    # a fresh state each time: the full build starts from an empty warehouse
    shutil.rmtree(work / "state", ignore_errors=True)
    shutil.rmtree(work / "view", ignore_errors=True)
    view = work / "view"
    days = landing_view(landing, view, 1)
    env = run_env(work, view, ground_truth, size, seed, memory_limit, max_temp_size, temp_dir)
    if serial_raw:  # the file systems extracted in their own steps only, not ahead (cs_kpis/defs/raw/prefetch.py)
        from cs_kpis.defs.raw.prefetch import PREFETCH_ENV

        env[PREFETCH_ENV] = "0"
    os.environ.update({k: v for k, v in env.items() if k.startswith("CS_KPIS_") or k == "DAGSTER_HOME"})

    # the step -> stage map, before the first run (not measured), in a process of its own whose state paths
    # are a scratch folder: loading the definitions creates dlt pipeline folders, which must not happen in
    # the run's state while it runs (the progress report reads the map during the run)
    stages = stages_in_scratch(work, size, seed)

    def stages_of() -> dict[str, str]:
        return stages

    load = os.getloadavg()
    result = {"size": size, "seed": seed, "landing": str(landing), "work": str(work),
              "env": {"python": platform.python_version(), "cpus": os.cpu_count(), "load_average_before": load,
                      "health_history_days": HISTORY_DAYS, "duckdb_memory_limit": memory_limit,
                      "duckdb_max_temp_directory_size": max_temp_size, "duckdb_temp_directory": temp_dir and str(temp_dir)}}
    result["full"] = {**measure("full", env, work, stages_of), "extract_days": days}
    all_days = sorted(manifest["extract_days"])
    if len(all_days) < 2:
        result["nightly"] = {"skipped": f"{landing} has one extract day ({all_days[0]}): there is no next day to load"}
        if rerun_without_new_day:
            result["nightly_no_new_day"] = {**measure("nightly_no_new_day", env, work, stages_of),
                                            "extract_days": days}
    else:
        days = landing_view(landing, view, 2)
        result["nightly"] = {**measure("nightly", env, work, stages_of), "extract_days": days}
    result["env"]["load_average_after"] = os.getloadavg()
    result["warehouse_mb"] = round(Path(env["CS_KPIS_WAREHOUSE"]).stat().st_size / 1e6)
    if not keep:
        shutil.rmtree(work / "state", ignore_errors=True)
    return result


def markdown(result: dict) -> str:
    lines = [f"### full and nightly, {result['size']} (seed {result['seed']})", ""]
    phases = [p for p in ("full", "nightly", "nightly_no_new_day") if "stages" in result.get(p, {})]
    lines += ["| stage | " + " | ".join(f"{p} s | {p} peak RSS MB" for p in phases) + " |",
              "|---|" + "---:|---:|" * len(phases)]
    stages = sorted({r["stage"] for p in phases for r in result[p]["stages"]}, key=stage_order)
    for stage in stages:
        cells = []
        for p in phases:
            row = next((r for r in result[p]["stages"] if r["stage"] == stage), None)
            cells += [f"{row['seconds']:.1f}" + (f" ({row['failed']} failed)" if row["failed"] else ""),
                      f"{row['peak_rss_mb']:,}"] if row else ["-", "-"]
        lines.append(f"| {stage} | " + " | ".join(cells) + " |")
    for label, k in (("before the first step (start-up, imports, definitions)", "seconds_before_first_step"),
                     ("between steps (Dagster's orchestration, event log)", "seconds_between_steps"),
                     ("after the last step (the command's summary)", "seconds_after_last_step")):
        lines.append(f"| {label} | " + " | ".join(f"{result[p][k]:.1f} | " for p in phases) + " |")
    lines.append("| **total (wall, process peak RSS)** | "
                 + " | ".join(f"**{result[p]['wall_seconds']:.1f}** | **{result[p]['peak_rss_mb']:,}**" for p in phases)
                 + " |")
    lines.append("")
    for p in phases:
        lines.append(f"- {p}: extract days {', '.join(result[p]['extract_days'])}; exit code {result[p]['exit_code']}; "
                     f"run {result[p]['run_id']}")
    if "skipped" in result.get("nightly", {}):
        lines.append(f"- nightly: skipped, {result['nightly']['skipped']}")
    return "\n".join(lines)
