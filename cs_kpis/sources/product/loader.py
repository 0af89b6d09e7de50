"""Loading a day of Segment events into DuckDB in set-based SQL (dlt row by row is ~100x slower)."""

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb

from cs_kpis.sources.common.accounting import Accounting
from cs_kpis.sources.product import helpers

log = logging.getLogger(__name__)

_DAY = re.compile(r"(\d{4}-\d{2}-\d{2})/part-[^/]*$")


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


def _received_day_of(path: str) -> str:
    match = _DAY.search(path)
    if match is None:
        raise ValueError(f"no received day (.../<YYYY-MM-DD>/part-*) in {path}")
    return match.group(1)


def load_day(
    con: Any,
    table: str,
    files: Sequence[str],
    *,
    received_day: str | None,
    origin_prefix: str,
    load_id: str,
) -> DayLoad:
    """Insert the new, valid events of ``files`` into ``table`` in one transaction.

    Deduplicates on messageId within the batch (the first occurrence in file and line order stays)
    and against the rows already in the table, so loading the same files twice inserts nothing the
    second time. ``received_day`` None reads it from each file's folder name.

    The fast way inserts straight from ``read_json`` and then deletes the duplicates it inserted,
    both in one transaction: one parse, one write, no staging table. Any line that cannot load makes
    it fail and roll back; then the careful way stages the lines with their line numbers, so that
    the bad ones go to quarantine with file and line.
    """
    if not files:
        return DayLoad(Accounting())
    files = [str(f) for f in files]
    origins = [f.replace(origin_prefix, "", 1) if f.startswith(origin_prefix) else f for f in files]
    days = [received_day or _received_day_of(f) for f in files]
    try:
        con.execute("begin transaction")
        try:
            for sql in helpers.files_table_sql(files, origins, days):
                con.execute(sql)
            read = _scalar(con, helpers.insert_direct_sql(table, files, load_id=load_id))
            duplicates = _scalar(con, helpers.delete_duplicates_sql(table, load_id=load_id))
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
        return DayLoad(Accounting(read, read - duplicates, 0, duplicates))
    except duckdb.Error as exc:
        log.info("fast load failed on %s (%s); staging line by line", received_day or files[0],
                 str(exc).splitlines()[0])
    finally:
        con.execute(f"drop table if exists {helpers.FILES}")
    if len(set(days)) > 1:
        # find the day(s) with the bad line(s): the others still load the fast way
        total = DayLoad(Accounting())
        for day in sorted(set(days)):
            part = load_day(con, table, [f for f, d in zip(files, days, strict=True) if d == day],
                            received_day=received_day, origin_prefix=origin_prefix, load_id=load_id)
            total = DayLoad(total.counts.add(part.counts), total.bad_rows + part.bad_rows,
                            total.careful or part.careful)
        return total
    return _load_careful(con, table, files, received_day=received_day, origin_prefix=origin_prefix,
                         load_id=load_id)


def _load_careful(
    con: Any, table: str, files: Sequence[str], *, received_day: str | None, origin_prefix: str, load_id: str
) -> DayLoad:
    """Stage every line with its line number, set the bad ones aside for quarantine, insert the rest."""
    con.execute(helpers.stage_careful_sql(files))
    read = _scalar(con, f"select count(*) from {helpers.STAGE}")
    bad_rows = [tuple(row) for row in con.execute(helpers.bad_rows_sql()).fetchall()]
    if bad_rows:
        con.execute(helpers.delete_bad_sql())
    con.execute("begin transaction")
    try:
        inserted = _scalar(
            con, helpers.insert_sql(table, received_day=received_day, origin_prefix=origin_prefix, load_id=load_id)
        )
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    con.execute(f"drop table if exists {helpers.STAGE}")
    counts = Accounting(read, inserted, len(bad_rows), read - inserted - len(bad_rows))
    return DayLoad(counts, bad_rows, careful=True)
