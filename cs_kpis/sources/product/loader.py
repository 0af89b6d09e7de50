"""Loading a day of Segment events into DuckDB in set-based SQL (dlt row by row is ~100x slower)."""

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb

from cs_kpis.sources.common.accounting import Accounting
from cs_kpis.sources.product import helpers

log = logging.getLogger(__name__)


@dataclass
class DayLoad:
    """What loading one day did: the counts and the lines that could not load."""

    counts: Accounting
    bad_rows: list[tuple[str, int | None, str, str]] = field(default_factory=list)
    """(file, line number, raw text, reason)"""
    careful: bool = False
    """True when the careful (line-numbered) staging was needed"""


def _scalar(con: Any, sql: str) -> Any:
    return con.execute(sql).fetchall()[0][0]


def load_day(
    con: Any,
    table: str,
    files: Sequence[str],
    *,
    received_day: str | None,
    origin_prefix: str,
    load_id: str,
) -> DayLoad:
    """Stage ``files`` and insert the new, valid events into ``table`` in one transaction.

    Deduplicates on messageId within the day and against the table (an anti-join), so loading a day
    twice inserts nothing the second time.
    """
    if not files:
        return DayLoad(Accounting())
    careful = False
    try:
        con.execute(helpers.stage_fast_sql(files))
        if _scalar(con, helpers.count_bad_sql()):
            careful = True
    except duckdb.Error as exc:
        log.info("read_json failed on %s (%s); staging line by line", received_day or files[0], str(exc).splitlines()[0])
        careful = True
    if careful:
        # only now pay for line numbers: the quarantine needs file and line of every bad row
        con.execute(helpers.stage_careful_sql(files))
    read = _scalar(con, f"select count(*) from {helpers.STAGE}")
    bad_rows = [tuple(row) for row in con.execute(helpers.bad_rows_sql()).fetchall()] if careful else []
    if bad_rows:
        con.execute(helpers.delete_bad_sql())
    con.execute("begin transaction")
    try:
        inserted = _scalar(
            con, helpers.insert_sql(table, received_day=received_day, origin_prefix=origin_prefix, load_id=load_id)
        )
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    con.execute(f"drop table if exists {helpers.STAGE}")
    counts = Accounting(read, inserted, len(bad_rows), read - inserted - len(bad_rows))
    return DayLoad(counts, bad_rows, careful)
