"""The ``dlt`` resource for the raw assets, with the row accounting as metadata and a fix for #34052."""

from collections.abc import Iterator
from typing import Any

import dagster as dg
from dagster_dlt import DagsterDltResource
from dagster_dlt.translator import DagsterDltTranslator, DltResourceTranslatorData
from dlt.common.schema import Schema
from dlt.destinations.exceptions import DatabaseUndefinedRelation
from dlt.extract.source import DltSource
from dlt.pipeline.pipeline import Pipeline

from cs_kpis.sources.common.accounting import Accounting
from cs_kpis.sources.common.runner import LOADER_FILE_FORMAT, run_until_caught_up


def table_row_count(pipeline: Pipeline, table: str) -> int | None:
    """Rows in ``<dataset>.<table>`` now, or None when the table does not exist yet."""
    with pipeline.sql_client() as client:
        qualified = client.make_qualified_table_name(table)
        try:
            with client.execute_query(f"select count(*) from {qualified}") as cursor:
                return int(cursor.fetchall()[0][0])
        except DatabaseUndefinedRelation:
            return None


class RawDltResource(DagsterDltResource):
    """DagsterDltResource that loads until caught up and reports rows read/loaded/quarantined/deduplicated.

    - dagster-dlt#34052: the base class pops keys out of dlt's live column schemas while building
      metadata, so a second materialization in the same process fails with ``KeyError: 'name'``.
      Building the metadata from a clone leaves the live schema alone.
    - scd2 resources load one extract day per dlt load, so a materialization can take several loads.
    """

    def _extract_table_schema_metadata(self, table_name: str, schema: Schema) -> dg.TableSchema:
        return super()._extract_table_schema_metadata(table_name, schema.clone())

    def _run(
        self,
        context: dg.OpExecutionContext | dg.AssetExecutionContext,
        dlt_source: DltSource,
        dlt_pipeline: Pipeline,
        dagster_dlt_translator: DagsterDltTranslator,
        **kwargs: Any,
    ) -> Iterator[Any]:
        resources_by_key = {
            dagster_dlt_translator.get_asset_spec(DltResourceTranslatorData(resource=r, pipeline=dlt_pipeline)).key: r
            for r in dlt_source.selected_resources.values()
        }
        if context.is_subset:
            resources_by_key = {k: r for k, r in resources_by_key.items() if k in context.selected_asset_keys}
            dlt_source = dlt_source.with_resources(*[r.name for r in resources_by_key.values()])

        # as the base class: local state is restored from the destination, so drop leftovers of a failed run
        if dlt_pipeline.config.restore_from_destination:
            dlt_pipeline.drop()
        else:
            dlt_pipeline.drop_pending_packages()

        run_kwargs = {"loader_file_format": LOADER_FILE_FORMAT, **kwargs}
        load_infos, totals = run_until_caught_up(
            dlt_pipeline, dlt_source, run=lambda source: dlt_pipeline.run(source, **run_kwargs)
        )
        context.log.info(f"{dlt_source.name}: {len(load_infos)} dlt load(s)")
        has_asset_def = bool(context and context.has_assets_def)
        for asset_key, resource in resources_by_key.items():
            metadata = dict(self.extract_resource_metadata(context, resource, load_infos[-1], dlt_pipeline))
            counts = totals.get(resource.name, Accounting())
            table = dlt_pipeline.default_schema.naming.normalize_table_identifier(str(resource.table_name))
            metadata.update(accounting_metadata(counts))
            metadata["dlt_loads"] = len(load_infos)
            row_count = table_row_count(dlt_pipeline, str(resource.table_name))
            if row_count is not None:
                metadata["dagster/row_count"] = row_count
            metadata["dagster/table_name"] = f"{dlt_pipeline.dataset_name}.{table}"
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
