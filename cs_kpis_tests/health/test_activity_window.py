"""kpis.account_activity_daily built in windows: a nightly (incremental) or ranged build must give exactly the
rows a full build gives, and a change to the inputs of older days forces a full build.

The fixture warehouse (fixtures.py) runs 2025-01-01 .. 2025-04-30. acc_a's users are active from 01-05, so a
window starting in March must still end the 30-day spells of events up to 30 days before it."""

import dataclasses
import datetime as dt
import json
import re

import duckdb
import pytest

from cs_kpis.defs.health.fingerprints import FINGERPRINTS
from cs_kpis.lib import incremental
from cs_kpis_tests.health.fixtures import (
    ACTIVITY_MODEL,
    build_window,
    operator_name,
    plan,
    profile_nodes,
    rows_scanned,
    scanned_table,
    spec,
    write_inputs,
)
from cs_kpis_tests.health.test_history import rows, same

AS_OF = dt.date(2025, 4, 30)
ACTIVITY = ACTIVITY_MODEL.table


def window(start, mode="incremental"):
    return incremental.BuildWindow(mode, start, None, AS_OF, ACTIVITY_MODEL.code_version, "test")


def first_build(con):
    """A full build that records its window and fingerprint (the fixture's build recorded no SQL version)."""
    w = plan(con, ACTIVITY_MODEL)
    assert w.mode == "full" and "SQL of kpis.account_activity_daily changed" in w.reason
    build_window(con, ACTIVITY_MODEL, w)


def test_the_fixture_has_spells_that_cross_every_tested_window(wh):
    # the reference must contain -1 deltas that a window build can only get right by reading older events
    got = wh.execute(f"select count(*) from {ACTIVITY} where users_30d_delta < 0 and day >= '2025-02-01'").fetchall()
    assert got[0][0] > 0


@pytest.mark.parametrize("start", [dt.date(2025, 1, 3), dt.date(2025, 2, 4), dt.date(2025, 3, 1),
                                   dt.date(2025, 3, 25)])
def test_an_incremental_activity_build_equals_the_full_build(wh, start):
    full = rows(wh, ACTIVITY)
    assert [r for r in full if r["day"] >= start], "the reference must have rows in the window"
    stats = build_window(wh, ACTIVITY_MODEL, window(start))
    assert stats["mode"] == "incremental"
    assert stats["rows_written"] == len([r for r in full if r["day"] >= start])
    assert stats["rows_deleted"] == stats["rows_written"]
    same(rows(wh, ACTIVITY), full)


def test_the_first_value_of_each_day_is_kept(wh):
    got = wh.execute(f"select account_id, min(first_value_at) from {ACTIVITY} group by account_id "
                     "order by account_id").fetchall()
    expected = wh.execute(
        "select x.crm_account_id, min(e.occurred_at) from staging.stg_product__events as e "
        "inner join marts.account_xref as x on x.source_system = 'product' and x.source_id = e.workspace_id "
        "inner join kpis.health_product_config as c on c.setting = 'value_event' and c.name = e.event_name "
        "where e.event_type = 'track' group by 1 order by 1").fetchall()
    assert expected, "the fixture must have value events"
    assert [r for r in got if r[1] is not None] == expected


def event_scans(con, tmp_path) -> list[int]:
    """The rows each scan of the product events read in one run of the activity SQL for the current window
    (DuckDB's JSON profile), largest first."""
    profile = tmp_path / "activity_profile.json"
    con.execute("pragma enable_profiling = 'json'")
    con.execute(f"pragma profiling_output = '{profile}'")
    con.execute(f"create or replace temp table profiled as {ACTIVITY_MODEL.sql}")
    con.execute("pragma disable_profiling")
    tree = json.loads(profile.read_text())
    return sorted((rows_scanned(n) for n in profile_nodes(tree) if "SCAN" in operator_name(n)
                   and scanned_table(n).endswith("stg_product__events") and "event_name" in json.dumps(n.get("extra_info"))),
                  reverse=True)


def test_a_build_of_every_day_reads_the_product_events_once(fresh_wh, tmp_path):
    wh = fresh_wh
    # The first milestones of a build of every day (a full build's account range, a nightly's accounts rebuilt
    # on every day) come from the events it reads anyway; they were a second scan of every event in each range
    # (BENCHMARKS.md "Activity: one read of the events per range"). More events than one DuckDB vector (2,048
    # rows), so that a scan stopped at once shows
    wh.execute("insert into staging.stg_product__events select 'bulk' || i, 'track', 'u' || (i % 7), "
               "'Teammate Invited', 'ws_c', timestamptz '2025-01-20 10:00:00+00' + i * interval 1 minute, "
               "date '2025-01-30' from range(10000) as r(i)")
    build_window(wh, ACTIVITY_MODEL, window(None, mode="full"))
    full = event_scans(wh, tmp_path)
    assert full[0] >= 10_000 and all(n <= 2_048 for n in full[1:]), full
    # a window reads its own days' events (every event of this small table's one row group) and, for the
    # milestones no event in the 31 days before it reached, every event's name
    build_window(wh, ACTIVITY_MODEL, window(dt.date(2025, 4, 1)))
    assert max(event_scans(wh, tmp_path)) >= 10_000


def test_a_window_looks_up_a_first_milestone_only_for_pairs_without_events_in_the_days_before_it(wh):
    # A window from 04-01 reads the events from 03-01 on. Its first milestones on the window's days are the
    # account and milestone pairs with no event in those days before 04-01, looked up in every event; every other
    # pair was reached before the window (BENCHMARKS.md "Activity's nightly: the milestones' first days looked up
    # for the pairs a window can reach")
    wh.execute("insert into marts.account_xref values ('product', 'ws_a2', 'acc_a')")
    wh.execute("insert into staging.stg_product__events select *, cast(occurred_at as date) from (values "
               # acc_b: reached in January, nothing from 03-01 to 03-31, again in the window: no first in it
               "('t1', 'track', 'ub', 'Teammate Invited', 'ws_b', timestamptz '2025-01-15 10:00:00+00'), "
               "('t2', 'track', 'ub', 'Teammate Invited', 'ws_b', timestamptz '2025-04-03 10:00:00+00'), "
               # acc_b: first reached in the window (04-05), again on 04-08
               "('d1', 'track', 'ub', 'Data Source Connected', 'ws_b', timestamptz '2025-04-05 23:30:00+00'), "
               "('d2', 'track', 'ub', 'Data Source Connected', 'ws_b', timestamptz '2025-04-08 10:00:00+00'), "
               # acc_c: on 03-20 (read, before the window) and 04-02: no first in the window
               "('s1', 'track', 'uc', 'Dashboard Shared', 'ws_c', timestamptz '2025-03-20 10:00:00+00'), "
               "('s2', 'track', 'uc', 'Dashboard Shared', 'ws_c', timestamptz '2025-04-02 10:00:00+00'), "
               # acc_a: reached at ws_a in January, at its second workspace on 04-10: the account's first is January's
               "('w1', 'track', 'u1', 'Teammate Invited', 'ws_a', timestamptz '2025-01-20 10:00:00+00'), "
               "('w2', 'track', 'u9', 'Teammate Invited', 'ws_a2', timestamptz '2025-04-10 10:00:00+00'), "
               # a group call and a milestone's name that is no track call: never a milestone
               "('g2', 'group', 'uc', 'Data Source Connected', 'ws_c', timestamptz '2025-01-10 10:00:00+00'), "
               "('g3', 'track', 'uc', 'Data Source Connected', 'ws_c', timestamptz '2025-04-12 10:00:00+00')"
               ") as v(message_id, event_type, user_id, event_name, workspace_id, occurred_at)")
    build_window(wh, ACTIVITY_MODEL, window(None, mode="full"))
    full = rows(wh, ACTIVITY)
    firsts = {(r["account_id"], r["day"].isoformat()): r["milestones_reached"] for r in full
              if r["milestones_reached"] and r["day"] >= dt.date(2025, 4, 1)}
    assert firsts == {("acc_b", "2025-04-05"): 1, ("acc_c", "2025-04-12"): 1}, firsts
    stats = build_window(wh, ACTIVITY_MODEL, window(dt.date(2025, 4, 1)))
    assert stats["mode"] == "incremental"
    same(rows(wh, ACTIVITY), full)


def test_the_deltas_running_sums_are_the_distinct_users_and_key_features_of_the_trailing_days(wh):
    # A spell that follows the previous one within its window writes no +1 and -1 on its day (they cancel):
    # gaps of 1, 6, 7, 8, 29 and 30 days between a user's (a key feature's) active days, 31 and 7 for another
    # user, a third on some of the same days, and a window from 03-20 reading them from 02-17 on, must still
    # count every day's distinct users (key features) of the last 7 and 30 days, here as on a full build
    days = ["2025-02-01", "2025-02-02", "2025-02-08", "2025-02-15", "2025-02-23", "2025-03-24", "2025-04-23"]
    more = ["2025-02-02", "2025-03-04", "2025-03-25", "2025-04-25"]
    values = [f"('r{i}', 'track', 'ub', 'Report Created', 'ws_b', timestamptz '{d} 10:00:00+00')" for i, d in enumerate(days)]
    values += [f"('q{i}', 'track', 'ub2', 'Signed In', 'ws_b', timestamptz '{d} 11:00:00+00')" for i, d in enumerate(more)]
    values += [f"('a{i}', 'track', 'ub2', 'Alert Configured', 'ws_b', timestamptz '{d} 12:00:00+00')"
               for i, d in enumerate(["2025-02-03", "2025-03-05", "2025-04-04", "2025-04-05"])]
    values += [f"('z{i}', 'track', 'ub3', 'Signed In', 'ws_b', timestamptz '{d} 09:00:00+00')"
               for i, d in enumerate(["2025-02-10", "2025-03-13", "2025-03-20"])]
    wh.execute("insert into staging.stg_product__events select *, cast(occurred_at as date) from (values "
               + ", ".join(values) + ") as v(message_id, event_type, user_id, event_name, workspace_id, occurred_at)")
    oracle = f"""
        with ev as (
            select x.crm_account_id as account_id, e.user_id, e.event_name, cast(e.occurred_at as date) as day
            from staging.stg_product__events as e
            inner join marts.account_xref as x on x.source_system = 'product' and x.source_id = e.workspace_id
            where e.event_type = 'track'
        ),
        grid as (select a.account_id, d.day from (select distinct account_id from ev) as a cross join marts.dim_day as d)
        select g.account_id, g.day,
            (select coalesce(sum(users_7d_delta), 0) from {ACTIVITY} as t where t.account_id = g.account_id and t.day <= g.day),
            (select count(distinct user_id) from ev where ev.account_id = g.account_id and ev.day between g.day - 6 and g.day),
            (select coalesce(sum(users_30d_delta), 0) from {ACTIVITY} as t where t.account_id = g.account_id and t.day <= g.day),
            (select count(distinct user_id) from ev where ev.account_id = g.account_id and ev.day between g.day - 29 and g.day),
            (select coalesce(sum(key_features_30d_delta), 0) from {ACTIVITY} as t where t.account_id = g.account_id and t.day <= g.day),
            (select count(distinct event_name) from ev where ev.account_id = g.account_id and ev.day between g.day - 29 and g.day
                and ev.event_name in (select name from kpis.health_product_config where setting = 'key_feature'))
        from grid as g order by 1, 2"""
    build_window(wh, ACTIVITY_MODEL, window(None, mode="full"))
    full = rows(wh, ACTIVITY)
    got = wh.execute(oracle).fetchall()
    assert len(got) >= 3 * 120 and any(r[3] == 2 for r in got) and any(r[7] == 2 for r in got)
    wrong = [r for r in got if (r[2], r[4], r[6]) != (r[3], r[5], r[7])]
    assert not wrong, wrong[:5]
    stats = build_window(wh, ACTIVITY_MODEL, window(dt.date(2025, 3, 20)))
    assert stats["mode"] == "incremental"
    same(rows(wh, ACTIVITY), full)


def test_a_build_in_account_ranges_covers_every_account(wh):
    # acc_x has product activity but no subscription: it is not in the ranges' counts, yet must be built
    wh.execute("insert into marts.account_xref values ('product', 'ws_x', 'acc_x')")
    wh.execute("insert into staging.stg_product__events values "
               "('x1', 'track', 'ux', 'Signed In', 'ws_x', '2025-02-02 10:00:00+00', '2025-02-02')")
    build_window(wh, ACTIVITY_MODEL, window(None, mode="full"), chunk_rows=10 ** 9)
    full = rows(wh, ACTIVITY)
    assert {r["account_id"] for r in full} >= {"acc_a", "acc_b", "acc_c", "acc_x"}
    ranges = incremental.account_ranges(wh, window(None, mode="full"), chunk_rows=40)
    assert len(ranges) == 3 and ranges[0][0] is None and ranges[-1][1] is None
    stats = build_window(wh, ACTIVITY_MODEL, window(None, mode="full"), chunk_rows=40)
    assert stats["account_ranges"] == 3
    same(rows(wh, ACTIVITY), full)
    current = incremental.current(wh, ACTIVITY)
    assert current["account_from"] is None and current["account_to"] is None


def test_the_nightly_plan_rebuilds_the_lookback_and_equals_a_full_build(wh, monkeypatch):
    monkeypatch.setenv(incremental.ENV_LOOKBACK_DAYS, "3")
    first_build(wh)
    full = rows(wh, ACTIVITY)
    w = plan(wh, ACTIVITY_MODEL)
    # the last day with activity (04-29 at the latest) minus 3 days' lookback, at the latest the fingerprint day
    assert w.mode == "incremental" and w.start_day <= dt.date(2025, 4, 28), w.reason
    build_window(wh, ACTIVITY_MODEL, w)
    same(rows(wh, ACTIVITY), full)


CHANGES = {
    # an event older than the lookback arrives late
    "late event": (("insert into staging.stg_product__events values ('late', 'track', 'u9', 'Signed In', 'ws_a', "
                    "'2025-02-10 10:00:00+00', '2025-04-30')"), ["acc_a"]),
    # an old ticket's priority changes (its open urgent/high count is its latest priority)
    "ticket priority": (("update staging.stg_support__tickets set priority = "
                         "case when priority = 'urgent' then 'low' else 'urgent' end"), ["acc_a"]),
    # a workspace is mapped to another account: the old and the new account
    "workspace remap": ("update marts.account_xref set crm_account_id = 'acc_b' where source_id = 'ws_c'",
                        ["acc_b", "acc_c"]),
    # an NPS respondent with older responses is mapped to another account
    "respondent remap": (("update marts.account_xref set crm_account_id = 'acc_c' "
                          "where source_system = 'nps' and source_id = 'p1'"), ["acc_a", "acc_c"]),
    # a customer with an older failed payment loses its mapping
    "customer unmapped": ("delete from marts.account_xref where source_id = 'cus_a'", ["acc_a"]),
}


@pytest.mark.parametrize("change", [CHANGES[k] for k in ("late event", "respondent remap", "customer unmapped")],
                         ids=["late event", "respondent remap", "customer unmapped"])
def test_a_change_to_older_inputs_rebuilds_the_accounts_it_touches_on_every_day(wh, change, monkeypatch):
    # The nightly keeps its window for everyone and rebuilds every day of the accounts whose older inputs
    # changed; it was a full build of every account (on the large company, 216 old tickets updated on the new
    # day made each nightly rebuild the year). Any share of the tiny company's 3 accounts may be rebuilt here.
    # (An old ticket's priority and a workspace remap: test_history.py, through all three tables.)
    monkeypatch.setenv(incremental.ENV_LOOKBACK_DAYS, "3")
    monkeypatch.setattr(incremental, "MAX_REBUILT_SHARE", 1.0)
    sql, accounts = change
    first_build(wh)
    before = rows(wh, ACTIVITY)
    wh.execute(sql)
    w = plan(wh, ACTIVITY_MODEL)
    assert (w.mode, w.accounts) == ("incremental", tuple(accounts)), w.reason
    assert f"{len(accounts)} account(s) rebuilt on every day" in w.reason
    stats = build_window(wh, ACTIVITY_MODEL, w)
    assert stats["accounts_rebuilt"] == len(accounts)
    assert incremental.current(wh, ACTIVITY)["accounts_rebuilt"] == len(accounts)
    nightly = rows(wh, ACTIVITY)
    assert nightly != before, "the change must change older rows, or the test proves nothing"
    # the next night compares with what this build recorded: nothing older changed since
    w = plan(wh, ACTIVITY_MODEL)
    assert (w.mode, w.accounts) == ("incremental", ()) and "older inputs unchanged" in w.reason, w.reason
    build_window(wh, ACTIVITY_MODEL, plan(wh, ACTIVITY_MODEL, full_refresh=True))
    same(nightly, rows(wh, ACTIVITY))


def test_an_old_ticket_changing_priority_within_its_class_rebuilds_no_account(wh, monkeypatch):
    # The activity reads a ticket's priority only as urgent/high or not: normal -> low (ticket 3, acc_a, created
    # 03-05) and urgent -> high (ticket 2) change no row. Hashing the exact priority rebuilt acc_a on every day
    # in all three tables.
    monkeypatch.setenv(incremental.ENV_LOOKBACK_DAYS, "3")
    monkeypatch.setattr(incremental, "MAX_REBUILT_SHARE", 1.0)
    first_build(wh)
    wh.execute("update staging.stg_support__tickets set priority = case ticket_id when 3 then 'low' else 'high' end "
               "where ticket_id in (2, 3)")
    w = plan(wh, ACTIVITY_MODEL)
    assert (w.mode, w.accounts) == ("incremental", ()) and "older inputs unchanged" in w.reason, w.reason
    build_window(wh, ACTIVITY_MODEL, w)
    nightly = rows(wh, ACTIVITY)
    build_window(wh, ACTIVITY_MODEL, plan(wh, ACTIVITY_MODEL, full_refresh=True))
    same(nightly, rows(wh, ACTIVITY))
    # across the class it still does
    wh.execute("update staging.stg_support__tickets set priority = 'urgent' where ticket_id = 3")
    assert plan(wh, ACTIVITY_MODEL).accounts == ("acc_a",)


def test_a_change_to_the_older_inputs_of_too_many_accounts_forces_a_full_build(wh):
    # more than MAX_REBUILT_SHARE (10%) of the accounts: a restatement (a regenerated company), rebuilt in full
    first_build(wh)
    wh.execute(CHANGES["ticket priority"][0])
    w = plan(wh, ACTIVITY_MODEL)
    assert w.mode == "full" and "more than 10% of the 3 accounts" in w.reason, w.reason


def test_a_change_to_the_product_configuration_forces_a_full_build(wh, monkeypatch):
    # no account owns it: whatever the share allowed, the build is full
    monkeypatch.setattr(incremental, "MAX_REBUILT_SHARE", 1.0)
    first_build(wh)
    wh.execute("delete from kpis.health_product_config where setting = 'key_feature' and name = 'Report Created'")
    w = plan(wh, ACTIVITY_MODEL)
    assert w.mode == "full" and "no account owns changed" in w.reason, w.reason


def test_a_mapping_first_seen_for_ids_without_older_rows_keeps_the_nightly_incremental(wh, monkeypatch):
    # A new NPS respondent, customer, organization or workspace is mapped on the new day: it has no row before
    # the fingerprint day, so no older day can change. The fingerprint hashed all of marts.account_xref, and
    # on the large company (and the demo) one new respondent made every nightly rebuild the year in full.
    monkeypatch.setenv(incremental.ENV_LOOKBACK_DAYS, "3")
    first_build(wh)
    wh.execute("insert into marts.account_xref values ('nps', 'p_new', 'acc_a'), ('billing', 'cus_new', 'acc_c'), "
               "('support', '99', 'acc_b'), ('product', 'ws_new', 'acc_b')")
    w = plan(wh, ACTIVITY_MODEL)
    assert w.mode == "incremental", w.reason
    build_window(wh, ACTIVITY_MODEL, w)
    nightly = rows(wh, ACTIVITY)
    build_window(wh, ACTIVITY_MODEL, plan(wh, ACTIVITY_MODEL, full_refresh=True))
    same(nightly, rows(wh, ACTIVITY))


def test_the_first_build_is_full(tmp_path):
    con = duckdb.connect(str(tmp_path / "first.duckdb"))
    write_inputs(con)
    w = plan(con, ACTIVITY_MODEL)
    assert w.mode == "full" and "not built yet" in w.reason
    build_window(con, ACTIVITY_MODEL, w)
    assert plan(con, ACTIVITY_MODEL).mode == "incremental"


def test_an_sql_change_or_full_refresh_forces_a_full_build(wh):
    first_build(wh)
    assert incremental.plan(wh, dataclasses.replace(spec(ACTIVITY_MODEL), sql_version="another")).mode == "full"
    w = plan(wh, ACTIVITY_MODEL, full_refresh=True)
    assert w.mode == "full" and w.start_day is None


LATER_CHANGE = {
    "account_activity_daily": ("insert into staging.stg_product__events values ('late2', 'track', 'u9', 'Signed In', "
                               "'ws_a', '2025-02-10 10:00:00+00', '2025-04-30')"),
    "account_indicators_daily": "update marts.mrr_daily_changes set mrr = mrr + 1 where change_date < '2025-03-01'",
}
HISTORY = {"account_activity_daily": ("staging.stg_product__events", 1), "account_indicators_daily": (ACTIVITY, 0)}
"""the largest history each model's fingerprint could read, and how often its plan reads it: every event once for
both days; the activity never (its changes reach the indicators through its build records, not a hash of its
30.7 M rows on the large company: BENCHMARKS.md "Indicators' nightly: the profile")"""


@pytest.mark.parametrize("model", list(LATER_CHANGE))
def test_a_nightly_reads_its_inputs_history_once_for_both_fingerprints(wh, monkeypatch, tmp_path, model):
    # The plan hashes the inputs dated before last night's fingerprint day (to compare) and before tonight's
    # (for the record, which the next night compares) in one read of their history; the record keeps what the
    # plan read instead of reading every event (or activity row) again. It hashed them twice: BENCHMARKS.md
    # "Health nightly: one read of the inputs' history for both fingerprints".
    from cs_kpis_tests.health.fixtures import MODELS, ScanCounter

    monkeypatch.setenv(incremental.ENV_LOOKBACK_DAYS, "3")
    m = MODELS[model]
    # last night, as of 04-29: full builds that record their fingerprints (before 04-27); tonight, as of 04-30,
    # the plan compares those and hashes the ones before 04-28 (two days: a scan of each would be two scans)
    wh.execute("delete from marts.dim_day where day = ?", [AS_OF])
    for built in (ACTIVITY_MODEL, m):
        build_window(wh, built, plan(wh, built, full_refresh=True))
    wh.execute("insert into marts.dim_day values (?)", [AS_OF])
    # DuckDB's profile of every statement of the plan and of the build (but the model's own SQL, which reads
    # the events too, and the indicators' carry kept for the next night, which sums the activity: incremental.Carry):
    # the history is scanned once, by the plan, for both days, and never by the record
    history, plan_scans = HISTORY[model]
    counted = ScanCounter(wh, tmp_path / "profile.json", history, skip=(m.sql, "_carry_"))
    w = plan(counted, m)
    assert w.mode == "incremental" and w.fingerprint_next, w.reason
    assert incremental.current(wh, m.table)["fingerprint_day"] == AS_OF - dt.timedelta(days=3)
    assert counted.scans == plan_scans
    counted.scans = 0
    fp, day = FINGERPRINTS[m.table], incremental.next_fingerprint_day(spec(m), AS_OF)
    fp.compute(wh, day, "_expected")
    expected = wh.execute("select account_id, rows, hash from _expected order by 1").fetchall()
    assert expected
    # an old input changing after the plan cannot reach the record: it was hashed once, by the plan
    wh.execute(LATER_CHANGE[model])
    build_window(counted, m, w)
    counted.stop()
    assert counted.scans == 0
    recorded = wh.execute(f"select account_id, rows, hash from {incremental.FINGERPRINTS_TABLE} where model = ? "
                          "order by 1", [m.table]).fetchall()
    assert recorded == expected
    assert not wh.execute("select count(*) from duckdb_tables() where temporary and table_name = ?",
                          [incremental.next_fingerprint_table(m.table)]).fetchall()[0][0]


def test_a_record_on_another_connection_than_the_plan_hashes_the_inputs_itself(wh, monkeypatch):
    # the plan's hash for tonight is a temp table of the plan's connection; a build on another connection
    # cannot see it, and records the fingerprint it hashes itself instead of failing
    import dataclasses

    from cs_kpis_tests.health.fixtures import MODELS

    monkeypatch.setenv(incremental.ENV_LOOKBACK_DAYS, "3")
    m = MODELS["account_activity_daily"]
    build_window(wh, m, plan(wh, m, full_refresh=True))
    w = dataclasses.replace(plan(wh, m), fingerprint_next="_fingerprint_next_of_another_connection")
    fp, day = FINGERPRINTS[m.table], incremental.next_fingerprint_day(spec(m), AS_OF)
    fp.compute(wh, day, "_expected")
    expected = wh.execute("select account_id, rows, hash from _expected order by 1").fetchall()
    build_window(wh, m, w)
    recorded = wh.execute(f"select account_id, rows, hash from {incremental.FINGERPRINTS_TABLE} where model = ? "
                          "order by 1", [m.table]).fetchall()
    assert expected and recorded == expected


@pytest.mark.parametrize("model", ["kpis.account_activity_daily", "kpis.account_indicators_daily"])
def test_the_fingerprints_of_two_days_read_together_equal_each_day_read_alone(wh, model):
    fp, days = FINGERPRINTS[model], [dt.date(2025, 3, 1), dt.date(2025, 4, 28)]
    build_window(wh, ACTIVITY_MODEL, plan(wh, ACTIVITY_MODEL, full_refresh=True))
    fp.compute_days(wh, days, ["_both_0", "_both_1"])
    for k, day in enumerate(days):
        fp.compute(wh, day, "_alone")
        alone = wh.execute("select * from _alone order by all").fetchall()
        assert alone and wh.execute(f"select * from _both_{k} order by all").fetchall() == alone
    assert (wh.execute("select * from _both_0 order by all").fetchall()
            != wh.execute("select * from _both_1 order by all").fetchall())


def test_a_nightly_window_is_cut_by_the_days_it_reads_not_as_a_full_build(wh, monkeypatch):
    # The activity reads the events received from 34 days before its window (and each workspace's first
    # milestones: one small row per workspace and milestone), so its nightly ranges are sized by those days. Cut
    # as a full build (no reads_days), the large company's nightly ran in 10 ranges, each reading the window's
    # events and scanning every event for the milestones again (BENCHMARKS.md "Health nightly: one read of the
    # inputs' history for both fingerprints, the activity's nightly in one range").
    s = spec(ACTIVITY_MODEL)
    assert s.reads_days == 34
    # the tag says what the SQL reads: the received days from reads_days before the window
    assert re.findall(r"received_day >= cast\(bw.start_day - interval (\d+) day", ACTIVITY_MODEL.sql) == [str(s.reads_days)]
    # 130 account-days per range: a full build's make 2 ranges, a nightly's (42 per account) 1
    monkeypatch.setattr(incremental, "memory_limit_gb", lambda con: 130.5 / ACTIVITY_MODEL.incremental["rows_per_gb"])
    nightly, per_range = incremental.build_ranges(wh, s, window(AS_OF - dt.timedelta(days=7)))
    assert per_range == 130 and len(nightly) == 1
    assert len(incremental.build_ranges(wh, s, window(None, mode="full"))[0]) == 2
    full = rows(wh, ACTIVITY)
    build_window(wh, ACTIVITY_MODEL, window(AS_OF - dt.timedelta(days=7)))
    same(rows(wh, ACTIVITY), full)
