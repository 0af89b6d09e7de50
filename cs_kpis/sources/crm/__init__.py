"""The ``crm`` dlt source: Salesforce Account (scd2 history), User, Contact, Opportunity and AccountHistory
(field history of the tracked Account fields)."""

from functools import partial
from pathlib import Path
from typing import Any

import dlt

from cs_kpis.sources.common.contract import Contract, default_parsers, landing_window
from cs_kpis.sources.common.entity import Entity, entity_resource, lazy_api_reader
from cs_kpis.sources.common.helpers import column_hints, declared_fields
from cs_kpis.sources.common.landing import read_fx_currencies
from cs_kpis.sources.crm import files, settings
from cs_kpis.sources.crm.helpers import prepare_record

_api_reader = lazy_api_reader("cs_kpis.sources.crm.api")


def entities(currencies: set[str] | None, window: Any = None) -> list[Entity]:
    """The five CRM entities, each with its contract; accounts keep scd2 history keyed on Id."""
    parsers = default_parsers()
    declared = declared_fields(settings.DECLARED_FIELDS, settings.SYSTEM)
    specs = []
    for resource, folder in settings.FOLDERS.items():
        scd2 = resource == "accounts"
        specs.append(
            Entity(
                name=resource,
                reads=folder,
                primary_key=(settings.PRIMARY_KEY,),
                prepare=lambda obj, resource=resource: [prepare_record(obj, resource, currencies)],
                write_disposition=settings.SCD2_WRITE_DISPOSITION if scd2 else "merge",
                merge_key=(settings.PRIMARY_KEY,) if scd2 else None,
                cursor=settings.CURSOR_FIELDS.get(resource, settings.CURSOR_FIELD),
                lineage_columns=not scd2,
                json_paths=frozenset(settings.HISTORY_VALUE_FIELDS) if resource == "account_history" else frozenset(),
                materialize_empty=resource in settings.OPTIONAL_RESOURCES,
                # AccountHistory's Id was declared (nullable) before the other keys were: kept, for warehouses made then
                key_nullable=resource == "account_history",
                columns=column_hints({
                    "timestamp": settings.DATETIME_FIELDS.get(resource, ()),
                    "date": settings.DATE_FIELDS.get(resource, ()),
                    **declared.get(resource, {}),
                }),
                contract=Contract(
                    settings.CONTRACTS[resource], currencies=currencies, window=window, parsers=parsers
                ).check,
            )
        )
    return specs


@dlt.source(name="crm", schema_contract={"tables": "evolve", "columns": "evolve", "data_type": "freeze"})
def crm_source(landing_dir: Path | str | None = None, mode: str = "files", api_config: Any = None) -> Any:
    """Salesforce objects from the landing folder (``mode="files"``) or the REST API (``mode="api"``).

    Tables: ``crm__accounts`` (scd2: ``_dlt_valid_from``/``_dlt_valid_to``), ``crm__users``,
    ``crm__contacts``, ``crm__opportunities``, ``crm__account_history`` (Salesforce field history: one row
    per changed field, never modified; optional).
    """
    landing = Path(landing_dir) if landing_dir else None
    currencies = read_fx_currencies(landing) if landing else None
    make = partial(
        entity_resource,
        settings.SYSTEM,
        mode=mode,
        landing_dir=landing,
        files_reader=files.iter_records,
        api_reader=_api_reader,
        api_config=api_config,
    )
    return [make(spec) for spec in entities(currencies, landing_window(landing))]
