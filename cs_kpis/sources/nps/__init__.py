"""The ``nps`` dlt source: Delighted survey responses."""

from pathlib import Path
from typing import Any

import dlt

from cs_kpis.sources.common.contract import Contract, default_parsers, landing_window
from cs_kpis.sources.common.entity import Entity, entity_resource, lazy_api_reader
from cs_kpis.sources.common.helpers import column_hints, declared_fields
from cs_kpis.sources.nps import files, settings
from cs_kpis.sources.nps.helpers import prepare_response

_api_reader = lazy_api_reader("cs_kpis.sources.nps.api")


@dlt.source(name="nps", schema_contract={"tables": "evolve", "columns": "evolve", "data_type": "freeze"})
def nps_source(landing_dir: Path | str | None = None, mode: str = "files", api_config: Any = None) -> Any:
    """Delighted survey responses from the landing folder or the API, into ``nps__survey_responses``."""
    landing = Path(landing_dir) if landing_dir else None
    spec = Entity(
        name=settings.ENTITY,
        reads=settings.ENTITY,
        primary_key=(settings.PRIMARY_KEY,),
        prepare=lambda obj: [prepare_response(obj)],
        cursor=settings.CURSOR_FIELD,
        columns=column_hints({"timestamp": settings.UNIX_FIELDS,
                              **declared_fields({settings.ENTITY: settings.DECLARED_FIELDS}, settings.SYSTEM)[settings.ENTITY]}),
        materialize_empty=settings.OPTIONAL,
        contract=Contract(settings.CONTRACT, window=landing_window(landing), parsers=default_parsers()).check,
    )
    return entity_resource(
        settings.SYSTEM,
        spec,
        mode=mode,
        landing_dir=landing,
        files_reader=files.iter_records,
        api_reader=_api_reader,
        api_config=api_config,
    )
