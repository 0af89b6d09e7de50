"""marts.mrr_daily is a view of one row per account and day (51 M on the large company): its build records its rows
by the @row_count part (defs/marts/sql/parts/mrr_daily_rows.sql) instead of running it. The part must give the
view's count(*) exactly, and say it cannot (null, the view is then counted) when marts.dim_day is not a run of days."""

from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from cs_kpis.defs.marts.assets import SQL_DIR
from cs_kpis.lib import sql as sqllib

MODEL = sqllib.SqlModel.from_file(Path(SQL_DIR) / "mrr_daily.sql", "marts")

CHANGES = [
    # account, change_date, mrr, next_change_date
    ("A_open", date(2026, 1, 5), 10, None),  # positive until the end of the spine
    ("A_churn", date(2026, 1, 3), 10, date(2026, 1, 9)),
    ("A_churn", date(2026, 1, 9), 0, None),  # 0: the change day only
    ("A_before", date(2025, 12, 20), 5, date(2026, 1, 4)),  # starts before the spine
    ("A_before", date(2026, 1, 4), 7, date(2026, 3, 1)),  # ends after it
    ("A_late", date(2026, 2, 20), 9, None),  # after the spine: no day
    ("A_late0", date(2026, 2, 21), 0, None),
    ("A_early0", date(2025, 11, 1), 0, date(2025, 11, 5)),  # before the spine, its next change too
    ("A_early", date(2025, 11, 1), 3, date(2025, 11, 5)),
    ("A_null", date(2026, 1, 10), None, None),  # no MRR known: the change day only
]


def _warehouse(days: list[date]):
    con = duckdb.connect()
    con.execute("create schema marts")
    con.execute("create table marts.dim_day (day date)")
    if days:
        con.executemany("insert into marts.dim_day values (?)", [(d,) for d in days])
    con.execute("create table marts.mrr_daily_changes (account_id varchar, change_date date, "
                "mrr decimal(18, 2), previous_mrr decimal(18, 2), next_change_date date)")
    con.executemany("insert into marts.mrr_daily_changes values (?, ?, ?, 0, ?)", CHANGES)
    return con


class Recording:
    """A connection that records the statements it runs."""

    def __init__(self, con):
        self.con, self.statements = con, []

    def execute(self, sql, *args):
        self.statements.append(" ".join(sql.split()))
        return self.con.execute(sql, *args)


def _spine(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def test_the_row_count_part_gives_the_views_rows_without_running_it():
    con = _warehouse(_spine(date(2026, 1, 1), date(2026, 1, 31)))
    recording = Recording(con)
    meta = sqllib.build(recording, MODEL)
    (rows,) = con.execute("select count(*) from marts.mrr_daily").fetchone()
    assert rows == 27 + 6 + 1 + 3 + 28 + 1  # A_open, A_churn (6 + the 0 day), A_before (3 + 28), A_null
    assert meta["dagster/row_count"].value == rows
    assert not [s for s in recording.statements if "count(*) from marts.mrr_daily" in s], recording.statements


@pytest.mark.parametrize("days", [
    [d for d in _spine(date(2026, 1, 1), date(2026, 1, 31)) if d != date(2026, 1, 15)],  # a gap
    _spine(date(2026, 1, 1), date(2026, 1, 31)) + [date(2026, 1, 15)],  # a day twice
    [],
])
def test_a_spine_that_is_not_a_run_of_days_is_counted_row_by_row(days):
    con = _warehouse(days)
    assert sqllib.view_row_count(con, MODEL) is None
    meta = sqllib.build(con, MODEL)
    (rows,) = con.execute("select count(*) from marts.mrr_daily").fetchone()
    assert meta["dagster/row_count"].value == rows


def test_row_count_is_for_a_view(tmp_path):
    (tmp_path / "parts").mkdir()
    (tmp_path / "parts" / "n.sql").write_text("select 1")
    (tmp_path / "t.sql").write_text("-- A table.\n-- @row_count n\nselect 1 as x\n")
    with pytest.raises(ValueError, match="@row_count is for a view"):
        sqllib.SqlModel.from_file(tmp_path / "t.sql", "marts")
