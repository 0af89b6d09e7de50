"""The daily health history built in windows: a windowed or nightly (incremental) build must give exactly
the rows a full build gives for the same days, and a change that invalidates the history forces a full build.

The fixture warehouse (fixtures.py) runs 2025-01-01 .. 2025-04-30; acc_a's first product event is 01-05, so a
window starting on 04-29 reads its grid from 01-30 and must carry u1's 01-05 spell and older deltas in."""

import contextlib
import dataclasses
import datetime as dt
import itertools
import json
import math
import re

import pytest

from cs_kpis.defs.health import checks as health_checks
from cs_kpis.defs.health import health_score as hs
from cs_kpis.defs.health import scoring
from cs_kpis.defs.health.assets import write_frame
from cs_kpis.defs.health.backtest import build_backtest
from cs_kpis.defs.health.fingerprints import INDICATOR_CARRY
from cs_kpis.lib import checks as lib_checks
from cs_kpis.lib import incremental
from cs_kpis_tests.health import fixtures
from cs_kpis_tests.health.fixtures import INDICATOR_MODEL, build_window, plan

AS_OF = dt.date(2025, 4, 30)


def rows(con, table, since=None, order="account_id, day"):
    where = "where day >= ?" if since else ""
    cur = con.execute(f"select * exclude (built) from (select *, 0 as built from {table}) {where} order by {order}",
                      [since] if since else [])
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def same(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.keys() == y.keys()
        for k in x:
            if isinstance(x[k], float) and isinstance(y[k], float):
                assert math.isclose(x[k], y[k], abs_tol=1e-6) or (math.isnan(x[k]) and math.isnan(y[k])), (k, x, y)
            else:
                assert x[k] == y[k], (k, x, y)


def window(start, hist=None, mode="full"):
    return incremental.BuildWindow(mode, start, hist, AS_OF, INDICATOR_MODEL.code_version, "test")


@pytest.mark.parametrize("start", [dt.date(2025, 1, 3), dt.date(2025, 3, 1), dt.date(2025, 3, 15),
                                   dt.date(2025, 4, 29)])
def test_windowed_indicator_build_equals_the_full_build_on_its_days(wh, start):
    full = rows(wh, "kpis.account_indicators_daily", start)
    assert full, "the reference must have rows in the window"
    stats = build_window(wh, INDICATOR_MODEL, window(start, start))
    assert stats["mode"] == "full" and stats["rows_written"] == len(full)
    assert wh.execute("select min(day) from kpis.account_indicators_daily").fetchall()[0][0] == start
    same(rows(wh, "kpis.account_indicators_daily"), full)


def test_a_window_leaves_out_only_the_invoices_settled_and_terms_ended_before_it(wh):
    # A windowed build reads the invoices settled after its first day and the paid terms ending after it (the
    # others are past due, or in force, on no day it writes). Here an invoice unpaid from 04-20 to 04-28 and an
    # annual term ending on 04-28, around a window starting on 04-27: the window's rows equal a full build's, and
    # both reach into it (past due 7 days on 04-27, the term's renewal a day away; in_2, unpaid since 03-10, paid)
    wh.execute("update staging.stg_billing__invoices set status = 'paid', paid_at = '2025-04-01 10:00:00+00' "
               "where invoice_id = 'in_2'")
    wh.execute("insert into staging.stg_billing__invoices values ('in_6', 'cus_a', 'paid', 700, null, "
               "'2025-04-20 10:00:00+00', '2025-04-28 10:00:00+00', null, null), ('in_7', 'cus_a', 'paid', 5000, "
               "null, '2024-04-28 10:00:00+00', '2024-04-28 10:00:00+00', null, null)")
    wh.execute("insert into staging.stg_billing__invoice_lines values ('il_6', 'in_7', 'sub_a4', 'price_growth', "
               "false, '2024-04-28 00:00:00+00', '2025-04-28 00:00:00+00')")
    start = dt.date(2025, 4, 27)
    build_window(wh, INDICATOR_MODEL, window(None))
    full = rows(wh, "kpis.account_indicators_daily", start)
    first = next(r for r in full if r["account_id"] == "acc_a" and r["day"] == start)
    assert (first["max_days_past_due"], first["days_to_renewal"]) == (7, 1), first
    build_window(wh, INDICATOR_MODEL, window(start, start))
    same(rows(wh, "kpis.account_indicators_daily"), full)


def medians(rows_: list[dict], day: dt.date) -> tuple:
    return acc_a(rows_, day, "median_first_reply_minutes", "median_resolution_minutes", "first_contact_resolution")


@pytest.mark.parametrize("start", [dt.date(2025, 4, 2), dt.date(2025, 4, 3)])
def test_a_window_reads_the_tickets_of_the_90_days_before_its_first_day(wh, start):
    # A windowed build keeps the tickets created or solved less than 90 days before its first day (the 90 days of
    # a median include the day: 04-02's are 01-03 .. 04-02) and, of the change days of the medians, the last one
    # on or before its first day. acc_a's tickets: 1 created 01-03 (first reply 30 min), solved 01-04 (1440 min,
    # resolved at first contact), 2 created 03-01 (60 min, open), 3 created 03-05 (90 min), solved 03-06 (600 min,
    # two replies). Ticket 1 counts in the first-reply median up to 04-02 (median of 30, 60, 90) and in the
    # resolution one up to 04-03 (median of 1440 and 600, half at first contact): a window starting on 04-02
    # reads it created on its first day's edge, one starting on 04-03 solved on it; a day too strict either way
    # gives 75 or 600 on the first day
    expected = {dt.date(2025, 4, 2): (60.0, 1020.0, 0.5), dt.date(2025, 4, 3): (75.0, 1020.0, 0.5),
                dt.date(2025, 4, 4): (75.0, 600.0, 0.0)}
    full = rows(wh, "kpis.account_indicators_daily", start)
    build_window(wh, INDICATOR_MODEL, window(start, start))
    nightly = rows(wh, "kpis.account_indicators_daily")
    for day, values in expected.items():
        if day >= start:
            assert medians(nightly, day) == values, day
    same(nightly, full)


@pytest.mark.parametrize("states, expected", [
    # withdrawn in the morning of 03-20, scheduled again in the evening: scheduled at the end of the day
    ([("2025-03-20 08:00:00+00", False), ("2025-03-20 20:00:00+00", True)], 1),
    # scheduled again in the morning, withdrawn in the evening: not scheduled
    ([("2025-03-20 08:00:00+00", True), ("2025-03-20 20:00:00+00", False)], 0),
], ids=["scheduled last", "withdrawn last"])
def test_a_window_reads_the_subscription_state_in_force_on_its_first_day(wh, states, expected):
    # A windowed build keeps of each subscription's states before its first day only the end-of-day state of the
    # last day that had one: here sub_a set to cancel on 03-12 (fixtures.py), two states on 03-20, a window from
    # 03-21 (and 03-20: that day's own states). The first day reads 03-20's last state, not its first or 03-12's
    wh.execute("insert into marts.subscription_states values " + ", ".join(
        f"('sub_a', 'cus_a', '{at}', 'evt_w{i}', 'active', {str(flag).lower()}, null, null)"
        for i, (at, flag) in enumerate(states)))
    build_window(wh, INDICATOR_MODEL, window(None))
    full = rows(wh, "kpis.account_indicators_daily")
    assert acc_a(full, dt.date(2025, 3, 19), "cancellation_scheduled") == (1,)
    assert acc_a(full, dt.date(2025, 3, 20), "cancellation_scheduled") == (expected,)
    for start in (dt.date(2025, 3, 21), dt.date(2025, 3, 20)):
        build_window(wh, INDICATOR_MODEL, window(start, start))
        nightly = rows(wh, "kpis.account_indicators_daily")
        assert acc_a(nightly, start, "cancellation_scheduled") == (expected,), start
        same(nightly, [r for r in full if r["day"] >= start])


@pytest.mark.parametrize("start", [None, dt.date(2025, 3, 15)])
def test_a_build_in_account_ranges_equals_one_build(wh, start):
    full = rows(wh, "kpis.account_indicators_daily", start)
    w = window(start, start)
    assert len(incremental.account_ranges(wh, w, chunk_rows=40)) == 3  # one account per range (46..120 days each)
    stats = build_window(wh, INDICATOR_MODEL, w, chunk_rows=40)
    assert stats["account_ranges"] == 3
    same(rows(wh, "kpis.account_indicators_daily"), full)
    current = incremental.current(wh, INDICATOR_MODEL.table)
    assert current["account_from"] is None and current["account_to"] is None


def test_each_account_range_reads_only_its_accounts_activity(wh, tmp_path):
    # Each range of a build read the activity's whole history twice (the running sums' carry and the trailing
    # windows), whatever its accounts: on the large company 30.7 M rows per scan, in each of about 52 ranges
    # (BENCHMARKS.md "Indicators: each range reads its own accounts' activity"). The build renders the range's
    # bounds as constants on those scans, so DuckDB skips the other accounts' row groups. Here 2,500 accounts
    # with activity and no subscription (in no range's output), ids between acc_b and acc_c: row groups of
    # their own after the fixture's rows
    full = rows(wh, INDICATOR_MODEL.table)
    wh.execute("insert into kpis.account_activity_daily by name select 'acc_bz' || lpad(cast(i // 120 as varchar), "
               "5, '0') as account_id, date '2025-01-01' + cast(i % 120 as integer) as day, 1 as events "
               "from range(300000) as r(i)")
    table_rows = wh.execute("select count(*) from kpis.account_activity_daily").fetchall()[0][0]
    # a large company's range holds thousands of accounts: DuckDB makes a hash join's keys a filter of the scan
    # that zone maps use (an IN list) only up to this many keys; past it, a filter that skips no row group
    wh.execute("set dynamic_or_filter_threshold = 0")
    w = window(None)
    assert incremental.account_ranges(wh, w, chunk_rows=150) == [(None, "acc_b"), ("acc_b", None)]
    counted = fixtures.ScanCounter(wh, tmp_path / "profile.json", "kpis.account_activity_daily",
                                   only="window_deltas as (")  # the model's statements
    build_window(counted, INDICATOR_MODEL, w, chunk_rows=150)
    counted.stop()
    # three scans per range (the carry, the trailing windows and the listed accounts' earlier days, which a
    # build without listed accounts joins to none); the first range (acc_a and acc_b) read every row of the table
    # every scan reported its rows (a profile without the counter would pass the bound below with zeros)
    assert counted.scans == 6 and min(counted.rows_scanned) > 0, counted.rows_scanned
    assert max(counted.rows_scanned) < table_rows / 2, (counted.rows_scanned, table_rows)
    same(rows(wh, INDICATOR_MODEL.table), full)


def test_history_days_keeps_the_last_n_days(wh, monkeypatch):
    monkeypatch.setenv(incremental.ENV_HISTORY_DAYS, "30")
    w = plan(wh, INDICATOR_MODEL, full_refresh=True)
    assert w.start_day == w.history_start == dt.date(2025, 4, 1)
    build_window(wh, INDICATOR_MODEL, w)
    got = wh.execute("select min(day), max(day), count(distinct day) from kpis.account_indicators_daily").fetchall()
    assert got == [(dt.date(2025, 4, 1), AS_OF, 30)]
    monkeypatch.setenv(incremental.ENV_HISTORY_DAYS, "ten")
    with pytest.raises(ValueError, match="CS_KPIS_HEALTH_HISTORY_DAYS"):
        incremental.history_days()


def caught_up(con) -> bool:
    """The scores were built after the indicators' latest build."""
    builds = {b["model"]: b["build_seq"] for b in incremental.builds(con) if b["is_current"]}
    return builds[scoring.SCORES_TABLE] > builds[INDICATOR_MODEL.table]


def nightly_setup(con, last_built: dt.date) -> None:
    """Pretend the last nightly run saw data up to ``last_built``: drop every later day from the outputs."""
    for table in ("kpis.account_indicators_daily", "kpis.health_scores_daily", "kpis.health_score_changes"):
        con.execute(f"delete from {table} where day > ?", [last_built])


def full_build(con) -> None:
    """What the assets do on a first run: a full indicator build (recording the window and its
    fingerprint), then a full scoring."""
    build_window(con, INDICATOR_MODEL, plan(con, INDICATOR_MODEL, full_refresh=True))
    assert scoring.score_history(con, hs.load_current_config())["mode"] == "full"


def activity_and_full_build(con) -> None:
    """A full activity build, then :func:`full_build`."""
    build_window(con, fixtures.ACTIVITY_MODEL, plan(con, fixtures.ACTIVITY_MODEL, full_refresh=True))
    full_build(con)


def models_built_in_full(con, *inputs: str) -> None:
    """The ``inputs`` statements run, then full builds of the activity and the indicators (no scoring)."""
    for sql in inputs:
        con.execute(sql)
    build_window(con, fixtures.ACTIVITY_MODEL, plan(con, fixtures.ACTIVITY_MODEL, full_refresh=True))
    build_window(con, INDICATOR_MODEL, plan(con, INDICATOR_MODEL, full_refresh=True))


def test_nightly_indicators_and_scores_equal_a_full_build(wh_after, monkeypatch):
    monkeypatch.setenv(incremental.ENV_LOOKBACK_DAYS, "3")
    config = hs.load_current_config()
    wh = wh_after(full_build)
    ref = {t: rows(wh, t) for t in ("kpis.account_indicators_daily", "kpis.health_scores_daily")}
    ref_changes = rows(wh, "kpis.health_score_changes", order="account_id, day, window_days")
    assert ref_changes, "the fixture must have explained changes to compare"

    nightly_setup(wh, dt.date(2025, 4, 20))
    w = plan(wh, INDICATOR_MODEL)
    # 04-20 minus 3 days' lookback (the fingerprint day of the full build, 04-28, is later)
    assert w.mode == "incremental" and w.start_day == dt.date(2025, 4, 18), w.reason
    build_window(wh, INDICATOR_MODEL, w)
    stats = scoring.score_history(wh, config, chunk_rows=10)  # small chunks: several account ranges
    assert stats["mode"] == "incremental" and stats["start_day"] == dt.date(2025, 4, 18)
    assert stats["chunks"] > 1
    for table, expected in ref.items():
        same(rows(wh, table), expected)
    same(rows(wh, "kpis.health_score_changes", order="account_id, day, window_days"), ref_changes)
    assert caught_up(wh)


def test_restated_history_before_the_window_forces_a_full_build(wh_after):
    wh = wh_after(full_build)
    assert plan(wh, INDICATOR_MODEL).mode == "incremental"
    # a regenerated company or restated billing: an old MRR level changes (the activity's old rows change only
    # through its own builds, whose records reach the indicators: test_fingerprints.py, test_activity_window.py)
    wh.execute("update marts.mrr_daily_changes set mrr = mrr + 1 "
               "where change_date = (select min(change_date) from marts.mrr_daily_changes)")
    w = plan(wh, INDICATOR_MODEL)
    # 2025-01-01's MRR level is acc_a's and acc_c's: 2 of the 3 accounts, more than incremental.MAX_REBUILT_SHARE
    assert w.mode == "full" and "more than 10% of the 3 accounts" in w.reason, w.reason


def test_an_mrr_level_or_period_ending_after_the_fingerprint_day_keeps_the_nightly_incremental(wh_after):
    # acc_b's open MRR level and its subscription period end on the new day (a downgrade to zero, a
    # cancellation): their end moves from none to the as-of day, after the fingerprint day (04-28). The
    # indicators read an end only as "in force on the day", so no older day changes; hashing the whole row made
    # every such nightly rebuild the year (the demo's and the large company's nightly did).
    wh = wh_after(full_build)
    wh.execute(f"update marts.mrr_daily_changes set next_change_date = date '{AS_OF}' where account_id = 'acc_b'")
    wh.execute(f"insert into marts.mrr_daily_changes values ('acc_b', date '{AS_OF}', 0, 50, null)")
    wh.execute(f"update marts.subscription_periods set end_date = date '{AS_OF}' where subscription_id = 'sub_b'")
    w = plan(wh, INDICATOR_MODEL)
    assert w.mode == "incremental", w.reason
    build_window(wh, INDICATOR_MODEL, w)
    nightly = rows(wh, "kpis.account_indicators_daily")
    build_window(wh, INDICATOR_MODEL, plan(wh, INDICATOR_MODEL, full_refresh=True))
    same(nightly, rows(wh, "kpis.account_indicators_daily"))
    # an end before the fingerprint day does change older days: the build is full
    wh.execute("update marts.subscription_periods set end_date = date '2025-04-01' where subscription_id = 'sub_b'")
    w = plan(wh, INDICATOR_MODEL)
    assert w.mode == "full" and "1 whose inputs dated before 2025-04-24 changed" in w.reason, w.reason


OLD_INPUT_CHANGES = {
    # ticket 1 (acc_a, created 01-03, solved 01-04) was high: its open urgent/high day goes away
    "old ticket priority": ("update staging.stg_support__tickets set priority = 'low' where ticket_id = 1",
                            ("acc_a",)),
    # acc_c's workspace (an event on 01-02) is mapped to acc_b: both accounts' older days change
    "workspace remap": ("update marts.account_xref set crm_account_id = 'acc_b' where source_id = 'ws_c'",
                        ("acc_b", "acc_c")),
}
HEALTH_TABLES = {"kpis.account_activity_daily": "account_id, day", "kpis.account_indicators_daily": "account_id, day",
                 "kpis.health_scores_daily": "account_id, day",
                 "kpis.health_score_changes": "account_id, day, window_days"}


@pytest.mark.parametrize("change", [
    OLD_INPUT_CHANGES["old ticket priority"],
    # the activity's remaps are cheap tests of their own (test_activity_window.py); through all three: slow
    pytest.param(OLD_INPUT_CHANGES["workspace remap"], marks=pytest.mark.slow),
], ids=OLD_INPUT_CHANGES.keys())
def test_a_nightly_after_an_old_input_changed_rebuilds_those_accounts_in_all_three_tables(wh, monkeypatch, change):
    # The activity, then the indicators and the scores rebuild every day of the accounts the change touched and
    # the window's days of everyone, and equal a full refresh. Before, the activity was rebuilt in full and the
    # indicators and scores followed ("fully rebuilt since"): every nightly on a real company rebuilt the year.
    monkeypatch.setenv(incremental.ENV_LOOKBACK_DAYS, "3")
    monkeypatch.setattr(incremental, "MAX_REBUILT_SHARE", 1.0)  # the tiny company: any share of its 3 accounts
    config = hs.load_current_config()
    build_window(wh, fixtures.ACTIVITY_MODEL, plan(wh, fixtures.ACTIVITY_MODEL, full_refresh=True))
    full_build(wh)
    before = {t: rows(wh, t, order=o) for t, o in HEALTH_TABLES.items()}
    sql, accounts = change
    wh.execute(sql)
    for model in (fixtures.ACTIVITY_MODEL, INDICATOR_MODEL):
        w = plan(wh, model)
        assert (w.mode, w.accounts) == ("incremental", accounts), (model.table, w.reason)
        assert build_window(wh, model, w)["accounts_rebuilt"] == len(accounts)
    stats = scoring.score_history(wh, config, chunk_rows=40)  # several ranges, the listed accounts' too
    assert (stats["mode"], stats["accounts_rebuilt"]) == ("incremental", len(accounts)), stats["reason"]
    assert f"{len(accounts)} rebuilt upstream" in stats["reason"]
    assert incremental.current(wh, scoring.SCORES_TABLE)["accounts_rebuilt"] == len(accounts)
    nightly = {t: rows(wh, t, order=o) for t, o in HEALTH_TABLES.items()}
    for table in ("kpis.account_activity_daily", "kpis.account_indicators_daily"):
        assert nightly[table] != before[table], f"{table}: the change must change older rows"
    build_window(wh, fixtures.ACTIVITY_MODEL, plan(wh, fixtures.ACTIVITY_MODEL, full_refresh=True))
    full_build(wh)
    for table, order in HEALTH_TABLES.items():
        same(nightly[table], rows(wh, table, order=order))


def snapshot(con, schema: str) -> None:
    """Copy every health table (and what the nightly builds from them: kpis.health_scores, the backtest) into
    ``schema``, as a build leaves them."""
    con.execute(f"create schema {schema}")
    con.execute(f"create table kpis.health_scores as {scoring.latest_sql(hs.load_current_config())}")
    write_frame(con, "kpis.health_backtest", build_backtest(con), {"as_of_day": "date"})
    for table in (*HEALTH_TABLES, "kpis.health_scores", "kpis.health_backtest"):
        con.execute(f"create table {schema}.{table.split('.')[1]} as select * from {table}")
    con.execute("drop table kpis.health_scores")
    con.execute("drop table kpis.health_backtest")


def differences(con, table: str, a: str, b: str) -> tuple[int, int]:
    """Rows of ``a``.table not in ``b``.table and the reverse (except all: every column, bit for bit)."""
    name = table.split(".")[1]
    count = "select count(*) from (select * from {}.{} except all select * from {}.{})"
    return (con.execute(count.format(a, name, b, name)).fetchall()[0][0],
            con.execute(count.format(b, name, a, name)).fetchall()[0][0])


# sub_a set to cancel on 01-10 (cancellation_scheduled from then on): a state in force on a 100-day history's
# first day (01-21), set before it
OLD_CANCELLATION = ("insert into marts.subscription_states values ('sub_a', 'cus_a', '2025-01-10 09:00:00+00', "
                    "'evt_0', 'active', true, null, null)")
# acc_a: an invoice due 01-25 and paid 02-10 (past due 01-26 .. 02-09), inside a 100-day history, before the window
SETTLED_INSIDE_HISTORY = ("insert into staging.stg_billing__invoices values ('in_8', 'cus_a', 'paid', 900, null, "
                          "'2025-01-25 10:00:00+00', '2025-02-10 10:00:00+00', null, null)")
# acc_a: on a 100-day history's first day (01-21) an invoice due 01-19 and paid 01-22 (past due 2 days) and the
# last day of an annual term ending 01-22 (renewal in 1 day): each is left out a day earlier
SETTLED_AND_ENDED_AFTER_THE_HISTORY_START = (
    "insert into staging.stg_billing__invoices values ('in_9', 'cus_a', 'paid', 900, null, "
    "'2025-01-19 10:00:00+00', '2025-01-22 10:00:00+00', null, null), ('in_10', 'cus_a', 'paid', 5000, null, "
    "'2024-01-22 10:00:00+00', '2024-01-22 10:00:00+00', null, null); "
    "insert into staging.stg_billing__invoice_lines values ('il_10', 'in_10', 'sub_a5', 'price_growth', false, "
    "'2024-01-22 00:00:00+00', '2025-01-22 00:00:00+00')")
# a product event of acc_a's workspace before the calendar's first day (2025-01-01): u9 active from 12-25
PRE_CALENDAR_EVENT = ("insert into staging.stg_product__events values ('pre1', 'track', 'u9', 'Signed In', 'ws_a', "
                      "'2024-12-25 10:00:00+00', date '2024-12-25')")


def acc_a(rows_: list[dict], day: dt.date, *columns: str) -> tuple:
    return next(tuple(r[c] for c in columns) for r in rows_ if r["account_id"] == "acc_a" and r["day"] == day)


@pytest.mark.parametrize("change, history, setup, expected", [
    # acc_a: its ticket of 01-03 .. 01-04, open urgent/high (kept only with every day)
    (OLD_INPUT_CHANGES["old ticket priority"], None, None, None),
    # acc_a rebuilt on a 100-day history: its first-reply median of 01-21 .. 03-01 holds ticket 1 (created 01-03),
    # its cancellation is scheduled from the state of 01-10 (the priority change itself changes no kept row)
    (OLD_INPUT_CHANGES["old ticket priority"], 100, OLD_CANCELLATION,
     (dt.date(2025, 1, 21), ("median_first_reply_minutes", "cancellation_scheduled"), (30.0, 1))),
    # ... and an invoice past due inside the history, settled before the window
    (OLD_INPUT_CHANGES["old ticket priority"], 100, SETTLED_INSIDE_HISTORY,
     (dt.date(2025, 2, 1), ("max_days_past_due",), (7,))),
    # ... and an invoice settled and a term ended the day after the history's first day
    (OLD_INPUT_CHANGES["old ticket priority"], 100, SETTLED_AND_ENDED_AFTER_THE_HISTORY_START,
     (dt.date(2025, 1, 21), ("max_days_past_due", "days_to_renewal"), (2, 1))),
    # ... and activity before the calendar: u9's 7-day spell from 12-25 ends on 01-01, its 30-day one on 01-24 (the
    # running sums carry what began before the calendar: they were -1 and 0 here)
    (OLD_INPUT_CHANGES["old ticket priority"], None, PRE_CALENDAR_EVENT,
     (dt.date(2025, 1, 2), ("active_users_7d", "active_users_30d"), (0, 1))),
    (OLD_INPUT_CHANGES["old ticket priority"], 119, PRE_CALENDAR_EVENT,
     (dt.date(2025, 1, 2), ("active_users_7d", "active_users_30d"), (0, 1))),
    # acc_b and acc_c: acc_c's product event of 01-02 (its 30-day actives reach 02-01, kept with 100 days)
    (OLD_INPUT_CHANGES["workspace remap"], None, None, None),
    (OLD_INPUT_CHANGES["workspace remap"], 100, None, None),
], ids=["old ticket priority", "old ticket priority, 100 days kept", "an invoice settled inside the history",
        "an invoice settled and a term ended on the history's second day",
        "activity before the calendar", "activity before the calendar, 119 days kept", "workspace remap",
        "workspace remap, 100 days kept"])
@pytest.mark.parametrize("share", [incremental.LISTED_IN_WINDOW_SHARE, 0.0], ids=["in the window's pass", "own pass"])
def test_the_accounts_rebuilt_on_every_day_are_built_in_the_windows_pass_when_few(wh_after, monkeypatch, change,
                                                                                   history, setup, expected, share):
    # The indicators' nightly built the listed accounts in a pass of their own, and each pass reads the tickets,
    # invoices and subscription states whole: 1.8-3.8 s on the large company for 9 accounts. With few listed
    # accounts (listed=window) the window's pass builds them too, every kept day, each account from its own first
    # day: the tickets, subscription states and activity read from it. Both ways equal a full build.
    monkeypatch.setenv(incremental.ENV_LOOKBACK_DAYS, "3")
    if history:
        monkeypatch.setenv(incremental.ENV_HISTORY_DAYS, str(history))
    monkeypatch.setattr(incremental, "MAX_REBUILT_SHARE", 1.0)  # the tiny company: any share of its 3 accounts
    monkeypatch.setattr(incremental, "LISTED_IN_WINDOW_SHARE", share)
    wh = wh_after(models_built_in_full, *([setup] if setup else []))  # built once for both passes
    before = rows(wh, INDICATOR_MODEL.table)
    sql, accounts = change
    wh.execute(sql)
    build_window(wh, fixtures.ACTIVITY_MODEL, plan(wh, fixtures.ACTIVITY_MODEL))
    w = plan(wh, INDICATOR_MODEL)
    assert (w.mode, w.accounts) == ("incremental", accounts), w.reason
    assert incremental.listed_in_window(wh, fixtures.spec(INDICATOR_MODEL), w) == (share > 0)
    stats = build_window(wh, INDICATOR_MODEL, w)
    assert stats["account_ranges"] == (1 if share else 2)
    listed = wh.execute("select count(*) from kpis.account_indicators_daily where account_id in "
                        "(select unnest(cast(? as varchar[])))", [list(accounts)]).fetchall()[0][0]
    assert stats["rows_of_rebuilt_accounts"] == listed > 0
    nightly = rows(wh, INDICATOR_MODEL.table)
    if expected:  # what the rebuilt days must read from before the history's first day (or the calendar's)
        day, columns, values = expected
        assert acc_a(nightly, day, *columns) == values
        assert min(r[c] for r in nightly for c in ("active_users_7d", "active_users_30d", "open_urgent_high")) >= 0
    else:
        assert nightly != before, "the change must change older rows, or the test proves nothing"
    assert incremental.current(wh, INDICATOR_MODEL.table)["listed"] is None
    build_window(wh, INDICATOR_MODEL, plan(wh, INDICATOR_MODEL, full_refresh=True))
    same(nightly, rows(wh, INDICATOR_MODEL.table))


@pytest.mark.parametrize("days_moved, history, change", [
    (1, 60, None),
    (3, 60, None),  # missed nights: one nightly moves the history's start by 3 days
    (1, 60, OLD_INPUT_CHANGES["old ticket priority"]),  # and rebuilds an account on every day
    (1, 40, None),  # the window starts inside the history's first 30 days
], ids=["one night", "three nights", "one night, an account rebuilt", "40 days"])
def test_a_nightly_that_moves_a_limited_history_equals_a_full_build(wh, monkeypatch, days_moved, history, change):
    # With a limited history, each nightly moves the history's first day forward and deletes the days before it.
    # A full build of that history has no score 7 or 30 days before its first 7 or 30 days: their deltas are
    # null and they have no explained changes. The nightly's rows of those days outside its window were scored
    # when the earlier days still existed, and kept their deltas and changes: a number depending on how the
    # warehouse got there. Every table the nightly writes must equal a full build of the same history.
    monkeypatch.setenv(incremental.ENV_LOOKBACK_DAYS, "3")
    monkeypatch.setenv(incremental.ENV_HISTORY_DAYS, str(history))
    monkeypatch.setattr(incremental, "MAX_REBUILT_SHARE", 1.0)  # the tiny company: any share of its 3 accounts
    config = hs.load_current_config()
    # day D: the calendar ends days_moved days before AS_OF; a full build of the history ending on D
    wh.execute("delete from marts.dim_day where day > ?", [AS_OF - dt.timedelta(days=days_moved)])
    build_window(wh, fixtures.ACTIVITY_MODEL, plan(wh, fixtures.ACTIVITY_MODEL, full_refresh=True))
    full_build(wh)
    first = wh.execute("select min(day) from kpis.health_scores_daily").fetchall()[0][0]
    assert first == AS_OF - dt.timedelta(days=history - 1 + days_moved)
    # the nightly of AS_OF: the history's first day moves by days_moved days
    wh.executemany("insert into marts.dim_day values (?)",
                   [(AS_OF - dt.timedelta(days=n),) for n in range(days_moved)])
    if change:
        wh.execute(change[0])
    for model in (fixtures.ACTIVITY_MODEL, INDICATOR_MODEL):
        w = plan(wh, model)
        assert w.mode == "incremental" and w.accounts == (change[1] if change else ()), (model.table, w.reason)
        build_window(wh, model, w)
    stats = scoring.score_history(wh, config, chunk_rows=40)
    assert stats["mode"] == "incremental", stats["reason"]
    assert stats["history_start"] == first + dt.timedelta(days=days_moved) > first
    # 60 days: the history's first 30 days are outside the window (the activity's last built day is its last day
    # with activity, 04-09 here: its nightly and so the indicators' and the scores' start from 04-07); 40 days:
    # the window starts on the history's 17th day
    edge = stats["history_start"] + dt.timedelta(days=30)
    assert stats["start_day"] >= edge if history == 60 else stats["history_start"] < stats["start_day"] < edge
    snapshot(wh, "by_nightly")
    build_window(wh, fixtures.ACTIVITY_MODEL, plan(wh, fixtures.ACTIVITY_MODEL, full_refresh=True))
    full_build(wh)
    snapshot(wh, "by_full")
    start = stats["history_start"]
    # the case this test exists for: the full build has no change (and no delta) reaching before the history
    assert wh.execute("select count(*) from by_full.health_scores_daily where day = ? and delta_30d is null",
                      [start + dt.timedelta(days=29)]).fetchall()[0][0] > 0
    assert wh.execute("select count(*) from by_full.health_scores_daily where day = ? and delta_30d is not null",
                      [start + dt.timedelta(days=30)]).fetchall()[0][0] > 0
    diff = {t: differences(wh, t, "by_nightly", "by_full")
            for t in (*HEALTH_TABLES, "kpis.health_scores", "kpis.health_backtest")}
    assert diff == {t: (0, 0) for t in diff}, diff
    for table in HEALTH_TABLES:
        assert wh.execute(f"select count(*) from by_full.{table.split('.')[1]}").fetchall()[0][0] > 0, table


def test_scores_catch_up_with_every_unscored_indicator_build(wh_after):
    wh = wh_after(full_build)
    config = hs.load_current_config()
    # night 1: a full indicator build the scores never saw; night 2: incremental
    build_window(wh, INDICATOR_MODEL, plan(wh, INDICATOR_MODEL, full_refresh=True))
    build_window(wh, INDICATOR_MODEL, plan(wh, INDICATOR_MODEL))
    w = scoring.plan_scoring(wh, config)
    assert w.mode == "full" and "fully rebuilt" in w.reason
    scoring.score_history(wh, config)
    assert caught_up(wh)
    # two incremental nights unscored: scoring starts at the earlier window
    build_window(wh, INDICATOR_MODEL, window(dt.date(2025, 4, 10), mode="incremental"))
    build_window(wh, INDICATOR_MODEL, window(dt.date(2025, 4, 25), mode="incremental"))
    w = scoring.plan_scoring(wh, config)
    assert (w.mode, w.start_day) == ("incremental", dt.date(2025, 4, 10))


def test_a_config_or_sql_change_forces_a_full_rebuild(wh_after):
    config = hs.load_current_config()
    wh = wh_after(full_build)
    other = dataclasses.replace(fixtures.spec(INDICATOR_MODEL), sql_version="another sql version")
    w = incremental.plan(wh, other)
    assert w.mode == "full" and "SQL of kpis.account_indicators_daily changed" in w.reason
    build_window(wh, INDICATOR_MODEL, window(dt.date(2025, 4, 25), mode="incremental"))
    assert scoring.plan_scoring(wh, config).mode == "incremental"
    w = scoring.plan_scoring(wh, dataclasses.replace(config, version="another config"))
    assert w.mode == "full" and w.start_day is None and "SQL of kpis.health_scores_daily changed" in w.reason


SCORE_TYPES = [
    ("day", "DATE"), ("account_id", "VARCHAR"), ("is_active", "BOOLEAN"), ("arr", "DOUBLE"), ("score", "DOUBLE"),
    ("band", "VARCHAR"),
    *[(f"{p}{c}{s}", "DOUBLE") for c in ("usage", "adoption", "support", "sentiment", "billing")
      for p, s in (("", "_score"), ("contrib_", ""))],
    ("components_present", "VARCHAR"), ("components_present_count", "INTEGER"), ("config_version", "VARCHAR"),
    ("delta_7d", "DOUBLE"), ("delta_30d", "DOUBLE"),
]
CHANGE_TYPES = [
    ("day", "DATE"), ("account_id", "VARCHAR"), ("window_days", "INTEGER"), ("score_before", "DOUBLE"),
    ("score", "DOUBLE"), ("delta", "DOUBLE"), ("band", "VARCHAR"),
    *[(f"{c}_delta", "DOUBLE") for c in ("usage", "adoption", "support", "sentiment", "billing")],
    ("reason", "VARCHAR"), ("config_version", "VARCHAR"),
]


def types(con, table):
    return [tuple(r[:2]) for r in con.execute(f"describe {table}").fetchall()]


@pytest.mark.parametrize("min_delta", [scoring.CHANGE_MIN_DELTA, 1000.0])
def test_the_tables_are_typed_even_without_a_single_change(wh, monkeypatch, min_delta):
    """The column names, order and types of both tables are fixed by the SQL, not by the data: a first
    account range without changes, or no change at all, still types every column."""
    monkeypatch.setattr(scoring, "CHANGE_MIN_DELTA", min_delta)
    build_window(wh, INDICATOR_MODEL, plan(wh, INDICATOR_MODEL, full_refresh=True))
    stats = scoring.score_history(wh, hs.load_current_config(), chunk_rows=10)
    assert stats["chunks"] - stats["tail_chunks"] == 3 and stats["tail_chunks"] > 0
    assert types(wh, "kpis.health_scores_daily") == SCORE_TYPES
    assert types(wh, "kpis.health_score_changes") == CHANGE_TYPES
    changes = wh.execute("select count(*) from kpis.health_score_changes").fetchall()[0][0]
    assert (changes > 0) == (min_delta < 100)


@pytest.mark.parametrize("range_rows, expected", [(100, 2), (160, 1)])
def test_a_nightly_window_of_a_memory_sized_model_is_cut_by_the_days_it_reads(wh, monkeypatch, range_rows, expected):
    # the indicators read far more than the days they write (89 days of trailing windows, the carry of every
    # earlier day): cut by the window's few days, a nightly put every account in one range, which ran out of
    # 8 GB + 4 GB of spill on the large company. Sized by memory (rows_per_gb), a nightly range holds the
    # account-days from reads_days before the window: 97, 61 and 97 here, where a full build's are 120, 61, 120
    # and the 8 days written 8 each
    full = rows(wh, "kpis.account_indicators_daily")
    spec = INDICATOR_MODEL.incremental_spec()
    assert spec.reads_days == 89
    # the tag says what the SQL reads: its grid starts reads_days before the window (a change to one alone would
    # size the nightly ranges for days the statement does not read)
    assert re.findall(r"max\(start_day\) - interval (\d+) day as date\) as reads_from", INDICATOR_MODEL.sql) == [str(spec.reads_days)]
    # a nightly window's ranges hold window_rows_per_gb account-days read per GB (the 89 days are read as sparse
    # activity rows, not a grid); a full build's and the rebuilt accounts' rows_per_gb account-days written
    assert spec.window_rows_per_gb > spec.rows_per_gb
    monkeypatch.setattr(incremental, "memory_limit_gb",
                        lambda con: (range_rows + 0.5) / INDICATOR_MODEL.incremental["window_rows_per_gb"])
    start = AS_OF - dt.timedelta(days=7)
    reach = start - dt.timedelta(days=89)
    cut = {name: len(incremental.account_ranges(wh, window(day, mode="incremental"), chunk_rows=range_rows))
           for name, day in (("written", start), ("read", reach), ("full build", None))}
    assert cut == {"written": 1, "read": expected, "full build": 2}
    stats = build_window(wh, INDICATOR_MODEL, window(start, mode="incremental"))
    assert stats["rows_per_range"] == range_rows and stats["account_ranges"] == expected
    same(rows(wh, "kpis.account_indicators_daily"), full)


def _window_rows(tree) -> list[int]:
    """The rows of every WINDOW operator in a DuckDB JSON profile (whatever the version calls its rows)."""
    return [fixtures.operator_rows(n) for n in fixtures.profile_nodes(tree) if fixtures.operator_name(n) == "WINDOW"]


def test_a_nightly_window_computes_the_trailing_sums_over_its_output_days_only(wh, tmp_path):
    # The trailing sums (30 and 90 days, the prior 30 days, the running sums) are running sums of deltas
    # (+ on the day a value enters a window, - when it leaves it) over the output days alone. They were framed
    # sums over a dense grid from 89 days before the window: 97 rows per account for 8 days written, which bound
    # the large company's nightly (its indicators took 24.1 s of the 100.5 s of a 365-day history).
    full = rows(wh, "kpis.account_indicators_daily")
    start = AS_OF - dt.timedelta(days=7)
    wh.execute("pragma enable_profiling = 'json'")
    wh.execute(f"pragma profiling_output = '{tmp_path / 'profile.json'}'")
    wh.execute("set TimeZone = 'UTC'")
    incremental.record(wh, INDICATOR_MODEL.incremental_spec(), window(start, mode="incremental"))
    incremental.set_listed_pass(wh, INDICATOR_MODEL.table, start, None)
    written = wh.execute(f"select count(*) from ({INDICATOR_MODEL.sql})").fetchall()[0][0]
    wh.execute("pragma disable_profiling")
    tree = json.loads((tmp_path / "profile.json").read_text())
    windows = _window_rows(tree)
    assert written == 24 and windows, windows  # 3 accounts x 8 days
    assert max(windows) <= written, windows
    stats = build_window(wh, INDICATOR_MODEL, window(start, mode="incremental"))
    assert stats["rows_written"] == written
    same(rows(wh, "kpis.account_indicators_daily"), full)


def test_a_nightly_window_holds_more_account_days_read_per_gb_than_a_full_build(wh, monkeypatch):
    # One nightly range of the large company's 100,000 accounts (9.7 M account-days read) peaked at 5.3 GB under a
    # 7.5 GB limit; sized by rows_per_gb (a full build's 250,000 written per GB) it ran in 7 ranges, each reading
    # the activity's whole history for its carry (BENCHMARKS.md "Health nightly: one read of the inputs' history").
    # The accounts rebuilt on every day are still cut as a full build
    s = INDICATOR_MODEL.incremental_spec()
    monkeypatch.setattr(incremental, "memory_limit_gb", lambda con: 100.5 / s.rows_per_gb)
    start = AS_OF - dt.timedelta(days=7)
    nightly, per_range = incremental.build_ranges(wh, s, window(start, mode="incremental"))
    assert per_range == int(100.5 / s.rows_per_gb * s.window_rows_per_gb) and len(nightly) == 1
    listed = dataclasses.replace(window(start, mode="incremental"), start_day=dt.date(2025, 1, 1))
    assert incremental.build_ranges(wh, s, listed, only=["acc_a", "acc_b", "acc_c"])[1] == 100
    assert incremental.build_ranges(wh, s, window(None, mode="full"))[1] == 100
    # a catch-up window after a missed night writes more days than a nightly's lookback + 1 (a full grid per
    # account): cut as a full build, not by the nightly's rate (a month's catch-up in one range would pass 7.5 GB on the large company)
    catch_up = AS_OF - dt.timedelta(days=s.lookback() + 1)
    assert incremental.build_ranges(wh, s, window(catch_up, mode="incremental"))[1] == 100


class _Warehouse:
    """a duckdb resource that hands out the test's open connection"""

    def __init__(self, con):
        self.con = con

    @contextlib.contextmanager
    def get_connection(self):
        yield self.con


def unique_check(con):
    """The scores' unique-key check evaluated on ``con``: (passed, which rows it looked at)."""
    check = next(c for c in health_checks.health_checks if next(iter(c.check_specs)).name == health_checks.UNIQUE_DAY)
    with lib_checks.CheckInputs({"duckdb": _Warehouse(con)}) as inputs:
        result = lib_checks._evaluate_of(check)(inputs)
    return result.passed, result.metadata["rows_checked"].value


DUPLICATE = "insert into kpis.health_scores_daily select * from kpis.health_scores_daily where account_id = 'acc_a' and day = ?"


def test_the_unique_key_check_looks_at_the_rows_written_since_it_last_passed(wh_after, monkeypatch):
    """Every key after a full build or a write by another path; after a nightly, the keys it wrote; a duplicate
    among them fails the check, and keeps failing it after the next nightly (a failed check marks nothing)."""
    monkeypatch.setenv(incremental.ENV_LOOKBACK_DAYS, "3")
    config = hs.load_current_config()
    wh = wh_after(full_build)
    assert unique_check(wh) == (True, "every row (no passing check recorded)")
    assert unique_check(wh) == (True, "none: nothing written since the last passing check")
    nightly_setup(wh, dt.date(2025, 4, 20))  # rows deleted outside a build
    assert unique_check(wh) == (True, "every row (the table's rows changed since its last build)")
    build_window(wh, INDICATOR_MODEL, plan(wh, INDICATOR_MODEL))
    assert scoring.score_history(wh, config)["mode"] == "incremental"
    assert unique_check(wh) == (True, "the rows written since the last passing check: days from 2025-04-18")

    # a nightly that writes one key twice, on the first day of its window
    write = scoring._write

    def write_twice(con, table, sql, create):
        n = write(con, table, sql, create)
        if table == scoring.SCORES_TABLE:
            con.execute(DUPLICATE, [dt.date(2025, 4, 18)])
        return n

    nightly_setup(wh, dt.date(2025, 4, 20))
    assert unique_check(wh)[0]  # every row, after the deletes
    build_window(wh, INDICATOR_MODEL, plan(wh, INDICATOR_MODEL))
    monkeypatch.setattr(scoring, "_write", write_twice)
    assert scoring.score_history(wh, config)["start_day"] == dt.date(2025, 4, 18)
    monkeypatch.setattr(scoring, "_write", write)
    assert unique_check(wh) == (False, "the rows written since the last passing check: days from 2025-04-18")
    # the next nightly writes from 04-28 on: the duplicate of 04-18 is still looked at, and still fails
    build_window(wh, INDICATOR_MODEL, plan(wh, INDICATOR_MODEL))
    assert scoring.score_history(wh, config)["start_day"] == dt.date(2025, 4, 28)
    assert unique_check(wh) == (False, "the rows written since the last passing check: days from 2025-04-18")
    # fixed by hand (one copy left): every key is looked at, and passes; a duplicate written by another path on
    # an old day changes the row count: every key again, and it fails
    day = dt.date(2025, 4, 18)
    wh.execute("create temp table one as select * from kpis.health_scores_daily where account_id = 'acc_a' and day = ? "
               "limit 1", [day])
    wh.execute("delete from kpis.health_scores_daily where account_id = 'acc_a' and day = ?", [day])
    wh.execute("insert into kpis.health_scores_daily select * from one")
    assert unique_check(wh) == (True, "every row (the table's rows changed since its last build)")
    wh.execute(DUPLICATE, [dt.date(2025, 2, 1)])
    assert unique_check(wh) == (False, "every row (the table's rows changed since its last build)")


def test_the_unique_key_check_looks_at_every_row_again_after_a_week_of_builds(wh_after, monkeypatch):
    """A write outside the builds that keeps the row count (a row deleted, a duplicate inserted by hand on an old
    day) is outside the rows written; the check looks at every row again once EVERY_ROW_AFTER_BUILDS builds have
    passed since it last did, and finds it then."""
    monkeypatch.setenv(incremental.ENV_LOOKBACK_DAYS, "3")
    monkeypatch.setattr(incremental, "EVERY_ROW_AFTER_BUILDS", 2)
    config = hs.load_current_config()
    wh = wh_after(full_build)
    nightly_setup(wh, dt.date(2025, 4, 20))
    assert unique_check(wh)[0]  # every row
    build_window(wh, INDICATOR_MODEL, plan(wh, INDICATOR_MODEL))
    assert scoring.score_history(wh, config)["mode"] == "incremental"
    assert unique_check(wh) == (True, "the rows written since the last passing check: days from 2025-04-18")
    before = wh.execute("select count(*) from kpis.health_scores_daily").fetchone()[0]
    wh.execute("delete from kpis.health_scores_daily where day = date '2025-02-01' and account_id = "
               "(select min(account_id) from kpis.health_scores_daily where day = date '2025-02-01' and "
               "account_id <> 'acc_a')")
    wh.execute(DUPLICATE, [dt.date(2025, 2, 1)])
    assert wh.execute("select count(*) from kpis.health_scores_daily").fetchone()[0] == before
    assert unique_check(wh) == (True, "none: nothing written since the last passing check")  # the count kept
    build_window(wh, INDICATOR_MODEL, plan(wh, INDICATOR_MODEL))
    assert scoring.score_history(wh, config)["mode"] == "incremental"
    assert unique_check(wh) == (False, "every row (its weekly look: 2 or more builds since it last looked at all)")


def changes_from_the_stored_scores(con, config) -> list[dict]:
    """What health_score_changes holds, computed from the stored scores alone (independent of how the scoring
    wrote it): each stored row that moved at least CHANGE_MIN_DELTA over a window, paired with the stored row of
    the window's earlier day, explained by explain_sql."""
    comps = ", ".join(f"n.{c}_score, p.{c}_score as {c}_score_before" for c in hs.COMPONENTS)
    pairs = " union all ".join(
        f"select n.day, n.account_id, {w} as window_days, n.band, n.config_version, n.score, p.score as score_before, "
        f"{comps} from kpis.health_scores_daily as n join kpis.health_scores_daily as p "
        f"on p.account_id = n.account_id and p.day = n.day - {w} "
        f"where abs(n.delta_{w}d) >= {scoring.sql_double(scoring.CHANGE_MIN_DELTA)}"
        for w in scoring.CHANGE_WINDOWS)
    cur = con.execute(f"select * from ({scoring.explain_sql(config, f'({pairs})', None)}) "
                      "order by account_id, day, window_days")
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def test_the_changes_explain_the_stored_scores_exactly(wh_after, monkeypatch):
    """The scoring writes the explained changes from the rows it scores, with the earlier day's scores it joined
    (new or stored, component scores rounded as stored): they are exactly the changes the stored scores give,
    after a full build in ranges, a nightly in ranges (its 7-day pairs both new, its 30-day pairs reaching the
    stored days before the window) and a nightly that rebuilds an account on every day, bit for bit (not within
    a tolerance)."""
    monkeypatch.setenv(incremental.ENV_LOOKBACK_DAYS, "3")
    config = hs.load_current_config()
    wh = wh_after(models_built_in_full)
    assert scoring.score_history(wh, config, chunk_rows=10)["chunks"] > 1
    stored = changes_from_the_stored_scores(wh, config)
    assert stored and {r["window_days"] for r in stored} == set(scoring.CHANGE_WINDOWS)
    assert rows(wh, "kpis.health_score_changes", order="account_id, day, window_days") == stored
    nightly_setup(wh, dt.date(2025, 4, 20))
    build_window(wh, INDICATOR_MODEL, plan(wh, INDICATOR_MODEL))
    stats = scoring.score_history(wh, config, chunk_rows=10)
    assert stats["mode"] == "incremental" and stats["chunks"] > 1
    written = wh.execute("select count(*) from kpis.health_score_changes where day >= ?", [stats["start_day"]])
    assert written.fetchall()[0][0] > 0
    assert rows(wh, "kpis.health_score_changes", order="account_id, day, window_days") == \
        changes_from_the_stored_scores(wh, config)
    # a nightly that rebuilds an account on every day (an old ticket's priority): that account is scored with its
    # earlier scores in one table, from which both tables are written
    monkeypatch.setattr(incremental, "MAX_REBUILT_SHARE", 1.0)
    sql, accounts = OLD_INPUT_CHANGES["old ticket priority"]
    wh.execute(sql)
    for model in (fixtures.ACTIVITY_MODEL, INDICATOR_MODEL):
        w = plan(wh, model)
        assert (w.mode, w.accounts) == ("incremental", accounts), (model.table, w.reason)
        build_window(wh, model, w)
    stats = scoring.score_history(wh, config, chunk_rows=10)
    assert (stats["mode"], stats["accounts_rebuilt"]) == ("incremental", 1), stats["reason"]
    listed = wh.execute("select count(*) from kpis.health_score_changes where account_id = ? and day < ?",
                        [accounts[0], stats["start_day"]]).fetchall()[0][0]
    assert listed > 0, "the rebuilt account must have explained changes before the window"
    assert rows(wh, "kpis.health_score_changes", order="account_id, day, window_days") == \
        changes_from_the_stored_scores(wh, config)



def month_order(row: tuple, rewritten_from: dt.date, newest_first: bool = False) -> tuple:
    account_id, day = row
    month = day.year * 12 + day.month
    return (day >= rewritten_from, -month if newest_first else month, account_id, day)


def month_order_runs(con, table: str, rewritten_from: dt.date, where: str = "true",
                     newest_first: bool = False) -> list[list[tuple]]:
    """The (account_id, day) rows of ``table`` (those matching ``where``) in the table's order (rowid), cut
    wherever that order breaks month_order: one run per insert written in that order."""
    stored = con.execute(f"select account_id, day from {table} where {where} order by rowid").fetchall()
    runs = [[stored[0]]]
    for previous, row in itertools.pairwise(stored):
        if month_order(row, rewritten_from, newest_first) < month_order(previous, rewritten_from, newest_first):
            runs.append([])
        runs[-1].append(row)
    return runs


@pytest.mark.parametrize("chunk_rows", [None, 150])
def test_a_full_build_writes_each_account_range_month_by_month(wh_after, chunk_rows, monkeypatch):
    """A full build writes each account range's scores and explained changes ordered by month, newest first, then
    account and day (scoring.by_month), so that the nightly's filters on day skip the other months' row groups and
    its delete of the history's first day takes each range's last rows; and the days the next nightly deletes and
    writes again (from its last day minus lookback - 1) after every range's other days, as a nightly writes its
    window, so that those deletes take the table's last rows. Neither delete then leaves row groups next to each
    other that DuckDB's vacuum merges (BENCHMARKS.md, session 35). The rows are those of a full build that scores
    every day in its ranges. In the table's order (rowid), each range is one run of rows in that order, the ranges
    one after another, then those days."""
    config = hs.load_current_config()
    wh = wh_after(full_build)
    with monkeypatch.context() as m:
        # the reference: every day scored by the ranges, as before session 35 (no day for the next nightly known)
        m.setattr(scoring.incremental, "next_fingerprint_day", lambda spec, as_of: None)
        assert scoring.score_history(wh, config, full_refresh=True, chunk_rows=chunk_rows)["tail_chunks"] == 0
    reference = rows(wh, "kpis.health_scores_daily")
    changes = rows(wh, "kpis.health_score_changes", order="account_id, day, window_days")
    stats = scoring.score_history(wh, config, full_refresh=True, chunk_rows=chunk_rows)
    ranges = stats["chunks"] - stats["tail_chunks"]
    assert stats["mode"] == "full" and stats["tail_chunks"] >= 1 and (ranges == 1) == (chunk_rows is None)
    last = wh.execute("select max(day) from kpis.health_scores_daily").fetchall()[0][0]
    rewritten_from = incremental.next_fingerprint_day(scoring.spec(config), last)
    assert scoring.plan_scoring(wh, config).start_day == rewritten_from, "the next nightly starts on that day"
    assert wh.execute("select count(distinct day) from kpis.health_scores_daily where day < ? and "
                      "date_trunc('month', day) = date_trunc('month', ?::date)", [rewritten_from, last]).fetchall()[0][0] > 0, \
        "the fixture's last month must have days before the next nightly's window"
    # the explained changes too: the next nightly's deletes (its window, the history's first days) then leave whole
    # row groups of health_score_changes, not a few rows of each (BENCHMARKS.md, session 33)
    for table in ("kpis.health_scores_daily", "kpis.health_score_changes"):
        last_before, first_from = wh.execute(
            f"select max(rowid) filter (where day < ?), min(rowid) filter (where day >= ?) from {table}",
            [rewritten_from, rewritten_from]).fetchall()[0]
        assert first_from is not None and last_before < first_from, f"{table}: the next nightly's days come last"
        runs = month_order_runs(wh, table, rewritten_from, f"day < {scoring.sql_date(rewritten_from)}", newest_first=True)
        assert len(runs) == ranges, table
        accounts = [{a for a, _ in run} for run in runs]
        assert all(max(a) < min(b) for a, b in itertools.pairwise(accounts)), f"{table}: one run per account range"
        assert any(len(a) > 1 for a in accounts)
        assert any(run != sorted(run) for run in runs), "the fixture must tell the month order from the account order"
    same(rows(wh, "kpis.health_scores_daily"), reference)
    same(rows(wh, "kpis.health_score_changes", order="account_id, day, window_days"), changes)


@pytest.mark.parametrize("chunk_rows", [None, 150])
def test_a_full_indicator_build_writes_each_account_range_month_by_month(wh, chunk_rows):
    """The indicators' full build is written as the scores' is (scoring.by_month): each account range's rows by
    month, then account and day, and the days the next nightly deletes and writes again (from the fingerprint day
    the build records) after the range's other days. The first nightly after a full build then deletes whole row
    groups at each range's end instead of a few rows of every row group (BENCHMARKS.md, session 34); the rows are
    the same."""
    reference = rows(wh, "kpis.account_indicators_daily")
    stats = build_window(wh, INDICATOR_MODEL, plan(wh, INDICATOR_MODEL, full_refresh=True), chunk_rows=chunk_rows)
    assert stats["mode"] == "full" and (stats["account_ranges"] == 1) == (chunk_rows is None)
    rewritten_from = incremental.next_fingerprint_day(fixtures.spec(INDICATOR_MODEL), AS_OF)
    assert incremental.current(wh, INDICATOR_MODEL.table)["fingerprint_day"] == rewritten_from
    assert plan(wh, INDICATOR_MODEL).start_day == rewritten_from, "the next nightly starts on that day"
    assert rewritten_from.month == AS_OF.month and rewritten_from.day > 1, \
        "the fixture's last month must have days before the next nightly's window"
    runs = month_order_runs(wh, "kpis.account_indicators_daily", rewritten_from)
    assert len(runs) == stats["account_ranges"]
    accounts = [{a for a, _ in run} for run in runs]
    assert all(max(a) < min(b) for a, b in itertools.pairwise(accounts)), "one run per account range"
    assert any(len(a) > 1 for a in accounts)
    assert any(run != sorted(run) for run in runs), "the fixture must tell the month order from the account order"
    days = [day for run in runs for _, day in run]
    assert any(day >= rewritten_from for day in days) and any(day < rewritten_from for day in days)
    same(rows(wh, "kpis.account_indicators_daily"), reference)


def test_the_indicators_start_where_a_longer_activity_window_did(wh, monkeypatch):
    # The indicators' fingerprint does not hash the activity's rows: a change to them reaches the indicators only
    # through the activity's build records. Here the activity's nightly window (10 days) reaches further back than
    # the indicators' own (3 days), and a late event on a day between the two starts changes activity rows there
    # without the activity's fingerprint listing any account (the day is inside its window). The indicators'
    # window must start where the activity's did, and their rows equal a full build.
    lookbacks = {fixtures.ACTIVITY_MODEL.table: 10, INDICATOR_MODEL.table: 3}
    spec = fixtures.spec
    monkeypatch.setattr(fixtures, "spec", lambda model: dataclasses.replace(
        spec(model), lookback_days=lookbacks[model.table]))
    monkeypatch.delenv(incremental.ENV_LOOKBACK_DAYS, raising=False)
    build_window(wh, fixtures.ACTIVITY_MODEL, plan(wh, fixtures.ACTIVITY_MODEL, full_refresh=True))
    build_window(wh, INDICATOR_MODEL, plan(wh, INDICATOR_MODEL, full_refresh=True))
    before = rows(wh, INDICATOR_MODEL.table)
    # the activity's last built day is its last day with activity (04-09 in the fixture): its window from 03-31;
    # its fingerprint covers the days before 04-21 (as of 04-30, 10 days): 04-23 lists no account
    wh.execute("insert into staging.stg_product__events values ('late_w', 'track', 'ua', 'Signed In', 'ws_a', "
               "'2025-04-23 10:00:00+00', '2025-04-30')")
    activity = plan(wh, fixtures.ACTIVITY_MODEL)
    assert (activity.mode, activity.start_day, activity.accounts) == ("incremental", dt.date(2025, 3, 31), ()), \
        activity.reason
    build_window(wh, fixtures.ACTIVITY_MODEL, activity)
    w = plan(wh, INDICATOR_MODEL)
    # their own window would start on 04-28 (as of 04-30, 3 days)
    assert (w.mode, w.start_day, w.accounts) == ("incremental", activity.start_day, ()), w.reason
    build_window(wh, INDICATOR_MODEL, w)
    nightly = rows(wh, INDICATOR_MODEL.table)
    assert nightly != before, "the late event must change the indicators of the days before their own window"
    build_window(wh, INDICATOR_MODEL, plan(wh, INDICATOR_MODEL, full_refresh=True))
    same(nightly, rows(wh, INDICATOR_MODEL.table))


def test_the_accounts_rebuilt_on_every_day_are_scored_from_their_own_indicator_rows(wh_after, monkeypatch, tmp_path):
    """The pass of the accounts a nightly rescores on every day reads their indicator rows by row id: the scan of
    every indicator column emits their rows only. With the list as a filter of that scan, DuckDB used it only to
    skip row groups (more than one account: an optional IN filter), and the scan emitted every row of the row
    groups it read: on the large company 14.3 M rows of 128 row groups for 9 accounts' 3,012 (BENCHMARKS.md,
    session 22). The rows are a full build's."""
    config = hs.load_current_config()
    wh = wh_after(activity_and_full_build)
    full = {t: rows(wh, t, order=o) for t, o in HEALTH_TABLES.items() if "health" in t}
    listed = ("acc_a", "acc_c")
    start = AS_OF - dt.timedelta(days=3)
    nightly = incremental.BuildWindow("incremental", start, None, AS_OF, scoring.spec(config).sql_version, "test",
                                      listed)
    monkeypatch.setattr(scoring, "plan_scoring", lambda con, config, full_refresh=False: nightly)
    profile = tmp_path / "profile.json"
    emitted = []

    class Profiled:
        """Profiles the listed pass's scoring statement and keeps the rows its indicator scans emitted."""

        def __init__(self, con):
            self._con = con

        def execute(self, sql, *args):
            if f"{scoring.SCORED} as" not in sql:
                return self._con.execute(sql, *args)
            self._con.execute("pragma enable_profiling = 'json'")
            self._con.execute(f"pragma profiling_output = '{profile}'")
            self._con.execute(sql, *args)
            self._con.execute("pragma disable_profiling")
            for n in fixtures.profile_nodes(json.loads(profile.read_text())):
                extra = n.get("extra_info")
                if ("SCAN" in fixtures.operator_name(n) and fixtures.scanned_table(n).endswith(".account_indicators_daily")
                        and isinstance(extra, dict) and "csat_90d" in extra.get("Projections", "")):
                    emitted.append(fixtures.operator_rows(n))
            return self._con

        def __getattr__(self, name):
            return getattr(self._con, name)

    stats = scoring.score_history(Profiled(wh), config)
    assert (stats["mode"], stats["accounts_rebuilt"]) == ("incremental", 2)
    own = wh.execute("select count(*) from kpis.account_indicators_daily where account_id in ?",
                     [list(listed)]).fetchall()[0][0]
    others = wh.execute("select count(*) from kpis.account_indicators_daily where account_id not in ?",
                        [list(listed)]).fetchall()[0][0]
    assert own == stats["rows_of_rebuilt_accounts"] and others > 0
    assert emitted == [own], (emitted, own, others)
    for table, expected in full.items():
        same(rows(wh, table, order=HEALTH_TABLES[table]), expected)


def kept_carry(con) -> list[tuple]:
    return sorted(con.execute(f"select * from {INDICATOR_CARRY.table}").fetchall())


def summed_carry(con, day: dt.date) -> list[tuple]:
    """The carry through ``day`` summed from every activity row (what a build keeps must equal it)."""
    return sorted(con.execute(INDICATOR_CARRY.totals(INDICATOR_CARRY.source, incremental.sql_date(day))).fetchall())


def test_each_nightly_reads_the_carry_the_build_before_kept_and_keeps_the_next_one(wh, monkeypatch):
    # The indicators' running sums start from every activity delta before the first day the window reads: summed
    # from the activity's whole history, that was most of the large company's nightly fixed cost. Each build now
    # keeps those sums per account, through the next nightly's first read day, and the nightly rolls them forward.
    # Three nights, one of them with a late event inside the lookback and one rebuilding an account on every day:
    # every kept carry equals the sums of every activity row, and the nightlies equal a full build.
    monkeypatch.setenv(incremental.ENV_LOOKBACK_DAYS, "3")
    monkeypatch.setattr(incremental, "MAX_REBUILT_SHARE", 1.0)  # the tiny company: any share of its 3 accounts
    wh.execute("delete from marts.dim_day where day > ?", [AS_OF - dt.timedelta(days=3)])
    # a product event on every as-of day: the activity's window starts where the indicators' does (a company whose
    # activity ended earlier starts both windows earlier, and the carry is summed again: the other tests)
    today = ("insert into staging.stg_product__events values ('d{0}', 'track', 'ub', 'Signed In', 'ws_b', "
             "timestamp '{0} 09:00:00+00', date '{0}')")
    wh.execute(today.format(AS_OF - dt.timedelta(days=3)))
    # a user of acc_a's workspace first active on each day the nights roll the carry over (01-26 .. 01-29), and
    # u9's spell before the calendar, which acc_a's carry holds when it is summed again on night 3
    for n, day in enumerate(("2025-01-26", "2025-01-27", "2025-01-28", "2025-01-29")):
        wh.execute(f"insert into staging.stg_product__events values ('r{n}', 'track', 'ur{n}', 'Signed In', 'ws_a', "
                   f"timestamp '{day} 08:00:00+00', date '{day}')")
    wh.execute(PRE_CALENDAR_EVENT)
    # acc_d: product use from 02-20, after the carry's day, subscribed from 04-20. Its prior 30 days are complete
    # from 04-20 on since its grid starts at its first activity, which its carry does not hold (the windows' days do)
    wh.execute("insert into marts.account_xref values ('product', 'ws_d', 'acc_d')")
    wh.execute("insert into marts.accounts values ('acc_d', 'acc_d', '2025-02-01 00:00:00+00')")
    wh.execute("insert into marts.subscription_periods values ('sub_d', 'acc_d', '2025-04-20', null, 'starter', 1, "
               "false, 50)")
    wh.execute("insert into marts.mrr_daily_changes values ('acc_d', '2025-04-20', 50, 0, null)")
    wh.execute("insert into staging.stg_product__events values ('e_d', 'track', 'ud', 'Signed In', 'ws_d', "
               "timestamp '2025-02-20 08:00:00+00', date '2025-02-20')")
    build_window(wh, fixtures.ACTIVITY_MODEL, plan(wh, fixtures.ACTIVITY_MODEL, full_refresh=True))
    stats = build_window(wh, INDICATOR_MODEL, plan(wh, INDICATOR_MODEL, full_refresh=True))
    # the next window starts 04-25 (04-27 minus the lookback's 2 more days) and reads from 89 days before it
    kept = dt.date(2025, 1, 26)
    assert (stats["carry_read"], stats["carry_kept"]) == (None, kept)
    assert incremental.current(wh, INDICATOR_MODEL.table)["carry_day"] == kept
    assert kept_carry(wh) == summed_carry(wh, kept)
    # acc_a's spells of 01-05 and before the calendar are over by then; its milestones are not
    # acc_a through 01-26: first active 12-25 (u9), first value event 01-05 10:00 (u1); no 7-day active (both
    # spells over), u1 still active over 30 days (01-05 .. 02-03); a key feature, a milestone, no open urgent ticket
    first_value = dt.datetime(2025, 1, 5, 10, tzinfo=dt.UTC)
    assert kept_carry(wh)[0] == ("acc_a", kept, dt.date(2024, 12, 25), first_value, 0, 1, 1, 1, 0)
    nights = {
        # a late product event inside the lookback (acc_b, 04-26): its window's days change, not older ones
        1: "insert into staging.stg_product__events values ('late1', 'track', 'u7', 'Signed In', 'ws_b', "
           "'2025-04-26 10:00:00+00', date '2025-04-28')",
        2: None,
        3: OLD_INPUT_CHANGES["old ticket priority"][0],  # acc_a rebuilt on every day: its carry summed again
    }
    for night, change in nights.items():
        wh.execute("insert into marts.dim_day values (?)", [AS_OF - dt.timedelta(days=3 - night)])
        wh.execute(today.format(AS_OF - dt.timedelta(days=3 - night)))
        if change:
            wh.execute(change)
        build_window(wh, fixtures.ACTIVITY_MODEL, plan(wh, fixtures.ACTIVITY_MODEL))
        w = plan(wh, INDICATOR_MODEL)
        assert w.mode == "incremental" and w.accounts == (("acc_a",) if night == 3 else ()), w.reason
        stats = build_window(wh, INDICATOR_MODEL, w)
        assert (stats["carry_read"], stats["carry_kept"]) == (kept, kept + dt.timedelta(days=1)), night
        kept += dt.timedelta(days=1)
        assert kept_carry(wh) == summed_carry(wh, kept), night
    # rolled over 01-26 .. 01-28: ur0 .. ur2 entered both spells (ur3's 01-29 is the next night's)
    assert kept_carry(wh)[0] == ("acc_a", kept, dt.date(2024, 12, 25), first_value, 3, 4, 1, 1, 0)
    nightly = rows(wh, INDICATOR_MODEL.table)
    # complete from 04-20 on (not null); 02-20 is in the prior 30 days of 04-20 only (day - 59 .. day - 30)
    assert {(r["day"] == dt.date(2025, 4, 20), r["events_prior_30d"]) for r in nightly if r["account_id"] == "acc_d"} == {
        (True, 1), (False, 0)}
    build_window(wh, fixtures.ACTIVITY_MODEL, plan(wh, fixtures.ACTIVITY_MODEL, full_refresh=True))
    build_window(wh, INDICATOR_MODEL, plan(wh, INDICATOR_MODEL, full_refresh=True))
    same(nightly, rows(wh, INDICATOR_MODEL.table))


def test_a_nightly_reads_the_kept_carry_only_through_exactly_its_first_read_day(wh, monkeypatch):
    # The carry is read, not recomputed: a wrong one shows in the rows. It is read only when it runs through exactly
    # the window's first read day; a longer lookback starts the window earlier, and the carry is summed again.
    monkeypatch.setenv(incremental.ENV_LOOKBACK_DAYS, "3")
    build_window(wh, INDICATOR_MODEL, plan(wh, INDICATOR_MODEL, full_refresh=True))
    full = rows(wh, INDICATOR_MODEL.table)
    tampered = f"update {INDICATOR_CARRY.table} set users_30d = users_30d + 5 where account_id = 'acc_a'"
    assert wh.execute(tampered).fetchall()[0][0] == 1
    monkeypatch.setenv(incremental.ENV_LOOKBACK_DAYS, "5")
    stats = build_window(wh, INDICATOR_MODEL, plan(wh, INDICATOR_MODEL))
    assert stats["mode"] == "incremental" and stats["carry_read"] is None
    same(rows(wh, INDICATOR_MODEL.table), full)  # summed from every row: the tampered carry is not read
    wh.execute(tampered)  # the build kept a new carry: tamper with it too
    stats = build_window(wh, INDICATOR_MODEL, plan(wh, INDICATOR_MODEL))
    assert stats["carry_read"] == dt.date(2025, 1, 27)  # 04-30 minus 4 days, then 89
    got = rows(wh, INDICATOR_MODEL.table)
    moved = {(a["day"], b["active_users_30d"] - a["active_users_30d"]) for a, b in zip(full, got)
             if a["account_id"] == "acc_a" and a != b}
    assert moved == {(stats["start_day"] + dt.timedelta(days=n), 5) for n in range(5)}
    # a carry kept under another definition (here: its sums in another order) is not read either
    monkeypatch.setitem(fixtures.CARRIES, INDICATOR_MODEL.table,
                        dataclasses.replace(INDICATOR_CARRY, sums=INDICATOR_CARRY.sums[::-1]))
    stats = build_window(wh, INDICATOR_MODEL, plan(wh, INDICATOR_MODEL))
    assert stats["carry_read"] is None and stats["carry_kept"] is not None
    same(rows(wh, INDICATOR_MODEL.table), full)


@pytest.mark.parametrize("preserve", [True, False])
def test_a_nightly_writes_its_window_first_and_unordered(wh_after, monkeypatch, preserve):
    """The window's scores are the nightly's first insert into kpis.health_scores_daily, written with DuckDB's
    preserve_insertion_order off: so written, the checkpoint that follows kept their row groups as they were,
    while in order, or after another insert into the table in the same transaction (the listed accounts' 3,012
    rows), it compressed all 800,000 of them again, about 0.3 CPU s of the large company's nightly (scoring.
    unordered_insert). The listed accounts' pass keeps the order (by_month) and the setting is left as it was;
    the rows are a full build's."""
    config = hs.load_current_config()
    wh = wh_after(activity_and_full_build)
    full = {t: rows(wh, t, order=o) for t, o in HEALTH_TABLES.items() if "health" in t}
    nightly = incremental.BuildWindow("incremental", AS_OF - dt.timedelta(days=3), None, AS_OF,
                                      scoring.spec(config).sql_version, "test", ("acc_a", "acc_c"))
    monkeypatch.setattr(scoring, "plan_scoring", lambda con, config, full_refresh=False: nightly)
    wh.execute(f"set preserve_insertion_order = {preserve}")
    inserts = []

    class Recorded:
        """Keeps each insert into the scores with the preserve_insertion_order it ran with."""

        def __init__(self, con):
            self._con = con

        def execute(self, sql, *args):
            if sql.startswith(f"insert into {scoring.SCORES_TABLE}"):
                setting = self._con.execute("select current_setting('preserve_insertion_order')").fetchall()[0][0]
                inserts.append((scoring.SCORED in sql, setting))
            return self._con.execute(sql, *args)

        def __getattr__(self, name):
            return getattr(self._con, name)

    stats = scoring.score_history(Recorded(wh), config, chunk_rows=40)  # the listed accounts in two ranges
    assert (stats["mode"], stats["accounts_rebuilt"]) == ("incremental", 2)
    listed = [setting for from_scored, setting in inserts if from_scored]
    window = [setting for from_scored, setting in inserts if not from_scored]
    assert window and len(listed) > 1 and set(listed) == {preserve}, inserts
    assert inserts[:len(window)] == [(False, False)] * len(window), "the window's ranges first, unordered"
    assert wh.execute("select current_setting('preserve_insertion_order')").fetchall()[0][0] is preserve
    for table, expected in full.items():
        same(rows(wh, table, order=HEALTH_TABLES[table]), expected)


TODAY_EVENT = ("insert into staging.stg_product__events values ('d{0}', 'track', 'ub', 'Signed In', 'ws_b', "
               "timestamp '{0} 09:00:00+00', date '{0}')")
"""a product event of acc_b on the as-of day: the activity's window starts where the indicators' does"""


def carry_nights(wh_after, monkeypatch, history, share, chunk_rows=None, changes=(None,), inputs=()):
    """The ``inputs`` statements run, a full build as of 04-27, then a nightly per change (one more calendar day
    each, with acc_b's event of the day): each reads the carry the build before kept and keeps one equal to the
    sums of every activity row. Returns the warehouse (``wh_after``'s: the full build is made once for the
    parameters that differ only in the nightlies) and each nightly's (window, stats)."""
    monkeypatch.setenv(incremental.ENV_LOOKBACK_DAYS, "3")
    if history:
        monkeypatch.setenv(incremental.ENV_HISTORY_DAYS, str(history))
    monkeypatch.setattr(incremental, "MAX_REBUILT_SHARE", 1.0)  # the tiny company: any share of its 3 accounts
    monkeypatch.setattr(incremental, "LISTED_IN_WINDOW_SHARE", share)
    wh = wh_after(models_built_in_full, *inputs, "delete from marts.dim_day where day > date '"
                  f"{AS_OF - dt.timedelta(days=3)}'", TODAY_EVENT.format(AS_OF - dt.timedelta(days=3)),
                  PRE_CALENDAR_EVENT)
    out = []
    for n, change in enumerate(changes, 1):
        day = AS_OF - dt.timedelta(days=3 - n)
        wh.execute("insert into marts.dim_day values (?)", [day])
        wh.execute(TODAY_EVENT.format(day))
        if change:
            wh.execute(change)
        build_window(wh, fixtures.ACTIVITY_MODEL, plan(wh, fixtures.ACTIVITY_MODEL))
        w = plan(wh, INDICATOR_MODEL)
        assert w.mode == "incremental", w.reason
        stats = build_window(wh, INDICATOR_MODEL, w, chunk_rows=chunk_rows)
        assert stats["carry_read"] is not None, (n, stats)
        assert kept_carry(wh) == summed_carry(wh, stats["carry_kept"]), n
        out.append((w, stats))
    return wh, out


@pytest.mark.parametrize("chunk_rows", [None, 3], ids=["one range", "ranges"])
@pytest.mark.parametrize("share", [incremental.LISTED_IN_WINDOW_SHARE, 0.0], ids=["window's pass", "own pass"])
@pytest.mark.parametrize("history", [None, 25], ids=["every day", "25 days"])
def test_nightlies_reading_the_carry_equal_a_full_build_with_an_account_rebuilt_on_every_day(
        wh_after, monkeypatch, history, share, chunk_rows):
    # The large company keeps 365 days: the account rebuilt on every day (acc_a, night 2) gets its carry summed
    # again through its own first read day, the history's first day minus 89 days. Only a history shorter than
    # the fixture's calendar minus 89 days puts that day after the calendar's first day (25 days: 01-09, where
    # acc_a's u1 of 01-05 is active over 30 days); in the window's pass or its own, in one range or several.
    # (Found by session 23's review: summing it through the calendar's first day passed every other test.)
    wh, nights = carry_nights(wh_after, monkeypatch, history, share, chunk_rows,
                              (None, OLD_INPUT_CHANGES["old ticket priority"][0], None))
    for n, (w, stats) in enumerate(nights, 1):
        assert w.accounts == (("acc_a",) if n == 2 else ()), w.reason
        assert (stats["account_ranges"] > 1) == (chunk_rows is not None or (share == 0.0 and n == 2)), stats
    nightly = rows(wh, INDICATOR_MODEL.table)
    build_window(wh, fixtures.ACTIVITY_MODEL, plan(wh, fixtures.ACTIVITY_MODEL, full_refresh=True))
    build_window(wh, INDICATOR_MODEL, plan(wh, INDICATOR_MODEL, full_refresh=True))
    same(nightly, rows(wh, INDICATOR_MODEL.table))


def test_the_carry_a_nightly_keeps_reads_only_the_days_it_rolls_over(wh_after, monkeypatch, tmp_path):
    # The point of the carry: a nightly that reads it sums no activity row older than the days between its carry's
    # day and the next one, in its SQL (the tampered-carry test) and in the carry it keeps (here: the activity's
    # rows the keeping statement's scan passes on are exactly those days', not every row). (Session 23's review.)
    # a product event on 01-27, the day the second nightly rolls its carry over
    r27 = ("insert into staging.stg_product__events values ('r27', 'track', 'ur', 'Signed In', 'ws_a', "
           "timestamp '2025-01-27 08:00:00+00', date '2025-01-27')")
    wh, _ = carry_nights(wh_after, monkeypatch, None, incremental.LISTED_IN_WINDOW_SHARE, inputs=(r27,))
    day = AS_OF - dt.timedelta(days=1)
    wh.execute("insert into marts.dim_day values (?)", [day])
    wh.execute(TODAY_EVENT.format(day))
    build_window(wh, fixtures.ACTIVITY_MODEL, plan(wh, fixtures.ACTIVITY_MODEL))
    w = plan(wh, INDICATOR_MODEL)
    counted = fixtures.ScanCounter(wh, tmp_path / "profile.json", "kpis.account_activity_daily", only="_carry_next")
    stats = build_window(counted, INDICATOR_MODEL, w)
    counted.stop()
    assert stats["carry_read"] is not None
    rolled, total = wh.execute("select count(*) filter (where day >= ? and day < ?), count(*) from "
                               "kpis.account_activity_daily", [stats["carry_read"], stats["carry_kept"]]).fetchall()[0]
    assert counted.scans == 1 and counted.rows_emitted == [rolled] and 0 < rolled < total, (counted.rows_emitted, total)
