"""The files-mode reader of cs_kpis/sources/common/entity.py reads the landing files twice (keys first, then
rows) instead of buffering every row: these tests pin what it loads and that a file changing between the two
reads fails the load instead of silently dropping rows."""

import json

import dlt
import pyarrow as pa
import pytest
from dlt.pipeline.exceptions import PipelineStepFailed

from cs_kpis.sources.common.entity import Entity, entity_resource
from cs_kpis.sources.common.helpers import Reject
from cs_kpis.sources.records import RawRecord


def _landing(tmp_path):
    (tmp_path / "_manifest.json").write_text(json.dumps({"extract_days": ["2025-01-01"]}))
    return tmp_path


def _entity() -> Entity:
    return Entity(name="things", reads="things", primary_key=("id",), prepare=lambda obj: [dict(obj)])


def _pipeline(tmp_path):
    return dlt.pipeline(pipeline_name="two_pass", pipelines_dir=str(tmp_path / "dlt"),
                        destination=dlt.destinations.duckdb(str(tmp_path / "wh.duckdb")), dataset_name="raw")


def _rows(items):
    """The rows a resource yields: entities come as Arrow tables, quarantine and accounting as dicts."""
    for item in items:
        item = getattr(item, "data", item)  # unwrap dlt.mark.with_hints
        if isinstance(item, pa.Table):
            yield from item.to_pylist()
        elif isinstance(item, dict):
            yield item


def test_the_last_version_of_each_key_loads_in_arrival_order(tmp_path):
    records = [{"id": "a", "v": 1}, {"id": "b", "v": 1}, {"id": "a", "v": 2}, {"id": "c", "v": 1}]

    def reader(landing_dir, reads, day):
        return iter([RawRecord(r, f"things/{day}/part-00001.json", i) for i, r in enumerate(records)])

    res = entity_resource("sys", _entity(), mode="files", landing_dir=_landing(tmp_path), files_reader=reader)
    rows = [r for r in _rows(res()) if "id" in r]
    # 'a' is loaded once, as its later version, where that version arrived (after 'b')
    assert [(r["id"], r["v"]) for r in rows] == [("b", 1), ("a", 2), ("c", 1)]


def test_files_that_change_between_the_two_reads_fail_the_load(tmp_path):
    reads = []

    def reader(landing_dir, reads_folder, day):
        reads.append(day)
        n = 2 if len(reads) == 1 else 3  # an exporter appended a record after the first read
        return iter([RawRecord({"id": str(i)}, f"things/{day}/part-00001.json", i) for i in range(n)])

    res = entity_resource("sys", _entity(), mode="files", landing_dir=_landing(tmp_path), files_reader=reader)
    with pytest.raises(PipelineStepFailed, match="changed while loading"):
        _pipeline(tmp_path).extract(res())


def _prepare(calls):
    def prepare(obj):
        calls.append(obj["v"])
        if obj.get("bad"):
            raise Reject("bad record")
        return [dict(obj)]
    return prepare


def _run(tmp_path, records, keep):
    calls = []
    spec = Entity(name="things", reads="things", primary_key=("id",), prepare=_prepare(calls), keep=keep)

    def reader(landing_dir, reads, day):
        return iter([RawRecord(r, f"things/{day}/part-00001.json", i) for i, r in enumerate(records)])

    res = entity_resource("sys", spec, mode="files", landing_dir=_landing(tmp_path), files_reader=reader)
    items = list(_rows(res()))
    loaded = [(r["id"], r["v"]) for r in items if "id" in r]
    quarantined = [r["reason"] for r in items if r.get("reason")]
    accounting = next(r for r in items if "rows_read" in r)
    return loaded, quarantined, accounting, calls


@pytest.mark.parametrize("keep", ["latest", "first"])
def test_an_invalid_occurrence_never_wins_over_a_valid_one(tmp_path, keep):
    records = [
        {"id": "a", "v": 1}, {"id": "a", "v": 2, "bad": True},  # a valid version, then a bad one
        {"id": "b", "v": 1, "bad": True}, {"id": "b", "v": 2}, {"id": "b", "v": 3},  # a bad one first
        {"id": "c", "v": 1, "bad": True},  # only a bad one
        {"id": "d", "v": 1},
    ]
    loaded, quarantined, accounting, calls = _run(tmp_path, records, keep)
    expected_b = ("b", 3) if keep == "latest" else ("b", 2)
    assert sorted(loaded) == sorted([("a", 1), expected_b, ("d", 1)])
    assert quarantined == ["bad record"] * 3
    assert accounting["rows_read"] == 7 and accounting["rows_loaded"] == 3
    assert accounting["rows_quarantined"] == 3 and accounting["rows_deduplicated"] == 1
    # the first pass validates only repeated occurrences (a2, b2, and b3 unless the first valid one
    # after a bad first is enough); the second pass validates every record once
    assert len(calls) == 7 + (3 if keep == "latest" else 2)
