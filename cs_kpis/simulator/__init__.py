"""The demo company simulator: a deterministic SaaS company written in its vendors' API shapes.

``generate(landing_dir, ground_truth_dir, size, seed, as_of, increments, bad_input)`` writes the
landing folder described in docs/LANDING.md (through cs_kpis/simulator/landing.py, the one writer of that
format) and, separately, the ground truth. Same seed and size,
same bytes. The CLI is ``python -m cs_kpis.simulator --help``.
"""

import contextlib
import datetime as dt
import json
import shutil
import signal
import threading
import time
from pathlib import Path

from cs_kpis.folder_guard import NotOurFolder, simulator_may_replace, write_mark

from . import catalog
from .company import Company
from .landing import ENTITIES, day_bounds, write_bodies, write_fx, write_manifest
from .segment import EventFiles, SegmentWriter
from .sizes import SIZES, SizeSpec
from .store import VersionStore, iter_bodies
from .truth import write_crm_truth, write_ground_truth

__all__ = ["ENTITIES", "SIZES", "NotOurFolder", "SizeSpec", "generate"]

EVENT_RETENTION_DAYS = 30
"""default days of Stripe events in the snapshot before the first extract day, as a real Stripe account
keeps about 30 (0 = the whole history)"""

FIELD_HISTORY_MONTHS = 18
"""Salesforce keeps field history (AccountHistory) for 18 months: the snapshot holds the changes of the 18
months before the first extract day, nothing older; each increment brings its own day's changes"""


def months_before(day: dt.date, months: int) -> dt.date:
    """The same day of the month ``months`` earlier (the month's last day when it is shorter)."""
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    month += 1
    last = (dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)).day
    return dt.date(year, month, min(day.day, last))


def generate(landing_dir: Path, ground_truth_dir: Path, size: str = "demo", seed: int = 42,
             as_of: dt.date | None = None, increments: int = 0, bad_input: bool = False,
             event_retention_days: int | None = None, workers: int = 1) -> dict:
    """Simulate the company and write its landing folder and ground truth; return the manifest, with two keys
    the manifest file does not hold: ``seconds`` (the whole run) and ``phases`` (where they went, in seconds:
    ``simulation_s`` from the start to the last simulated day, ``landing_s`` from there to the landing's parts
    written, ``truth_s`` the ground truth, and with two workers ``waited_for_landing_s``, this process waiting
    for the writer's parts after writing the truth).

    ``event_retention_days``: like a real Stripe account, which keeps about 30 days of ``/v1/events``,
    the snapshot holds only the events of that many days before the first extract day (each increment
    then brings its own day's events); 0 keeps the whole event history. Default: EVENT_RETENTION_DAYS.

    ``workers``: 1 runs everything in this process; 2 runs the simulation here and the writing in two
    helper processes (three processes in all, meant for two cores), the version store and landing parts in one, the product events in the other
    (cs_kpis/simulator/writer.py). Same bytes either way.

    The landing folder and the ground truth are built beside their destinations (``<landing>.partial``,
    ``<ground truth>.partial``) and moved into place only when both are complete, the landing first: a
    crash, or a failed writer process, never leaves a half-written landing folder that looks finished, nor
    a ground truth for a landing that does not exist (the folders of an earlier run stay as they were).
    Whatever stops a run (an error, a writer process that died, Ctrl-C, a SIGTERM: see
    :func:`_sigterm_stops_the_run`), its scratch version store (``<landing>.partial/_scratch``, about 15 GB on
    the large company) is deleted and its helper processes stopped; the partial folders stay, marked, for the
    next run to replace. Only a SIGKILL of the main process leaves its scratch store behind (its writer
    process deletes it if still running, else the next run does); while such an orphaned helper process
    still works in ``<landing>.partial``, a new run refuses to replace it (``writer.HelperStillRunning``).
    Only folders the simulator made are ever replaced: a folder holding anything else (a user's export,
    finished or not) raises :class:`NotOurFolder` naming it, before anything is written
    (cs_kpis/folder_guard.py).
    """
    with _sigterm_stops_the_run():
        return _generate(landing_dir, ground_truth_dir, size, seed, as_of, increments, bad_input,
                         event_retention_days, workers)


@contextlib.contextmanager
def _sigterm_stops_the_run():
    """While ``generate`` runs, a SIGTERM (``kill``, a process manager stopping the run, sent to the whole
    process group or to the main process only) raises ``SystemExit(143)`` in the main thread, so the run
    cleans up as after Ctrl-C (its helper processes stopped, the scratch store deleted) instead of dying
    where it stands. Only where SIGTERM would kill the process outright (its handler is the default, as in
    the CLI) and only in the main thread (the only one a signal handler can be set from); a handler set by
    someone else (Dagster's, for instance) is left alone. The handler before is restored at the end."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _generate(landing_dir: Path, ground_truth_dir: Path, size: str, seed: int, as_of: dt.date | None,
              increments: int, bad_input: bool, event_retention_days: int | None, workers: int) -> dict:
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}: choose one of {', '.join(SIZES)}")
    spec = SIZES[size]
    retention = EVENT_RETENTION_DAYS if event_retention_days is None else event_retention_days
    if workers not in (1, 2):
        raise ValueError(f"workers must be 1 or 2, not {workers}")
    if retention < 0:
        raise ValueError(f"event_retention_days must be 0 (all) or positive, not {retention}")
    as_of = as_of or spec.end_date - dt.timedelta(days=increments)
    last_day = as_of + dt.timedelta(days=increments)
    if not spec.start_date < as_of <= last_day <= spec.end_date:
        raise ValueError(f"as_of {as_of} + {increments} increments must fall within {spec.start_date}..{spec.end_date}")
    landing_dir, ground_truth_dir = Path(landing_dir).resolve(), Path(ground_truth_dir).resolve()
    # a user's folder is never written: refuse before anything is touched (cs_kpis/folder_guard.py)
    tmp = landing_dir.with_name(landing_dir.name + ".partial")
    tmp_truth = ground_truth_dir.with_name(ground_truth_dir.name + ".partial")
    simulator_may_replace(landing_dir, "landing")
    simulator_may_replace(ground_truth_dir, "ground_truth")
    simulator_may_replace(tmp, "partial")
    simulator_may_replace(tmp_truth, "partial")
    started = time.perf_counter()
    phases: dict[str, float] = {}
    from .writer import no_helper_running

    no_helper_running(tmp / "_scratch")  # an earlier run's helper still at work there (its main process killed)
    for partial in (tmp, tmp_truth):
        if partial.exists():
            shutil.rmtree(partial)  # a crashed run's partial folder: marked, and checked just above
    (tmp / "_scratch").mkdir(parents=True)
    write_mark(tmp, "partial")  # first, so even a crashed partial folder is recognisably the simulator's
    tmp_truth.mkdir(parents=True)
    write_mark(tmp_truth, "partial")
    days = [as_of + dt.timedelta(days=i) for i in range(increments + 1)]
    scratch = tmp / "_scratch" / "versions.duckdb"
    # the end of each extract day: a version superseded within one of these windows is never written; nor is
    # one older than its entity's first window (Stripe's retention of events, Salesforce's of field history)
    cutoffs = [day_bounds(d)[1] for d in days]
    floors = {e: lo for e in ENTITIES if (lo := _first_lo(e, as_of, retention)) is not None}
    try:
        if workers == 1:
            store = VersionStore(scratch, cutoffs, floors)
            try:
                events = SegmentWriter(EventFiles(store.con, tmp, seed), seed, spec.users_cap,
                                       spec.events_per_active_user, last_day)
                company = Company(spec, seed, store, last_day, events_writer=events)
                company.run()
                phases["simulation_s"] = time.perf_counter() - started
                counts = write_entities(store, tmp, as_of, days, retention)
                write_fx(tmp, _fx_rates(company))
            finally:
                store.close()
        else:
            # the simulation here; the version store and the landing parts in a second process, the product
            # events in a third (writer.py)
            from .writer import RemoteStore

            remote = RemoteStore(scratch, tmp, seed, cutoffs, floors)
            try:
                events = SegmentWriter(remote.event_files, seed, spec.users_cap, spec.events_per_active_user,
                                       last_day)
                company = Company(spec, seed, remote, last_day, events_writer=events)
                company.run()
                phases["simulation_s"] = time.perf_counter() - started
                remote.write_landing(tmp, as_of, days, retention)
                write_fx(tmp, _fx_rates(company))
                # meanwhile, in this process, into the partial folder: moved into place after the landing
                truth_summary = _write_truth(company, tmp_truth, last_day)
                phases["truth_s"] = time.perf_counter() - started - phases["simulation_s"]
                waited = time.perf_counter()
                counts = remote.result()
                phases["waited_for_landing_s"] = time.perf_counter() - waited
            finally:
                remote.close()  # stops the helpers still running (after an error, or Ctrl-C)
    except BaseException:
        # any failure, Ctrl-C included: the store is closed and its helpers stopped by now; the scratch store
        # (about 15 GB on the large company) goes, made by this run a few lines above. The partial folders
        # stay: marked, they are recognisably the simulator's, and the next run replaces them
        shutil.rmtree(tmp / "_scratch", ignore_errors=True)
        raise
    phases["landing_s"] = time.perf_counter() - started - phases["simulation_s"]
    shutil.rmtree(tmp / "_scratch")
    # product events before as_of belong to the snapshot; fold nothing: each received day is its own folder
    counts["product/events"] = events.total
    if not counts["billing/invoiceitems"]:
        del counts["billing/invoiceitems"]  # optional: a company with no mid-period change has none

    if workers == 1:
        at = time.perf_counter()
        truth_summary = _write_truth(company, tmp_truth, last_day)
        phases["truth_s"] = time.perf_counter() - at
    bad = []
    if bad_input:
        from .bad_input import inject
        bad = inject(tmp, as_of)
    (tmp_truth / "bad_input.json").write_text(json.dumps(bad, indent=1))

    manifest = {
        "generator": "cs_kpis.simulator", "seed": seed, "size": size,
        "start_date": spec.start_date.isoformat(), "end_date": spec.end_date.isoformat(),
        "as_of": as_of.isoformat(), "extract_days": [d.isoformat() for d in days],
        "reporting_currency": catalog.REPORTING_CURRENCY, "bad_input": bad_input, "counts": counts,
        "event_retention_days": retention, "field_history_months": FIELD_HISTORY_MONTHS,
        "product": {"key_features": list(catalog.KEY_FEATURES), "plan_features": catalog.PLAN_FEATURES,
                    "onboarding_milestones": list(catalog.ONBOARDING_MILESTONES),
                    "value_event": catalog.VALUE_EVENT, "top_plan": "enterprise"},
        "events": {"late": events.late, "duplicates": events.duplicates},
        "ground_truth": truth_summary,
    }
    write_manifest(tmp, manifest)
    write_mark(tmp, "landing")  # again, now listing everything written
    write_mark(tmp_truth, "ground_truth")
    # checked again now, both before either moves: a user may have put files there while the company was
    # being simulated
    simulator_may_replace(landing_dir, "landing")
    simulator_may_replace(ground_truth_dir, "ground_truth")
    # and the folders the moves park the old ones in, so that the truth's move cannot be refused after the
    # landing's has happened
    for final, kind in ((landing_dir, "landing"), (ground_truth_dir, "ground_truth")):
        simulator_may_replace(final.with_name(final.name + ".replaced"), kind)
    _move_into_place(tmp, landing_dir, "landing")
    _move_into_place(tmp_truth, ground_truth_dir, "ground_truth")  # only once the landing is there
    manifest["seconds"] = round(time.perf_counter() - started, 2)
    # where the seconds went (not in the manifest file, written above): the simulation (the agenda, with two
    # workers also handing the versions and events over), then the extract days' parts, which with two workers
    # the writer process writes while this one writes the ground truth (truth_s) and then waits for it
    manifest["phases"] = {k: round(v, 2) for k, v in phases.items()}
    return manifest


def _move_into_place(tmp: Path, final: Path, kind: str) -> None:
    """Replace ``final`` (the simulator's, or absent) by the finished folder ``tmp``."""
    if final.exists():
        simulator_may_replace(final, kind)
        old = final.with_name(final.name + ".replaced")
        simulator_may_replace(old, kind)
        if old.exists():
            shutil.rmtree(old)
        final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old)
    else:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp.rename(final)


def _write_truth(company: Company, ground_truth_dir: Path, last_day: dt.date) -> dict:
    """Write the ground truth into ``ground_truth_dir`` (the partial folder, marked already)."""
    truth_summary = write_ground_truth(company, ground_truth_dir, last_day)
    truth_summary["crm_field_values"] = write_crm_truth(company, ground_truth_dir, last_day)
    (ground_truth_dir / "edge_cases.json").write_text(json.dumps(company.edge_cases, indent=1, sort_keys=True))
    return truth_summary


def write_entities(store: VersionStore, tmp: Path, as_of: dt.date, days: list[dt.date], retention: int) -> dict:
    """Write every entity's parts for each extract day from the version store; return the manifest counts."""
    counts: dict[str, int] = {}
    for entity, (_, newest_first) in ENTITIES.items():
        counts[entity] = store.count(entity)
        written = 0
        first_lo = _first_lo(entity, as_of, retention)
        for i, day in enumerate(days):
            lo, hi = day_bounds(day)
            total = store.count_latest(entity, first_lo if i == 0 else lo, hi)
            cursor = store.latest(entity, first_lo if i == 0 else lo, hi, descending=newest_first)
            write_bodies(tmp, entity, day, iter_bodies(cursor), total)
            written += total
        if entity in ("billing/events", "crm/AccountHistory"):
            # the manifest counts what the export holds: with a retention window, only the events kept
            # (raw_rows_match_manifest_counts reconciles the rows loaded with this number)
            counts[entity] = written
    return counts


def _first_lo(entity: str, as_of: dt.date, retention: int) -> int | None:
    """The lower bound (Unix seconds) of the entity's first extract window, None for the whole history; every
    later window starts later (the day's own start)."""
    if entity == "billing/events" and retention:
        # the events of the retention window before the snapshot day
        return day_bounds(as_of)[0] - retention * 86400
    if entity == "crm/AccountHistory":
        return day_bounds(months_before(as_of, FIELD_HISTORY_MONTHS))[0]  # what Salesforce still keeps
    return None


def _fx_rates(company: Company):
    for cur in ("EUR", "GBP", "USD"):
        for day, rate in sorted(company.fx[cur.lower()].items()):
            if day <= company.last_day:
                yield day, cur, rate
