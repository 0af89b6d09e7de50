"""The set-based events loader: direct insert from read_json, dedup once the insert has committed, careful
fallback only for the day with a bad line."""

import json
from pathlib import Path

import duckdb
import pytest

from cs_kpis.sources.product import helpers
from cs_kpis.sources.product.loader import load_day


def _event(mid: str, day: str, **extra) -> dict:
    stamp = f"{day}T10:00:00.000Z"
    return {"type": "track", "messageId": mid, "userId": "u1", "event": "Login", "timestamp": stamp,
            "originalTimestamp": stamp, "sentAt": stamp, "receivedAt": stamp,
            "context": {"groupId": "ws_1"}, "properties": {"a": 1}, **extra}


def _write(root: Path, day: str, lines: list) -> str:
    path = root / "product" / "events" / day / "part-00001.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return str(path)


def test_dedup_keeps_first_in_file_order_and_reload_inserts_nothing(tmp_path: Path) -> None:
    f1 = _write(tmp_path, "2026-01-01", [_event("m1", "2026-01-01"), _event("m2", "2026-01-01"),
                                         _event("m2", "2026-01-01")])
    f2 = _write(tmp_path, "2026-01-02", [_event("m1", "2026-01-01"), _event("m3", "2026-01-02")])
    con = duckdb.connect()
    con.execute(helpers.create_table_sql("ev"))
    # files given newest first: "first" is still file-name (received day) order
    first = load_day(con, "ev", [f2, f1], received_day=None, origin_prefix=f"{tmp_path}/", load_id="L1")
    assert first.counts.as_dict() == {"rows_read": 5, "rows_loaded": 3, "rows_quarantined": 0, "rows_deduplicated": 2}
    assert not first.careful
    rows = con.execute("select message_id, _origin, _received_day::varchar from ev order by 1").fetchall()
    assert rows == [("m1", "product/events/2026-01-01/part-00001.jsonl", "2026-01-01"),
                    ("m2", "product/events/2026-01-01/part-00001.jsonl", "2026-01-01"),
                    ("m3", "product/events/2026-01-02/part-00001.jsonl", "2026-01-02")]
    again = load_day(con, "ev", [f1, f2], received_day=None, origin_prefix=f"{tmp_path}/", load_id="L2")
    assert again.counts.as_dict() == {"rows_read": 5, "rows_loaded": 0, "rows_quarantined": 0, "rows_deduplicated": 5}
    assert con.execute("select count(*) from ev").fetchall() == [(3,)]


def test_bad_line_goes_careful_for_its_day_only(tmp_path: Path) -> None:
    good = _write(tmp_path, "2026-01-01", [_event("m1", "2026-01-01")])
    bad = _write(tmp_path, "2026-01-02", [_event("m2", "2026-01-02"), "{not json",
                                          _event("m3", "2026-01-02", timestamp="yesterday"),
                                          _event("", "2026-01-02")])
    con = duckdb.connect()
    con.execute(helpers.create_table_sql("ev"))
    result = load_day(con, "ev", [good, bad], received_day=None, origin_prefix=f"{tmp_path}/", load_id="L1")
    assert result.careful
    assert result.counts.as_dict() == {"rows_read": 5, "rows_loaded": 2, "rows_quarantined": 3, "rows_deduplicated": 0}
    assert sorted((pos, reason.split(":")[0]) for _, pos, _, reason in result.bad_rows) == [
        (1, "malformed JSON line"), (2, "wrong type in timestamp"), (3, "missing primary key messageId")]
    assert con.execute("select message_id from ev order by 1").fetchall() == [("m1",), ("m2",)]


def test_bad_lines_of_every_kind_are_quarantined_with_file_and_line_and_the_rest_loads(tmp_path: Path) -> None:
    # before issue 15 an invalid UTF-8 byte stopped all product events ("read_text: could not read ... as
    # valid UTF-8"), naming the file but not the line; an oversized line or a year-9999 timestamp loaded
    from datetime import date

    from cs_kpis.sources.common.contract import DateWindow

    day = "2026-01-02"
    other = _write(tmp_path, "2026-01-01", [_event("m0", "2026-01-01")])
    path = Path(_write(tmp_path, day, [_event("m1", day)]))
    good = [json.dumps(_event(f"g{i}", day)).encode() for i in range(3)]
    lines = [
        good[0],
        b'{"type":"track","messageId":"cut","timest',                       # 1 truncated
        json.dumps(_event("utf", day)).encode().replace(b"Login", b"Log\xffin"),  # 2 invalid UTF-8
        json.dumps(_event("big", day, properties={"pad": "x" * 40_000})).encode(),  # 3 oversized
        json.dumps({k: v for k, v in _event("x", day).items() if k != "messageId"}).encode(),  # 4 no messageId
        json.dumps(_event("y9999", day, timestamp="9999-01-30T00:00:00.000Z")).encode(),  # 5 outside window
        b"[1, 2]",                                                          # 6 not an object
        good[1],
        b"",                                                                # 7 blank: not an event
        good[2],
    ]
    path.write_bytes(b"\xef\xbb\xbf" + b"\r\n".join(lines) + b"\r\n")  # BOM and CRLF as Windows tools write
    con = duckdb.connect()
    con.execute(helpers.create_table_sql("ev"))
    window = DateWindow(date(2016, 1, 1), date(2036, 12, 31))
    result = load_day(con, "ev", [other, str(path)], received_day=None, origin_prefix=f"{tmp_path}/",
                      load_id="L1", window=window)
    origin = "product/events/2026-01-02/part-00001.jsonl"
    reasons = {pos: reason for file, pos, _, reason in result.bad_rows if file == origin}
    assert sorted(reasons) == [1, 2, 3, 4, 5, 6]
    assert reasons[1].startswith("malformed JSON line")
    assert reasons[2].startswith("line is not valid UTF-8")
    assert reasons[3].startswith("oversized line")
    assert reasons[4] == "missing primary key messageId"
    assert reasons[5].startswith("wrong date in timestamp")
    assert reasons[6] == "line is not a JSON object"
    assert result.counts.as_dict() == {"rows_read": 10, "rows_loaded": 4, "rows_quarantined": 6, "rows_deduplicated": 0}
    assert con.execute("select message_id, _origin from ev order by 1").fetchall() == [
        ("g0", origin), ("g1", origin), ("g2", origin), ("m0", "product/events/2026-01-01/part-00001.jsonl")]


def test_a_year_9999_timestamp_fails_the_fast_insert_so_it_can_be_quarantined(tmp_path: Path) -> None:
    from datetime import date

    from cs_kpis.sources.common.contract import DateWindow

    day = "2026-01-02"
    path = _write(tmp_path, day, [_event("a", day), _event("b", day, receivedAt="9999-01-01T00:00:00Z")])
    con = duckdb.connect()
    con.execute(helpers.create_table_sql("ev"))
    result = load_day(con, "ev", [path], received_day=None, origin_prefix=f"{tmp_path}/", load_id="L1",
                      window=DateWindow(date(2016, 1, 1), date(2036, 12, 31)))
    assert [(pos, reason.split(":")[0]) for _, pos, _, reason in result.bad_rows] == [(1, "wrong date in receivedAt")]
    assert con.execute("select message_id from ev").fetchall() == [("a",)]


class _Recording:
    """A DuckDB connection that records each statement (lower case, one line) and can fail some."""

    def __init__(self, con: duckdb.DuckDBPyConnection, fail_on: str | None = None) -> None:
        self.con, self.fail_on, self.statements = con, fail_on, []

    def execute(self, sql: str, *args):
        statement = " ".join(sql.split()).lower()
        self.statements.append(statement)
        if self.fail_on and statement.startswith(self.fail_on):
            raise duckdb.Error(f"injected failure of {self.fail_on}")
        return self.con.execute(sql, *args)


def test_the_duplicate_delete_runs_after_the_insert_has_committed(tmp_path: Path) -> None:
    # deleting rows that the open transaction inserted made DuckDB's commit rewrite the whole batch: a third
    # of the load's CPU on the large company (BENCHMARKS.md, issue 18 session 13)
    path = _write(tmp_path, "2026-01-01", [_event("m1", "2026-01-01"), _event("m1", "2026-01-01")])
    con = _Recording(duckdb.connect())
    con.execute(helpers.create_table_sql("ev"))
    result = load_day(con, "ev", [path], received_day=None, origin_prefix=f"{tmp_path}/", load_id="L1")
    assert result.counts.as_dict() == {"rows_read": 2, "rows_loaded": 1, "rows_quarantined": 0, "rows_deduplicated": 1}
    steps = con.statements
    insert = next(i for i, s in enumerate(steps) if s.startswith("insert into ev "))
    commit = next(i for i, s in enumerate(steps) if s == "commit" and i > insert)
    delete = next(i for i, s in enumerate(steps) if s.startswith("delete from ev "))
    assert insert < commit < delete


def test_a_failed_duplicate_delete_stops_the_load_instead_of_loading_the_batch_again(tmp_path: Path) -> None:
    # the insert has committed by then: splitting the batch and loading it again would store every row twice
    path = _write(tmp_path, "2026-01-01", [_event("m1", "2026-01-01"), _event("m2", "2026-01-01")])
    con = _Recording(duckdb.connect(), fail_on="delete from ev ")
    con.execute(helpers.create_table_sql("ev"))
    with pytest.raises(RuntimeError, match="deleting the duplicates"):
        load_day(con, "ev", [path], received_day=None, origin_prefix=f"{tmp_path}/", load_id="L1")
    assert con.con.execute("select message_id from ev order by 1").fetchall() == [("m1",), ("m2",)]


def _scans_of_every_message_id(con, sql: str, table: str) -> int:
    """The scans in DuckDB's plan of ``sql`` (EXPLAIN in JSON) that read ``table``'s message_id unfiltered."""
    found, todo = 0, json.loads(con.execute(f"explain (format json) {sql}").fetchall()[0][1])
    while todo:
        node = todo.pop()
        todo.extend(node.get("children", []))
        info = node.get("extra_info") or {}
        projections = info.get("Projections") or []
        projections = [projections] if isinstance(projections, str) else projections
        if (node.get("name") == "SEQ_SCAN" and info.get("Table", "").endswith(f".{table}")
                and "message_id" in projections and not info.get("Filters")):
            found += 1
    return found


def test_the_duplicate_delete_reads_every_message_id_once(tmp_path: Path) -> None:
    # finding the duplicated messageIds, then scanning the table again for their rows, read the whole table
    # twice on every night with a duplicate: on the large company's 60 M events most of the nightly load
    # (BENCHMARKS.md "Product events on the nightly")
    con = duckdb.connect()
    con.execute(helpers.create_table_sql("ev"))
    con.execute("insert into ev (message_id, _origin, _dlt_load_id) values ('m1', 'a', 'L0'), ('m2', 'a', 'L0'), "
                "('m1', 'b', 'L1'), ('m3', 'b', 'L1'), ('m3', 'b', 'L1')")
    for sql in helpers.files_table_sql(["b"], ["b"], ["2026-01-02"]):
        con.execute(sql)
    delete = helpers.delete_duplicates_sql("ev", load_id="L1")
    assert _scans_of_every_message_id(con, delete, "ev") == 1
    # and it deletes the batch's copy of m1 (an earlier load holds it) and one of its two m3
    assert con.execute(delete).fetchall() == [(2,)]
    assert con.execute("select message_id, _dlt_load_id from ev order by all").fetchall() == [
        ("m1", "L0"), ("m2", "L0"), ("m3", "L1")]
