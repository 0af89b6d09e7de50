"""The delete of a killed run's rows (cs_kpis.sources.common.runner.discard_sql): which rows, and that the
completed loads are compared with the table's distinct load ids, not with every row."""

import json

import duckdb

from cs_kpis.sources.common.runner import discard_sql

COMPLETED = "(select load_id from loads where status = 0)"


def _table() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("create table ev (x int, source varchar, _dlt_load_id varchar)")
    con.execute("create table loads (load_id varchar, status int)")
    con.execute("insert into loads values ('L1', 0), ('L2', 1)")
    con.execute("insert into ev values (1, 'p', 'L1'), (2, 'p', 'L2'), (3, 'p', null), (4, 'q', 'L2'), (5, 'p', 'L3')")
    return con


def test_the_rows_of_loads_never_completed_are_deleted_for_the_source_only() -> None:
    con = _table()
    # L2 never completed (status 1), L3 has no row at all; a row without a load id stays, as with `not in`
    assert con.execute(discard_sql("ev", "source = ?", COMPLETED), ["p", "p"]).fetchall() == [(2,)]
    assert con.execute("select x from ev order by x").fetchall() == [(1,), (3,), (4,)]


def _probe_of_completed(node: dict) -> dict | None:
    """The input compared with the completed loads: the first child of the mark join on load ids."""
    if node.get("name") == "HASH_JOIN" and (node.get("extra_info") or {}).get("Join Type") == "MARK":
        return node["children"][0]
    for child in node.get("children", []):
        found = _probe_of_completed(child)
        if found is not None:
            return found
    return None


def test_completion_is_tested_on_the_distinct_load_ids() -> None:
    # testing every row's load id was 0.40-0.55 CPU s of each nightly on 60 M product events, the distinct
    # ids 0.12-0.14 (BENCHMARKS.md "Product events on the nightly")
    con = _table()
    plan = json.loads(con.execute(f"explain (format json) {discard_sql('ev', 'source = ?', COMPLETED)}",
                                  ["p", "p"]).fetchall()[0][1])
    probe = next(p for p in map(_probe_of_completed, plan) if p is not None)
    names, todo = [], [probe]
    while todo:
        node = todo.pop()
        names.append(node["name"])
        todo.extend(node.get("children", []))
    assert "HASH_GROUP_BY" in names
