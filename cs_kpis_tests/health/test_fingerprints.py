"""The per-account fingerprints of the health layer's inputs (cs_kpis/defs/health/fingerprints.py,
incremental.Fingerprint and Part) across nights: what a nightly compares and records when the as-of day moves,
and that the two days hashed in one scan equal what the one-day queries before them gave (the fingerprints
recorded in a warehouse by the earlier version are compared with them on its next nightly).

The fixture warehouse (fixtures.py) runs 2025-01-01 .. 2025-04-30."""

import datetime as dt
import json

import duckdb
import pytest

from cs_kpis.defs.health.fingerprints import FINGERPRINTS, SQL_DIR
from cs_kpis.lib import incremental
from cs_kpis.lib.sql import sql_part
from cs_kpis_tests.health.fixtures import (
    ACTIVITY_MODEL,
    INDICATOR_MODEL,
    build_window,
    operator_name,
    operator_rows,
    plan,
    profile_nodes,
)
from cs_kpis_tests.health.test_history import rows, same

DAY = dt.timedelta(days=1)


# ---- the one-day queries before the two-day scan (git: cs_kpis/defs/health/fingerprints.py before commit
# 55aada8, "a nightly's plan hashes the inputs' history once"), kept as they were: the reference ----

def _by_account(parts: list[str]) -> str:
    union = "\n    union all\n".join(f"select {k} as part, account_id, n, h from ({sql}) as p{k}"
                                    for k, sql in enumerate(parts, 1))
    return (f"select account_id, sum(n) as rows, bit_xor(hash(part, h)) as hash from (\n    {union}\n) as parts "
            "group by account_id")


OLD_INDICATOR_BY_ACCOUNT_SQL = _by_account([
    f"select account_id, count(*) as n, bit_xor(hash(t)) as h from (select * {replace} from {table}) as t "
    f"where {column} < ? group by account_id"
    for table, column, replace in (
        # the activity's rows were hashed here too (first) until session 21: its changes reach the indicators
        # through its build records now, and the others are numbered from 1 as before them
        ("marts.mrr_daily_changes", "change_date",
         "replace (case when next_change_date < cast(? as date) then next_change_date end as next_change_date)"),
        ("marts.subscription_periods", "start_date",
         "replace (case when end_date < cast(? as date) then end_date end as end_date)"),
    )])

OLD_ACTIVITY_BY_ACCOUNT_SQL = f"""
with tickets as (
    select account_id, ticket_id, priority, created_day, solved_day from (
{sql_part(SQL_DIR, 'support_tickets')}
    ) as s
),
xref as (
    select source_system, source_id, crm_account_id as account_id from marts.account_xref
    where crm_account_id is not null
)
""" + _by_account([
    ("select x.account_id, sum(e.n) as n, bit_xor(e.h) as h from (select workspace_id, count(*) as n, "
     "bit_xor(hash(message_id)) as h from staging.stg_product__events where event_type = 'track' "
     "and occurred_at < cast(? as date) group by workspace_id) as e "
     "inner join xref as x on x.source_system = 'product' and x.source_id = e.workspace_id group by x.account_id"),
    ("select account_id, count(*) as n, bit_xor(hash(ticket_id, coalesce(priority in ('urgent', 'high'), false), "
     "created_day, "
     "case when solved_day < cast(? as date) then solved_day end)) as h "
     "from tickets where created_day < cast(? as date) group by account_id"),
    ("select t.account_id, count(*) as n, "
     "bit_xor(hash(r.ticket_id, r.score, cast(coalesce(r.updated_at, r.created_at) as date))) as h "
     "from staging.stg_support__satisfaction_ratings as r inner join tickets as t on t.ticket_id = r.ticket_id "
     "where cast(coalesce(r.updated_at, r.created_at) as date) < cast(? as date) group by t.account_id"),
    ("select x.account_id, count(*) as n, bit_xor(hash(r.person_id, r.score, cast(r.responded_at as date))) as h "
     "from staging.stg_nps__survey_responses as r "
     "inner join xref as x on x.source_system = 'nps' and x.source_id = r.person_id "
     "where r.responded_at < cast(? as date) group by x.account_id"),
    ("select x.account_id, count(*) as n, bit_xor(hash(e.event_id, e.customer_id, e.event_type)) as h "
     "from staging.stg_billing__events as e "
     "inner join xref as x on x.source_system = 'billing' and x.source_id = e.customer_id "
     "where e.event_type = 'invoice.payment_failed' and e.created_at < cast(? as date) group by x.account_id"),
])

OLD_BY_ACCOUNT = {ACTIVITY_MODEL.table: OLD_ACTIVITY_BY_ACCOUNT_SQL, INDICATOR_MODEL.table: OLD_INDICATOR_BY_ACCOUNT_SQL}


def old_fingerprint(con, table: str, before: dt.date) -> list[tuple]:
    """(account_id, rows, hash) per account as the one-day query of ``table``'s inputs gave it (and its compute()
    recorded it), every ``?`` bound to ``before``."""
    sql = OLD_BY_ACCOUNT[table]
    con.execute("set TimeZone = 'UTC'")
    return con.execute(f"select account_id, cast(rows as bigint) as rows, cast(hash as ubigint) as hash from ({sql}) "
                       "as f where account_id is not null order by 1", [before] * sql.count("?")).fetchall()


# a few rows beside the fixture's for every path of a Part: a workspace mapped to no account, a workspace and a
# failed payment of acc_c dated between the days compared, a ticket solved between them (its solved day is hashed
# as none before it), a rating and an NPS response of another day
EDGE_ROWS = [
    ("insert into staging.stg_product__events values ('n1', 'track', 'un', 'Signed In', 'ws_none', "
     "'2025-02-01 10:00:00+00', '2025-02-01'), ('c2', 'track', 'uc', 'Signed In', 'ws_c', '2025-02-10 23:59:59+00', "
     "'2025-02-11')"),
    "insert into staging.stg_billing__events values ('e3', 'invoice.payment_failed', 'cus_c', '2025-02-12 10:00:00+00')",
    ("insert into staging.stg_support__tickets values (4, 1, 'solved', 'high', '2025-01-20 10:00:00+00', "
     "'2025-02-20 10:00:00+00')"),
    "insert into staging.stg_support__satisfaction_ratings values (14, 4, 'good', '2025-02-21 10:00:00+00', null)",
    "insert into staging.stg_nps__survey_responses values ('r5', 'p2', 6, '2025-02-14 10:00:00+00')",
    # acc_a's MRR changing between the days compared (the indicators hash MRR changes and subscription periods)
    ("update marts.mrr_daily_changes set next_change_date = '2025-02-01' where account_id = 'acc_a' "
     "and next_change_date is null"),
    ("insert into marts.mrr_daily_changes values ('acc_a', '2025-02-01', 120, 100, '2025-03-20'), "
     "('acc_a', '2025-03-20', 130, 120, null)"),
]


@pytest.mark.parametrize("table", list(OLD_BY_ACCOUNT))
def test_the_two_days_hashed_in_one_scan_equal_the_one_day_query_of_before(wh, table):
    # A nightly's plan hashes last night's day and tonight's in one scan (Fingerprint.sql over Parts) and compares
    # the first with the fingerprints the build before recorded, which the earlier version wrote with its one-day
    # query. Were they not equal per account, the first nightly after the upgrade would see every account with
    # inputs as changed and rebuild them all on every day (more than 10% of them: a full build).
    for sql in EDGE_ROWS:
        wh.execute(sql)
    build_window(wh, ACTIVITY_MODEL, plan(wh, ACTIVITY_MODEL, full_refresh=True))  # with the edge rows
    fp = FINGERPRINTS[table]
    # the days a nightly hashes, and (a lookback grown since the build before) tonight's before last night's
    for days in ([dt.date(2025, 1, 4), dt.date(2025, 2, 11)], [dt.date(2025, 2, 11), dt.date(2025, 3, 6)],
                 [dt.date(2025, 4, 28), dt.date(2025, 3, 6)]):
        fp.compute_days(wh, days, ["_fp_day0", "_fp_day1"])
        got = [wh.execute(f"select account_id, rows, hash from _fp_day{k} order by 1").fetchall() for k in (0, 1)]
        expected = [old_fingerprint(wh, table, day) for day in days]
        assert expected[0] and expected[1] != expected[0], "the days must differ, or the test proves nothing"
        assert got == expected, days


def test_the_date_bound_of_a_parts_scan_holds_for_every_row_its_where_lets_through(tmp_path):
    # Part.per_account reads the rows that pass ``where`` and are dated before the last day hashed. An ``or`` in
    # the where bound tighter than the date ("where a or b and dated < day") let the rows of its first branch of
    # every later day (here the one of 03-01) into the scan's aggregate, which the per-day filters then dropped:
    # the same hashes, from a scan of every later day
    con = duckdb.connect()
    con.execute("create table t (k varchar, d date, v integer)")
    con.execute("insert into t values ('x', '2025-01-01', 1), ('x', '2025-01-02', 2), ('x', '2025-03-01', 1)")
    part = incremental.Part(source="t", key="k", dated="d", hashed="hash(v)", where="v = 1 or v = 2")
    con.execute("pragma enable_profiling = 'json'")
    con.execute(f"pragma profiling_output = '{tmp_path / 'profile.json'}'")
    got = con.execute(part.per_account(["date '2025-01-02'", "date '2025-01-03'"])).fetchall()
    con.execute("pragma disable_profiling")
    assert [r[:2] + r[3:4] for r in got] == [("x", 1, 2)]
    tree = json.loads((tmp_path / "profile.json").read_text())
    aggregated = [operator_rows(c) for n in profile_nodes(tree) if "GROUP_BY" in operator_name(n)
                  for c in n.get("children", [])]
    assert aggregated == [2], aggregated


def recorded(con, table: str) -> list[tuple]:
    return con.execute(f"select account_id, rows, hash from {incremental.FINGERPRINTS_TABLE} where model = ? "
                       "order by 1", [table]).fetchall()


def hashed(con, table: str, before: dt.date) -> list[tuple]:
    FINGERPRINTS[table].compute(con, before, "_fp_alone")
    return con.execute("select account_id, rows, hash from _fp_alone order by 1").fetchall()


def new_day(con, day: dt.date) -> None:
    """The night of ``day``: the calendar reaches it, acc_b's user signs in on it and acc_b's MRR changes on it
    (50 and 60 in turn): its events move the activity's fingerprints of later days, its MRR change the
    indicators' (which hash MRR changes and subscription periods, not the activity): the two days a nightly hashes
    differ."""
    con.execute("insert into marts.dim_day values (?)", [day])
    con.execute("insert into staging.stg_product__events values (?, 'track', 'ub', 'Signed In', 'ws_b', ?, ?)",
                [f"b_{day}", f"{day} 09:00:00+00", day])
    mrr = 60 if day.toordinal() % 2 else 50
    con.execute("update marts.mrr_daily_changes set next_change_date = ? where account_id = 'acc_b' "
                "and next_change_date is null", [day])
    con.execute("insert into marts.mrr_daily_changes values ('acc_b', ?, ?, ?, null)", [day, mrr, 110 - mrr])


def test_nightlies_on_consecutive_days_compare_last_nights_fingerprint_and_record_tonights(wh, monkeypatch):
    # Each nightly compares the fingerprint before last night's day (the build before recorded it) and records
    # the one before tonight's, the next night's; the plan hashes both in one scan. With the as-of day moving
    # one day a night, the two differ: recording the wrong one rebuilds an unchanged account on every day the
    # next night (or misses a changed one), comparing the wrong one does so tonight.
    monkeypatch.setenv(incremental.ENV_LOOKBACK_DAYS, "3")
    monkeypatch.setattr(incremental, "MAX_REBUILT_SHARE", 1.0)  # the tiny company: any share of its 3 accounts
    models = (ACTIVITY_MODEL, INDICATOR_MODEL)
    first = dt.date(2025, 4, 28)
    wh.execute("delete from marts.dim_day where day >= ?", [dt.date(2025, 4, 20)])
    for n in range(9):  # 04-20 .. 04-28
        new_day(wh, dt.date(2025, 4, 20) + n * DAY)
    # night 0, as of 04-28: full builds, which record the fingerprints before 04-26
    for m in models:
        build_window(wh, m, plan(wh, m, full_refresh=True))
        assert incremental.current(wh, m.table)["fingerprint_day"] == first - 2 * DAY
        assert recorded(wh, m.table) == hashed(wh, m.table, first - 2 * DAY)
    # night 1, as of 04-29: acc_c's event of 01-20 arrives late. Only acc_c is rebuilt on every day (the
    # activity finds it by its fingerprint, the indicators by the activity's record); the record keeps the
    # fingerprint before 04-27, not the one before 04-26 it compared
    new_day(wh, first + DAY)
    wh.execute("insert into staging.stg_product__events values ('late_c', 'track', 'uc', 'Signed In', 'ws_c', "
               "'2025-01-20 10:00:00+00', '2025-04-29')")
    for m in models:
        w = plan(wh, m)
        assert (w.mode, w.start_day, w.accounts) == ("incremental", first - 2 * DAY, ("acc_c",)), (m.table, w.reason)
        assert ("whose inputs dated before 2025-04-26 changed" if m is ACTIVITY_MODEL else "1 rebuilt upstream") \
            in w.reason, w.reason
        build_window(wh, m, w)
        assert incremental.current(wh, m.table)["fingerprint_day"] == first - DAY
        tonight = hashed(wh, m.table, first - DAY)
        assert tonight != hashed(wh, m.table, first - 2 * DAY), "the two days must differ, or the test proves nothing"
        assert recorded(wh, m.table) == tonight
    # night 2, as of 04-30: nothing older than the lookback changed, so no account is rebuilt on every day
    new_day(wh, first + 2 * DAY)
    for m in models:
        w = plan(wh, m)
        assert (w.mode, w.start_day, w.accounts) == ("incremental", first - DAY, ()), (m.table, w.reason)
        assert "older inputs unchanged" in w.reason, w.reason
        build_window(wh, m, w)
        assert recorded(wh, m.table) == hashed(wh, m.table, first)
    nightly = {m.table: rows(wh, m.table) for m in models}
    for m in models:
        build_window(wh, m, plan(wh, m, full_refresh=True))
        same(nightly[m.table], rows(wh, m.table))


def _counted(rows: list[tuple]) -> list[tuple]:
    """(key, n0, h0, n1, h1, ...) with each day's hash left out where it counted no rows (none per day, 0 in the
    ordered form; Fingerprint.sql keeps a key's day only when it counted rows)."""
    return [(r[0], *[(r[i], r[i + 1] if r[i] else None) for i in range(1, len(r), 2)]) for r in rows]


@pytest.mark.parametrize("mapped", [False, True])
def test_an_ordered_part_hashes_the_days_as_the_per_day_filters_do(mapped):
    # Part(ordered=True) hashes every row before the last day once and takes the rows from the first day on back
    # out per day (the large company's events: one count and xor of 58.7 M rows instead of one per day). Each
    # day's count and hash must equal the per-day filters' whatever the rows' order: a key whose rows all fall
    # between the days (none before the first), a row on a day itself (not before it), rows after the last day,
    # a null date, a null key, a row the where drops, and the days given latest first
    con = duckdb.connect()
    con.execute("create table t (k varchar, d timestamptz, v integer)")
    con.execute("create table m (key varchar, account_id varchar)")
    con.execute("insert into m values ('x', 'acc_1'), ('y', 'acc_1'), ('z', 'acc_2'), ('w', 'acc_2')")
    con.execute("""insert into t values ('x', '2025-01-01 10:00+00', 1), ('x', '2025-01-05 00:00+00', 2),
        ('x', '2025-01-06 23:00+00', 3), ('y', '2025-01-07 10:00+00', 4), ('y', '2025-01-02 10:00+00', 5),
        ('z', '2025-01-06 12:00+00', 6), ('z', '2025-02-01 10:00+00', 7), ('w', null, 8),
        ('w', '2025-01-01 10:00+00', 0), ('x', '2025-01-03 10:00+00', 9), (null, '2025-01-01 10:00+00', 10),
        (null, '2025-01-06 10:00+00', 11)""")
    kw = {"source": "t", "key": "k", "dated": "d", "hashed": "hash(v)", "where": "v <> 0"}
    if mapped:
        kw.update(mapping="inner join m on m.key = p.key", account="m.account_id")
    for days in (["date '2025-01-05'", "date '2025-01-07'"], ["date '2025-01-07'", "date '2025-01-05'"],
                 ["date '2025-01-02'", "date '2025-01-05'", "date '2025-01-08'"]):
        plain, ordered = (con.execute(f"select * from ({incremental.Part(**kw, ordered=o).per_account(days)}) "
                                      "order by 1").fetchall() for o in (False, True))
        assert _counted(ordered) == _counted(plain), days
        assert any(n == 0 for r in plain for n in r[1::2]) and len({r[1:] for r in plain}) > 1, "the edges are there"
