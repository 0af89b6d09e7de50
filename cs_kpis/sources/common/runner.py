"""Running a source until it has caught up with the landing folder, and reading its accounting.

scd2 resources load one extract day per dlt load (the day is the validity boundary), so a source can
need several ``pipeline.run`` calls to catch up; each resource says in its state how many days are left.
"""

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from cs_kpis.sources import lake
from cs_kpis.sources.common import collector
from cs_kpis.sources.common.accounting import Accounting
from cs_kpis.sources.common.bookkeeping import (
    ACCOUNTING_COLUMNS,
    ACCOUNTING_TABLE,
    QUARANTINE_COLUMNS,
    QUARANTINE_TABLE,
)

logger = logging.getLogger(__name__)

LOADER_FILE_FORMAT = "parquet"
"""how dlt hands rows to DuckDB. Measured on the demo company (2 cores): billing 45 s / 3.9 GB peak RSS with
the default (insert_values SQL) vs 23 s / 0.7 GB with parquet, support 29 s / 2.9 GB vs 6 s / 0.3 GB; the
tables came out identical, column types included (jsonl changed JSON columns' text)"""

APPEND_TABLES = ("_quarantine", "_row_accounting")
"""append tables shared by all systems, told apart by their ``source`` column"""
DIRECT_TABLES: dict[str, tuple[str, ...]] = {"product": ("product__events",)}
"""tables a source writes itself, outside dlt's load step (set-based DuckDB inserts during extract)"""


def resource_states(pipeline: Any, source_name: str) -> dict[str, dict[str, Any]]:
    """Resource name -> its committed dlt state, as of the pipeline's last run."""
    sources = pipeline.state.get("sources") or {}
    return (sources.get(source_name) or {}).get("resources") or {}


def pending_resources(pipeline: Any, source: Any) -> list[str]:
    """The selected resources of ``source`` that still have extract days to load."""
    states = resource_states(pipeline, source.name)
    return [name for name in source.selected_resources if (states.get(name) or {}).get("pending_days")]


def last_run_accounting(pipeline: Any, source_name: str, resource: str) -> Accounting:
    """The accounting the resource recorded for the pipeline's last run."""
    return Accounting.from_dict((resource_states(pipeline, source_name).get(resource) or {}).get("last_run"))


def discard_incomplete_loads(pipeline: Any, source_name: str, source: Any = None) -> dict[str, int]:
    """Delete the rows of ``source_name``'s loads that never completed: a process killed mid-run.

    dlt's resource state only counts once its load package completes (a row in ``_dlt_loads``), so a
    rerun extracts the same data again. Merge tables converge by themselves (the rerun's pending packages are
    dropped first, so no staging copy is loaded twice; ``Entity.load_disposition``); but rows appended to
    ``_quarantine``/``_row_accounting`` by a load job of the killed run, and events the product source
    inserted during extract, would stay twice (or, for events, be counted as duplicates instead of
    loaded). This deletes them, so the rerun ends with the same tables as an uninterrupted run.

    Must run before the source's next load and while no other load of the same source runs (the
    warehouse pool admits one step at a time). Returns rows deleted per table.
    """
    deleted: dict[str, int] = {}
    if lake.is_lake(pipeline):
        # appended files: a killed run's are those whose load id never reached _dlt_loads
        return lake.discard_incomplete_files(lake.lake_root(pipeline), pipeline.dataset_name,
                                             lake.source_tables(pipeline, source) if source is not None
                                             else lake.lake_tables(lake.lake_root(pipeline), pipeline.dataset_name))
    try:
        client_cm = pipeline.sql_client()
    except Exception:  # noqa: BLE001 - no destination configured yet: nothing to clean
        return deleted
    with client_cm as client:
        if not client.has_dataset():
            return deleted
        con = client.native_connection
        dataset = client.fully_qualified_dataset_name()
        existing = {
            name for (name,) in con.execute(
                "select table_name from information_schema.tables where table_schema = ?",
                [client.dataset_name],
            ).fetchall()
        }
        completed = (
            f"(select load_id from {dataset}._dlt_loads where status = 0)" if "_dlt_loads" in existing
            else "(select null::varchar as load_id where false)"
        )
        completed = f"(select load_id from {completed} union all select _dlt_load_id from {dataset}." \
                    f"{ACCOUNTING_TABLE} where _dlt_load_id like '{FAILED_LOAD_PREFIX}%')" \
            if ACCOUNTING_TABLE in existing else completed
        targets = [(t, "source = ?", [source_name]) for t in APPEND_TABLES]
        targets += [(t, "true", []) for t in DIRECT_TABLES.get(source_name, ())]
        for table, where, params in targets:
            if table not in existing:
                continue
            rows = con.execute(discard_sql(f"{dataset}.{table}", where, completed), params + params).fetchall()
            if rows and rows[0][0]:
                deleted[table] = int(rows[0][0])
    return deleted


def discard_sql(table: str, where: str, completed: str) -> str:
    """Delete the rows of ``table`` matching ``where`` whose load id is not in ``completed`` (a subquery of load
    ids). The test runs on the table's distinct load ids (a handful), not on every row: on the large company's
    60 M product events 0.12-0.14 against 0.40-0.55 CPU s of every load (BENCHMARKS.md "Product events on the
    nightly"). ``where``'s parameters are bound twice. A row without a load id is kept, as by ``not in``."""
    return (f"delete from {table} where {where} and _dlt_load_id in (select load_id from ("
            f"select distinct _dlt_load_id as load_id from {table} where {where}) where load_id not in {completed})")


_DUCKDB_TYPES = {"text": "VARCHAR", "bigint": "BIGINT", "date": "DATE", "timestamp": "TIMESTAMP WITH TIME ZONE",
                 "json": "JSON"}


def _create_sql(qualified: str, columns: dict[str, dict[str, Any]]) -> str:
    defs = [
        f'"{name}" {_DUCKDB_TYPES[hint["data_type"]]}' + ("" if hint.get("nullable", True) else " NOT NULL")
        for name, hint in columns.items()
    ]
    defs += ['"_dlt_load_id" VARCHAR NOT NULL', '"_dlt_id" VARCHAR NOT NULL']
    return f"create table if not exists {qualified} ({', '.join(defs)})"


def ensure_bookkeeping_tables(pipeline: Any) -> None:
    """Create ``_quarantine`` and ``_row_accounting`` (empty, with exactly their own columns and the two dlt
    columns, as dlt would) when they do not exist yet: a clean first load quarantines nothing, and a query
    of an absent table fails. dlt finds them with every column it expects and leaves them alone. (In a lake
    their views are declared empty instead: sources/lake.py.)"""
    if lake.is_lake(pipeline):
        return
    with pipeline.sql_client() as client:
        if not client.has_dataset():
            client.create_dataset()
        for table, columns in ((QUARANTINE_TABLE, QUARANTINE_COLUMNS), (ACCOUNTING_TABLE, ACCOUNTING_COLUMNS)):
            client.execute_sql(_create_sql(client.make_qualified_table_name(table), columns))


def record_failed_load(pipeline: Any, source: Any, error: BaseException) -> None:
    """Append one ``_row_accounting`` row per selected resource of a load that failed, ``status`` ``failed``
    and the error, so a stopped entity is visible in the table, not only in a log.

    Written directly (dlt's own rows of that load never commit); ``_dlt_load_id`` is ``failed:<time>``,
    which :func:`discard_incomplete_loads` keeps (it deletes only the rows of loads that may be rerun)."""
    try:
        ensure_bookkeeping_tables(pipeline)
        failed = _failed_resource(error)
        message = str(error)
        now = datetime.now(UTC)
        if lake.is_lake(pipeline):
            rows = [{"source": source.name, "entity": name, "extract_days": "[]", "rows_read": 0, "rows_loaded": 0,
                     "rows_quarantined": 0, "rows_deduplicated": 0, "status": "failed",
                     "error": (message if failed in (None, name)
                               else f"not loaded: resource {failed!r} of the same load failed")[:4000],
                     "loaded_at": now, "_dlt_load_id": f"{FAILED_LOAD_PREFIX}{now.isoformat()}",
                     "_dlt_id": f"failed-{source.name}-{name}-{now.timestamp()}"}
                    for name in source.selected_resources]
            lake.write_failed_accounting(pipeline, rows, f"{now.timestamp():.6f}")
            lake.publish(pipeline)
            return
        with pipeline.sql_client() as client:
            qualified = client.make_qualified_table_name(ACCOUNTING_TABLE)
            for name in source.selected_resources:
                reason = message if failed in (None, name) else f"not loaded: resource {failed!r} of the same load failed"
                client.execute_sql(
                    f"insert into {qualified} (source, entity, extract_days, rows_read, rows_loaded, rows_quarantined, "
                    "rows_deduplicated, status, error, loaded_at, _dlt_load_id, _dlt_id) "
                    "values (%s, %s, '[]', 0, 0, 0, 0, 'failed', %s, %s, %s, %s)",
                    source.name, name, reason[:4000], now, f"{FAILED_LOAD_PREFIX}{now.isoformat()}",
                    f"failed-{source.name}-{name}-{now.timestamp()}",
                )
    except Exception:
        import logging

        logging.getLogger(__name__).exception("could not record the failed load of %s", source.name)


FAILED_LOAD_PREFIX = "failed:"


def _failed_resource(error: BaseException) -> str | None:
    """The resource named by a dlt extract error in ``error``'s chain, if any."""
    seen = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        name = getattr(current, "resource_name", None) or getattr(current, "pipe_name", None)
        if name:
            return str(name)
        current = getattr(current, "exception", None) or current.__cause__ or current.__context__
    return None


_NUMBERS = {"bigint", "double"}


def keep_stored_column_types(pipeline: Any, source: Any) -> list[str]:
    """Declared column hints that would change the type of a column the warehouse already has are set to the
    stored type, for this run; returns one line per such column (logged).

    A source declares the columns staging reads, typed as dlt infers them from the demo's values (coupons'
    ``percent_off`` double). A warehouse loaded before that declaration, from an export that wrote the same
    field as whole numbers, has the column as BIGINT, and with frozen data types every later load of the
    table would stop ("Can't evolve column type"). Keeping the stored type loads as before the declaration:
    a whole value (``20.0``) loads as 20, and a fractional one stops the load naming the field
    (``ArrowRows``'s stored types), never rounded. Only the numeric types: any other difference stays dlt's
    error."""
    schema = pipeline.schemas.get(source.schema.name) if source.schema.name in pipeline.schemas else None
    if schema is None:
        return []
    kept = []
    for resource in source.resources.values():
        columns, table_name = resource.columns, resource.table_name
        if not isinstance(columns, dict) or not isinstance(table_name, str) or table_name not in schema.tables:
            continue
        stored = schema.tables[table_name].get("columns", {})
        for name, hint in list(columns.items()):
            have = (stored.get(name) or {}).get("data_type")
            if have != hint.get("data_type") and {have, hint.get("data_type")} <= _NUMBERS:
                columns[name] = {**hint, "data_type": have}
                kept.append(f"{table_name}.{name}: declared {hint['data_type']}, stored {have} (kept)")
    for line in kept:
        logger.warning("declared column type differs from the warehouse's: %s", line)
    return kept


def run_until_caught_up(
    pipeline: Any,
    source: Any,
    *,
    run: Callable[[Any], Any] | None = None,
    max_loads: int = 10_000,
) -> tuple[list[Any], dict[str, Accounting]]:
    """Run ``source`` until no selected resource has pending extract days.

    Returns the load infos and, per resource, the accounting summed over the loads. ``run`` replaces
    ``pipeline.run(source, loader_file_format=LOADER_FILE_FORMAT)`` (to pass options); every load raises
    on failed jobs.
    """
    run = run or (lambda source: pipeline.run(source, loader_file_format=LOADER_FILE_FORMAT))
    if lake.is_lake(pipeline):
        lake.prepare_source(pipeline, source)  # appends, merged when read (sources/lake.py)
    discard_incomplete_loads(pipeline, source.name, source)
    keep_stored_column_types(pipeline, source)
    load_infos: list[Any] = []
    totals: dict[str, Accounting] = {name: Accounting() for name in source.selected_resources}
    for _ in range(max_loads):
        try:
            load_info = run(source)
            load_info.raise_on_failed_jobs()
        except Exception as exc:
            record_failed_load(pipeline, source, exc)
            raise
        finally:
            collector.restore()  # the entity passes pause the garbage collector (common/collector.py)
        ensure_bookkeeping_tables(pipeline)
        load_infos.append(load_info)
        for name, total in totals.items():
            totals[name] = total.add(last_run_accounting(pipeline, source.name, name))
        if not pending_resources(pipeline, source):
            break
    if lake.is_lake(pipeline):
        lake.publish(pipeline)
    return load_infos, totals
