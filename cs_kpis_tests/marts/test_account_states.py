"""The CRM state before the first loaded snapshot, rebuilt from Salesforce's field history (AccountHistory).

Hand-computed cases (cs_kpis/defs/marts/README.md, "CRM state before the first snapshot"): the raw
AccountHistory rows go through staging.stg_crm__account_history and marts.account_states, exactly as in a
run. The first snapshot is loaded on 2026-10-31, so Salesforce still keeps history from 2025-04-30 on.
"""

import datetime as dt
import itertools

import duckdb
import pytest

from cs_kpis.defs.marts.assets import SQL_DIR as MARTS_SQL
from cs_kpis.defs.staging.assets import SQL_DIR as STAGING_SQL
from cs_kpis.lib.sql import build, load_models

FIRST = "2026-10-31"


def h(hid, account, field, old, new, when, data_type="DynamicEnum", deleted=False):
    return (hid, account, field, data_type, old, new, when, "005ADMIN", deleted)


HISTORY = [
    # A1 (created 2024-06-01, before the 18 months Salesforce keeps)
    # an owner change: two rows at the same moment, the Ids and the names
    h("017a1", "A1", "Owner", "005OLD", "005NEW", "2026-03-15 10:00:00+00", "EntityId"),
    h("017a2", "A1", "Owner", "Olga Old", "Nina New", "2026-03-15 10:00:00+00", "Text"),
    # the sentiment changed twice on one day: empty -> Yellow -> Red; the day ends Red
    h("017a3", "A1", "CSM_Sentiment__c", None, "Yellow", "2026-06-01 09:00:00+00"),
    h("017a4", "A1", "CSM_Sentiment__c", "Yellow", "Red", "2026-06-01 15:00:00+00"),
    h("017a5", "A1", "CSM_Sentiment__c", "Red", "Green", "2026-08-01 08:00:00+00"),
    # a field nobody tracks here: ignored
    h("017a6", "A1", "Industry", "Retail", "Media", "2026-09-01 08:00:00+00", "Text"),
    # A2 (created 2026-02-10): segment and CSM (a lookup: two rows) change on one day
    h("017b1", "A2", "Segment__c", "SMB", "Mid-Market", "2026-09-10 11:00:00+00"),
    h("017b2", "A2", "CSM__c", "005CSM1", "005CSM2", "2026-09-10 11:05:00+00", "EntityId"),
    h("017b3", "A2", "CSM__c", "Cara Smith", "Dev Patel", "2026-09-10 11:05:00+00", "Text"),
    # a deleted history row (its account was in the recycle bin once): ignored
    h("017b4", "A2", "CSM_Sentiment__c", "Red", None, "2026-05-01 11:00:00+00", deleted=True),
    # on the first snapshot's own day: part of that day's state, so the day before still has the old value
    h("017b5", "A2", "CSM_Sentiment__c", None, "Green", "2026-10-31 09:00:00+00"),
]

SNAPSHOT = [
    # account_id, owner, csm, segment, sentiment, created
    ("A1", "005NEW", "005CSM1", "SMB", "Green", "2024-06-01 09:00:00+00"),
    ("A2", "005AE2", "005CSM2", "Mid-Market", "Green", "2026-02-10 12:00:00+00"),
    ("A3", "005AE2", "005CSM1", "Enterprise", None, "2026-10-31 08:00:00+00"),  # created on the day itself
]


@pytest.fixture(scope="module")
def states():
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    for schema in ("raw", "staging", "marts"):
        con.execute(f"create schema {schema}")
    con.execute("""create table raw.crm__account_history (id varchar, account_id varchar, field varchar,
        data_type varchar, old_value varchar, new_value varchar, created_date timestamptz, created_by_id varchar,
        is_deleted boolean, _extract_day date)""")
    con.executemany("insert into raw.crm__account_history values (?, ?, ?, ?, ?, ?, ?, ?, ?, date '2026-10-31')",
                    HISTORY)
    con.execute("""create table staging.stg_crm__accounts (account_id varchar, owner_id varchar, csm_id varchar,
        segment varchar, csm_sentiment varchar, created_at timestamptz, is_deleted boolean,
        valid_from timestamptz, valid_to timestamptz)""")
    con.executemany(f"insert into staging.stg_crm__accounts values (?, ?, ?, ?, ?, ?, false, "
                    f"timestamptz '{FIRST} 00:00:00+00', null)", SNAPSHOT)
    build(con, next(m for m in load_models(STAGING_SQL, "staging") if m.name == "stg_crm__account_history"))
    build(con, next(m for m in load_models(MARTS_SQL, "marts") if m.name == "account_states"))
    yield con
    con.close()


def state_on(con, account: str, day: str):
    rows = con.execute(
        "select owner_id, csm_id, segment, csm_sentiment, source from marts.account_states where account_id = ? "
        "and valid_from <= cast(? as date) and (valid_to is null or valid_to > cast(? as date))",
        [account, day, day]).fetchall()
    assert len(rows) <= 1, rows
    return rows[0] if rows else None


def test_staging_marks_the_id_row_of_a_lookup_change(states):
    got = dict(states.execute("select history_id, tracked_field from staging.stg_crm__account_history").fetchall())
    assert got["017a1"] == "owner_id" and got["017a2"] is None  # the names row of the owner change
    assert got["017b2"] == "csm_id" and got["017b3"] is None
    assert got["017b1"] == "segment" and got["017a3"] == "csm_sentiment" and got["017a6"] is None


def test_owner_change_walks_back_to_the_old_owner(states):
    assert state_on(states, "A1", "2026-03-14")[0] == "005OLD"
    assert state_on(states, "A1", "2026-03-15")[0] == "005NEW"  # end of the day of the change


def test_two_changes_on_one_day_end_the_day_on_the_second(states):
    assert state_on(states, "A1", "2026-05-31")[3] is None  # before both: OldValue of the earlier one
    assert state_on(states, "A1", "2026-06-01")[3] == "Red"
    assert state_on(states, "A1", "2026-07-31")[3] == "Red"
    assert state_on(states, "A1", "2026-08-01")[3] == "Green"


def test_history_starts_18_months_before_the_first_snapshot(states):
    # A1 is older than what Salesforce keeps: its state is known from 2025-04-30 (18 months before
    # 2026-10-31) and not before; a change older than that would be gone, so nothing is claimed
    assert state_on(states, "A1", "2025-04-29") is None
    assert state_on(states, "A1", "2025-04-30") == ("005OLD", "005CSM1", "SMB", None, "field_history")
    first = states.execute("select min(valid_from) from marts.account_states where account_id = 'A1'").fetchall()
    assert first[0][0] == dt.date(2025, 4, 30)


def test_an_account_created_in_the_window_starts_on_its_creation_day(states):
    assert state_on(states, "A2", "2026-02-09") is None
    assert state_on(states, "A2", "2026-02-10") == ("005AE2", "005CSM1", "SMB", None, "field_history")
    assert state_on(states, "A2", "2026-09-09")[1:3] == ("005CSM1", "SMB")
    assert state_on(states, "A2", "2026-09-10")[1:3] == ("005CSM2", "Mid-Market")
    # the deleted row said Red -> empty on 05-01; ignored, so nothing but the snapshot's day changes it
    assert state_on(states, "A2", "2026-04-30")[3] is None
    # the change on the snapshot's own day belongs to that day
    assert state_on(states, "A2", "2026-10-30")[3] is None
    assert state_on(states, "A2", FIRST) == ("005AE2", "005CSM2", "Mid-Market", "Green", "snapshot")


def test_rows_are_contiguous_and_end_at_the_first_snapshot(states):
    rows = states.execute("select account_id, valid_from, valid_to, source from marts.account_states "
                          "order by account_id, valid_from").fetchall()
    for (a, _, to, _), (b, start, _, _) in itertools.pairwise(rows):
        if a == b:
            assert to == start
    assert [r for r in rows if r[0] == "A3"] == [("A3", dt.date(2026, 10, 31), None, "snapshot")]
    a1 = [(str(r[1]), str(r[2])) for r in rows if r[0] == "A1"]
    assert a1 == [("2025-04-30", "2026-03-15"), ("2026-03-15", "2026-06-01"), ("2026-06-01", "2026-08-01"),
                  ("2026-08-01", "2026-10-31"), ("2026-10-31", "None")]


def test_the_overlap_check_passes_here_and_names_an_overlap():
    from cs_kpis.defs.marts.checks import ACCOUNT_STATES_OVERLAP_SQL
    from cs_kpis.lib.checks import run_rule

    con = duckdb.connect()
    con.execute("create schema marts")
    con.execute("create table marts.account_states (account_id varchar, valid_from date, valid_to date, "
                "source varchar)")
    con.execute("insert into marts.account_states values ('A1', '2026-01-01', '2026-03-01', 'field_history'), "
                "('A1', '2026-03-01', null, 'snapshot')")
    assert run_rule(con, ACCOUNT_STATES_OVERLAP_SQL)[0] == 0
    # a rebuilt row running past the snapshot's day: two states on 2026-03-01
    con.execute("update marts.account_states set valid_to = '2026-03-02' where source = 'field_history'")
    count, sample = run_rule(con, ACCOUNT_STATES_OVERLAP_SQL)
    assert count == 1 and "A1" in sample


def test_the_overlap_check_passes_on_the_rebuilt_states(states):
    from cs_kpis.defs.marts.checks import ACCOUNT_STATES_OVERLAP_SQL
    from cs_kpis.lib.checks import run_rule

    assert run_rule(states, ACCOUNT_STATES_OVERLAP_SQL)[0] == 0
