"""The ``support`` dlt source: Zendesk organizations, tickets, ticket metrics and satisfaction ratings."""

from functools import partial
from pathlib import Path
from typing import Any

import dlt

from cs_kpis.sources.common.contract import Contract, default_parsers, landing_window
from cs_kpis.sources.common.entity import Entity, entity_resource, lazy_api_reader
from cs_kpis.sources.common.helpers import column_hints, declared_fields
from cs_kpis.sources.support import files, settings
from cs_kpis.sources.support.helpers import id_columns, prepare_object

_api_reader = lazy_api_reader("cs_kpis.sources.support.api")


def entities(window: Any = None) -> list[Entity]:
    """One Entity per Zendesk export, merged on the BIGINT id, each with its contract."""
    parsers = default_parsers()
    declared = declared_fields(settings.DECLARED_FIELDS, settings.SYSTEM)
    return [
        Entity(
            name=entity,
            reads=entity,
            primary_key=(settings.PRIMARY_KEY,),
            prepare=lambda obj, entity=entity: [prepare_object(obj, entity)],
            columns={**column_hints({"timestamp": settings.ISO_FIELDS.get(entity, ()),
                                   **declared.get(entity, {})}), **id_columns(entity)},
            cursor=settings.CURSOR_FIELD,
            materialize_empty=entity in settings.OPTIONAL_ENTITIES,
            contract=Contract(settings.CONTRACTS[entity], window=window, parsers=parsers).check,
        )
        for entity in settings.ENTITIES
    ]


@dlt.source(name="support", schema_contract={"tables": "evolve", "columns": "evolve", "data_type": "freeze"})
def support_source(landing_dir: Path | str | None = None, mode: str = "files", api_config: Any = None) -> Any:
    """Zendesk objects from the landing folder (``mode="files"``) or the API (``mode="api"``).

    Tables ``support__<entity>``; ids BIGINT, timestamps parsed from ISO-8601.
    """
    landing = Path(landing_dir) if landing_dir else None
    make = partial(
        entity_resource,
        settings.SYSTEM,
        mode=mode,
        landing_dir=landing,
        files_reader=files.iter_records,
        keys_reader=files.iter_keys,
        api_reader=_api_reader,
        api_config=api_config,
    )
    return [make(spec) for spec in entities(landing_window(landing))]
