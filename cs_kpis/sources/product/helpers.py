"""SQL for loading Segment event files with DuckDB: pure string builders, tested without a database.

Two ways to load a batch: the fast one inserts straight from ``read_json`` into the table and deletes
the duplicates it inserted once the insert has committed (one parse, one write); it fails on any line that
cannot load. The careful one reads each file as text, splits it into numbered lines and parses them with
``json_valid``/``json_transform`` into a staging table, so a malformed line becomes a quarantine row with
its line number instead of an error. The careful way runs only for the received days where the fast way
fails.
"""

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from cs_kpis.sources.product import settings

STAGE = "_product_events_stage"


def sql_literal(value: str) -> str:
    """A single-quoted SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def file_list(files: Sequence[str]) -> str:
    """``['a', 'b']`` for DuckDB's multi-file readers."""
    return "[" + ", ".join(sql_literal(str(path)) for path in files) + "]"


def struct_spec() -> str:
    """``{'type': 'VARCHAR', ...}`` for read_json's columns."""
    return "{" + ", ".join(f"{sql_literal(k)}: {sql_literal(v)}" for k, v in settings.SEGMENT_FIELDS.items()) + "}"


def json_structure() -> str:
    """The JSON structure for json_transform, equivalent to :func:`struct_spec`."""
    parts = []
    for key, kind in settings.SEGMENT_FIELDS.items():
        if kind.startswith("STRUCT"):
            parts.append(f'"{key}": {{"groupId": "VARCHAR"}}')
        else:
            parts.append(f'"{key}": "{kind}"')
    return "{" + ", ".join(parts) + "}"


def _stage_columns(source: str) -> str:
    s = source
    return (
        f"{s}.messageId AS message_id, {s}.type AS type, {s}.userId AS user_id, "
        f"{s}.anonymousId AS anonymous_id, {s}.event AS event, {s}.timestamp AS timestamp, "
        f"{s}.originalTimestamp AS original_timestamp, {s}.sentAt AS sent_at, {s}.receivedAt AS received_at, "
        f"{s}.groupId AS group_id, {s}.context.groupId AS context_group_id, "
        f"{s}.properties AS properties, {s}.traits AS traits"
    )


def stage_fast_sql(files: Sequence[str]) -> str:
    """Stage every line of ``files`` with read_json; fails on a malformed line (then use the careful way)."""
    return f"""
        create or replace temp table {STAGE} as
        select filename as _file, null::bigint as _position, null::varchar as _raw, {_stage_columns('r')}
        from read_json({file_list(files)}, format = 'newline_delimited', columns = {struct_spec()},
                       filename = true) as r
    """


def stage_careful_sql(files: Sequence[str]) -> str:
    """Stage every line with its 0-based line number; malformed lines keep their text in ``_raw``."""
    return f"""
        create or replace temp table {STAGE} as
        with lines as (
            select filename as _file,
                   unnest(generate_series(0, len(parts) - 1)) as _position,
                   unnest(parts) as line
            from (select filename, string_split(rtrim(content, chr(10)), chr(10)) as parts
                  from read_text({file_list(files)}))
        ), parsed as (
            select _file, _position, line, json_valid(line) as ok,
                   case when json_valid(line) then try(json_transform(line, {sql_literal(json_structure())})) end as r
            from lines
        )
        select _file, _position, case when not ok or r is null then line end as _raw, {_stage_columns('r')}
        from parsed
    """


TIMESTAMP_COLUMNS = ("timestamp", "original_timestamp", "sent_at", "received_at")


def window_bounds(window: Any) -> tuple[str, str] | None:
    """``[first, last + 1 day)`` of a :class:`~cs_kpis.sources.common.contract.DateWindow` as SQL literals."""
    if window is None:
        return None
    return (sql_literal(f"{window.first.isoformat()} 00:00:00+00") + "::timestamptz",
            sql_literal(f"{(window.last + timedelta(days=1)).isoformat()} 00:00:00+00") + "::timestamptz")


def _json_size(properties: str, traits: str) -> str:
    return f"coalesce(strlen({properties}::varchar), 0) + coalesce(strlen({traits}::varchar), 0)"


def bad_reason_sql(window: Any = None) -> str:
    """A CASE expression giving the quarantine reason of a staged line, NULL for a good one."""
    checks = ["when _raw is not null then 'malformed JSON line'"]
    checks.append(f"when message_id is null or message_id = '' then 'missing primary key {settings.PRIMARY_KEY}'")
    checks.append(f"when {_json_size('properties', 'traits')} > {settings.MAX_LINE_BYTES} "
                  f"then 'oversized line: properties and traits exceed {settings.MAX_LINE_BYTES} bytes'")
    bounds = window_bounds(window)
    for field, column in zip(settings.TIMESTAMP_FIELDS, TIMESTAMP_COLUMNS, strict=True):
        checks.append(
            f"when {column} is not null and try_cast({column} as timestamptz) is null "
            f"then 'wrong type in {field}: not an ISO-8601 timestamp'"
        )
        if bounds:
            checks.append(
                f"when try_cast({column} as timestamptz) < {bounds[0]} or try_cast({column} as timestamptz) >= {bounds[1]} "
                f"then 'wrong date in {field}: outside the plausible window {window.first}..{window.last}'"
            )
    return "case " + " ".join(checks) + " end"


def bad_rows_sql(window: Any = None) -> str:
    """The staged lines that cannot load: file, line number, raw text or row as JSON, reason."""
    return f"""
        select _file, _position, coalesce(_raw, to_json(s)::varchar) as raw_text, {bad_reason_sql(window)} as reason
        from {STAGE} as s
        where ({bad_reason_sql(window)}) is not null
        order by _file, _position
    """


def create_table_sql(table: str) -> str:
    """The events table, created on first load."""
    columns = ", ".join(f"{name} {kind}" for name, kind in settings.TABLE_COLUMNS.items())
    return f"create table if not exists {table} ({columns})"


def delete_bad_sql(window: Any = None) -> str:
    """Drop the lines that cannot load from the stage, once they are on their way to quarantine."""
    return f"delete from {STAGE} where ({bad_reason_sql(window)}) is not null"


def received_day_expr(received_day: str | None) -> str:
    """The received day of a staged row: given, or read from its folder name (``.../<day>/part-*``)."""
    if received_day is not None:
        return f"{sql_literal(received_day)}::date"
    return r"regexp_extract(_file, '(\d{4}-\d{2}-\d{2})/part-[^/]*$', 1)::date"


def insert_sql(
    table: str, *, received_day: str | None, origin_prefix: str, load_id: str, origin: str | None = None
) -> str:
    """Insert the staged lines not loaded before: the first of each messageId in the day (stage order),
    and none whose messageId the table already holds (duplicates across days).

    Duplicates are ~1% of a day, so only they go through the min(rowid) grouping; the rest pass a
    cheap anti-join. This measured 2x faster than one grouping over all rows, and 5x faster than
    DISTINCT ON or a row_number() window.
    """
    duplicated = f"select message_id from {STAGE} group by message_id having count(*) > 1"
    # first in file then line order (not stage rowid: reading files in parallel need not keep it)
    first_of_duplicated = (
        f"select arg_min(rowid, _file || lpad(_position::varchar, 12, '0')) from {STAGE} "
        "group by message_id having count(*) > 1"
    )
    return f"""
        insert into {table}
        select message_id, type, user_id, anonymous_id, event,
               timestamp::timestamptz, original_timestamp::timestamptz, sent_at::timestamptz,
               received_at::timestamptz, group_id, context_group_id, properties, traits,
               {received_day_expr(received_day)},
               {sql_literal(origin) if origin is not None else f"replace(_file, {sql_literal(origin_prefix)}, '')"},
               {sql_literal(load_id)}
        from {STAGE} as s
        where (s.message_id not in ({duplicated}) or s.rowid in ({first_of_duplicated}))
        and not exists (select 1 from {table} as e where e.message_id = s.message_id)
    """


FILES = "_product_events_files"
"""temp table: one row per file of a batch with its origin and received day (joined on ``filename``)"""


def files_table_sql(files: Sequence[str], origins: Sequence[str], days: Sequence[str]) -> list[str]:
    """Statements (re)creating the :data:`FILES` temp table for a batch."""
    values = ", ".join(
        f"({sql_literal(str(f))}, {sql_literal(o)}, {sql_literal(d)}::date)"
        for f, o, d in zip(files, origins, days, strict=True)
    )
    return [
        f"create or replace temp table {FILES} (filename varchar, origin varchar, received_day date)",
        f"insert into {FILES} values {values}",
    ]


def _checked_timestamp(column: str, field: str, bounds: tuple[str, str] | None) -> str:
    cast = f"{column}::timestamptz"
    if bounds is None:
        return cast
    return (f"case when {cast} < {bounds[0]} or {cast} >= {bounds[1]} "
            f"then error('wrong date in {field}: outside the plausible window') else {cast} end")


def insert_direct_sql(table: str, files: Sequence[str], *, load_id: str, window: Any = None) -> str:
    """Insert every line of ``files`` straight from read_json, strictly: a malformed line, a missing
    messageId, a timestamp that does not cast or lies outside ``window``, or properties and traits larger
    than Segment's message limit make the statement fail (then the batch is split and the file with the
    bad line is read line by line).

    Nothing is deduplicated here; :func:`delete_duplicates_sql` does it once this insert has committed,
    so the files are parsed and written once, without a staging table.
    """
    pk = settings.PRIMARY_KEY
    bounds = window_bounds(window)
    stamps = ", ".join(
        _checked_timestamp(f"r.{field}", field, bounds) for field in settings.TIMESTAMP_FIELDS
    )
    return f"""
        insert into {table}
        select case when r.{pk} is null or r.{pk} = '' then error('missing primary key {pk}')
                    when {_json_size('r.properties', 'r.traits')} > {settings.MAX_LINE_BYTES}
                    then error('oversized line') else r.{pk} end,
               r.type, r.userId, r.anonymousId, r.event,
               {stamps}, r.groupId, r.context.groupId, r.properties, r.traits,
               f.received_day, f.origin, {sql_literal(load_id)}
        from read_json({file_list(files)}, format = 'newline_delimited', columns = {struct_spec()},
                       filename = true) as r
        join {FILES} as f on f.filename = r.filename
    """


def delete_duplicates_sql(table: str, *, load_id: str) -> str:
    """Delete the rows of the batch just inserted (load ``load_id``, files in :data:`FILES`) whose
    messageId an earlier row holds: a row of another batch or load (duplicates across days), or an
    earlier row of the batch (duplicates within it: the first in file order stays, file names sorting
    as received day then part; duplicates within one file are identical copies).

    The whole table is read once: the rows whose messageId the batch holds (``hits``: the batch itself and
    any earlier copies) are found from the batch's side, the batch's messageIds (a few million) being the
    hash table that one scan of the whole table probes, so a growing table is scanned, never hashed. Hashing
    every earlier row's messageId in each batch cost more as the table grew: on the large company's 59.7 M
    events (batches of about 2 GB of files) this way loads in 184.9 s and 4.5 GB, that way took 245.9 s and
    8.8 GB (same sitting, BENCHMARKS.md). ``hits`` is kept (materialized), and only the messageIds seen twice
    in it go through the window. Finding those ids first and then scanning the table again for their rows
    read the table twice whenever the batch had a duplicate (every night): 5.3-6.2 against 3.1 CPU s on the
    nightly's 14 k events and 60 M rows (BENCHMARKS.md "Product events on the nightly"). Rows outside the batch
    sort first, so an earlier row always wins; the batch is told apart by load id and file, not by rowid, so
    it holds whatever DuckDB does with row ids.
    """
    batch = f"_dlt_load_id = {sql_literal(load_id)} and _origin in (select origin from {FILES})"
    return f"""
        delete from {table}
        where rowid in (
            with hits as materialized (
                select rowid as row_id, message_id, _origin, ({batch}) as in_batch
                from {table}
                where message_id in (select message_id from {table} where {batch})
            ),
            ranked as (
                select row_id, in_batch,
                       row_number() over (partition by message_id order by in_batch, _origin, row_id) as n
                from hits
                where message_id in (select message_id from hits group by message_id having count(*) > 1)
            )
            select row_id from ranked where in_batch and n > 1)
    """
