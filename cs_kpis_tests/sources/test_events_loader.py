"""The set-based events loader: direct insert from read_json, dedup in the same transaction, careful
fallback only for the day with a bad line."""

import json
from pathlib import Path

import duckdb

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
