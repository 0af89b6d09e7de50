"""The generic entity resource: read records, validate, quarantine, deduplicate, account, yield rows.

Every entity of every system goes through :func:`entity_resource`, so the rules are the same
everywhere: a record that cannot load (a declared field that does not fit its contract, a field whose
type differs from earlier records) goes to ``_quarantine`` with its field and reason, and the rest loads;
only a contract change (one field failing in most records of the batch) stops the load, with an error
naming the field, the files and the share; the counts always balance.

The resource body only wires the steps of cs_kpis/sources/common/steps.py (read, validate, then per table
quarantine, deduplicate, emit); each step is tested alone in cs_kpis_tests/sources/test_entity_steps.py.
"""

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dlt

from cs_kpis.sources import lake as lake_module
from cs_kpis.sources.common import collector
from cs_kpis.sources.common.accounting import Accounting
from cs_kpis.sources.common.arrow_rows import empty_table
from cs_kpis.sources.common.bookkeeping import bookkeeping_tables
from cs_kpis.sources.common.steps import (
    ApiRead,
    ArrowEmitter,
    CheckAlone,
    CheckShared,
    ChildFeed,
    DedupeByWinners,
    DedupeInMemory,
    FilesRead,
    Lane,
    Numbered,
    RowEmitter,
    check_records,
    winning_occurrences,
)
from cs_kpis.sources.records import RawRecord

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
    key_nullable: bool = False
    """keep a ``nullable`` hint on the key columns (see :meth:`column_hints`): only for a table whose key was
    declared nullable when it was first created (crm AccountHistory), since dlt refuses to flip it either way"""
    children: tuple["Entity", ...] = ()
    """child entities that read this entity's objects (``reads`` the same folder): in files mode, when both
    resources run in the same load, this resource's single pass over the files also loads their tables, so
    each file is parsed once per pass instead of once per table (:func:`_parent_feeds`)"""
    parent: str | None = None
    """a child entity: the resource name of the entity whose pass may load this table"""
    prepare_after_parent: Callable[[dict[str, Any]], list[dict[str, Any]]] | None = None
    """a child entity whose ``prepare`` runs its parent's preparation first (no rows when that rejects): the
    same rows without it. The parent's pass, which has just prepared the parent, calls this instead, so the
    parent object is not flattened and converted twice (:class:`cs_kpis.sources.common.steps.CheckShared`)"""

    @property
    def is_scd2(self) -> bool:
        return isinstance(self.write_disposition, dict) and self.write_disposition.get("strategy") == "scd2"

    def load_disposition(self) -> Any:
        """``write_disposition`` as dlt gets it. A plain ``merge`` table is dlt's delete-insert, told that each
        load's rows are already deduplicated by primary key (the pass emits one record per key:
        :class:`cs_kpis.sources.common.steps.DedupeByWinners` or ``DedupeInMemory``), so dlt's merge skips its
        ``row_number()`` over the whole staging table (BENCHMARKS.md, billing, session 13). A child
        table (``group_key``) is deduplicated per parent, not per row key, and keeps dlt's pass.

        Two invariants hold this up. (1) One record per key per load: a new pass or a new kind of table that
        can emit a key twice must not use this. dlt never removes a stored hint (its schema merge only adds
        truthy merge hints), so ``x-stage-data-deduplicated`` stays in a warehouse's stored schema even after
        the declaration changes: such a change needs the stored schema edited too. (2) No load package is
        resumed half-loaded: dlt's ``row_number()`` also guarded against a staging copy made twice by a crash
        and a retry; both entry points drop pending packages before a run (``reset_local_state`` in
        ``cs_kpis.defs.raw.resources`` and ``cs_kpis.sources.pipelines``), so a retry extracts afresh."""
        if self.write_disposition == "merge" and self.group_key is None:
            return {"disposition": "merge", "strategy": "delete-insert", "deduplicated": True}
        return self.write_disposition

    def column_hints(self) -> dict[str, Any]:
        """``columns`` without ``nullable`` on the key columns (primary and merge key), unless ``key_nullable``:
        dlt stores a key column as not nullable, and with frozen data types a hint that flips it is refused,
        so a declared key would stop every load into a warehouse made before the declaration (an upgrade)."""
        if self.key_nullable:
            return dict(self.columns)
        keys = {*self.primary_key, *(self.merge_key or ())}
        return {name: ({k: v for k, v in hint.items() if k != "nullable"} if name in keys else hint)
                for name, hint in self.columns.items()}


def _current_load_id() -> str | None:
    """The load id of the package being extracted; None when the resource is iterated outside a pipeline."""
    try:
        return dlt.current.load_package_state()["load_id"]
    except Exception:  # noqa: BLE001 - dlt raises a bare context error outside extraction
        return None


_FEEDS_KEY = "cs_kpis_child_feeds"
"""Key, in the state of the load package being extracted, of ``{"<system>.<child>": bool}``: whether the
parent's pass loads the child's table in that load. Decided once per load, by whichever of the two resources
starts first, from states neither has changed yet. The answer lives with the load (dlt gives every thread of
one extraction the same package state, and a new one to the next load), not in a table of this module: such a
table outlived the run in a long-lived process (Dagster's code server, the tests), grew by one entry a load,
and answered from another pipeline's load whenever the load id came back."""
_FEEDS_LOCK = threading.Lock()


def _selected_resources() -> set[str] | None:
    """The resources of the source being extracted; None outside a pipeline run (a resource iterated alone)."""
    try:
        from dlt.common.configuration.container import Container
        from dlt.extract.source import SourceInjectableContext

        return set(Container()[SourceInjectableContext].source.selected_resources)
    except Exception:  # noqa: BLE001 - no source context: the resource runs by itself
        return None


def _parent_feeds(system: str, parent: str, child: str) -> bool:
    """Files mode: does the ``parent`` resource's pass load ``child``'s table in this load? Only when both
    run in it (a Dagster subset may select one) and both stand at the same extract day (one of them may
    have run alone before); otherwise the child reads the files by itself."""
    try:
        package = dlt.current.load_package_state()
    except Exception:  # noqa: BLE001 - iterated outside a pipeline: no load, the child reads by itself
        return False
    with _FEEDS_LOCK:
        feeds = package["state"].setdefault(_FEEDS_KEY, {})
        key = f"{system}.{child}"
        if key not in feeds:
            selected = _selected_resources()
            feeds[key] = bool(
                selected is not None and parent in selected and child in selected
                and dlt.current.resource_state(parent).get("last_extract_day")
                == dlt.current.resource_state(child).get("last_extract_day")
            )
        return feeds[key]


def _table_exists(table_name: str) -> bool:
    """True when an earlier load of this pipeline made ``table_name`` (it is in the pipeline's schema)."""
    try:
        return table_name in dlt.current.pipeline().default_schema.tables
    except Exception:  # noqa: BLE001  (no pipeline yet: nothing loaded before)
        return False


def _stored_number_types(table_name: str) -> Callable[[str], Any] | None:
    """Column name (as the rows name it) -> the Arrow type of the warehouse's BIGINT or DOUBLE column it lands in,
    for :class:`ArrowRows`: a column the warehouse has as BIGINT stays whole numbers (a fractional value stops
    the load naming the field, a whole one like ``20.0`` loads as 20), whatever type a declaration hints
    (:func:`cs_kpis.sources.common.runner.keep_stored_column_types`)."""
    import pyarrow as pa

    try:
        schema = dlt.current.pipeline().default_schema
    except Exception:  # noqa: BLE001  (no pipeline yet: nothing loaded before)
        return None
    stored = (schema.tables.get(table_name) or {}).get("columns", {})
    types = {name: {"bigint": pa.int64(), "double": pa.float64()}.get(column.get("data_type"))
             for name, column in stored.items()}
    if not any(types.values()):
        return None
    return lambda name: types.get(schema.naming.normalize_path(name))


def _lacks_declared_columns(table_name: str, declared: dict[str, Any] | None) -> bool:
    """True when the table an earlier load made lacks a column this version declares. dlt adds a declared
    column only for a table in the load, so a rarely changing entity (coupons, prices) would keep an upgraded
    project's staging waiting for the column until a record changed; materializing the schema adds it now."""
    if not declared:
        return False
    try:
        table = dlt.current.pipeline().default_schema.tables.get(table_name)
    except Exception:  # noqa: BLE001  (no pipeline yet: nothing loaded before)
        return False
    return table is not None and any(name not in table.get("columns", {}) for name in declared)


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
        write_disposition=spec.load_disposition(),
        columns=spec.column_hints() or None,
        max_table_nesting=0,
    )
    def load_entity() -> Iterator[Any]:
        load_id = _current_load_id()
        # dlt's normalizer fails on an insert-only table's empty schema-only item (it hashes the item's missing
        # primary key): such a table gets an empty Arrow table instead
        insert_only = isinstance(spec.write_disposition, dict) and spec.write_disposition.get("strategy") == "insert-only"
        if insert_only:
            if (spec.materialize_empty and not _table_exists(table_name)) or _lacks_declared_columns(table_name, spec.columns):
                # a first export without any Stripe event, or an upgrade that declares a column: zero rows
                # with the declared columns create the table (or add them), as the schema-only item does below
                hints = spec.column_hints()
                yield dlt.mark.with_hints(empty_table(hints), dlt.mark.make_hints(
                    columns={name: hint for name, hint in hints.items() if hint["data_type"] == "json"}))
        elif spec.materialize_empty or _lacks_declared_columns(table_name, spec.columns):
            # before the parent's pass may take over: an optional child (invoice lines) of a parent without
            # records (no invoice yet) gets its table too
            yield dlt.mark.materialize_table_schema()
        if mode == "files" and spec.parent and _parent_feeds(system, spec.parent, spec.name):
            return  # the parent's pass loads this table and keeps this resource's state
        # the garbage collector's passes over the records cost a fifth of the CPU: off while this pass runs
        with collector.paused() as collecting:
            state = dlt.current.resource_state()
            field_types: dict[str, str] = state.setdefault("field_types", {})
            counts = Accounting()

            feeds: list[ChildFeed] = []
            if mode == "files":
                read = FilesRead(landing_dir, spec.reads, files_reader, state.get("last_extract_day"), max_days,
                                 keys_reader)
                # the children this pass loads too, so that the parent's files are read by one pass, not one per table
                feeds = [ChildFeed(system, child, load_id, dlt.current.resource_state(child.name))
                         for child in spec.children if _parent_feeds(system, spec.name, child.name)]
                # files can be read twice: a key pass finds which occurrence of each key wins, so memory holds
                # keys, not rows (the large company's 5.5 M support rows took > 19 GB buffered); it validates
                # only the repeated occurrences, so it costs little more than parsing
                key_pass = Numbered(read.batches(keys_only=True))
                winners, *child_winners = winning_occurrences((spec, *(feed.spec for feed in feeds)), key_pass)
                dedupe = DedupeByWinners(spec, winners, counts)
                children = [feed.start(one) for feed, one in zip(feeds, child_winners, strict=True)]
                for feed in feeds:
                    feed.share(spec, field_types)
            elif mode == "api":
                read = ApiRead(api_reader(), api_config, spec.reads, state.get("api_since"))
                dedupe, children = DedupeInMemory(spec, counts), []
            else:
                raise ValueError(f"mode must be 'files' or 'api', got {mode!r}")

            # scd2 stays on dlt's row path (its version hashes are computed there); the rest goes as Arrow
            emitter = (RowEmitter(spec, read.boundary, lake_module.current_pipeline_is_lake()) if spec.is_scd2
                       else ArrowEmitter(table_name, load_id, stored_types=_stored_number_types(table_name)))
            lane = Lane(system, spec, dedupe, emitter, counts)
            lanes = [lane, *children]
            check = CheckShared(spec, field_types, feeds) if feeds else CheckAlone(spec, field_types)
            records = Numbered(read.batches())
            for outcomes in check_records(records, check):
                rejected = False
                for one, outcome in zip(lanes, outcomes, strict=True):
                    rejected = rejected or outcome.error is not None
                    yield from one.take(outcome)
                collecting.tick(rejected)

            if mode == "files":
                read.check_unchanged(system, spec.name, key_pass.count, records.count)
            for one in lanes:
                if stop := one.contract_stop():
                    raise ContractChange(stop)
            for one in lanes:
                yield from one.flush()
            for feed in feeds:
                yield from feed.lane.finish(feed.state, read)
            yield from lane.finish(state, read)

    for child in spec.children:
        # the child tables this resource's pass may load, as variants with exactly the child's hints (a
        # variant starts from the resource's own column hints otherwise, as for the bookkeeping tables)
        child_table = f"{system}__{child.name}"
        load_entity.apply_hints(table_name=child_table, write_disposition=child.write_disposition,
                                primary_key=list(child.primary_key),
                                merge_key=list(child.merge_key) if child.merge_key else [],
                                columns={}, create_table_variant=True)
        load_entity.apply_hints(table_name=child_table, columns=child.column_hints(), create_table_variant=True)
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
