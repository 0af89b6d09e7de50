"""Loading a day of Segment events into DuckDB in set-based SQL (dlt row by row is ~100x slower)."""

import logging
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import orjson

from cs_kpis.sources.common.accounting import Accounting
from cs_kpis.sources.common.contract import DateWindow
from cs_kpis.sources.common.helpers import Reject, parse_iso
from cs_kpis.sources.common.landing import BOM
from cs_kpis.sources.product import helpers, settings

log = logging.getLogger(__name__)

_DAY = re.compile(r"(\d{4}-\d{2}-\d{2})/part-[^/]*$")
MAX_RAW_TEXT = 100_000
"""characters of a bad line kept in ``_quarantine.raw_text`` (an oversized line is cut there)"""


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
    window: DateWindow | None = None,
    scratch: str | None = None,
) -> DayLoad:
    """Insert the new, valid events of ``files`` into ``table``.

    Deduplicates on messageId within the batch (the first occurrence in file and line order stays)
    and against the rows already in the table, so loading the same files twice inserts nothing the
    second time. ``received_day`` None reads it from each file's folder name. ``window`` bounds the
    event timestamps (a line outside it is quarantined).

    The fast way inserts straight from ``read_json`` and, once that has committed, deletes the duplicates
    it inserted: one parse, one write, no staging table. Any line that cannot load makes the insert
    fail and roll back; then the batch is split (by received day, then by file) and the parts load
    the fast way again, so only the file holding the bad line is treated differently: it is read line by
    line in Python (:func:`scrub_file`), its bad lines set aside for quarantine with their line numbers
    (invalid UTF-8, truncated or malformed JSON, not an object, oversized, no messageId, a timestamp that
    does not parse or lies outside the window), and its good lines load the fast way from a clean copy.
    """
    if not files:
        return DayLoad(Accounting())
    files = [str(f) for f in files]
    origins = [f.replace(origin_prefix, "", 1) if f.startswith(origin_prefix) else f for f in files]
    days = [received_day or _received_day_of(f) for f in files]
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        return _load(con, table, files, origins, days, load_id, window, tmp)


def _load(
    con: Any, table: str, files: list[str], origins: list[str], days: list[str], load_id: str,
    window: DateWindow | None, tmp: str,
) -> DayLoad:
    try:
        return DayLoad(_insert_fast(con, table, files, origins, days, load_id, window))
    except duckdb.Error as exc:
        log.info("fast load failed on %s (%s); splitting the batch", files[0], str(exc).splitlines()[0])
    if len(files) > 1:
        # find the file(s) with the bad line(s) by halving: the batch in two halves of its received days
        # (of its files, for one day), oldest first, so that the first of duplicates still wins; a good
        # half loads in one fast insert, so a bad line costs about two extra parses of its batch
        order = sorted(range(len(files)), key=lambda i: (days[i], files[i]))
        distinct = sorted(set(days))
        if len(distinct) > 1:
            early = set(distinct[: len(distinct) // 2])
            parts = [[i for i in order if days[i] in early], [i for i in order if days[i] not in early]]
        else:
            parts = [order[: len(order) // 2], order[len(order) // 2:]]
        total = DayLoad(Accounting())
        for indexes in parts:
            part = _load(con, table, [files[i] for i in indexes], [origins[i] for i in indexes],
                         [days[i] for i in indexes], load_id, window, tmp)
            total = DayLoad(total.counts.add(part.counts), total.bad_rows + part.bad_rows,
                            total.careful or part.careful)
        return total
    return _load_scrubbed(con, table, files[0], origins[0], days[0], load_id, window, tmp)


def _insert_fast(
    con: Any, table: str, files: list[str], origins: list[str], days: list[str], load_id: str,
    window: DateWindow | None,
) -> Accounting:
    try:
        con.execute("begin transaction")
        try:
            for sql in helpers.files_table_sql(files, origins, days):
                con.execute(sql)
            read = _scalar(con, helpers.insert_direct_sql(table, files, load_id=load_id, window=window))
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
        # the duplicates are deleted once the insert has committed: deleting rows that the open transaction
        # inserted made its commit rewrite the whole batch (a third of the load's CPU, BENCHMARKS.md
        # "Product events: the duplicate delete after the commit"). A run stopped in between leaves rows of a
        # load that never completes, which the next run discards before loading the same days again.
        try:
            duplicates = _scalar(con, helpers.delete_duplicates_sql(table, load_id=load_id))
        except duckdb.Error as exc:
            # not a bad line: the batch is in, so it must not be split and loaded again
            raise RuntimeError(f"deleting the duplicates of the batch from {files[0]} failed: {exc}") from exc
    finally:
        con.execute(f"drop table if exists {helpers.FILES}")
    return Accounting(read, read - duplicates, 0, duplicates)


def _load_scrubbed(
    con: Any, table: str, path: str, origin: str, day: str, load_id: str, window: DateWindow | None, tmp: str
) -> DayLoad:
    """One file with bad lines: quarantine them, load the good ones from a clean copy (fast, or careful
    when DuckDB still refuses a line Python accepted)."""
    clean = str(Path(tmp) / f"clean-{abs(hash(path))}.jsonl")
    read, line_numbers, bad_rows = scrub_file(path, clean, window)
    bad_rows = [(origin, position, raw, reason) for position, raw, reason in bad_rows]
    if not line_numbers:
        return DayLoad(Accounting(read, 0, len(bad_rows), 0), bad_rows, careful=True)
    try:
        counts = _insert_fast(con, table, [clean], [origin], [day], load_id, window)
        return DayLoad(Accounting(read, counts.rows_loaded, len(bad_rows), counts.rows_deduplicated),
                       bad_rows, careful=True)
    except duckdb.Error as exc:
        log.info("fast load of the clean lines of %s failed (%s); staging line by line", origin,
                 str(exc).splitlines()[0])
    careful = _load_careful(con, table, [clean], received_day=day, origin=origin, load_id=load_id, window=window)
    more = [(origin, line_numbers[position], raw, reason) for _, position, raw, reason in careful.bad_rows]
    counts = careful.counts
    return DayLoad(Accounting(read, counts.rows_loaded, len(bad_rows) + len(more), counts.rows_deduplicated),
                   bad_rows + more, careful=True)


def scrub_file(path: str, clean: str, window: DateWindow | None) -> tuple[int, list[int], list[tuple[int, str, str]]]:
    """Split ``path`` into its good lines (written to ``clean``) and its bad ones.

    Returns the number of lines read (blank lines are not events, as for read_json), the 0-based line
    number of each line written to ``clean``, and (line number, raw text, reason) of each bad line. A
    byte-order mark and CRLF line ends are accepted.
    """
    data = Path(path).read_bytes()
    data = data.removeprefix(BOM)
    read, kept, bad = 0, [], []
    with open(clean, "wb") as out:
        for number, line in enumerate(data.split(b"\n")):
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line.strip():
                continue
            read += 1
            reason = line_problem(line, window)
            if reason is None:
                out.write(line + b"\n")
                kept.append(number)
            else:
                bad.append((number, line[:MAX_RAW_TEXT].decode("utf-8", errors="replace"), reason))
    return read, kept, bad


def line_problem(line: bytes, window: DateWindow | None) -> str | None:
    """Why one event line cannot load, or None: the same rules as the fast insert's checks."""
    if len(line) > settings.MAX_LINE_BYTES:
        return f"oversized line: {len(line):,} bytes, Segment's limit is {settings.MAX_LINE_BYTES:,}"
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"line is not valid UTF-8 (byte {exc.start})"
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        return f"malformed JSON line: {exc}"
    if not isinstance(obj, dict):
        return "line is not a JSON object"
    message_id = obj.get(settings.PRIMARY_KEY)
    if message_id is None or message_id == "":
        return f"missing primary key {settings.PRIMARY_KEY}"
    context = obj.get("context")
    if context is not None and not isinstance(context, dict):
        return "wrong type in context: not an object"
    for name in settings.TIMESTAMP_FIELDS:
        value = obj.get(name)
        if value is None:
            continue
        try:
            stamp = parse_iso(value)
        except Reject:
            return f"wrong type in {name}: not an ISO-8601 timestamp"
        if window is not None and not window.first <= stamp.date() <= window.last:
            return f"wrong date in {name}: {stamp.date()} outside the plausible window {window.first}..{window.last}"
    return None


def _load_careful(
    con: Any, table: str, files: Sequence[str], *, received_day: str | None, origin: str | None = None,
    origin_prefix: str = "", load_id: str, window: DateWindow | None = None,
) -> DayLoad:
    """Stage every line with its line number, set the bad ones aside for quarantine, insert the rest."""
    con.execute(helpers.stage_careful_sql(files))
    read = _scalar(con, f"select count(*) from {helpers.STAGE}")
    bad_rows = [tuple(row) for row in con.execute(helpers.bad_rows_sql(window)).fetchall()]
    if bad_rows:
        con.execute(helpers.delete_bad_sql(window))
    con.execute("begin transaction")
    try:
        inserted = _scalar(
            con, helpers.insert_sql(table, received_day=received_day, origin_prefix=origin_prefix,
                                    load_id=load_id, origin=origin)
        )
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    con.execute(f"drop table if exists {helpers.STAGE}")
    counts = Accounting(read, inserted, len(bad_rows), read - inserted - len(bad_rows))
    return DayLoad(counts, bad_rows, careful=True)
