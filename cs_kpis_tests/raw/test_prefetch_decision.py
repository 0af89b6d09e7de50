"""Extracting ahead only when the input pays for the background process (cs_kpis/defs/raw/prefetch.py): the
bytes of the other systems' landing files after the last extract day each loaded, from the state the first raw
step restored from the warehouse. Fast: the process is not spawned, its start is recorded."""

import multiprocessing
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from cs_kpis.defs.raw import prefetch
from cs_kpis.defs.raw.assets import build_raw_assets
from cs_kpis_tests.landing_builder import write_landing
from cs_kpis_tests.sources.landing_builder import DAYS, tiny_company


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    return write_landing(tmp_path_factory.mktemp("prefetch") / "landing", tiny_company())


def _bytes(landing: Path, system: str, days) -> int:
    return sum(f.stat().st_size for day in days for f in (landing / system).glob(f"*/{day}/*"))


def test_pending_bytes_count_the_days_after_the_earliest_last_day_of_the_resources(landing):
    spec = prefetch.Spec("support", Path("w.duckdb"), Path("dlt"), landing, None)
    source = SimpleNamespace(name="support", selected_resources={"tickets": None, "organizations": None})

    def pending(limit=10**12, **last_days):
        resources = {name: {"last_extract_day": day} for name, day in last_days.items()}
        return prefetch.pending_bytes(spec, SimpleNamespace(state={"sources": {"support": {"resources": resources}}}),
                                      source, limit)

    every_day = _bytes(landing, "support", DAYS)
    assert every_day > _bytes(landing, "support", DAYS[1:]) > _bytes(landing, "support", DAYS[2:]) > 0
    assert pending() == every_day  # nothing loaded yet
    assert pending(tickets=DAYS[0]) == every_day  # organizations never loaded
    assert pending(tickets=DAYS[1], organizations=DAYS[0]) == _bytes(landing, "support", DAYS[1:])
    assert pending(tickets=DAYS[2], organizations=DAYS[1]) == _bytes(landing, "support", DAYS[2:])
    assert pending(tickets=DAYS[2], organizations=DAYS[2]) == 0  # caught up (the nightly's rerun)
    assert 1 <= pending(limit=1) < every_day  # counting stops at the limit


class _Log:
    def __init__(self):
        self.lines = []

    def info(self, msg):
        self.lines.append(msg)

    warning = info


def _context(assets) -> SimpleNamespace:
    keys = {key for a in assets for key in a.keys}
    return SimpleNamespace(run_id=str(uuid.uuid4()), dagster_run=SimpleNamespace(asset_selection=None),
                           job_def=SimpleNamespace(asset_layer=SimpleNamespace(executable_asset_keys=keys)), log=_Log())


class _SpawnRecorder:
    """``multiprocessing`` for prefetch.py: the background process is recorded (what it would extract), not
    started."""

    def __init__(self):
        self.started: list[list[str]] = []

    def get_context(self, method):
        recorder = self

        class Process:
            pid = 0

            def __init__(self, target, args, **kwargs):
                self.specs = args[0]

            def start(self):
                recorder.started.append([spec.system for spec in self.specs])

            def is_alive(self):
                return False

        return SimpleNamespace(Pipe=multiprocessing.Pipe, Process=Process)


def test_a_small_pending_input_starts_no_process_and_the_steps_extract_from_the_restored_state(
        landing, tmp_path, monkeypatch):
    monkeypatch.setenv(prefetch.PREFETCH_ENV, "1")
    spawn = _SpawnRecorder()
    monkeypatch.setattr(prefetch, "multiprocessing", spawn)
    warehouse, pipelines = tmp_path / "w.duckdb", tmp_path / "dlt"
    assets = build_raw_assets(landing_dir=landing, warehouse=warehouse, pipelines_dir=pipelines)
    spec = {system: prefetch._SPECS[(warehouse, pipelines, system)] for system in prefetch.ORDER}
    others = ["support", "crm", "nps"]
    pending = sum(_bytes(landing, system, DAYS) for system in others)  # a fresh warehouse: every day is pending

    monkeypatch.setenv(prefetch.MIN_BYTES_ENV, str(pending + 1))
    small = _context(assets)
    prefetch.start_others(small, spec["billing"])
    assert spawn.started == []
    assert f"{', '.join(others)}: {pending / 1024**2:.1f} MiB of landing files pending, under" in small.log.lines[0]
    for system in others:
        pipeline = prefetch.take(small, spec[system])  # the step's pipeline: its state restored, nothing extracted
        assert pipeline is not None and pipeline._state_restored and not pipeline.has_pending_data
        assert small.log.lines[-1] == f"{system}: {prefetch.EXTRACTED_IN_STEP}"

    monkeypatch.setenv(prefetch.MIN_BYTES_ENV, str(pending))
    large = _context(assets)
    prefetch.start_others(large, spec["billing"])
    assert spawn.started == [others]  # in the order their steps come, the longest (support) first
    for run_id in (small.run_id, large.run_id):
        prefetch._RUNS.pop(run_id)


def test_a_threshold_that_is_not_a_whole_number_is_said_and_the_default_used(monkeypatch):
    said = []

    class Log:
        def warning(self, message):
            said.append(message)

    monkeypatch.setenv(prefetch.MIN_BYTES_ENV, "16M")
    assert prefetch.min_bytes(Log()) == prefetch.MIN_BYTES
    assert said and prefetch.MIN_BYTES_ENV in said[0] and "'16M'" in said[0]
    monkeypatch.setenv(prefetch.MIN_BYTES_ENV, "1024")
    assert prefetch.min_bytes(Log()) == 1024
