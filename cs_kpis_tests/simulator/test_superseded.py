"""The versions the simulator never stores change nothing in the landing.

A version added with ``superseded_at`` is dropped on the promise that the agenda adds its successor within
the same extract window (``Company._runs_at``); a version older than its entity's floor is dropped because no
window shows it. A tiny company written with a buffer that keeps every version must give the same bytes.
"""

import datetime as dt
from pathlib import Path

from cs_kpis.simulator import generate, store
from cs_kpis.simulator.store import VersionBuffer

_OURS = {"_manifest.json", ".cs_kpis_simulator.json"}  # the run's own records (its timing), not extract parts


def _parts(landing: Path) -> dict[str, bytes]:
    return {str(p.relative_to(landing)): p.read_bytes() for p in sorted(landing.rglob("*"))
            if p.is_file() and p.name not in _OURS}


def _generate(root: Path) -> dict[str, bytes]:
    # a short run (seven weeks) with four increments: five extract windows, so that versions and their
    # successors fall on both sides of a window's end (a _runs_at an hour early already changes the tickets)
    generate(root / "landing", root / "truth", size="tiny", seed=7, as_of=dt.date(2025, 10, 20), increments=4)
    return _parts(root / "landing")


def test_versions_dropped_as_superseded_or_below_a_floor_change_no_byte(tmp_path, monkeypatch):
    dropped = {"superseded": 0}

    class Counting(VersionBuffer):
        def add(self, entity, obj_id, ts, obj, sort_key=None, superseded_at=None):
            before = self.dropped
            full = super().add(entity, obj_id, ts, obj, sort_key, superseded_at)
            if superseded_at is not None and self.dropped > before:
                dropped["superseded"] += 1
            return full

    monkeypatch.setattr(store, "VersionBuffer", Counting)
    real = _generate(tmp_path / "real")
    # without cutoffs the buffer keeps every version: superseded_at and the floors are ignored
    monkeypatch.setattr(store, "VersionBuffer", lambda cutoffs=None, floors=None: VersionBuffer())
    every = _generate(tmp_path / "every")

    assert sorted(real) == sorted(every)
    differ = [name for name in real if real[name] != every[name]]
    assert not differ, f"parts that differ when every version is kept: {differ[:5]}"
    assert dropped["superseded"] > 10  # the promises were taken at their word: the test checks something

