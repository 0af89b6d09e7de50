"""The file systems extracted ahead of their raw steps (cs_kpis/defs/raw/prefetch.py), as ``cs_kpis.run`` runs
them: the extract really happens before the system's step, in another process; the raw tables are those of
the serial path, with bad input, through an increment and a rerun; a run killed while the background process extracts
takes that process with it, and the rerun ends with the tables of an uninterrupted serial run.

Each runs the raw assets of a tiny company (hand-built, or the simulator's) in Dagster in a subprocess
(prefetch_driver.py), several times: slow.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cs_kpis.defs.raw.prefetch import MIN_BYTES_ENV, PREFETCH_ENV
from cs_kpis_tests.landing_builder import write_landing
from cs_kpis_tests.reliability import pause as hooks
from cs_kpis_tests.reliability.conftest import ROOT, child_env, raw_snapshot
from cs_kpis_tests.sources.landing_builder import (
    DAYS,
    customer,
    survey_response,
    ticket,
    tiny_company,
    tiny_events,
)

pytestmark = pytest.mark.slow

AHEAD = ("crm", "nps", "support")
"""extracted ahead: the file systems whose steps come after raw_billing's, the first raw step"""

MODES = {"serial": {PREFETCH_ENV: "0"}, "ahead": {PREFETCH_ENV: "1", MIN_BYTES_ENV: "0"},
         "in_step": {PREFETCH_ENV: "1", MIN_BYTES_ENV: str(2**62)}}
"""serial; extracted ahead whatever the input (these companies are far under the default threshold); and too
small to extract ahead: the steps extract from the state the first raw step restored"""


def _cmd(landing: Path, tmp: Path) -> list[str]:
    return [sys.executable, "-m", "cs_kpis_tests.reliability.prefetch_driver",
            str(landing), str(tmp / "w.duckdb"), str(tmp / "dlt")]


def _drive(landing: Path, tmp: Path, mode: str) -> dict:
    env = child_env(tmp, **MODES[mode])
    res = subprocess.run(_cmd(landing, tmp), check=False, env=env, cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-4000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def _extracted_ahead(out: dict) -> dict[str, bool]:
    """Per system: did its step load the packages the background process extracted (it logs so only then)? On a
    company this small the background process may still be importing when the next raw step starts, so when
    the extract started is not compared with the step's start."""
    return {s: f"raw_{s}" in out["prefetched"] for s in AHEAD}


def _in_step(out: dict) -> dict[str, bool]:
    """Per system: did its step extract from the state the first raw step restored (the input too small)?"""
    return {s: f"raw_{s}" in out["in_step"] for s in AHEAD}


def _bad_input_company(days: int) -> tuple[dict, dict]:
    """The hand-built tiny company's first ``days`` extract days, with records every file system quarantines."""
    history = tiny_company()
    for system, entity, record in (("billing", "customers", customer(9, 1)), ("support", "tickets", ticket(9, 1, DAYS[0])),
                                   ("nps", "survey_responses", survey_response(9, 1, DAYS[0]))):
        del record["id"]
        history[DAYS[0]][(system, entity)].append(record)
    kept = DAYS[:days]
    return {day: history[day] for day in kept if day in history}, {day: tiny_events(day, i * 100, 10)
                                                                    for i, day in enumerate(kept)}


def test_prefetched_equals_serial_with_bad_input_through_an_increment_and_a_rerun(tmp_path: Path) -> None:
    snapshots = {}
    for mode in MODES:
        tmp = tmp_path / mode
        history, events = _bad_input_company(2)
        landing = write_landing(tmp / "landing", history, events=events)
        first = _drive(landing, tmp, mode)
        history, events = _bad_input_company(3)
        write_landing(tmp / "landing", history, events=events)  # the next extract day arrives: a nightly
        nightly = _drive(landing, tmp, mode)
        assert _extracted_ahead(first) == _extracted_ahead(nightly) == dict.fromkeys(AHEAD, mode == "ahead")
        assert _in_step(first) == _in_step(nightly) == dict.fromkeys(AHEAD, mode == "in_step")
        before_rerun = raw_snapshot(tmp / "w.duckdb")
        _drive(landing, tmp, mode)  # nothing new: nothing changes, nothing is loaded twice
        assert raw_snapshot(tmp / "w.duckdb") == before_rerun
        snapshots[mode] = before_rerun
    assert len(snapshots["serial"]["_quarantine"]) >= 3  # the bad records of billing, support and nps
    for mode in ("ahead", "in_step"):
        assert sorted(snapshots[mode]) == sorted(snapshots["serial"])
        for name, rows in snapshots["serial"].items():
            assert snapshots[mode][name] == rows, f"raw.{name} differs between the serial and the {mode} runs"


def _paused_in_support_extract(landing: Path, tmp: Path, seconds: str) -> tuple[subprocess.Popen, int, Path]:
    """The driver started with prefetch on and the background process paused (``seconds``) in support's extract:
    (the run's process, the pid that paused, the pause marker). The run's process group is killed if the pause
    is not reached."""
    marker = tmp / "paused"
    env = child_env(tmp, **MODES["ahead"], **{hooks.PAUSE_AT_ENV: "extracted.support__tickets",
                            hooks.MARKER_ENV: str(marker), hooks.SECONDS_ENV: seconds})
    proc = subprocess.Popen(_cmd(landing, tmp), env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while not marker.exists():
            if proc.poll() is not None:
                raise AssertionError(f"ended before support's extract: {proc.stderr.read()[-3000:]}")
            assert time.monotonic() < deadline, "support's extract not reached in 180 s"
            time.sleep(0.02)
        paused = int(marker.read_text().split()[1])
        assert paused != proc.pid  # support is being extracted in the background process, not in the run's
    except BaseException:
        if _session_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
        raise
    return proc, paused, marker


def test_killed_while_extracting_ahead_then_rerun_matches_uninterrupted(reference: dict, tiny_landing: Path,
                                                                        tmp_path: Path) -> None:
    proc, _, _ = _paused_in_support_extract(tiny_landing, tmp_path, "300")
    try:
        os.kill(proc.pid, signal.SIGKILL)  # the run's process only, as the OOM killer would
        assert proc.wait(timeout=30) == -signal.SIGKILL
        deadline = time.monotonic() + 20
        while _session_alive(proc.pid):  # the background process ends with it
            assert time.monotonic() < deadline, "the prefetch process outlived the killed run"
            time.sleep(0.1)
    finally:
        if _session_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.stderr.close()
    out = _drive(tiny_landing, tmp_path, "ahead")
    assert _extracted_ahead(out) == dict.fromkeys(AHEAD, True)
    tables = raw_snapshot(tmp_path / "w.duckdb")
    assert sorted(tables) == sorted(reference["tables"])
    for name, rows in reference["tables"].items():
        assert tables[name] == rows, f"raw.{name} differs after the kill"


def _session_alive(sid: int) -> bool:
    try:
        os.killpg(sid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_killed_prefetch_process_leaves_the_step_to_extract_serially(reference: dict, tiny_landing: Path,
                                                                       tmp_path: Path) -> None:
    proc, background, marker = _paused_in_support_extract(tiny_landing, tmp_path, "3")
    try:
        marker.unlink()
        os.kill(background, signal.SIGKILL)  # the background process dies mid-extract; the run goes on
        _, err = proc.communicate(timeout=300)
    finally:
        if _session_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, err[-4000:]
    assert int(marker.read_text().split()[1]) == proc.pid  # support's step extracted it again, itself
    assert "support: not prefetched (the prefetch process ended" in err
    tables = raw_snapshot(tmp_path / "w.duckdb")
    assert sorted(tables) == sorted(reference["tables"])
    for name, rows in reference["tables"].items():
        assert tables[name] == rows, f"raw.{name} differs after the fallback"
