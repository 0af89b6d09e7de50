"""stg_product__events built by load (cs_kpis/lib/incremental_loads.py): a nightly build appends only the raw
loads not built yet, and gives the table a full build gives.

On a copy of the tiny company's warehouse, its raw events are split into three loads by received day (the
raw table is insert-only: each nightly load adds one day's events), loaded one by one; after each, the
incremental table is compared with a full rebuild, ``except all`` both ways. Then the cases that must rebuild
whole: a load discarded and loaded again, a new raw column, a SQL change, ``full_refresh``, a table changed
behind the build's back.
"""

import dataclasses

import duckdb
import pytest

from cs_kpis.defs.staging.assets import STAGING_MODELS
from cs_kpis.lib import incremental_loads as load_builds
from cs_kpis.lib import sql as sqllib

MODEL = next(m for m in STAGING_MODELS if m.name == "stg_product__events")
RAW = "raw.product__events"
LOADS = ("0001.night1", "0002.night2", "0003.night3")


def _except_all(con, a: str, b: str) -> tuple[int, int]:
    count = "select count(*) from (select * from {} except all select * from {})"
    return con.execute(count.format(a, b)).fetchone()[0], con.execute(count.format(b, a)).fetchone()[0]


def same_as_full_build(con, model=MODEL) -> int:
    """Compare the table with a full rebuild of it (on a copy of the warehouse's state, then put back)."""
    con.execute(f"create or replace table main.incremental_copy as select * from {model.table}")
    for t in (load_builds.CONTROL_TABLE, load_builds.LOG_TABLE):
        con.execute(f"create or replace table main.{t.split('.')[1]}_copy as select * from {t}")
    plan, rows = sqllib.build_by_load(con, model, full_refresh=True)
    assert plan.mode == "full"
    assert _except_all(con, "main.incremental_copy", model.table) == (0, 0)
    for t in (model.table, load_builds.CONTROL_TABLE, load_builds.LOG_TABLE):  # back to the nightly's state
        source = "main.incremental_copy" if t == model.table else f"main.{t.split('.')[1]}_copy"
        con.execute(f"delete from {t}")
        con.execute(f"insert into {t} select * from {source}")
    return rows


@pytest.fixture
def con(tiny_company, tmp_path):
    """The tiny warehouse with its raw events split into three loads by received day; only the first in raw."""
    with duckdb.connect(str(tiny_company.copy_warehouse(tmp_path))) as connection:
        connection.execute("set TimeZone = 'UTC'")
        days = [d for (d,) in connection.execute(
            f"select distinct _received_day from {RAW} order by 1").fetchall()]
        assert len(days) >= 6, "the tiny company's events span too few days to split into loads"
        cut1, cut2 = days[len(days) // 3], days[2 * len(days) // 3]
        connection.execute(f"update {RAW} set _dlt_load_id = case when _received_day < ? then ? "
                           f"when _received_day < ? then ? else ? end",
                           [cut1, LOADS[0], cut2, LOADS[1], LOADS[2]])
        connection.execute(f"create table main.later_loads as select * from {RAW} where _dlt_load_id <> ?",
                           [LOADS[0]])
        connection.execute(f"delete from {RAW} where _dlt_load_id <> ?", [LOADS[0]])
        connection.execute(f"drop table if exists {load_builds.LOG_TABLE}")  # the fixture's build was of other loads
        yield connection


def _load(con, load_id: str) -> int:
    """The nightly raw load ``load_id`` arrives (insert-only)."""
    con.execute(f"insert into {RAW} select * from main.later_loads where _dlt_load_id = ?", [load_id])
    return con.execute(f"select count(*) from {RAW} where _dlt_load_id = ?", [load_id]).fetchone()[0]


def test_each_nightly_build_appends_only_the_new_load_and_equals_a_full_build(con):
    plan, rows = sqllib.build_by_load(con, MODEL)
    assert (plan.mode, list(plan.loads)) == ("full", [LOADS[0]]) and "not built yet" in plan.reason
    assert rows == con.execute(f"select count(*) from {RAW}").fetchone()[0] > 0
    for load_id in LOADS[1:]:
        arrived = _load(con, load_id)
        assert arrived > 0
        plan, after = sqllib.build_by_load(con, MODEL)
        assert plan.mode == "incremental" and plan.loads == {load_id: arrived}, plan
        assert after == rows + arrived
        assert same_as_full_build(con) == after
        rows = after
    # a rerun with nothing new appends nothing (no duplicate), and the SQL reads no load
    plan, again = sqllib.build_by_load(con, MODEL)
    assert (plan.mode, plan.loads, again) == ("incremental", {}, rows)
    assert con.execute(f"select count(*) from ({sqllib.render_model(MODEL)})").fetchone()[0] == 0
    assert con.execute(f"select count(distinct message_id) from {MODEL.table}").fetchone()[0] == rows
    log = con.execute(f"select mode, loads_read, table_rows from {load_builds.LOG_TABLE} "
                      "where model = ? order by build_seq", [MODEL.table]).fetchall()
    assert [m for m, _, _ in log] == ["full", "incremental", "incremental", "incremental"]
    assert log[-1][1:] == (0, rows)


def test_a_message_delivered_in_two_loads_is_kept_as_a_full_build_keeps_it(con):
    """The raw loader drops a later copy of a messageId before it commits; should raw ever hold one twice,
    the nightly table holds what a full build holds (both copies, which the blocking unique check names)."""
    sqllib.build_by_load(con, MODEL)
    con.execute(f"insert into {RAW} select * replace ('9999.redelivered' as _dlt_load_id) from {RAW} limit 3")
    plan, rows = sqllib.build_by_load(con, MODEL)
    assert plan.loads == {"9999.redelivered": 3}
    assert same_as_full_build(con) == rows


def test_a_load_discarded_and_loaded_again_rebuilds_whole(con):
    """A killed load's rows are deleted (discard_incomplete_loads) and the rerun loads them with a new id:
    rows of a load already built changed, so appending would duplicate them; the build is full."""
    sqllib.build_by_load(con, MODEL)
    _load(con, LOADS[1])
    sqllib.build_by_load(con, MODEL)
    con.execute(f"update {RAW} set _dlt_load_id = '0004.rerun' where _dlt_load_id = ?", [LOADS[1]])
    plan, rows = sqllib.build_by_load(con, MODEL)
    assert plan.mode == "full" and "already built have other rows" in plan.reason, plan.reason
    assert rows == con.execute(f"select count(*) from {RAW}").fetchone()[0]
    assert con.execute(f"select count(distinct message_id) from {MODEL.table}").fetchone()[0] == rows


def test_a_new_raw_column_a_sql_change_or_full_refresh_rebuild_whole(con):
    sqllib.build_by_load(con, MODEL)
    assert sqllib.build_by_load(con, MODEL)[0].mode == "incremental"
    assert sqllib.build_by_load(con, MODEL, full_refresh=True)[0].reason == "full_refresh requested"
    con.execute(f"alter table {RAW} add column context__page__url varchar")
    plan, _ = sqllib.build_by_load(con, MODEL)
    assert plan.mode == "full" and "columns of raw.product__events" in plan.reason
    changed = dataclasses.replace(MODEL, sql=MODEL.sql.replace("select * from renamed", "select * from renamed\n"))
    assert sqllib.build_by_load(con, changed)[0].mode == "full"
    assert sqllib.build_by_load(con, changed)[0].mode == "incremental"


def test_a_table_changed_behind_the_builds_back_or_an_unfinished_build_rebuilds_whole(con):
    sqllib.build_by_load(con, MODEL)
    con.execute(f"delete from {MODEL.table} where message_id in (select message_id from {MODEL.table} limit 2)")
    plan, rows = sqllib.build_by_load(con, MODEL)
    assert plan.mode == "full" and "its last build left" in plan.reason
    assert rows == con.execute(f"select count(*) from {RAW}").fetchone()[0]
    _load(con, LOADS[1])
    load_builds.record(con, MODEL.table, load_builds.plan(con, MODEL.table, RAW, "v"))  # never finished
    plan, _ = sqllib.build_by_load(con, MODEL)
    assert plan.mode == "full" and "did not finish" in plan.reason


def test_a_failed_build_leaves_table_and_record_as_they_were(con, monkeypatch):
    sqllib.build_by_load(con, MODEL)
    before = con.execute(f"select count(*) from {MODEL.table}").fetchone()[0]
    _load(con, LOADS[1])
    broken = dataclasses.replace(MODEL, sql=MODEL.sql.replace("select * from renamed", "select * from renamed_x"))
    monkeypatch.setattr(load_builds, "version", lambda *a: load_builds.last_build(con, MODEL.table)["version"])
    with pytest.raises(duckdb.Error):
        sqllib.build_by_load(con, broken)
    monkeypatch.undo()
    assert con.execute(f"select count(*) from {MODEL.table}").fetchone()[0] == before
    plan, _ = sqllib.build_by_load(con, MODEL)
    assert plan.mode == "incremental" and list(plan.loads) == [LOADS[1]]


def test_the_tag_is_checked():
    from pathlib import Path

    with pytest.raises(ValueError, match="takes no other setting"):
        load_builds_tag("by=load lookback_days=3")
    with pytest.raises(ValueError, match="by must be day or load"):
        load_builds_tag("by=week")
    assert MODEL.by_load and MODEL.deps == [sqllib.raw_key("product", "events")]
    with pytest.raises(ValueError, match="reads only the current build's loads"):
        load_builds.check_model_sql("select * from raw.product__events", MODEL.table, str(Path("x.sql")))


def load_builds_tag(value: str) -> dict:
    from cs_kpis.lib.incremental import parse_tag

    return parse_tag(value, "x.sql")


def _unique_check():
    from cs_kpis.defs.staging.checks import build_grain_checks

    unique, _ = build_grain_checks([MODEL])
    return unique


def _check(warehouse):
    from cs_kpis_tests.staging.checking import run_check

    evaluation = run_check(_unique_check(), warehouse)
    return evaluation.passed, evaluation.metadata["violations"].value, evaluation.metadata["keys_checked"].value


def test_the_nightly_unique_check_looks_up_the_new_loads_keys_and_keeps_failing_until_fixed(con):
    warehouse = con.execute("select path from duckdb_databases() where database_name = current_database()"
                            ).fetchall()[0][0]
    sqllib.build_by_load(con, MODEL)
    con.close()  # the check opens the warehouse itself

    def then(*statements):
        with duckdb.connect(warehouse) as c:
            for statement in statements:
                statement(c) if callable(statement) else c.execute(statement)
        return _check(warehouse)

    build = lambda c: sqllib.build_by_load(c, MODEL)
    nightly = "the keys of the loads appended since the last passing check"
    assert then() == (True, 0, "every key")  # after a full build: every key
    assert then() == (True, 0, "none: no load appended since the last passing check")  # nothing new to look up
    assert then(lambda c: _load(c, LOADS[1]), build) == (True, 0, nightly)
    # a load that repeats messageIds an earlier load holds (the raw loader would have dropped them)
    dup = (f"insert into {RAW} select * replace ('0005.dup' as _dlt_load_id) from main.later_loads "
           f"where _dlt_load_id = '{LOADS[1]}' limit 2")
    assert then(dup, build) == (False, 2, nightly)
    # the next night: the duplicates are still there and still reported
    assert then(lambda c: _load(c, LOADS[2]), build) == (False, 2, nightly)
    # fixed in raw: the build is full (a built load changed), and so is the check
    assert then(f"delete from {RAW} where _dlt_load_id = '0005.dup'", build) == (True, 0, "every key")
    # rows changed behind the builds' back: every key is checked
    assert then(f"insert into {MODEL.table} select * from {MODEL.table} limit 1") == (False, 1, "every key")


@pytest.mark.parametrize("cols", ["k", "k, n"])
def test_duplicate_keys_by_hash_first_finds_what_a_plain_group_by_finds(cols):
    """The full check's query (hash first, then the keys) against the plain ``group by``: repeated keys, a key
    repeated three times, null keys (which group together), and for two columns a pair repeated only as a whole."""
    con = duckdb.connect()
    con.execute("create table t (k varchar, n integer)")
    con.execute("insert into t select 'm' || i, i % 3 from range(5000) as r(i)")
    con.execute("insert into t values ('m7', 1), ('m7', 1), ('m8', 2), (null, 0), (null, 0), ('m9', 1), ('m9', 2)")
    plain = con.execute(f"select {cols}, count(*) as copies from t group by {cols} having count(*) > 1 "
                        "order by all").fetchall()
    found = con.execute(f"select * from ({load_builds.duplicate_keys_sql('t', cols)}) order by all").fetchall()
    assert found == plain
    if cols == "k":
        assert found == [("m7", 3), ("m8", 2), ("m9", 3), (None, 2)]
    else:
        assert found == [("m7", 1, 3), ("m8", 2, 2), (None, 0, 2)]
    con.close()
