"""The version store's buffer: what it drops before storing, and the flat buffers a batch travels in."""

import orjson
import pytest

from cs_kpis.simulator.store import CHUNK, VersionBuffer, VersionStore, batch_table


def _rows(buf: VersionBuffer) -> list[tuple]:
    out = []
    for chunk in buf.take():
        t = batch_table(chunk).to_pylist()
        out += [(r["entity"], r["id"], r["ts"], r["seq"], r["sort_key"], orjson.loads(r["body"])) for r in t]
    return out


def test_only_the_latest_version_of_an_object_in_each_extract_window_is_kept():
    # windows: before 100 (the snapshot day's end), [100, 200) (the first increment), 200 and later
    buf = VersionBuffer(cutoffs=[100, 200])
    buf.add("support/tickets", "1", 10, {"v": "open"})
    buf.add("support/tickets", "1", 50, {"v": "solved"})      # supersedes "open": same window
    buf.add("support/tickets", "1", 40, {"v": "late add"})    # older than "solved": never the latest
    buf.add("support/tickets", "1", 150, {"v": "closed"})     # the increment's own version
    buf.add("support/tickets", "2", 60, {"v": "a"}, sort_key=5)
    buf.add("support/tickets", "2", 60, {"v": "b"}, sort_key=6)  # same second: the one added last wins
    buf.add("support/ticket_metrics", "1", 20, {"v": "m"})    # another entity, same id: its own object
    buf.add("support/tickets", "3", 250, {"v": "after the last day"})
    assert buf.dropped == 3 and buf.seq == 8
    rows = _rows(buf)
    assert [(e, i, ts, seq, key, b["v"]) for e, i, ts, seq, key, b in rows] == [
        ("support/tickets", "1", 50, 2, 50, "solved"),
        ("support/tickets", "1", 150, 4, 150, "closed"),
        ("support/tickets", "2", 60, 6, 6, "b"),
        ("support/ticket_metrics", "1", 20, 7, 20, "m"),
        ("support/tickets", "3", 250, 8, 250, "after the last day"),
    ]
    assert len(buf) == 0 and buf.take() == []


def test_without_cutoffs_every_version_is_kept_and_bodies_travel_unchanged(tmp_path):
    buf = VersionBuffer()
    bodies = [{"id": str(i), "name": "Müller ✓" if i % 2 else "x" * i} for i in range(CHUNK + 5)]
    for i, b in enumerate(bodies):
        buf.add("crm/Contact", str(i % 3), i, b)
    chunks = buf.take()
    assert [len(batch_table(c)) for c in chunks] == [CHUNK, 5]  # two messages, one batch
    rows = [r for c in chunks for r in batch_table(c).to_pylist()]
    assert [orjson.loads(r["body"]) for r in rows] == bodies
    assert [r["seq"] for r in rows] == list(range(1, CHUNK + 6))
    # and the store inserts a batch's chunks in one statement
    store = VersionStore(tmp_path / "v.duckdb")
    try:
        store.insert_chunks(chunks)
        assert store.count("crm/Contact") == 3
        table = store.table("crm/Contact")
        assert store.con.execute(f"select count(*), max(seq) from {table}").fetchall() == [(CHUNK + 5, CHUNK + 5)]
    finally:
        store.close()


def test_versions_no_extract_can_show_are_dropped_before_they_are_serialized():
    # windows: before 100 (the snapshot day's end), [100, 200) (the first increment)
    buf = VersionBuffer(cutoffs=[100, 200], floors={"billing/events": 40})
    assert not buf.keeps("billing/events", 39) and buf.keeps("billing/events", 40)
    assert buf.keeps("support/tickets", 0)  # no floor: the whole history
    buf.add("billing/events", "evt_old", 39, {"v": "before the retention window"})
    buf.add("billing/events", "evt_new", 40, {"v": "kept"})
    # a later version is sure to come at superseded_at: dropped when that is in the same window, any batch
    buf.add("support/tickets", "1", 10, {"v": "open"}, superseded_at=99)
    buf.add("support/tickets", "2", 10, {"v": "open"}, superseded_at=100)  # its successor is in the increment
    buf.add("support/tickets", "3", 150, {"v": "solved"}, superseded_at=190)
    buf.add("support/tickets", "4", 150, {"v": "solved"}, superseded_at=150)  # same second, added later
    # beyond the last window the run may stop before the successor is added: kept
    buf.add("support/tickets", "5", 250, {"v": "after the last day"}, superseded_at=260)
    assert buf.dropped == 4 and buf.seq == 7
    assert [(e, i, b["v"]) for e, i, _, _, _, b in _rows(buf)] == [
        ("billing/events", "evt_new", "kept"), ("support/tickets", "2", "open"),
        ("support/tickets", "5", "after the last day")]
    with pytest.raises(ValueError, match="superseded before it"):
        buf.add("support/tickets", "6", 50, {"v": "x"}, superseded_at=49)
    # without cutoffs (a store for tests) nothing is dropped
    plain = VersionBuffer(floors={"billing/events": 40})
    plain.add("billing/events", "evt_old", 39, {}, superseded_at=39)
    assert plain.keeps("billing/events", 0) and plain.dropped == 0 and len(plain) == 1
