"""dlt to a lake: the raw loads as Parquet files under ``<lake>/dlt/raw/<table>/``, read through views.

The dlt destination is ``duckdb`` (default: tables in the warehouse, as always) or ``filesystem``
(``CS_KPIS_RAW_DESTINATION=filesystem``). dlt 1.31's filesystem destination writes plain Parquet with the
``append`` and ``replace`` dispositions only: ``merge`` needs Delta or Iceberg tables (the ``deltalake`` /
``pyiceberg`` packages, and Delta/Iceberg jars on the Spark side, which cannot be fetched here) and its
``scd2`` strategy is not supported on any filesystem table format. So every raw table is **appended** to, one
file per load, exactly as the rows left the source, and the merge is done when the table is read:

- ``latest`` (merge, primary key; the child tables also on their parent key): the rows of the newest load
  holding their key: the rows a ``delete-insert`` merge would have kept;
- ``first`` (merge ``insert-only``: Stripe events): the rows of the oldest load holding their key;
- ``append`` (``_quarantine``, ``_row_accounting``, product events, which the source deduplicates itself);
- ``scd2`` (``crm__accounts``): each load's rows carry their validity boundary in ``_lake_valid_from``; a
  version starts where an account's columns differ from its previous load's row, and ends where the next
  version starts (what dlt's scd2 merge with a natural key does in the warehouse).

The rules are read from the dlt source itself (write disposition, merge strategy, keys) and written next to
the data (``<lake>/dlt/cs_kpis_raw_tables.json``), so a reader elsewhere (a Spark cluster) needs nothing
else. :func:`view_sql` is one portable SQL text per table: DuckDB runs it over ``read_parquet`` (the
warehouse's ``raw`` schema becomes views, so staging, checks and reports read the lake unchanged) and
Spark runs it, transpiled, over an external Parquet table (``cs_kpis.lib.engine.register_lake_raw``).

A load that did not complete leaves files whose load id never reached ``_dlt_loads``;
:func:`discard_incomplete_files` deletes them before the next load (the folder is the project's own).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import dlt

ENV_RAW_DESTINATION = "CS_KPIS_RAW_DESTINATION"
DESTINATIONS = ("duckdb", "filesystem")
DLT_SUBDIR = "dlt"
"""dlt's bucket inside the lake: tables land in ``<lake>/dlt/raw/<table>/``, apart from the engine's own
``<lake>/<schema>/<table>/`` tables"""
RULES_FILE = "cs_kpis_raw_tables.json"
LAKE_SCHEMA = "raw_lake"
"""the schema of the plain appended tables (DuckDB views over read_parquet, Spark external tables)"""
VALID_FROM = "_lake_valid_from"
FAILED_PREFIX = "failed-"
"""``_row_accounting`` files of a failed load, written directly: kept by :func:`discard_incomplete_files`"""


def raw_destination() -> str:
    """``duckdb`` (default) or ``filesystem``: CS_KPIS_RAW_DESTINATION, else the company config's
    ``engine.raw_destination``."""
    value = (os.environ.get(ENV_RAW_DESTINATION) or "").strip().lower()
    if not value:
        from cs_kpis.config import load

        value = load().engine.raw_destination
    if value not in DESTINATIONS:
        raise ValueError(f"{ENV_RAW_DESTINATION} must be one of {DESTINATIONS}, not {value!r}")
    return value


def dlt_bucket(lake: Path) -> Path:
    return Path(lake) / DLT_SUBDIR


def table_dir(lake: Path, dataset: str, table: str) -> Path:
    return dlt_bucket(lake) / dataset / table


def is_lake(pipeline: Any) -> bool:
    destination = getattr(pipeline, "destination", None)
    return destination is not None and destination.destination_name == "filesystem"


def current_pipeline_is_lake() -> bool:
    """True while a resource is extracted by a pipeline with the filesystem destination."""
    try:
        return is_lake(dlt.current.pipeline())
    except Exception:  # noqa: BLE001 - outside a pipeline (a resource iterated by a test)
        return False


def lake_destination(lake: Path) -> Any:
    from cs_kpis.lib.engine import ensure_lake

    ensure_lake(Path(lake))
    return dlt.destinations.filesystem(bucket_url=str(dlt_bucket(lake)))


# --- the rules: how each appended table is merged when read -------------------------------------------


def _rule(schema: dict[str, Any], naming: Any) -> dict[str, Any]:
    disposition = schema.get("write_disposition")
    strategy = schema.get("x-merge-strategy")
    columns = schema.get("columns") or {}
    keys = [naming.normalize_identifier(c) for c, h in columns.items() if h.get("primary_key")]
    merge_keys = [naming.normalize_identifier(c) for c, h in columns.items() if h.get("merge_key")]
    if disposition != "merge":
        return {"kind": "append"}
    if strategy == "scd2":
        return {"kind": "scd2", "natural_key": merge_keys or keys}
    if strategy == "insert-only":
        return {"kind": "first", "keys": keys}
    if not keys and not merge_keys:
        raise ValueError(f"table {schema.get('name')}: a merge without a primary or merge key cannot be read back")
    return {"kind": "latest", "keys": keys, "merge_keys": merge_keys}


def write_rules(lake: Path, rules: dict[str, dict[str, Any]]) -> None:
    """Merge ``rules`` into the lake's rules file (every system's pipeline adds its own tables)."""
    path = dlt_bucket(lake) / RULES_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    current = json.loads(path.read_text()) if path.exists() else {}
    current.update(rules)
    for shared in ("_quarantine", "_row_accounting"):
        current[shared] = {"kind": "append"}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(current, indent=1, sort_keys=True))
    tmp.replace(path)


def read_rules(lake: Path) -> dict[str, dict[str, Any]]:
    path = dlt_bucket(lake) / RULES_FILE
    return json.loads(path.read_text()) if path.exists() else {}


# --- what is there -----------------------------------------------------------------------------------


def completed_loads(lake: Path, dataset: str) -> set[str]:
    """Load ids dlt marked complete (``_dlt_loads/<schema>__<load_id>.jsonl``)."""
    folder = table_dir(lake, dataset, "_dlt_loads")
    out: set[str] = set()
    for path in folder.glob("*.jsonl") if folder.exists() else ():
        for line in path.read_text().splitlines():
            if line.strip():
                record = json.loads(line)
                if record.get("status") == 0:
                    out.add(str(record["load_id"]))
    return out


def _load_id_of(path: Path) -> str:
    """``<load_id>.<file_id>.parquet``; load ids are ``<seconds>.<fraction>``."""
    parts = path.name.split(".")
    return ".".join(parts[:2])


def data_files(lake: Path, dataset: str, table: str) -> list[Path]:
    folder = table_dir(lake, dataset, table)
    return sorted(folder.glob("*.parquet")) if folder.exists() else []


def lake_tables(lake: Path, dataset: str) -> list[str]:
    """The data tables (not dlt's own ``_dlt_*``) with a folder in the lake."""
    root = dlt_bucket(lake) / dataset
    if not root.exists():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("_dlt") and p.name != "init")


def discard_incomplete_files(lake: Path, dataset: str, tables: list[str]) -> dict[str, int]:
    """Delete the files of ``tables`` written by loads that never completed (a killed run), so a rerun ends
    with the same rows. Files of a failed load's accounting (:data:`FAILED_PREFIX`) stay."""
    done = completed_loads(lake, dataset)
    deleted: dict[str, int] = {}
    for table in tables:
        for path in data_files(lake, dataset, table):
            if path.name.startswith(FAILED_PREFIX) or _load_id_of(path) in done:
                continue
            path.unlink()
            deleted[table] = deleted.get(table, 0) + 1
    return deleted


# --- reading: one portable SQL text per table -----------------------------------------------------------


def columns_of(files: list[Path]) -> list[str]:
    """Column names over all files, in first-seen order (a later load may add columns)."""
    import pyarrow.parquet as pq

    seen: dict[str, None] = {}
    for path in files:
        for name in pq.read_schema(path).names:
            seen.setdefault(name, None)
    return list(seen)


def _q(name: str) -> str:
    return f'"{name}"'


def view_sql(table: str, rule: dict[str, Any], columns: list[str], source: str) -> str:
    """The merged rows of the appended table ``source`` (DuckDB dialect, portable: to_spark transpiles it)."""
    kind = rule["kind"]
    if kind == "append":
        return f"select {', '.join(map(_q, columns))} from {source}"
    if kind in ("latest", "first"):
        pick = "max" if kind == "latest" else "min"
        partitions = [k for k in (rule.get("keys"), rule.get("merge_keys")) if k]
        marks = [f"{pick}(_dlt_load_id) over (partition by {', '.join(map(_q, keys))}) as _lake_pick_{i}"
                 for i, keys in enumerate(partitions)]
        where = " and ".join(f"_dlt_load_id = _lake_pick_{i}" for i in range(len(partitions)))
        return (f"select {', '.join(map(_q, columns))} from (select *, {', '.join(marks)} from {source}) as t "
                f"where {where}")
    if kind == "scd2":
        key = ", ".join(map(_q, rule["natural_key"]))
        window = f"over (partition by {key} order by {VALID_FROM})"
        compared = [c for c in columns if not c.startswith("_dlt_") and c != VALID_FROM]
        changed = " or ".join(f"{_q(c)} is distinct from lag({_q(c)}) {window}" for c in compared)
        out = [c for c in columns if c != VALID_FROM]
        return (
            f"select {', '.join(map(_q, out))}, {VALID_FROM} as _dlt_valid_from, "
            f"lead({VALID_FROM}) {window} as _dlt_valid_to "
            f"from (select *, case when lag(_dlt_load_id) {window} is null or {changed} then 1 else 0 end "
            f"as _lake_new from {source}) as t where _lake_new = 1"
        )
    raise ValueError(f"table {table}: unknown lake rule {kind!r}")


def empty_select(columns: dict[str, str]) -> str:
    """A relation with ``columns`` (name -> DuckDB type) and no rows: a table no load has written yet."""
    cols = ", ".join(f"cast(null as {kind}) as {_q(name)}" for name, kind in columns.items())
    return f"select {cols} where false"


def bookkeeping_columns() -> dict[str, dict[str, str]]:
    """``_quarantine`` and ``_row_accounting``'s declared columns as DuckDB types (they exist before any row)."""
    from cs_kpis.sources.common.bookkeeping import (
        ACCOUNTING_COLUMNS,
        ACCOUNTING_TABLE,
        QUARANTINE_COLUMNS,
        QUARANTINE_TABLE,
    )

    types = {"text": "VARCHAR", "bigint": "BIGINT", "date": "DATE", "timestamp": "TIMESTAMP WITH TIME ZONE",
             "json": "VARCHAR"}  # as dlt writes them to Parquet (JSON as text)
    out = {}
    for table, columns in ((QUARANTINE_TABLE, QUARANTINE_COLUMNS), (ACCOUNTING_TABLE, ACCOUNTING_COLUMNS)):
        out[table] = {name: types[hint["data_type"]] for name, hint in columns.items()}
        out[table].update({"_dlt_load_id": "VARCHAR", "_dlt_id": "VARCHAR"})
    return out


def other_files(lake: Path, dataset: str, table: str) -> list[Path]:
    """Files of a table folder that are not Parquet (dlt writes row-path bookkeeping rows as jsonl.gz)."""
    folder = table_dir(lake, dataset, table)
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix != ".parquet") if folder.exists() else []


def bookkeeping_select(columns: dict[str, str], parquet: list[Path], jsonl: list[Path]) -> str:
    """``_quarantine`` / ``_row_accounting`` over all their files, Parquet and jsonl(.gz), with their declared
    columns (empty before any row). DuckDB only: they are the raw checks' input, no SQL model reads them."""
    parts = [empty_select(columns)]
    cast = ", ".join(f"cast({_q(n)} as {t}) as {_q(n)}" for n, t in columns.items())
    if parquet:
        paths = ", ".join(f"'{p}'" for p in parquet)
        present = set(columns_of(parquet))
        cols = ", ".join(f"cast({_q(n) if n in present else 'null'} as {t}) as {_q(n)}" for n, t in columns.items())
        parts.append(f"select {cols} from read_parquet([{paths}], union_by_name = true)")
    if jsonl:
        paths = ", ".join(f"'{p}'" for p in jsonl)
        spec = ", ".join(f"'{n}': '{'JSON' if n == 'extract_days' else t}'" for n, t in columns.items())
        parts.append(f"select {cast} from read_json([{paths}], format = 'newline_delimited', columns = {{{spec}}})")
    return " union all ".join(parts)


def publish_duckdb(con: Any, lake: Path, dataset: str = "raw") -> list[str]:
    """Make ``<dataset>.<table>`` in the DuckDB ``con`` views of the lake's merged rows (replaced each load:
    a view's columns are fixed when it is created). A table of the same name is refused, never dropped."""
    rules = read_rules(lake)
    con.execute(f"create schema if not exists {dataset}")
    con.execute(f"create schema if not exists {LAKE_SCHEMA}")
    existing = dict(con.execute(
        "select table_name, table_type from information_schema.tables where table_schema = ?", [dataset]).fetchall())
    published = []
    empties = bookkeeping_columns()
    for table in sorted(set(lake_tables(lake, dataset)) | set(empties)):
        if existing.get(table, "VIEW") != "VIEW":
            raise RuntimeError(f"{dataset}.{table} is a table in the warehouse (loaded by the duckdb destination); "
                               f"{ENV_RAW_DESTINATION}=filesystem needs a warehouse without it (a fresh state folder)")
        files = data_files(lake, dataset, table)
        others = other_files(lake, dataset, table)
        if table in empties:
            sql = bookkeeping_select(empties[table], files, others)
        elif others:
            raise RuntimeError(f"{table_dir(lake, dataset, table)}: files that are not Parquet ({others[0].name}); "
                               f"the lake's data tables are read as Parquet only")
        elif files:
            paths = ", ".join(f"'{p}'" for p in files)
            base = f"select * from read_parquet([{paths}], union_by_name = true)"
            columns = columns_of(files)
            con.execute(f"create or replace view {LAKE_SCHEMA}.{_q(table)} as {base}")
            sql = view_sql(table, rules.get(table, {"kind": "append"}), columns, f"{LAKE_SCHEMA}.{_q(table)}")
        else:
            continue
        con.execute(f"create or replace view {dataset}.{_q(table)} as {sql}")
        published.append(table)
    return published


# --- the pipeline side ---------------------------------------------------------------------------------

_RULES: dict[int, tuple[Any, dict[str, Any]]] = {}
"""id(resource) -> (resource, its table's rule), computed before the first lake run turns it into an append
(dlt keeps the hint on the resource object, which Dagster reuses from run to run)"""
_WAREHOUSES: dict[str, Path] = {}
"""pipeline name -> the DuckDB warehouse whose ``raw`` views show the lake's tables"""


def lake_root(pipeline: Any) -> Path:
    return Path(pipeline.destination.config_params["bucket_url"]).parent


def bind_warehouse(pipeline: Any, warehouse: Path) -> None:
    _WAREHOUSES[pipeline.pipeline_name] = Path(warehouse)


def warehouse_of(pipeline: Any) -> Path | None:
    return _WAREHOUSES.get(pipeline.pipeline_name)


def prepare_source(pipeline: Any, source: Any) -> None:
    """Before a lake load: record the read rules of ``source``'s tables, then make every resource append."""
    naming = source.schema.naming
    rules: dict[str, dict[str, Any]] = {}
    for resource in source.resources.values():
        cached = _RULES.get(id(resource))
        if cached is None:
            schema = resource.compute_table_schema()
            table = naming.normalize_tables_path(str(schema["name"]))
            cached = (resource, {table: _rule(schema, naming)})
            _RULES[id(resource)] = cached
            resource.apply_hints(write_disposition="append")
        rules.update(cached[1])
    write_rules(lake_root(pipeline), rules)


def source_tables(pipeline: Any, source: Any) -> list[str]:
    """The lake tables ``source`` writes: its own and the shared bookkeeping tables."""
    naming = source.schema.naming
    own = [naming.normalize_tables_path(str(r.table_name if not callable(r.table_name) else r.name))
           for r in source.resources.values()]
    return sorted({*own, "_quarantine", "_row_accounting"})


def publish(pipeline: Any) -> list[str]:
    """Refresh the warehouse's ``raw`` views after a lake load (nothing when no warehouse is bound)."""
    warehouse = warehouse_of(pipeline)
    if warehouse is None:
        return []
    import duckdb

    warehouse.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(warehouse)) as con:
        return publish_duckdb(con, lake_root(pipeline), pipeline.dataset_name)


def write_failed_accounting(pipeline: Any, rows: list[dict[str, Any]], stamp: str) -> Path:
    """``_row_accounting`` rows of a load that failed, as a Parquet file of their own (kept by discard)."""
    import duckdb

    columns = bookkeeping_columns()["_row_accounting"]
    folder = table_dir(lake_root(pipeline), pipeline.dataset_name, "_row_accounting")
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{FAILED_PREFIX}{stamp}.parquet"
    with duckdb.connect() as con:
        con.execute("create table t (" + ", ".join(f'"{k}" {v}' for k, v in columns.items()) + ")")
        for row in rows:
            names = list(row)
            con.execute(f"insert into t ({', '.join(_q(n) for n in names)}) values ({', '.join('?' for _ in names)})",
                        [row[n] for n in names])
        con.execute(f"copy t to '{out}' (format parquet)")
    return out
