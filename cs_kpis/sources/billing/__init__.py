"""The ``billing`` dlt source: Stripe customers, products, prices, coupons, subscriptions (+ items),
invoices (+ lines), events, and the reference fx rates."""

import hashlib
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import dlt

from cs_kpis.sources.billing import files, settings
from cs_kpis.sources.billing.helpers import (
    contracts,
    parse_fx_rates,
    prepare_child_rows,
    prepare_children,
    prepare_object,
    with_children,
)
from cs_kpis.sources.common.accounting import Accounting
from cs_kpis.sources.common.bookkeeping import (
    accounting_row,
    bookkeeping_tables,
    with_accounting_hints,
    with_quarantine_hints,
)
from cs_kpis.sources.common.contract import landing_window
from cs_kpis.sources.common.entity import Entity, entity_resource, lazy_api_reader
from cs_kpis.sources.common.helpers import column_hints, declared_fields
from cs_kpis.sources.common.landing import read_fx_currencies, read_text_file

_api_reader = lazy_api_reader("cs_kpis.sources.billing.api")


def entities(currencies: set[str] | None, window: Any = None) -> list[Entity]:
    """One Entity per Stripe list plus the two child tables, each with its contract."""
    checks = contracts(currencies, window)
    declared = declared_fields(settings.DECLARED_FIELDS, settings.SYSTEM)
    children: dict[str, list[Entity]] = {}
    for child, (parent, _, foreign_key) in settings.CHILDREN.items():
        children.setdefault(parent, []).append(
            Entity(
                name=child,
                reads=parent,
                primary_key=(settings.PRIMARY_KEY,),
                prepare=lambda obj, child=child: prepare_children(obj, child, currencies),
                prepare_after_parent=lambda obj, child=child: prepare_child_rows(obj, child, currencies),
                write_disposition=settings.CHILD_WRITE_DISPOSITION,
                merge_key=(foreign_key,),
                group_key=lambda obj: obj.get(settings.PRIMARY_KEY),
                type_checked=partial(with_children, child=child),
                # the parent's (they never apply to the checked objects, whose list is split out): the
                # same type check as the parent's, so that one pass checks both once
                json_paths=settings.JSON_PATHS.get(parent, frozenset()),
                columns=column_hints({"timestamp": settings.UNIX_FIELDS.get(child, ()),
                                      **declared.get(child, {})}),
                contract=checks[child],
                materialize_empty=child in settings.OPTIONAL_ENTITIES,
                parent=parent,
            )
        )
    specs = []
    children_of = {parent: child for child, (parent, _, _) in settings.CHILDREN.items()}
    for entity in settings.ENTITIES:
        is_events = entity == "events"
        specs.append(
            Entity(
                name=settings.TABLE_NAMES.get(entity, entity),
                reads=entity,
                primary_key=(settings.PRIMARY_KEY,),
                prepare=lambda obj, entity=entity: [prepare_object(obj, entity, currencies)],
                write_disposition=settings.EVENTS_WRITE_DISPOSITION if is_events else "merge",
                keep="first" if is_events else "latest",
                json_paths=settings.JSON_PATHS.get(entity, frozenset()),
                cursor=settings.CURSOR_FIELD.get(entity),
                columns=column_hints({"timestamp": settings.UNIX_FIELDS.get(entity, ()),
                                      **declared.get(entity, {})}),
                contract=checks[entity],
                type_checked=partial(with_children, child=children_of[entity]) if entity in children_of else None,
                materialize_empty=entity in settings.OPTIONAL_ENTITIES,
                # invoice items' id was declared (nullable) before the other keys were: kept, for warehouses made then
                key_nullable=entity == "invoiceitems",
                children=tuple(children.get(entity, ())),
            )
        )
    # the children after their parents, as before (the order of the resources in the source)
    return specs + [child for entity in settings.ENTITIES for child in children.get(entity, ())]


def fx_rates_resource(landing_dir: Path | None, fx_rates_path: Path | None = None) -> Any:
    """``billing__fx_rates`` from ``reference/fx_rates.csv`` (or ``fx_rates_path``, the company configuration's
    ``fx`` source), reloaded only when the file changes."""

    @dlt.resource(name="fx_rates", table_name="billing__fx_rates", primary_key=["date", "currency"], write_disposition="merge")
    def fx_rates() -> Any:
        state = dlt.current.resource_state()
        path = fx_rates_path or (landing_dir / settings.FX_RATES_FILE if landing_dir else None)
        counts = Accounting()
        if path is None or not path.exists():
            state["last_run"] = counts.as_dict()
            return
        text = read_text_file(path)
        digest = hashlib.sha256(text.encode()).hexdigest()
        if state.get("sha256") == digest:
            state["last_run"] = counts.as_dict()
            return
        rows, bad = parse_fx_rates(text)
        seen: dict[tuple, dict] = {}
        for row in rows:
            seen[(row["date"], row["currency"])] = row
        counts = Accounting(len(rows) + len(bad), len(seen), len(bad), len(rows) - len(seen))
        for number, raw, reason in bad:
            yield with_quarantine_hints({
                "source": settings.SYSTEM, "entity": "fx_rates",
                "origin": str(fx_rates_path) if fx_rates_path else settings.FX_RATES_FILE,
                "position": number, "field": None, "reason": reason, "records": 1, "raw_text": raw, "extract_day": None,
                "loaded_at": datetime.now(UTC),
            })
        yield list(seen.values())
        state["sha256"] = digest
        state["last_run"] = counts.as_dict()
        yield with_accounting_hints(accounting_row(settings.SYSTEM, "fx_rates", counts, []))

    return bookkeeping_tables(fx_rates)


@dlt.source(name="billing", schema_contract={"tables": "evolve", "columns": "evolve", "data_type": "freeze"})
def billing_source(landing_dir: Path | str | None = None, mode: str = "files", api_config: Any = None,
                   fx_rates_path: Path | str | None = None) -> Any:
    """Stripe objects from the landing folder (``mode="files"``) or the API (``mode="api"``).

    Tables ``billing__<entity>``; money in integer minor units; timestamps parsed from Unix seconds.
    ``reference/fx_rates.csv`` also decides which currencies are known (others are quarantined).
    """
    landing = Path(landing_dir) if landing_dir else None
    fx_path = Path(fx_rates_path) if fx_rates_path else None
    currencies = read_fx_currencies(landing, fx_path) if landing or fx_path else None
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
    return [make(spec) for spec in entities(currencies, landing_window(landing))] + [fx_rates_resource(landing, fx_path)]
