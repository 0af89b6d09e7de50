"""The generic entity resource: read records, validate, quarantine, deduplicate, account, yield rows.

Every entity of every system goes through :func:`entity_resource`, so the rules are the same
everywhere: a record that cannot load (a declared field that does not fit its contract, a field whose
type differs from earlier records) goes to ``_quarantine`` with its field and reason, and the rest loads;
only a contract change (one field failing in most records of the batch) stops the load, with an error
naming the field, the files and the share; the counts always balance.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path
from typing import Any

import dlt

from cs_kpis.sources import lake as lake_module
from cs_kpis.sources.common.accounting import Accounting
from cs_kpis.sources.common.arrow_rows import ArrowRows
from cs_kpis.sources.common.clock import api_extract_time
from cs_kpis.sources.common.contract import contract_change
from cs_kpis.sources.common.helpers import Reject, check_field_types, get_path, to_raw_text
from cs_kpis.sources.common.landing import KeyFields, extract_days, pending_days
from cs_kpis.sources.records import RawRecord

QUARANTINE_TABLE = "_quarantine"
"""one table for all systems, in the raw dataset"""
ACCOUNTING_TABLE = "_row_accounting"
"""one row per resource and load: read, loaded, quarantined, deduplicated"""

QUARANTINE_COLUMNS: dict[str, dict[str, Any]] = {
    "source": {"data_type": "text", "nullable": False},
    "entity": {"data_type": "text", "nullable": False},
    "origin": {"data_type": "text"},
    "position": {"data_type": "bigint"},
    "field": {"data_type": "text"},
    "reason": {"data_type": "text"},
    "records": {"data_type": "bigint"},
    "raw_text": {"data_type": "text"},
    "extract_day": {"data_type": "date"},
    "loaded_at": {"data_type": "timestamp"},
}
ACCOUNTING_COLUMNS: dict[str, dict[str, Any]] = {
    "source": {"data_type": "text", "nullable": False},
    "entity": {"data_type": "text", "nullable": False},
    "extract_days": {"data_type": "json"},
    "rows_read": {"data_type": "bigint"},
    "rows_loaded": {"data_type": "bigint"},
    "rows_quarantined": {"data_type": "bigint"},
    "rows_deduplicated": {"data_type": "bigint"},
    "status": {"data_type": "text"},
    "error": {"data_type": "text"},
    "loaded_at": {"data_type": "timestamp"},
}

FilesReader = Callable[[Path, str, str], Iterator[RawRecord]]
"""(landing_dir, entity, extract_day) -> records of that day's parts"""
ApiReader = Callable[[Any, str, int | None], Iterator[RawRecord]]
"""(config, entity, since) -> records, the api.py signature"""


@dataclass(frozen=True)
class Entity:
    """How one vendor object type becomes rows of one raw table."""

    name: str
    """resource name; the table is ``<system>__<name>``"""
    reads: str
    """the landing folder (and API entity) it reads: a child reads its parent's objects"""
    primary_key: tuple[str, ...]
    """column names of the prepared rows (vendor names, dlt normalizes them)"""
    prepare: Callable[[dict[str, Any]], list[dict[str, Any]]]
    """vendor object -> rows (one for an entity, n for a child); raises Reject to quarantine"""
    write_disposition: Any = "merge"
    merge_key: tuple[str, ...] | None = None
    group_key: Callable[[dict[str, Any]], Any] | None = None
    """children: rows are replaced per parent, so dedup keeps the latest parent's whole set"""
    keep: str = "latest"
    """"latest" (entities: a later version wins) or "first" (immutable events)"""
    json_paths: frozenset[str] = frozenset()
    """vendor paths kept as one JSON column; the type check does not look inside them"""
    type_checked: Callable[[dict[str, Any]], list[dict[str, Any]]] | None = None
    """which raw objects the type check sees (children: the items); default the object itself"""
    cursor: str | None = None
    """API mode: prepared column (a datetime) whose maximum becomes the next ``since``"""
    columns: dict[str, Any] = field(default_factory=dict)
    lineage_columns: bool = True
    """add ``_extract_day`` and ``_origin``; off for scd2, where they would make every row a new version"""
    contract: Callable[[dict[str, Any]], None] | None = None
    """checks the declared fields of the vendor object (:mod:`cs_kpis.sources.common.contract`); raises
    Reject naming the field. A child entity checks its parent's object, so both quarantine it together"""
    materialize_empty: bool = False
    """create the table (with the ``columns`` hints) even when no object ever comes: an optional entity"""
    children: tuple["Entity", ...] = ()
    """child entities that read this entity's objects (``reads`` the same folder): in files mode, when both
    resources run in the same load, this resource's single pass over the files also loads their tables, so
    each file is parsed once per pass instead of once per table (:func:`_parent_feeds`)"""
    parent: str | None = None
    """a child entity: the resource name of the entity whose pass may load this table"""

    @property
    def is_scd2(self) -> bool:
        return isinstance(self.write_disposition, dict) and self.write_disposition.get("strategy") == "scd2"


def quarantine_row(
    system: str, entity: str, record: RawRecord, reason: str, day: str | None, field: str | None = None
) -> dict[str, Any]:
    """The ``_quarantine`` row for a record that cannot load (``records`` > 1: a part's unreadable rest)."""
    raw_text = record.raw_text if record.obj is None else to_raw_text(record.obj)
    return {
        "source": system,
        "entity": entity,
        "origin": record.origin,
        "position": record.position,
        "field": field,
        "reason": reason,
        "records": record.records if record.obj is None else 1,
        "raw_text": raw_text,
        "extract_day": date.fromisoformat(day) if day else None,
        "loaded_at": datetime.now(UTC),
    }


def with_quarantine_hints(row: dict[str, Any]) -> Any:
    """Route a quarantine row to ``_quarantine`` (append), whatever the resource's own hints are."""
    return dlt.mark.with_hints(
        row,
        dlt.mark.make_hints(
            table_name=QUARANTINE_TABLE,
            write_disposition="append",
            primary_key=[],
            merge_key=[],
            columns=QUARANTINE_COLUMNS,
        ),
        create_table_variant=True,
    )


def with_accounting_hints(row: dict[str, Any]) -> Any:
    """Route an accounting row to ``_row_accounting`` (append)."""
    return dlt.mark.with_hints(
        row,
        dlt.mark.make_hints(
            table_name=ACCOUNTING_TABLE,
            write_disposition="append",
            primary_key=[],
            merge_key=[],
            columns=ACCOUNTING_COLUMNS,
        ),
        create_table_variant=True,
    )


def bookkeeping_tables(resource: Any) -> Any:
    """Give ``resource`` the ``_quarantine`` and ``_row_accounting`` table variants with exactly their own
    columns. dlt starts a variant from the resource's hints at the time it is first created (its column
    hints included), so creating them here, with the columns emptied first, keeps the entity's columns out
    of the bookkeeping tables."""
    for table, columns in ((QUARANTINE_TABLE, QUARANTINE_COLUMNS), (ACCOUNTING_TABLE, ACCOUNTING_COLUMNS)):
        resource.apply_hints(table_name=table, write_disposition="append", primary_key=[], merge_key=[],
                             columns={}, create_table_variant=True)
        resource.apply_hints(table_name=table, columns=columns, create_table_variant=True)
    return resource


def accounting_row(
    system: str, entity: str, counts: Accounting, days: list[str], *, status: str = "loaded", error: str | None = None
) -> dict[str, Any]:
    """The ``_row_accounting`` row for one resource and load (``status`` ``failed`` for a load that stopped)."""
    return {"source": system, "entity": entity, "extract_days": days, **counts.as_dict(), "status": status,
            "error": error, "loaded_at": datetime.now(UTC)}


def _current_load_id() -> str | None:
    """The load id of the package being extracted; None when the resource is iterated outside a pipeline."""
    try:
        return dlt.current.load_package_state()["load_id"]
    except Exception:  # noqa: BLE001 - dlt raises a bare context error outside extraction
        return None


def _day_start(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=UTC)


def _record_key(spec: Entity, obj: dict[str, Any]) -> Any:
    """The key a record competes under: its parent id for child sets replaced as a whole, else its primary
    key read from the vendor object (top-level fields, which preparing a row never changes). The unit is
    the record: an entity's record prepares into exactly one row."""
    if spec.group_key is not None:
        return ("group", spec.group_key(obj))
    return tuple(get_path(obj, column) for column in spec.primary_key)


@dataclass
class _Winners:
    """Which occurrence of each key loads: the first or the last *valid* one by arrival (``spec.keep``).

    The first pass only reads keys, and validates just the repeated occurrences (a few percent of the
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


def _winning_occurrences(spec: Entity, batches: Iterator[tuple[Any, Any]],
                         children: tuple[Entity, ...] = ()) -> tuple[_Winners, int, list[_Winners]]:
    """First pass over re-readable input: which occurrence of each key loads (:class:`_Winners`), for
    ``spec`` and for each child entity fed by the same pass (``children``, keyed on the parent id).
    Unreadable records are skipped here; the second pass quarantines them. Also returns the number of
    records read, which the second pass must read again (files that change between the passes fail the
    load)."""
    specs = (spec, *children)
    all_winners = [_Winners(one.keep) for one in specs]
    ordinal = -1
    for _day, records in batches:
        for record in records:
            ordinal += 1
            if record.obj is None:
                continue
            obj = record.obj
            for one, winners in zip(specs, all_winners, strict=True):
                key = _record_key(one, obj)
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
    return all_winners[0], ordinal + 1, all_winners[1:]


def validate(spec: Entity, obj: dict[str, Any]) -> list[dict[str, Any]]:
    """The contract check, then the entity's own preparation: the rows of a record, or Reject."""
    if spec.contract is not None:
        spec.contract(obj)
    return spec.prepare(obj)


_FEEDS: dict[tuple[str | None, str, str], bool] = {}
"""(load id, system, child) -> whether the parent's pass loads the child's table in that load: decided
once, by whichever of the two resources starts first, from states neither has changed yet"""


def _selected_resources() -> set[str] | None:
    """The resources of the source being extracted; None outside a pipeline run (a resource iterated alone)."""
    try:
        from dlt.common.configuration.container import Container
        from dlt.extract.source import SourceInjectableContext

        return set(Container()[SourceInjectableContext].source.selected_resources)
    except Exception:  # noqa: BLE001 - no source context: the resource runs by itself
        return None


def _parent_feeds(system: str, parent: str, child: str, load_id: str | None) -> bool:
    """Files mode: does the ``parent`` resource's pass load ``child``'s table in this load? Only when both
    run in it (a Dagster subset may select one) and both stand at the same extract day (one of them may
    have run alone before); otherwise the child reads the files by itself."""
    if load_id is None:
        return False
    key = (load_id, system, child)
    if key not in _FEEDS:
        selected = _selected_resources()
        _FEEDS[key] = bool(
            selected is not None and parent in selected and child in selected
            and dlt.current.resource_state(parent).get("last_extract_day")
            == dlt.current.resource_state(child).get("last_extract_day")
        )
    return _FEEDS[key]


def table_hints(system: str, spec: Entity, columns: dict[str, Any] | None = None) -> dict[str, Any]:
    """The table hints of ``spec``'s raw table, for rows another resource routes to it."""
    return dlt.mark.make_hints(
        table_name=f"{system}__{spec.name}",
        write_disposition=spec.write_disposition,
        primary_key=list(spec.primary_key),
        merge_key=list(spec.merge_key) if spec.merge_key else [],
        columns={**spec.columns, **(columns or {})},
    )


class _ChildFeed:
    """A child table loaded by its parent's pass over the files: the same steps the child's own resource
    takes (its contract is its parent's, checked once for both; its own preparation, type check, winners,
    quarantine rows, accounting and resource state), with its rows routed to its table."""

    def __init__(self, system: str, spec: Entity, load_id: str | None) -> None:
        self.system = system
        self.spec = spec
        self.state = dlt.current.resource_state(spec.name)
        self.field_types: dict[str, str] = self.state.setdefault("field_types", {})
        self.counts = Accounting()
        self.field_rejects: dict[str, list[str]] = {}
        self.records_read = 0
        self.arrow = ArrowRows(f"{system}__{spec.name}", load_id)
        self.winners: _Winners | None = None
        self.shared = False

    def _item(self, table: Any) -> Any:
        return dlt.mark.with_hints(table, table_hints(self.system, self.spec, self.arrow.hints()),
                                   create_table_variant=True)

    def unparsed(self, record: RawRecord, day: str) -> Iterator[Any]:
        self.counts.rows_read += record.records
        self.counts.rows_quarantined += record.records
        self.records_read += record.records
        yield with_quarantine_hints(quarantine_row(self.system, self.spec.name, record, record.error or "unparseable", day))

    def share(self, parent: Entity, parent_types: dict[str, str]) -> None:
        """Share the parent's field types while both have learned the same (same checks, same types so
        far): one type check then serves both tables, until a record loads in one and not the other."""
        if (self.field_types == parent_types and self.spec.json_paths == parent.json_paths
                and _same_check(self.spec.type_checked, parent.type_checked)):
            self.field_types = self.state["field_types"] = parent_types
            self.shared = True

    def unshare(self) -> None:
        self.field_types = self.state["field_types"] = dict(self.field_types)
        self.shared = False

    def prepare(self, obj: dict[str, Any], contract_error: Reject | None) -> tuple[list[dict[str, Any]] | None, Reject | None]:
        try:
            if contract_error is not None:
                raise contract_error
            return self.spec.prepare(obj), None
        except Reject as exc:
            return None, exc

    def type_error(self, obj: dict[str, Any], where: str) -> Reject | None:
        try:
            for checked in self.spec.type_checked(obj) if self.spec.type_checked else [obj]:
                check_field_types(checked, self.field_types, where=where, json_paths=self.spec.json_paths)
        except Reject as exc:
            return exc
        return None

    def record(self, record: RawRecord, day: str, ordinal: int, rows: list[dict[str, Any]] | None,
               error: Reject | None) -> Iterator[Any]:
        """The child's side of a parsed record: ``rows`` prepared, or the ``error`` that rejects it."""
        self.records_read += 1
        obj = record.obj
        if error is not None:
            self.counts.rows_read += 1
            self.counts.rows_quarantined += 1
            if error.field:
                self.field_rejects.setdefault(error.field, []).append(f"{record.origin} (position {record.position})")
            self.winners.rejected(_record_key(self.spec, obj), ordinal)
            yield with_quarantine_hints(quarantine_row(self.system, self.spec.name, record, str(error), day, error.field))
            return
        self.counts.rows_read += len(rows)
        if not self.winners.wins(_record_key(self.spec, obj), ordinal):
            self.counts.rows_deduplicated += len(rows)
            return
        extract_day = date.fromisoformat(day) if day else None
        for row in rows:
            if self.spec.lineage_columns:
                row["_extract_day"] = extract_day
                row["_origin"] = record.origin
            self.counts.rows_loaded += 1
            table = self.arrow.add(row)
            if table is not None:
                yield self._item(table)

    def stop(self) -> str | None:
        """The contract-change message when most records failed one field, else None."""
        return contract_change(f"{self.system}/{self.spec.name}", self.field_rejects, self.records_read)

    def finish(self, days: list[str], all_days: list[str]) -> Iterator[Any]:
        if (table := self.arrow.flush()) is not None:
            yield self._item(table)
        if days:
            self.state["last_extract_day"] = days[-1]
        self.state["pending_days"] = len(pending_days(all_days, self.state.get("last_extract_day")))
        self.state["last_run"] = {**self.counts.as_dict(), "extract_days": list(days)}
        if self.counts.rows_read:
            yield with_accounting_hints(accounting_row(self.system, self.spec.name, self.counts, list(days)))


def _same_check(one: Any, other: Any) -> bool:
    """Whether two ``type_checked`` functions give the same objects: the same function, or partials of the
    same function with the same arguments."""
    if one is other:
        return True
    return (isinstance(one, partial) and isinstance(other, partial) and one.func is other.func
            and one.args == other.args and one.keywords == other.keywords)


def _with_feeds(spec: Entity, feeds: list[_ChildFeed], field_types: dict[str, str], record: RawRecord, day: str,
                ordinal: int) -> Iterator[Any]:
    """A record of a parent whose pass also loads its children: yields the children's items and returns the
    parent's rows, or raises the parent's Reject. The contract (the parent's, for all) is checked once; the
    type check once for the parent and every child sharing its field types."""
    obj = record.obj
    where = f"{record.origin} (position {record.position})"
    contract_error = None
    try:
        if spec.contract is not None:
            spec.contract(obj)
    except Reject as exc:
        contract_error = exc
    outcomes = [feed.prepare(obj, contract_error) for feed in feeds]
    rows, error = None, contract_error
    if error is None:
        try:
            rows = spec.prepare(obj)
        except Reject as exc:
            error = exc
    for feed, (_, child_error) in zip(feeds, outcomes, strict=True):
        if feed.shared and (child_error is None) != (error is None):
            feed.unshare()  # one of them learns from this record's types, the other does not
    type_error = None
    if error is None:
        try:
            for checked in spec.type_checked(obj) if spec.type_checked else [obj]:
                check_field_types(checked, field_types, where=where, json_paths=spec.json_paths)
        except Reject as exc:
            type_error = exc
    for feed, (child_rows, child_error) in zip(feeds, outcomes, strict=True):
        if child_error is None:
            child_error = type_error if feed.shared else feed.type_error(obj, where)
        yield from feed.record(record, day, ordinal, child_rows, child_error)
    if error is not None:
        raise error
    if type_error is not None:
        raise type_error
    return rows


def entity_resource(
    system: str,
    spec: Entity,
    *,
    mode: str,
    landing_dir: Path | None,
    files_reader: FilesReader | None,
    api_reader: Callable[[], ApiReader] | None = None,
    api_config: Any = None,
    max_days: int | None = None,
    keys_reader: FilesReader | None = None,
) -> Any:
    """Build the dlt resource that loads ``spec`` into ``<system>__<spec.name>``.

    ``keys_reader`` (files mode) yields the same records as ``files_reader`` but may give each as its key
    fields only (:class:`cs_kpis.sources.common.landing.KeyFields`): the first pass, which needs keys,
    reads with it.

    Files mode loads the extract days after the last one in resource state (``max_days`` at a time);
    API mode asks the reader for objects changed since the cursor in resource state.
    """
    table_name = f"{system}__{spec.name}"
    if spec.is_scd2 and mode == "files":
        # one load per extract day: scd2 versions rows per load, with the day as the boundary
        max_days = 1

    @dlt.resource(
        name=spec.name,
        table_name=table_name,
        primary_key=list(spec.primary_key) if not spec.is_scd2 else None,
        merge_key=list(spec.merge_key) if spec.merge_key else None,
        write_disposition=spec.write_disposition,
        columns=spec.columns or None,
        max_table_nesting=0,
    )
    def load_entity() -> Iterator[Any]:
        load_id = _current_load_id()
        if mode == "files" and spec.parent and _parent_feeds(system, spec.parent, spec.name, load_id):
            return  # the parent's pass loads this table and keeps this resource's state
        state = dlt.current.resource_state()
        field_types: dict[str, str] = state.setdefault("field_types", {})
        counts = Accounting()
        buffer: dict[Any, list[dict[str, Any]]] = {}
        feeds: list[_ChildFeed] = []
        if spec.materialize_empty:
            yield dlt.mark.materialize_table_schema()

        if mode == "files":
            all_days = extract_days(landing_dir)
            days = pending_days(all_days, state.get("last_extract_day"), max_days)

            def make_batches(reader: FilesReader = files_reader) -> Iterator[tuple[Any, Any]]:
                return ((day, reader(landing_dir, spec.reads, day)) for day in days)

            # the children this pass loads too, so that the parent's files are read by one pass, not one per table
            feeds = [_ChildFeed(system, child, load_id) for child in spec.children
                     if _parent_feeds(system, spec.name, child.name, load_id)]
            # files can be read twice: a first pass finds which occurrence of each key wins, so memory
            # holds keys, not rows (the large company's 5.5 M support rows took > 19 GB buffered); it
            # validates only the repeated occurrences, so it costs little more than parsing
            winners, expected_records, child_winners = _winning_occurrences(
                spec, make_batches(keys_reader or files_reader), tuple(feed.spec for feed in feeds))
            for feed, feed_winners in zip(feeds, child_winners, strict=True):
                feed.winners = feed_winners
                feed.share(spec, field_types)
            batches = make_batches()
        elif mode == "api":
            # the extract day of an API load is the UTC date it ran (common/clock.py), as a file's is its folder's
            moment = api_extract_time()
            days = [moment.date().isoformat()]
            reader = api_reader()
            since = state.get("api_since")
            if since is not None:
                # re-read a window before the cursor: rows the vendor committed late with an older stamp
                since = max(0, int(since) - int(getattr(api_config, "lookback_seconds", 0) or 0))
            batches = iter([(days[0], reader(api_config, spec.reads, since))])
            winners, expected_records = None, None  # pages cannot be re-read cheaply: buffer the rows instead
        else:
            raise ValueError(f"mode must be 'files' or 'api', got {mode!r}")

        max_cursor: float | None = None
        first = True
        # scd2 validity: the extract day (files) or the moment the API load ran (two a day stay apart)
        boundary = moment if mode == "api" else (_day_start(days[-1]) if days else None)
        field_rejects: dict[str, list[str]] = {}
        records_read = 0

        def rejected(record: RawRecord, exc: Reject) -> None:
            if exc.field:
                field_rejects.setdefault(exc.field, []).append(f"{record.origin} (position {record.position})")

        lake = lake_module.current_pipeline_is_lake()
        # scd2 stays on dlt's row path (its version hashes are computed there); the rest goes as Arrow
        arrow = None if spec.is_scd2 else ArrowRows(table_name, load_id)

        def as_item(table: Any) -> Any:
            hints = arrow.hints()
            return dlt.mark.with_hints(table, dlt.mark.make_hints(columns=hints)) if hints else table

        def emit(row: dict[str, Any]) -> Iterator[Any]:
            nonlocal first
            counts.rows_loaded += 1
            if arrow is not None:
                table = arrow.add(row)
                if table is not None:
                    yield as_item(table)
                return
            if lake and spec.is_scd2:
                # the lake appends (sources/lake.py): the boundary travels with the row, versions are read back
                row[lake_module.VALID_FROM] = boundary
            elif first and spec.is_scd2 and days:
                first = False
                yield dlt.mark.with_hints(
                    row,
                    dlt.mark.make_hints(
                        write_disposition={**spec.write_disposition, "boundary_timestamp": boundary},
                        merge_key=list(spec.merge_key) if spec.merge_key else None,
                    ),
                )
                return
            yield row

        ordinal = -1
        for day, records in batches:
            for record in records:
                ordinal += 1
                if record.obj is None:
                    counts.rows_read += record.records
                    counts.rows_quarantined += record.records
                    records_read += record.records
                    yield with_quarantine_hints(quarantine_row(system, spec.name, record, record.error or "unparseable", day))
                    for feed in feeds:
                        yield from feed.unparsed(record, day)
                    continue
                records_read += 1
                try:
                    if feeds:
                        rows = yield from _with_feeds(spec, feeds, field_types, record, day, ordinal)
                    else:
                        rows = validate(spec, record.obj)
                        checked = spec.type_checked(record.obj) if spec.type_checked else [record.obj]
                        for obj in checked:
                            check_field_types(
                                obj, field_types, where=f"{record.origin} (position {record.position})",
                                json_paths=spec.json_paths,
                            )
                except Reject as exc:
                    counts.rows_read += 1
                    counts.rows_quarantined += 1
                    rejected(record, exc)
                    if winners is not None:
                        winners.rejected(_record_key(spec, record.obj), ordinal)
                    yield with_quarantine_hints(quarantine_row(system, spec.name, record, str(exc), day, exc.field))
                    continue
                counts.rows_read += len(rows)
                for row in rows:
                    if spec.lineage_columns:
                        row["_extract_day"] = date.fromisoformat(day) if day else None
                        row["_origin"] = record.origin
                    if spec.cursor and isinstance(row.get(spec.cursor), datetime):
                        stamp = row[spec.cursor].timestamp()
                        max_cursor = stamp if max_cursor is None else max(max_cursor, stamp)
                if winners is not None:
                    if not winners.wins(_record_key(spec, record.obj), ordinal):
                        counts.rows_deduplicated += len(rows)
                        continue
                    for row in rows:
                        yield from emit(row)
                    continue
                if spec.group_key is not None:
                    # a child set is replaced as a whole by its parent's later version
                    key = ("group", spec.group_key(record.obj))
                    if key in buffer:
                        if spec.keep == "first":
                            counts.rows_deduplicated += len(rows)
                            continue
                        counts.rows_deduplicated += len(buffer[key])
                    buffer[key] = rows
                    continue
                for row in rows:
                    key = tuple(get_path(row, column) for column in spec.primary_key)
                    if key in buffer:
                        counts.rows_deduplicated += 1
                        if spec.keep == "first":
                            continue
                        del buffer[key]  # re-insert so a later version keeps arrival order
                    buffer[key] = [row]

        if expected_records is not None and ordinal + 1 != expected_records:
            raise RuntimeError(
                f"{system}/{spec.name}: the landing files of {', '.join(days)} changed while loading "
                f"({expected_records} records on the first read, {ordinal + 1} on the second); rerun the load")
        stop = contract_change(f"{system}/{spec.name}", field_rejects, records_read)
        if stop:
            raise ContractChange(stop)
        for feed in feeds:
            if stop := feed.stop():
                raise ContractChange(stop)
        for rows in buffer.values():
            for row in rows:
                yield from emit(row)
        if arrow is not None and (table := arrow.flush()) is not None:
            yield as_item(table)

        for feed in feeds:
            yield from feed.finish(days, all_days)
        if mode == "files":
            if days:
                state["last_extract_day"] = days[-1]
            state["pending_days"] = len(pending_days(all_days, state.get("last_extract_day")))
        elif max_cursor is not None:
            # never move back: the lookback window may hold only rows older than the last cursor
            state["api_since"] = max(int(max_cursor), int(state.get("api_since") or 0))
        state["last_run"] = {**counts.as_dict(), "extract_days": list(days)}
        if counts.rows_read:
            yield with_accounting_hints(accounting_row(system, spec.name, counts, list(days)))

    for child in spec.children:
        # the child tables this resource's pass may load, as variants with exactly the child's hints (a
        # variant starts from the resource's own column hints otherwise, as for the bookkeeping tables)
        child_table = f"{system}__{child.name}"
        load_entity.apply_hints(table_name=child_table, write_disposition=child.write_disposition,
                                primary_key=list(child.primary_key),
                                merge_key=list(child.merge_key) if child.merge_key else [],
                                columns={}, create_table_variant=True)
        load_entity.apply_hints(table_name=child_table, columns=child.columns, create_table_variant=True)
    return bookkeeping_tables(load_entity)


class ContractChange(RuntimeError):
    """Most records of a batch fail the same field: the export changed, the load stops."""


def lazy_api_reader(module: str) -> Callable[[], ApiReader]:
    """``iter_records`` of a system's API module, imported only when API mode runs (files mode never
    loads the HTTP client); a system without one fails with a message naming the module."""

    def load() -> ApiReader:
        import importlib

        try:
            return importlib.import_module(module).iter_records
        except ModuleNotFoundError as exc:
            raise NotImplementedError(f"API mode needs {module}.iter_records, which does not exist") from exc

    return load
