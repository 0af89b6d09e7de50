"""The ``dlt`` resource for the raw assets, with the row accounting as metadata, and fixes for dagster-dlt.

``RawDltResource`` is a plain ``ConfigurableResource`` with a public ``run``; it does not subclass
``DagsterDltResource`` nor override any private method of it (it used to override ``_run`` and
``_extract_table_schema_metadata``). From dagster-dlt it uses only public API: ``build_dlt_asset_specs``,
``DagsterDltTranslator.get_asset_spec`` and the metadata key constants.

- dagster-io/dagster#33573: dagster-dlt looks a resource's table up under
  ``naming.normalize_table_identifier(table_name)``, which turns ``billing__subscriptions`` into
  ``billing_subscriptions``, a table that does not exist. So the UI showed "No table schema columns",
  ``jobs []`` and a wrong ``dagster/table_name``. dlt names the table with ``normalize_tables_path`` (``__``
  separates nested tables), and so does :func:`raw_table_name` here; the materialization metadata is built
  by :meth:`RawDltResource.extract_resource_metadata` from the table as it is in the warehouse: its columns
  with their DuckDB types, its row count and ``dagster/table_name`` = ``raw.<table>``.
- dagster-dlt keeps the dlt source, pipeline and translator objects in every asset's definition metadata
  (shown as ``[DltSource] (unserializable)``). :func:`dlt_multi_asset` leaves them out; the raw assets
  hand them to :meth:`RawDltResource.run` explicitly instead.
"""

from collections.abc import Iterator
from typing import Any

import dagster as dg
import duckdb
from dagster_dlt import build_dlt_asset_specs
from dagster_dlt.constants import META_KEY_PIPELINE, META_KEY_SOURCE, META_KEY_TRANSLATOR
from dagster_dlt.translator import DagsterDltTranslator, DltResourceTranslatorData
from dlt.common.schema import Schema
from dlt.extract.source import DltSource
from dlt.pipeline.pipeline import Pipeline

from cs_kpis.defs.raw import prefetch
from cs_kpis.sources import lake
from cs_kpis.sources.common.accounting import Accounting
from cs_kpis.sources.common.runner import LOADER_FILE_FORMAT, run_until_caught_up
from cs_kpis.sources.pipelines import reset_local_state, warehouse_held_open

DLT_OBJECT_KEYS = (META_KEY_SOURCE, META_KEY_PIPELINE, META_KEY_TRANSLATOR)


def raw_table_name(schema: Schema, table_name: str) -> str:
    """The table dlt creates for a resource's ``table_name`` (``billing__subscriptions`` stays as it is)."""
    return schema.naming.normalize_tables_path(str(table_name))


def resource_table_name(resource: Any) -> str:
    name = resource.table_name
    return str(resource.name if callable(name) else name)


def dlt_multi_asset(*, dlt_source: DltSource, dlt_pipeline: Pipeline, translator: DagsterDltTranslator, name: str,
                    pool: str, op_tags: dict[str, str] | None = None):
    """``dagster_dlt.dlt_assets`` without dagster-dlt's live objects in the specs' metadata (they show as
    "(unserializable)" in the UI): the asset body passes them to :meth:`RawDltResource.run` itself. ``op_tags``:
    the step's (its priority, prefetch.step_tags)."""
    specs = [spec.replace_attributes(metadata={k: v for k, v in spec.metadata.items() if k not in DLT_OBJECT_KEYS})
             for spec in build_dlt_asset_specs(dlt_source=dlt_source, dlt_pipeline=dlt_pipeline,
                                               dagster_dlt_translator=translator)]
    return dg.multi_asset(name=name, can_subset=True, specs=specs, pool=pool, op_tags=op_tags)


def _lake_warehouse(pipeline: Pipeline):
    """A read-only connection to the warehouse whose ``raw`` views show a lake pipeline's tables, or None."""
    warehouse = lake.warehouse_of(pipeline) if lake.is_lake(pipeline) else None
    return duckdb.connect(str(warehouse), read_only=True) if warehouse is not None and warehouse.exists() else None


def warehouse_tables(pipeline: Pipeline, tables: list[str]) -> dict[str, tuple[list[tuple[str, str, bool]], int | None]]:
    """table -> ((column, DuckDB type, nullable) in table order, rows now or None when it does not exist yet) of
    ``<dataset>.<table>`` as the warehouse has them (with the filesystem destination: the warehouse's view of the
    lake's table): one connection and two queries for every table of a step."""
    out: dict[str, tuple[list[tuple[str, str, bool]], int | None]] = {t: ([], None) for t in tables}
    if not tables:
        return out
    marks = ", ".join("?" for _ in tables)
    columns_sql = ("select table_name, column_name, data_type, is_nullable from information_schema.columns "
                   f"where table_schema = ? and table_name in ({marks}) order by table_name, ordinal_position")

    def read(execute, qualified) -> None:
        found: dict[str, list[tuple[str, str, bool]]] = {}
        for table, name, kind, nullable in execute(columns_sql, [pipeline.dataset_name, *tables]):
            found.setdefault(table, []).append((name, str(kind), str(nullable).upper() == "YES"))
        present = [t for t in tables if t in found]
        counts = dict(execute(" union all ".join(
            f"select '{t}' as table_name, count(*) from {qualified(t)}" for t in present), [])) if present else {}
        out.update({t: (found[t], int(counts[t])) for t in present})

    con = _lake_warehouse(pipeline)
    if con is not None:
        with con:
            read(lambda sql, params: con.execute(sql, params).fetchall(),
                 lambda t: f'{pipeline.dataset_name}."{t}"')
        return out
    with pipeline.sql_client() as client:
        def execute(sql: str, params: list) -> list:
            with client.execute_query(sql.replace("?", "%s"), *params) as cursor:
                return cursor.fetchall()

        read(execute, client.make_qualified_table_name)
    return out


class RawDltResource(dg.ConfigurableResource):
    """Runs a dlt source until caught up and reports rows read/loaded/quarantined/deduplicated per table.

    - scd2 resources load one extract day per dlt load, so a materialization can take several loads.
    - The metadata is built here from the warehouse (dagster-dlt's own builder names the wrong table,
      dagster-io/dagster#33573, and pops keys out of dlt's live schema, dagster-dlt#34052: a second
      materialization in one process failed with ``KeyError: 'name'``); it never reads dlt's live schema
      objects destructively.
    """

    def extract_resource_metadata(
        self,
        context: dg.OpExecutionContext | dg.AssetExecutionContext,
        resource: Any,
        load_info: Any,
        dlt_pipeline: Pipeline,
        warehouse_columns: list[tuple[str, str, bool]] | None = None,
    ) -> dict[str, Any]:
        """The table's column schema (warehouse types, dlt's descriptions and keys), its name, the load.
        ``warehouse_columns``: the table's columns as :func:`warehouse_tables` read them (else read here)."""
        schema = dlt_pipeline.default_schema
        table = raw_table_name(schema, resource_table_name(resource))
        if warehouse_columns is None:
            warehouse_columns = warehouse_tables(dlt_pipeline, [table])[table][0]
        hints = schema.tables.get(table, {}).get("columns", {})
        columns = [
            dg.TableColumn(
                name=name, type=kind,
                description=hints.get(name, {}).get("description"),
                constraints=dg.TableColumnConstraints(
                    nullable=nullable, unique=bool(hints.get(name, {}).get("unique")),
                    other=["primary_key"] if hints.get(name, {}).get("primary_key") else []),
            )
            for name, kind, nullable in warehouse_columns
        ]
        jobs = [job for package in load_info.load_packages for job in package.jobs.get("completed_jobs", [])
                if job.job_file_info.table_name == table]
        return {
            "dagster/column_schema": dg.TableSchema(columns=columns),
            "dagster/table_name": f"{dlt_pipeline.dataset_name}.{table}",
            "dagster/storage_kind": "parquet" if lake.is_lake(dlt_pipeline) else "duckdb",
            "dlt_pipeline": dlt_pipeline.pipeline_name,
            "dlt_load_id": dg.MetadataValue.text(str(load_info.loads_ids[-1]) if load_info.loads_ids else ""),
            "dlt_jobs_completed": dg.MetadataValue.int(len(jobs)),
        }

    def run(
        self,
        context: dg.OpExecutionContext | dg.AssetExecutionContext,
        dlt_source: DltSource,
        dlt_pipeline: Pipeline,
        dagster_dlt_translator: DagsterDltTranslator,
        ahead: prefetch.Spec | None = None,
        **kwargs: Any,
    ) -> Iterator[Any]:
        """Load ``dlt_source`` (the selected subset) with ``dlt_pipeline``; one materialization per table.

        ``ahead``: the system may be extracted ahead of its step, in a command run (defs/raw/prefetch.py)."""
        resources_by_key = {
            dagster_dlt_translator.get_asset_spec(DltResourceTranslatorData(resource=r, pipeline=dlt_pipeline)).key: r
            for r in dlt_source.selected_resources.values()
        }
        if context.is_subset:
            resources_by_key = {k: r for k, r in resources_by_key.items() if k in context.selected_asset_keys}
            dlt_source = dlt_source.with_resources(*[r.name for r in resources_by_key.values()])

        prefetched = None
        if ahead is not None and not context.is_subset and not kwargs:  # a whole files-mode system
            prefetch.start_others(context, ahead)
            prefetched = prefetch.take(context, ahead)
        if prefetched is not None:
            dlt_pipeline = prefetched  # its working folder holds this run's packages, extracted ahead
        # one open warehouse for the step: dlt's and the metadata's SQL clients reuse it (warehouse_held_open)
        with warehouse_held_open(dlt_pipeline):
            if prefetched is None:
                reset_local_state(dlt_pipeline)  # the warehouse holds the state: drop leftovers of a failed run

            run_kwargs = {"loader_file_format": LOADER_FILE_FORMAT, **kwargs}
            load_infos, totals = run_until_caught_up(
                dlt_pipeline, dlt_source, run=lambda source: dlt_pipeline.run(source, **run_kwargs)
            )
            context.log.info(f"{dlt_source.name}: {len(load_infos)} dlt load(s)")
            tables = {asset_key: raw_table_name(dlt_pipeline.default_schema, resource_table_name(resource))
                      for asset_key, resource in resources_by_key.items()}
            found = warehouse_tables(dlt_pipeline, sorted(set(tables.values())))
            results = []
            for asset_key, resource in resources_by_key.items():
                columns, row_count = found[tables[asset_key]]
                metadata = dict(self.extract_resource_metadata(context, resource, load_infos[-1], dlt_pipeline,
                                                               warehouse_columns=columns))
                counts = totals.get(resource.name, Accounting())
                metadata.update(accounting_metadata(counts))
                metadata["dlt_loads"] = len(load_infos)
                if row_count is not None:
                    metadata["dagster/row_count"] = dg.MetadataValue.int(row_count)
                results.append((asset_key, metadata))
        has_asset_def = bool(context and context.has_assets_def)
        for asset_key, metadata in results:
            if has_asset_def:
                yield dg.MaterializeResult(asset_key=asset_key, metadata=metadata)
            else:
                yield dg.AssetMaterialization(asset_key=asset_key, metadata=metadata)


def accounting_metadata(counts: Accounting) -> dict[str, Any]:
    """rows_read/loaded/quarantined/deduplicated as Dagster metadata, plus whether they balance."""
    return {
        "rows_read": dg.MetadataValue.int(counts.rows_read),
        "rows_loaded": dg.MetadataValue.int(counts.rows_loaded),
        "rows_quarantined": dg.MetadataValue.int(counts.rows_quarantined),
        "rows_deduplicated": dg.MetadataValue.int(counts.rows_deduplicated),
        "row_accounting_balanced": dg.MetadataValue.bool(counts.balanced),
    }


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"dlt": RawDltResource()})
