"""The steps of an entity resource's pass, each small enough to test alone; ``entity_resource``
(cs_kpis/sources/common/entity.py) wires them:

    read         FilesRead / ApiRead: the (day, records) batches of the pending extract days or of the API
                 changes since the cursor; Numbered gives every record its ordinal
    validate     check_records with CheckAlone, or CheckShared when the pass also loads child tables: per
                 record, one Checked per table (its rows, or the Reject that quarantines it)
    per table, a Lane:
      quarantine the rejected records (a ``_quarantine`` row each)
      deduplicate the rest, one strategy per mode: DedupeByWinners (files: the key pass, winning_occurrences,
                 chose the occurrence that loads) or DedupeInMemory (API: pages cannot be re-read, so rows
                 wait by key until the end)
      emit         ArrowEmitter (Arrow tables of 50,000 rows) or RowEmitter (scd2, dlt's row path)

The validate step sees one record at a time and hands on per-record results, so a validator that checks a
whole batch at once (SQL over the pages) can take its place without changing read, deduplicate or emit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import dlt

from cs_kpis.sources import lake as lake_module
from cs_kpis.sources.common.accounting import Accounting
from cs_kpis.sources.common.arrow_rows import ArrowRows
from cs_kpis.sources.common.bookkeeping import (
    accounting_row,
    quarantine_row,
    with_accounting_hints,
    with_quarantine_hints,
)
from cs_kpis.sources.common.clock import api_extract_time
from cs_kpis.sources.common.contract import contract_change
from cs_kpis.sources.common.helpers import FieldTypes, Reject, get_path
from cs_kpis.sources.common.landing import KeyFields, extract_days, pending_days
from cs_kpis.sources.records import RawRecord

if TYPE_CHECKING:
    from cs_kpis.sources.common.entity import Entity

Rows = list[dict[str, Any]]
Batches = Iterable[tuple[str, Iterable[RawRecord]]]
"""(extract day, its records) for every day of a load"""


# ---- read ------------------------------------------------------------------------------------------------

class Numbered:
    """``(day, ordinal, record)`` for every record of ``batches``; ``count`` is how many came so far. Both passes
    over the files number records this way, so an ordinal names the same record in each."""

    def __init__(self, batches: Batches) -> None:
        self.batches = batches
        self.count = 0

    def __iter__(self) -> Iterator[tuple[str, int, RawRecord]]:
        for day, records in self.batches:
            for record in records:
                yield day, self.count, record
                self.count += 1


class FilesRead:
    """Files mode: the extract days after the last one loaded (``max_days`` at a time), read with ``reader``
    (landing_dir, folder, day) -> records; ``keys_reader`` may give the key pass each record's key fields only
    (:class:`cs_kpis.sources.common.landing.KeyFields`)."""

    def __init__(self, landing_dir: Path, folder: str, reader: Callable[..., Iterator[RawRecord]],
                 last_extract_day: str | None, max_days: int | None,
                 keys_reader: Callable[..., Iterator[RawRecord]] | None = None) -> None:
        self.landing_dir = landing_dir
        self.folder = folder
        self.reader = reader
        self.keys_reader = keys_reader or reader
        self.all_days = extract_days(landing_dir)
        self.days = pending_days(self.all_days, last_extract_day, max_days)
        self.boundary = _day_start(self.days[-1]) if self.days else None
        """scd2 validity: the start of the last extract day read"""

    def batches(self, keys_only: bool = False) -> Iterator[tuple[str, Iterator[RawRecord]]]:
        reader = self.keys_reader if keys_only else self.reader
        return ((day, reader(self.landing_dir, self.folder, day)) for day in self.days)

    def check_unchanged(self, system: str, name: str, first_read: int, second_read: int) -> None:
        """The second pass must read the records the key pass read: files that changed fail the load."""
        if first_read != second_read:
            raise RuntimeError(
                f"{system}/{name}: the landing files of {', '.join(self.days)} changed while loading "
                f"({first_read} records on the first read, {second_read} on the second); rerun the load")

    def save(self, state: dict[str, Any], lane: Lane) -> None:
        """The resource state after the load: the last extract day loaded and how many remain."""
        if self.days:
            state["last_extract_day"] = self.days[-1]
        state["pending_days"] = len(pending_days(self.all_days, state.get("last_extract_day")))


class ApiRead:
    """API mode: the objects changed since the cursor in resource state (``api_since``), re-reading a
    ``lookback_seconds`` window before it for rows the vendor committed late with an older stamp. The extract
    day is the UTC date the load ran (common/clock.py), as a file's is its folder's."""

    def __init__(self, reader: Callable[[Any, str, int | None], Iterator[RawRecord]], config: Any, entity: str,
                 since: int | None) -> None:
        self.moment = api_extract_time()
        self.days = [self.moment.date().isoformat()]
        self.boundary = self.moment
        """scd2 validity: the moment the load ran (two loads a day stay apart)"""
        self.reader = reader
        self.config = config
        self.entity = entity
        if since is not None:
            since = max(0, int(since) - int(getattr(config, "lookback_seconds", 0) or 0))
        self.since = since

    def batches(self) -> Iterator[tuple[str, Iterator[RawRecord]]]:
        return iter([(self.days[0], self.reader(self.config, self.entity, self.since))])

    def save(self, state: dict[str, Any], lane: Lane) -> None:
        """The next cursor: the latest stamp read, never moving back (the lookback window may hold only rows
        older than the last cursor)."""
        if lane.max_cursor is not None:
            state["api_since"] = max(int(lane.max_cursor), int(state.get("api_since") or 0))


def _day_start(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=UTC)


# ---- the key pass (files mode) ---------------------------------------------------------------------------

def record_key(spec: Entity, obj: dict[str, Any]) -> Any:
    """The key a record competes under: its parent id for child sets replaced as a whole, else its primary
    key read from the vendor object (top-level fields, which preparing a row never changes). The unit is
    the record: an entity's record prepares into exactly one row."""
    if spec.group_key is not None:
        return ("group", spec.group_key(obj))
    columns = spec.primary_key
    if len(columns) == 1:
        return (get_path(obj, columns[0]),)
    return tuple(get_path(obj, column) for column in columns)


def validate(spec: Entity, obj: dict[str, Any]) -> Rows:
    """The contract check, then the entity's own preparation: the rows of a record, or Reject."""
    if spec.contract is not None:
        spec.contract(obj)
    return spec.prepare(obj)


@dataclass
class Winners:
    """Which occurrence of each key loads: the first or the last *valid* one by arrival (``keep``).

    The key pass only reads keys, and validates just the repeated occurrences (a few percent of the
    records): a key seen once loads if its record is valid, which the second pass finds out anyway.
    """

    keep: str
    first: dict[Any, int] = field(default_factory=dict)
    """key -> ordinal of its first occurrence"""
    later: dict[Any, int] = field(default_factory=dict)
    """key -> the valid occurrence after the first that wins over it: the last one (keep latest), or the
    first one, which loads only if the first occurrence turns out invalid (keep first)"""
    failed_first: set[Any] = field(default_factory=set)
    """second pass: keys whose first occurrence was rejected"""

    def rejected(self, key: Any, ordinal: int) -> None:
        """Second pass: the record at ``ordinal`` was rejected (quarantined)."""
        if self.first.get(key) == ordinal:
            self.failed_first.add(key)

    def wins(self, key: Any, ordinal: int) -> bool:
        """Second pass: does the valid record at ``ordinal`` load?"""
        if self.keep == "first":
            return ordinal == self.first.get(key) or (key in self.failed_first and ordinal == self.later.get(key))
        return ordinal == self.later.get(key, self.first.get(key))


def winning_occurrences(specs: tuple[Entity, ...], records: Iterable[tuple[str, int, RawRecord]]) -> list[Winners]:
    """The key pass over re-readable input: which occurrence of each key loads, for each of ``specs`` (a
    parent and the children its pass loads, all reading the same records). Unreadable records are skipped
    here; the second pass quarantines them."""
    all_winners = [Winners(one.keep) for one in specs]
    for _day, ordinal, record in records:
        obj = record.obj
        if obj is None:
            continue
        for one, winners in zip(specs, all_winners, strict=True):
            key = record_key(one, obj)
            if key not in winners.first:
                winners.first[key] = ordinal
                continue
            if one.keep == "first" and key in winners.later:
                continue
            if isinstance(obj, KeyFields):
                obj = obj.load()  # a repeated key: the whole record decides whether it is valid
            try:
                validate(one, obj)
            except Reject:
                continue
            winners.later[key] = ordinal
    return all_winners


# ---- validate --------------------------------------------------------------------------------------------

class Checked(NamedTuple):
    """One record after validation, for one table: its prepared rows, or the Reject that quarantines it."""

    day: str
    ordinal: int
    record: RawRecord
    rows: Rows | None
    error: Reject | None


Outcome = tuple[Rows | None, Reject | None]
"""a record's result for one table: (rows, None) or (None, the Reject)"""


def type_check(spec: Entity, types: FieldTypes, obj: dict[str, Any], where: str) -> None:
    """Reject a record whose fields change the JSON types learned so far (``types.known``, in resource state)."""
    if spec.type_checked is None:
        types.check(obj, where)
        return
    for checked in spec.type_checked(obj):
        types.check(checked, where)


def _where(record: RawRecord) -> str:
    return f"{record.origin} (position {record.position})"


class CheckAlone:
    """One table's check of a parsed record: contract, preparation, type check."""

    tables = 1

    def __init__(self, spec: Entity, field_types: dict[str, str]) -> None:
        self.spec = spec
        self.field_types = field_types
        self.types = FieldTypes(field_types, spec.json_paths)

    def __call__(self, record: RawRecord) -> list[Outcome]:
        try:
            rows = validate(self.spec, record.obj)
            type_check(self.spec, self.types, record.obj, _where(record))
        except Reject as exc:
            return [(None, exc)]
        return [(rows, None)]


class CheckShared:
    """The check of a parent record whose pass also loads its children: outcomes for the parent, then for each
    child. The contract (the parent's, for all) is checked once; the type check once for the parent and every
    child sharing its field types (:meth:`ChildFeed.share`)."""

    def __init__(self, spec: Entity, field_types: dict[str, str], feeds: list[ChildFeed]) -> None:
        self.spec = spec
        self.field_types = field_types
        self.types = FieldTypes(field_types, spec.json_paths)
        self.feeds = feeds
        self.tables = 1 + len(feeds)

    def __call__(self, record: RawRecord) -> list[Outcome]:
        spec, obj = self.spec, record.obj
        contract_error = None
        try:
            if spec.contract is not None:
                spec.contract(obj)
        except Reject as exc:
            contract_error = exc
        rows, error = None, contract_error
        if error is None:
            try:
                rows = spec.prepare(obj)
            except Reject as exc:
                error = exc
        # the parent's preparation is done: a child that would repeat it is told its outcome instead
        parent_prepared = None if contract_error is not None else error is None
        children = [feed.prepare(obj, contract_error, parent_prepared) for feed in self.feeds]
        for feed, (_, child_error) in zip(self.feeds, children, strict=True):
            if feed.shared and (child_error is None) != (error is None):
                feed.unshare()  # one of them learns from this record's types, the other does not
        type_error = None
        if error is None:
            try:
                type_check(spec, self.types, obj, _where(record))
            except Reject as exc:
                error = type_error = exc
        outcomes: list[Outcome] = [(None, error) if error is not None else (rows, None)]
        for feed, (child_rows, child_error) in zip(self.feeds, children, strict=True):
            if child_error is None:
                child_error = type_error if feed.shared else feed.type_error(obj, _where(record))
            outcomes.append((None, child_error) if child_error is not None else (child_rows, None))
        return outcomes


def check_records(records: Iterable[tuple[str, int, RawRecord]],
                  check: CheckAlone | CheckShared) -> Iterator[list[Checked]]:
    """Per record, one :class:`Checked` per table of ``check`` (parent first). An unparsed record (a reader's
    ``obj=None``) is rejected for every table with the reader's reason."""
    for day, ordinal, record in records:
        if record.obj is None:
            unparsed = Checked(day, ordinal, record, None, Reject(record.error or "unparseable"))
            yield [unparsed] * check.tables
            continue
        yield [Checked(day, ordinal, record, rows, error) for rows, error in check(record)]


# ---- deduplicate -----------------------------------------------------------------------------------------

class DedupeByWinners:
    """Files mode: the occurrence the key pass chose loads (:class:`Winners`); nothing waits in memory."""

    def __init__(self, spec: Entity, winners: Winners, counts: Accounting) -> None:
        self.spec = spec
        self.winners = winners
        self.counts = counts

    def rejected(self, item: Checked) -> None:
        self.winners.rejected(record_key(self.spec, item.record.obj), item.ordinal)

    def take(self, item: Checked) -> Rows:
        """The rows of a valid record that load now (none when another occurrence of its key wins)."""
        if self.winners.wins(record_key(self.spec, item.record.obj), item.ordinal):
            return item.rows
        self.counts.rows_deduplicated += len(item.rows)
        return []

    def rest(self) -> Iterator[dict[str, Any]]:
        return iter(())


class DedupeInMemory:
    """API mode: pages cannot be re-read cheaply, so rows wait by key until the end of the load. ``keep``
    latest: a later version replaces the earlier one and takes its arrival place; first: the first one stays.
    A child set (``group_key``) is replaced as a whole by its parent's later version."""

    def __init__(self, spec: Entity, counts: Accounting) -> None:
        self.spec = spec
        self.counts = counts
        self.buffer: dict[Any, Rows] = {}

    def rejected(self, item: Checked) -> None:
        pass

    def take(self, item: Checked) -> Rows:
        spec, buffer, rows = self.spec, self.buffer, item.rows
        if spec.group_key is not None:
            key = ("group", spec.group_key(item.record.obj))
            if key in buffer:
                if spec.keep == "first":
                    self.counts.rows_deduplicated += len(rows)
                    return []
                self.counts.rows_deduplicated += len(buffer[key])
            buffer[key] = rows
            return []
        for row in rows:
            key = tuple(get_path(row, column) for column in spec.primary_key)
            if key in buffer:
                self.counts.rows_deduplicated += 1
                if spec.keep == "first":
                    continue
                del buffer[key]  # re-insert so a later version keeps arrival order
            buffer[key] = [row]
        return []

    def rest(self) -> Iterator[dict[str, Any]]:
        for rows in self.buffer.values():
            yield from rows


# ---- emit ------------------------------------------------------------------------------------------------

class ArrowEmitter:
    """Rows to dlt as Arrow tables (:class:`ArrowRows`), each wrapped by ``wrap(table, json column hints)``;
    by default the hints go on the resource's own table."""

    def __init__(self, table_name: str, load_id: str | None,
                 wrap: Callable[[Any, dict[str, Any]], Any] | None = None, batch_rows: int = 50_000,
                 stored_types: Callable[[str], Any] | None = None) -> None:
        self.arrow = ArrowRows(table_name, load_id, batch_rows, stored_types)
        self.wrap = wrap or _own_table

    def emit(self, row: dict[str, Any]) -> Iterator[Any]:
        table = self.arrow.add(row)
        if table is not None:
            yield self.wrap(table, self.arrow.hints())

    def flush(self) -> Iterator[Any]:
        table = self.arrow.flush()
        if table is not None:
            yield self.wrap(table, self.arrow.hints())


def _own_table(table: Any, hints: dict[str, Any]) -> Any:
    return dlt.mark.with_hints(table, dlt.mark.make_hints(columns=hints)) if hints else table


class RowEmitter:
    """scd2 rows on dlt's row path, where dlt computes the version hashes. The validity boundary
    (``boundary``) goes with the first row as a hint; on the lake, which appends, with every row as a column
    (cs_kpis/sources/lake.py reads the versions back)."""

    def __init__(self, spec: Entity, boundary: datetime | None, lake: bool) -> None:
        self.spec = spec
        self.boundary = boundary
        self.lake = lake
        self.first = True

    def emit(self, row: dict[str, Any]) -> Iterator[Any]:
        if self.lake:
            row[lake_module.VALID_FROM] = self.boundary
        elif self.first and self.boundary is not None:
            self.first = False
            row = dlt.mark.with_hints(row, dlt.mark.make_hints(
                write_disposition={**self.spec.write_disposition, "boundary_timestamp": self.boundary},
                merge_key=list(self.spec.merge_key) if self.spec.merge_key else None,
            ))
        yield row

    def flush(self) -> Iterator[Any]:
        return iter(())


# ---- one table's side of the pass ------------------------------------------------------------------------

class Lane:
    """One raw table's side of a pass: quarantine what was rejected, add the lineage columns, deduplicate,
    emit; with its own counts, the field rejections that decide a contract change, and the API cursor."""

    def __init__(self, system: str, spec: Entity, dedupe: DedupeByWinners | DedupeInMemory,
                 emitter: ArrowEmitter | RowEmitter, counts: Accounting) -> None:
        self.system = system
        self.spec = spec
        self.dedupe = dedupe
        self.emitter = emitter
        self.counts = counts
        self.field_rejects: dict[str, list[str]] = {}
        """field -> where each record rejected for it came from (``file (position n)``)"""
        self.records_read = 0
        self.max_cursor: float | None = None
        """API mode: the latest ``spec.cursor`` stamp read (Unix seconds)"""
        self._day: str | None = None
        self._extract_day: date | None = None
        """the last extract day stamped, as text and as a date"""

    def take(self, item: Checked) -> Iterator[Any]:
        record, counts = item.record, self.counts
        if item.error is not None:
            read = record.records if record.obj is None else 1
            counts.rows_read += read
            counts.rows_quarantined += read
            self.records_read += read
            if item.error.field:
                self.field_rejects.setdefault(item.error.field, []).append(_where(record))
            if record.obj is not None:
                self.dedupe.rejected(item)
            yield with_quarantine_hints(
                quarantine_row(self.system, self.spec.name, record, str(item.error), item.day, item.error.field))
            return
        self.records_read += 1
        counts.rows_read += len(item.rows)
        self.stamp(item)
        for row in self.dedupe.take(item):
            counts.rows_loaded += 1
            yield from self.emitter.emit(row)

    def stamp(self, item: Checked) -> None:
        """Lineage columns (``_extract_day``, ``_origin``) on a valid record's rows; the cursor moves on."""
        spec = self.spec
        if item.day != self._day:
            self._day, self._extract_day = item.day, date.fromisoformat(item.day) if item.day else None
        extract_day = self._extract_day
        for row in item.rows:
            if spec.lineage_columns:
                row["_extract_day"] = extract_day
                row["_origin"] = item.record.origin
            if spec.cursor and isinstance(row.get(spec.cursor), datetime):
                stamp = row[spec.cursor].timestamp()
                self.max_cursor = stamp if self.max_cursor is None else max(self.max_cursor, stamp)

    def contract_stop(self) -> str | None:
        """The contract-change message when most records failed one field, else None."""
        return contract_change(f"{self.system}/{self.spec.name}", self.field_rejects, self.records_read)

    def flush(self) -> Iterator[Any]:
        """The rows that waited for the end of the load, then the emitter's last batch."""
        for row in self.dedupe.rest():
            self.counts.rows_loaded += 1
            yield from self.emitter.emit(row)
        yield from self.emitter.flush()

    def finish(self, state: dict[str, Any], read: FilesRead | ApiRead) -> Iterator[Any]:
        """The resource state after a successful load, and the ``_row_accounting`` row when anything was read."""
        read.save(state, self)
        state["last_run"] = {**self.counts.as_dict(), "extract_days": list(read.days)}
        if self.counts.rows_read:
            yield with_accounting_hints(accounting_row(self.system, self.spec.name, self.counts, list(read.days)))


# ---- child tables loaded by their parent's pass ----------------------------------------------------------

def table_hints(system: str, spec: Entity, columns: dict[str, Any] | None = None) -> dict[str, Any]:
    """The table hints of ``spec``'s raw table, for rows another resource routes to it."""
    return dlt.mark.make_hints(
        table_name=f"{system}__{spec.name}",
        write_disposition=spec.write_disposition,
        primary_key=list(spec.primary_key),
        merge_key=list(spec.merge_key) if spec.merge_key else [],
        columns={**spec.column_hints(), **(columns or {})},
    )


class ChildFeed:
    """A child table loaded by its parent's pass over the files: the steps the child's own resource takes
    (its contract is its parent's, checked once for both; its own preparation, type check, winners, quarantine
    rows, accounting and resource state: ``state``, the child resource's), with its rows routed to its table.
    ``lane`` is set once the key pass has found the child's winners."""

    def __init__(self, system: str, spec: Entity, load_id: str | None, state: dict[str, Any]) -> None:
        self.system = system
        self.spec = spec
        self.load_id = load_id
        self.state = state
        self.field_types: dict[str, str] = self.state.setdefault("field_types", {})
        self.shared = False
        self.lane: Lane | None = None
        self._types: FieldTypes | None = None

    def start(self, winners: Winners) -> Lane:
        counts = Accounting()
        emitter = ArrowEmitter(f"{self.system}__{self.spec.name}", self.load_id, self._wrap)
        self.lane = Lane(self.system, self.spec, DedupeByWinners(self.spec, winners, counts), emitter, counts)
        return self.lane

    def _wrap(self, table: Any, hints: dict[str, Any]) -> Any:
        return dlt.mark.with_hints(table, table_hints(self.system, self.spec, hints), create_table_variant=True)

    def share(self, parent: Entity, parent_types: dict[str, str]) -> None:
        """Share the parent's field types while both have learned the same (same checks, same types so
        far): one type check then serves both tables, until a record loads in one and not the other."""
        if (self.field_types == parent_types and self.spec.json_paths == parent.json_paths
                and same_check(self.spec.type_checked, parent.type_checked)):
            self.field_types = self.state["field_types"] = parent_types
            self.shared = True

    def unshare(self) -> None:
        self.field_types = self.state["field_types"] = dict(self.field_types)
        self.shared = False

    def prepare(self, obj: dict[str, Any], contract_error: Reject | None,
                parent_prepared: bool | None = None) -> Outcome:
        """The child's rows, or the Reject. ``parent_prepared`` (the parent's pass knows it): whether the
        parent's own preparation accepted ``obj``; with it, a child whose ``prepare`` would repeat that
        preparation (``prepare_after_parent``) gets the same result without it: no rows when it rejected."""
        try:
            if contract_error is not None:
                raise contract_error
            after_parent = self.spec.prepare_after_parent
            if parent_prepared is None or after_parent is None:
                return self.spec.prepare(obj), None
            return (after_parent(obj) if parent_prepared else []), None
        except Reject as exc:
            return None, exc

    def type_error(self, obj: dict[str, Any], where: str) -> Reject | None:
        if self._types is None or self._types.known is not self.field_types:
            self._types = FieldTypes(self.field_types, self.spec.json_paths)  # shared or unshared since
        try:
            type_check(self.spec, self._types, obj, where)
        except Reject as exc:
            return exc
        return None


def same_check(one: Any, other: Any) -> bool:
    """Whether two ``type_checked`` functions give the same objects: the same function, or partials of the
    same function with the same arguments."""
    if one is other:
        return True
    return (isinstance(one, partial) and isinstance(other, partial) and one.func is other.func
            and one.args == other.args and one.keywords == other.keywords)
