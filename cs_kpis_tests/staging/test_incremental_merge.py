"""Staging models over merged raw tables built by load (``@incremental by=load merge=...``,
cs_kpis/lib/incremental_loads.py): a nightly build replaces the rows the new loads merge on, and gives the table
a full build gives.

On a copy of the tiny company's warehouse, a nightly billing load is made as dlt's delete-insert makes it: new
versions of some invoices (another status; their line sets re-delivered with one line gone, one amount changed
and one new line) and new invoices with their lines, each deleting the raw rows it replaces. Then a second
night re-delivers some of the same invoices. After each, the nightly tables are compared with full rebuilds,
``except all`` both ways. Then the cases that must rebuild whole: raw rows deleted otherwise than by a merge (a
discarded load) and a load already built that gains rows. Billing events (insert-only) append like product
events.
"""

import dataclasses

import duckdb
import pytest

from cs_kpis.defs.staging.assets import STAGING_MODELS
from cs_kpis.lib import incremental_loads as load_builds
from cs_kpis.lib import sql as sqllib
from cs_kpis_tests.staging.test_incremental_loads import same_as_full_build

MODELS = {m.name: m for m in STAGING_MODELS}
INVOICES, LINES = MODELS["stg_billing__invoices"], MODELS["stg_billing__invoice_lines"]


@pytest.fixture
def con(tiny_company, tmp_path):
    with duckdb.connect(str(tiny_company.copy_warehouse(tmp_path))) as connection:
        connection.execute("set TimeZone = 'UTC'")
        for model in (INVOICES, LINES, MODELS["stg_billing__events"]):
            sqllib.build_by_load(connection, model, full_refresh=True)
        yield connection


def _night(con, load: str, invoices: int, new: int) -> None:
    """The nightly load ``load``: new versions of ``invoices`` invoices that have lines (status changed; their
    lines re-delivered with the first line gone, the second's amount changed and one line added) and ``new``
    invoices (copies under new ids), merged as dlt does: delete the rows with the same key, insert."""
    con.execute(f"""create or replace temp table night_invoices as
        with again as (
            select invoice as id from raw.billing__invoice_lines group by 1 having count(*) >= 2 order by 1
            limit {invoices}
        ), fresh as (
            select id from raw.billing__invoices where id not like '%\\_9%' escape '\\' order by 1 limit {new}
        )
        select * replace ('{load}' as _dlt_load_id, status || '_{load}' as status) from raw.billing__invoices
        where id in (select id from again)
        union all
        select * replace ('{load}' as _dlt_load_id, id || '_{load}' as id) from raw.billing__invoices
        where id in (select id from fresh)""")
    con.execute(f"""create or replace temp table night_lines as
        with lines as (
            select *, row_number() over (partition by invoice order by id) as n from raw.billing__invoice_lines
            where invoice in (select id from night_invoices)
        )
        select * exclude (n) replace ('{load}' as _dlt_load_id, case when n = 2 then amount + 7 else amount end
                                      as amount) from lines where n > 1
        union all
        select * exclude (n) replace ('{load}' as _dlt_load_id, id || '_{load}' as id) from lines where n = 1
        union all
        select * exclude (n) replace ('{load}' as _dlt_load_id, id || '_{load}' as id, invoice || '_{load}'
                                      as invoice) from raw.billing__invoice_lines as l, (select 1 as n)
        where invoice || '_{load}' in (select id from night_invoices)""")
    con.execute("delete from raw.billing__invoices where id in (select id from night_invoices)")
    con.execute("insert into raw.billing__invoices select * from night_invoices")
    con.execute("delete from raw.billing__invoice_lines where invoice in (select invoice from night_lines) "
                "or id in (select id from night_lines)")
    con.execute("insert into raw.billing__invoice_lines select * from night_lines")


def test_each_nightly_merge_replaces_the_merged_rows_and_equals_a_full_build(con):
    before = {m.name: con.execute(f"select count(*) from {m.table}").fetchone()[0] for m in (INVOICES, LINES)}
    for load in ("9001.night1", "9002.night2"):
        _night(con, load, invoices=3, new=2)
        for model in (INVOICES, LINES):
            arrived = con.execute(f"select count(*) from {load_builds.raw_table(model.sql, model.table)} "
                                  "where _dlt_load_id = ?", [load]).fetchone()[0]
            plan, rows = sqllib.build_by_load(con, model)
            assert plan.mode == "incremental" and plan.loads == {load: arrived} and arrived > 0, plan
            assert same_as_full_build(con, model) == rows
    # the second night re-delivered night 1's invoices: their rows are night 2's, and the control table follows
    assert con.execute(f"select count(*) from {INVOICES.table} where status like '%_9001.night1'").fetchone()[0] == 0
    assert con.execute(f"select count(*) from {INVOICES.table} where status like '%_9002.night2'").fetchone()[0] == 3
    assert con.execute(f"select count(*) from {INVOICES.table}").fetchone()[0] == before[INVOICES.name] + 4
    assert con.execute(f"select count(*) from {LINES.table} where amount_minor <> 0 and line_id like '%_9002.night2'"
                       ).fetchone()[0] > 0
    built = dict(con.execute(f"select _dlt_load_id, raw_rows from {load_builds.CONTROL_TABLE} where model = ?",
                             [INVOICES.table]).fetchall())
    assert built == dict(con.execute("select _dlt_load_id, count(*) from raw.billing__invoices group by 1").fetchall())
    # nothing new: nothing read, nothing changed
    plan, rows = sqllib.build_by_load(con, LINES)
    assert (plan.mode, plan.loads) == ("incremental", {}) and rows == con.execute(
        "select count(*) from raw.billing__invoice_lines").fetchone()[0]


def test_raw_rows_deleted_otherwise_than_by_a_merge_rebuild_whole(con):
    """A discarded incomplete load (cs_kpis.sources.common.runner.discard_incomplete_loads) deletes raw rows no
    load replaced: merging the next load would keep them, so the build is rolled back and made full."""
    _night(con, "9001.night1", invoices=2, new=1)
    con.execute("delete from raw.billing__invoices where id in (select id from raw.billing__invoices "
                "where _dlt_load_id <> '9001.night1' order by id limit 2)")
    plan, rows = sqllib.build_by_load(con, INVOICES)
    assert plan.mode == "full" and "otherwise than by its new loads' merges" in plan.reason, plan.reason
    assert rows == con.execute("select count(*) from raw.billing__invoices").fetchone()[0]
    assert load_builds.last_build(con, INVOICES.table)["mode"] == "full"
    # raw rows deleted with no new load: full as well
    con.execute("delete from raw.billing__invoices where id in (select id from raw.billing__invoices order by id limit 1)")
    plan, rows = sqllib.build_by_load(con, INVOICES)
    assert plan.mode == "full" and "otherwise than by a load's merge" in plan.reason, plan.reason
    assert rows == con.execute("select count(*) from raw.billing__invoices").fetchone()[0]
    # a load already built that gains rows: full as well
    con.execute("insert into raw.billing__invoices select * replace (id || '_late' as id) from raw.billing__invoices "
                "where _dlt_load_id = '9001.night1' limit 1")
    plan, _ = sqllib.build_by_load(con, INVOICES)
    assert plan.mode == "full" and "have more rows" in plan.reason, plan.reason


def test_billing_events_append_by_load(con):
    events = MODELS["stg_billing__events"]
    con.execute("insert into raw.billing__events select * replace ('9001.night1' as _dlt_load_id, id || '_n' as id) "
                "from raw.billing__events limit 5")
    plan, rows = sqllib.build_by_load(con, events)
    assert (plan.mode, plan.loads) == ("incremental", {"9001.night1": 5})
    assert same_as_full_build(con, events) == rows


def test_the_merge_setting_is_checked():
    from cs_kpis.lib.incremental import parse_tag

    assert parse_tag("by=load merge=line_id,invoice_id", "x.sql") == {"by": "load", "merge": ("line_id", "invoice_id")}
    with pytest.raises(ValueError, match="merge needs by=load"):
        parse_tag("merge=line_id", "x.sql")
    with pytest.raises(ValueError, match="column names"):
        parse_tag("by=load merge=Line-Id", "x.sql")
    assert LINES.merge == ("line_id", "invoice_id") and INVOICES.merge == ("invoice_id",)


def test_a_by_load_model_that_renames_its_key_checks_the_whole_table(tiny_company, tmp_path):
    """Billing events rename raw's ``id`` to ``event_id``: a lookup of the new loads' ``event_id`` in raw would
    bind to the outer query's column, so their unique check reads the whole table (as the merged models'), and
    fails on a duplicate; product events keep the nightly lookup."""
    from cs_kpis.defs.staging.checks import build_grain_checks
    from cs_kpis_tests.staging.checking import run_check

    events = MODELS["stg_billing__events"]
    warehouse = tiny_company.copy_warehouse(tmp_path)
    with duckdb.connect(str(warehouse)) as con:
        sqllib.build_by_load(con, events, full_refresh=True)
        con.execute("insert into raw.billing__events select * replace ('9001.night1' as _dlt_load_id) "
                    "from raw.billing__events order by id limit 1")  # an event delivered again
        assert sqllib.build_by_load(con, events)[0].loads == {"9001.night1": 1}
    unique, _ = build_grain_checks([events])
    evaluation = run_check(unique, warehouse)
    assert not evaluation.passed and evaluation.metadata["violations"].value == 1
    assert "keys_checked" not in evaluation.metadata  # the whole-table check, not the nightly lookup
    product, _ = build_grain_checks([MODELS["stg_product__events"]])
    assert run_check(product, warehouse).metadata["keys_checked"].value


def test_a_full_build_by_load_stores_sums_of_integers_as_bigint(con):
    """``create table as`` types a sum of integers HUGEINT; a by-load full build stores it as BIGINT, as every
    other build does (the UI's column schema, Spark's Parquet)."""
    kind = con.execute("select data_type from information_schema.columns where table_schema = 'staging' and "
                       "table_name = 'stg_billing__invoice_lines' and column_name = 'discount_amount_minor'").fetchone()
    assert kind == ("BIGINT",)


def test_a_merged_model_that_drops_raw_rows_stops_its_full_build(con):
    """A merged model must give one row per raw row (its nightly trusts the count): one that filters stops its
    full build with an error naming it, and the table it had stays."""
    rows = con.execute(f"select count(*) from {INVOICES.table}").fetchone()[0]
    filtered = dataclasses.replace(
        INVOICES, sql=f"select * from (\n{INVOICES.sql}\n) as m where invoice_id <> "
                      "(select min(id) from raw.billing__invoices)")
    with pytest.raises(ValueError, match="stg_billing__invoices declares @incremental by=load merge=.*one row per raw"):
        sqllib.build_by_load(con, filtered, full_refresh=True)
    assert con.execute(f"select count(*) from {INVOICES.table}").fetchone()[0] == rows
