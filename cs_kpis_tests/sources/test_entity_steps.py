"""Each step of an entity resource's pass (cs_kpis/sources/common/steps.py) on hand-made records, alone: no
pipeline, no warehouse. test_two_pass_files.py and test_one_pass_files.py test them wired together."""

import json
from datetime import UTC, datetime
from functools import partial

import pyarrow as pa
import pytest

from cs_kpis.sources import lake
from cs_kpis.sources.common.accounting import Accounting
from cs_kpis.sources.common.entity import Entity
from cs_kpis.sources.common.helpers import Reject
from cs_kpis.sources.common.landing import KeyFields
from cs_kpis.sources.common.steps import (
    ApiRead,
    ArrowEmitter,
    CheckAlone,
    Checked,
    CheckShared,
    ChildFeed,
    DedupeByWinners,
    DedupeInMemory,
    FilesRead,
    Lane,
    Numbered,
    RowEmitter,
    Winners,
    check_records,
    same_check,
    winning_occurrences,
)
from cs_kpis.sources.records import RawRecord

DAY = "2025-01-02"


def _prepare(obj):
    if obj.get("bad"):
        raise Reject("bad record", field="bad")
    return [{"id": obj["id"], "v": obj.get("v")}]


def _entity(**kw) -> Entity:
    return Entity(**{"name": "things", "reads": "things", "primary_key": ("id",), "prepare": _prepare, **kw})


def _rec(obj, position=0, origin="things/2025-01-02/part-00001.json") -> RawRecord:
    return RawRecord(obj, origin, position)


def _numbered(objs, day=DAY):
    return list(Numbered([(day, [_rec(obj, i) for i, obj in enumerate(objs)])]))


def _data(item):
    return getattr(item, "data", item)  # unwrap dlt.mark.with_hints


# ---- read ------------------------------------------------------------------------------------------------

def test_numbered_counts_records_across_days():
    numbered = Numbered([("d1", [_rec({"id": 1}), _rec({"id": 2})]), ("d2", []), ("d3", [_rec({"id": 3})])])
    assert [(day, ordinal, record.obj["id"]) for day, ordinal, record in numbered] == [
        ("d1", 0, 1), ("d1", 1, 2), ("d3", 2, 3)]
    assert numbered.count == 3


def _landing(tmp_path, days):
    (tmp_path / "_manifest.json").write_text(json.dumps({"extract_days": days}))
    return tmp_path


def test_files_read_takes_the_days_after_the_last_one_loaded(tmp_path):
    calls = []

    def reader(landing, folder, day):
        calls.append((folder, day))
        return iter([_rec({"id": day})])

    read = FilesRead(_landing(tmp_path, ["2025-01-03", "2025-01-01", "2025-01-02"]), "things", reader,
                     last_extract_day="2025-01-01", max_days=1)
    assert read.days == ["2025-01-02"] and read.boundary == datetime(2025, 1, 2, tzinfo=UTC)
    assert [(day, [r.obj for r in records]) for day, records in read.batches()] == [
        ("2025-01-02", [{"id": "2025-01-02"}])]
    assert calls == [("things", "2025-01-02")]
    state = {"last_extract_day": "2025-01-01"}
    read.save(state, lane=None)
    assert state == {"last_extract_day": "2025-01-02", "pending_days": 1}
    with pytest.raises(RuntimeError, match="changed while loading .2 records on the first read, 3 on the second"):
        read.check_unchanged("sys", "things", 2, 3)


def test_files_read_gives_the_key_pass_its_own_reader(tmp_path):
    read = FilesRead(_landing(tmp_path, [DAY]), "things", lambda *a: iter(["full"]), None, None,
                     keys_reader=lambda *a: iter(["keys"]))
    assert [list(r) for _, r in read.batches(keys_only=True)] == [["keys"]]
    assert [list(r) for _, r in read.batches()] == [["full"]]


class _Config:
    lookback_seconds = 100


def test_api_read_asks_for_changes_since_the_cursor_minus_the_lookback(monkeypatch):
    monkeypatch.setenv("CS_KPIS_API_EXTRACT_TIME", "2025-03-04T05:06:07")
    asked = []

    def reader(config, entity, since):
        asked.append((entity, since))
        return iter([])

    read = ApiRead(reader, _Config(), "things", since=1000)
    assert read.days == ["2025-03-04"] and read.boundary == datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)
    assert [day for day, records in read.batches() if not list(records)] == ["2025-03-04"]
    assert asked == [("things", 900)]
    assert ApiRead(reader, _Config(), "things", since=None).since is None


def test_api_read_never_moves_the_cursor_back():
    class _Lane:
        max_cursor = 500.7

    read = ApiRead(lambda *a: iter(()), _Config(), "things", since=None)
    state = {"api_since": 800}
    read.save(state, _Lane())
    assert state == {"api_since": 800}
    _Lane.max_cursor = 900.2
    read.save(state, _Lane())
    assert state == {"api_since": 900}
    _Lane.max_cursor = None
    read.save(state, _Lane())
    assert state == {"api_since": 900}


# ---- the key pass ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("keep", "b_wins"), [("latest", 3), ("first", 1)])
def test_winning_occurrences_pick_the_first_or_last_valid_occurrence(keep, b_wins):
    objs = [{"id": "a"}, {"id": "b"}, {"id": "b", "bad": True}, {"id": "b"}, {"id": "a", "bad": True}]
    (winners,) = winning_occurrences((_entity(keep=keep),), _numbered(objs))
    assert winners.first == {("a",): 0, ("b",): 1}
    # an invalid repeated occurrence never becomes the later winner
    assert winners.later == {("b",): 3}
    assert winners.wins(("a",), 0) and not winners.wins(("a",), 4)
    assert winners.wins(("b",), b_wins) and not winners.wins(("b",), 4 - b_wins)


def test_keep_first_falls_back_to_the_first_valid_later_occurrence_when_the_first_is_rejected():
    objs = [{"id": "b", "bad": True}, {"id": "b", "v": 2}, {"id": "b", "v": 3}]
    (winners,) = winning_occurrences((_entity(keep="first"),), _numbered(objs))
    assert winners.later == {("b",): 1}  # the first valid one after the first; the key pass stops there
    assert not winners.wins(("b",), 1)  # not while the first occurrence may still load
    winners.rejected(("b",), 0)  # the second pass found the first invalid
    assert winners.wins(("b",), 1) and not winners.wins(("b",), 2)


def test_the_key_pass_loads_a_whole_record_only_for_a_repeated_key():
    loads = []

    class _Keys(KeyFields):
        def __init__(self, values, full):
            dict.__init__(self, values)
            self.full = full

        def load(self):
            loads.append(self["id"])
            return self.full

    objs = [_Keys({"id": "a"}, {"id": "a"}), _Keys({"id": "b"}, {"id": "b"}), _Keys({"id": "a"}, {"id": "a", "bad": 1})]
    (winners,) = winning_occurrences((_entity(),), _numbered(objs))
    assert loads == ["a"]
    assert winners.later == {}  # the repeated occurrence is invalid: the first one wins


def test_the_key_pass_finds_each_childs_winners_by_parent():
    parent = _entity()
    child = _entity(name="items", group_key=lambda obj: obj["id"], prepare=lambda obj: [{"i": 1}, {"i": 2}])
    parent_winners, child_winners = winning_occurrences((parent, child), _numbered([{"id": "a"}, {"id": "a"}]))
    assert parent_winners.later == {("a",): 1} and child_winners.later == {("group", "a"): 1}


# ---- validate --------------------------------------------------------------------------------------------

def test_check_alone_rejects_on_contract_preparation_or_type():
    def contract(obj):
        if not isinstance(obj["id"], str):
            raise Reject("id must be text", field="id")

    types: dict[str, str] = {}
    check = CheckAlone(_entity(contract=contract), types)
    assert check(_rec({"id": "a", "v": 1})) == [([{"id": "a", "v": 1}], None)]
    assert types == {"id": "text", "v": "number"}
    (rows, error), = check(_rec({"id": 5}))
    assert rows is None and error.field == "id"
    (rows, error), = check(_rec({"id": "b", "bad": True}))
    assert str(error) == "bad record"
    (rows, error), = check(_rec({"id": "c", "v": "one"}, position=7))
    assert rows is None and error.field == "v" and "position 7" in str(error)
    assert types == {"id": "text", "v": "number"}  # a rejected record teaches nothing


def test_check_records_rejects_an_unparsed_record_for_every_table_with_the_readers_reason():
    unparsed = RawRecord(None, "things/d/part-00002.json", 3, raw_text="{", error="cut off", records=4)
    check = CheckAlone(_entity(), {})
    check.tables = 2
    out = list(check_records([(DAY, 0, unparsed), (DAY, 1, _rec({"id": "a"}))], check))
    assert [(c.rows, str(c.error)) for c in out[0]] == [(None, "cut off")] * 2
    assert out[1] == [Checked(DAY, 1, _rec({"id": "a"}), [{"id": "a", "v": None}], None)]


def _child_prepare(obj):
    if obj.get("bad_item"):
        raise Reject("bad item", field="items")
    return [{"parent": obj["id"], "n": n} for n in obj.get("items", [])]


def _feed(state=None):
    child = _entity(name="items", prepare=_child_prepare, group_key=lambda obj: obj["id"])
    return ChildFeed("sys", child, None, {} if state is None else state)


def test_check_shared_rejects_parent_and_child_together_on_the_parents_contract():
    def contract(obj):
        if obj.get("currency") == "xyz":
            raise Reject("unknown currency", field="currency")

    feed = _feed()
    check = CheckShared(_entity(contract=contract), {}, [feed])
    outcomes = check(_rec({"id": "a", "currency": "xyz", "items": [1]}))
    assert [str(error) for _, error in outcomes] == ["unknown currency"] * 2
    outcomes = check(_rec({"id": "b", "bad_item": True}))
    assert outcomes[0] == ([{"id": "b", "v": None}], None) and str(outcomes[1][1]) == "bad item"


def test_a_shared_type_check_serves_the_child_until_their_outcomes_differ():
    parent_types: dict[str, str] = {}
    state: dict = {}
    feed = _feed(state)
    feed.share(_entity(), parent_types)
    assert feed.shared and state["field_types"] is parent_types
    check = CheckShared(_entity(), parent_types, [feed])
    check(_rec({"id": "a", "items": [1]}))
    assert feed.field_types is parent_types and parent_types["items"] == "list"
    check(_rec({"id": "b", "bad_item": True}))  # the parent loads, the child does not: they part
    assert not feed.shared and state["field_types"] is not parent_types
    assert state["field_types"] == {"id": "text", "items": "list"}
    assert "bad_item" in parent_types  # the parent learned from the record the child rejected


def test_the_shared_pass_prepares_the_parent_once_and_gives_the_child_the_same_outcome():
    calls = []

    def parent_prepare(obj):
        calls.append(obj["id"])
        return _prepare(obj)

    def child_rows(obj):
        if obj.get("bad_item"):
            raise Reject("bad item", field="items")
        return [{"id": f"{obj['id']}-1", "thing": obj["id"]}]

    def child_prepare(obj):  # as billing's: the parent's preparation first, no rows when it rejects
        try:
            parent_prepare(obj)
        except Reject:
            return []
        return child_rows(obj)

    objs = [{"id": "a"}, {"id": "b", "bad": True}, {"id": "c", "bad_item": True}]

    def outcomes(after_parent):
        child = _entity(name="items", prepare=child_prepare, group_key=lambda obj: obj["id"],
                        prepare_after_parent=after_parent)
        check = CheckShared(_entity(prepare=parent_prepare), {}, [ChildFeed("sys", child, None, {})])
        calls.clear()
        got = [[(rows, str(error) if error else None) for rows, error in check(_rec(obj))] for obj in objs]
        return got, list(calls)

    repeated, repeated_calls = outcomes(None)
    once, once_calls = outcomes(child_rows)
    assert once == repeated
    assert once[1] == [(None, "bad record"), ([], None)] and once[2][1] == (None, "bad item")
    assert repeated_calls == ["a", "a", "b", "b", "c", "c"] and once_calls == ["a", "b", "c"]


def test_same_check_compares_functions_and_partials():
    def pick(key, obj):
        return obj[key]

    assert same_check(pick, pick) and same_check(None, None)
    assert same_check(partial(pick, "items"), partial(pick, "items"))
    assert not same_check(partial(pick, "items"), partial(pick, "lines")) and not same_check(pick, None)


# ---- deduplicate -----------------------------------------------------------------------------------------

def _checked(obj, ordinal, rows=None):
    return Checked(DAY, ordinal, _rec(obj, ordinal), rows if rows is not None else _prepare(obj), None)


def test_dedupe_by_winners_passes_the_winner_and_counts_the_rest():
    counts = Accounting()
    winners = Winners("latest", first={("a",): 0}, later={("a",): 2})
    dedupe = DedupeByWinners(_entity(), winners, counts)
    assert dedupe.take(_checked({"id": "a", "v": 1}, 0)) == []
    assert dedupe.take(_checked({"id": "a", "v": 2}, 2)) == [{"id": "a", "v": 2}]
    assert counts.rows_deduplicated == 1 and list(dedupe.rest()) == []


@pytest.mark.parametrize(("keep", "expected", "deduplicated"),
                         [("latest", [("b", 1), ("a", 3)], 1), ("first", [("a", 1), ("b", 1)], 1)])
def test_dedupe_in_memory_keeps_one_row_per_key_in_arrival_order(keep, expected, deduplicated):
    counts = Accounting()
    dedupe = DedupeInMemory(_entity(keep=keep), counts)
    for ordinal, obj in enumerate([{"id": "a", "v": 1}, {"id": "b", "v": 1}, {"id": "a", "v": 3}]):
        assert dedupe.take(_checked(obj, ordinal)) == []  # everything waits for the end
    assert [(row["id"], row["v"]) for row in dedupe.rest()] == expected
    assert counts.rows_deduplicated == deduplicated


def test_dedupe_in_memory_replaces_a_child_set_as_a_whole():
    counts = Accounting()
    dedupe = DedupeInMemory(_entity(group_key=lambda obj: obj["id"]), counts)
    dedupe.take(_checked({"id": "s"}, 0, rows=[{"n": 1}, {"n": 2}, {"n": 3}]))
    dedupe.take(_checked({"id": "s"}, 1, rows=[{"n": 4}]))
    assert list(dedupe.rest()) == [{"n": 4}] and counts.rows_deduplicated == 3


# ---- emit ------------------------------------------------------------------------------------------------

def test_arrow_emitter_yields_full_batches_then_the_rest_with_json_hints():
    emitter = ArrowEmitter("sys__things", "load-1", batch_rows=2)
    out = [item for row in ({"id": 1}, {"id": 2, "tags": ["x"]}, {"id": 3}) for item in emitter.emit(row)]
    assert len(out) == 1
    table = _data(out[0])
    assert isinstance(table, pa.Table) and table.column("id").to_pylist() == [1, 2]
    assert table.column("tags").to_pylist() == [None, '["x"]']
    assert out[0].meta.hints["columns"]["tags"]["data_type"] == "json"
    (rest,) = emitter.flush()
    assert _data(rest).column("id").to_pylist() == [3] and list(emitter.flush()) == []


def test_row_emitter_puts_the_scd2_boundary_on_the_first_row_only():
    boundary = datetime(2025, 1, 2, tzinfo=UTC)
    spec = _entity(write_disposition={"disposition": "merge", "strategy": "scd2"}, merge_key=("id",))
    emitter = RowEmitter(spec, boundary, lake=False)
    first, second = [item for row in ({"id": 1}, {"id": 2}) for item in emitter.emit(row)]
    assert first.meta.hints["write_disposition"]["boundary_timestamp"] == boundary
    assert first.data == {"id": 1} and second == {"id": 2}
    on_lake = RowEmitter(spec, boundary, lake=True)
    assert [row[lake.VALID_FROM] for r in ({"id": 1}, {"id": 2}) for row in on_lake.emit(r)] == [boundary] * 2


# ---- a table's lane --------------------------------------------------------------------------------------

class _Emitted:
    def __init__(self):
        self.rows = []

    def emit(self, row):
        self.rows.append(row)
        return iter(())

    def flush(self):
        return iter(())


def test_a_lane_quarantines_stamps_deduplicates_and_balances_its_counts():
    counts, emitted = Accounting(), _Emitted()
    spec = _entity(cursor="at", prepare=lambda obj: [{"id": obj["id"], "at": obj["at"]}])
    lane = Lane("sys", spec, DedupeInMemory(spec, counts), emitted, counts)
    at = datetime(2025, 1, 1, tzinfo=UTC)
    unparsed = RawRecord(None, "things/d/part-00002.json", None, raw_text="{", error="cut off", records=3)
    items = [
        Checked(DAY, 0, _rec({"id": "a"}), [{"id": "a", "at": at}], None),
        Checked(DAY, 1, _rec({"id": "b"}, 1), None, Reject("bad", field="amount")),
        Checked(DAY, 2, unparsed, None, Reject("cut off")),
        Checked(DAY, 3, _rec({"id": "a"}, 3), [{"id": "a", "at": at.replace(year=2026)}], None),
    ]
    quarantined = [_data(out) for item in items for out in lane.take(item)]
    assert [(q["position"], q["field"], q["reason"], q["records"]) for q in quarantined] == [
        (1, "amount", "bad", 1), (None, None, "cut off", 3)]
    list(lane.flush())
    assert emitted.rows == [{"id": "a", "at": at.replace(year=2026), "_extract_day": datetime(2025, 1, 2).date(),
                             "_origin": "things/2025-01-02/part-00001.json"}]
    assert counts.as_dict() == {"rows_read": 6, "rows_loaded": 1, "rows_quarantined": 4, "rows_deduplicated": 1}
    assert counts.balanced and lane.max_cursor == at.replace(year=2026).timestamp()
    assert lane.field_rejects == {"amount": ["things/2025-01-02/part-00001.json (position 1)"]}


def test_a_lane_tells_the_winners_about_a_rejected_first_occurrence():
    counts = Accounting()
    winners = Winners("first", first={("a",): 0}, later={("a",): 1})
    lane = Lane("sys", _entity(), DedupeByWinners(_entity(), winners, counts), _Emitted(), counts)
    list(lane.take(Checked(DAY, 0, _rec({"id": "a"}), None, Reject("bad"))))
    list(lane.take(_checked({"id": "a", "v": 2}, 1)))
    assert lane.emitter.rows == [{"id": "a", "v": 2, "_extract_day": datetime(2025, 1, 2).date(),
                                  "_origin": "things/2025-01-02/part-00001.json"}]


def test_a_lane_stops_on_a_contract_change_and_writes_state_and_accounting(tmp_path):
    counts = Accounting()
    lane = Lane("sys", _entity(), DedupeInMemory(_entity(), counts), _Emitted(), counts)
    for ordinal in range(12):
        list(lane.take(Checked(DAY, ordinal, _rec({"id": ordinal}, ordinal), None, Reject("no", field="amount"))))
    assert "contract change in field 'amount': 12 of 12 records" in lane.contract_stop()
    read = FilesRead(_landing(tmp_path, [DAY]), "things", lambda *a: iter(()), None, None)
    state: dict = {}
    (row,) = [_data(item) for item in lane.finish(state, read)]
    assert state["last_extract_day"] == DAY and state["last_run"]["rows_quarantined"] == 12
    assert row["entity"] == "things" and row["rows_read"] == 12 and row["extract_days"] == [DAY]
