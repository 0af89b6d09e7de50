"""The two bookkeeping tables every resource writes beside its own table, in the raw dataset.

- ``_quarantine``: one row per record that cannot load, with entity, origin (file or page), position,
  field and reason (``records`` > 1: a damaged part's unreadable rest);
- ``_row_accounting``: one row per resource and load: rows read, loaded, quarantined, deduplicated.

Rows reach them through the resource that read the records, as dlt table variants
(:func:`with_quarantine_hints`, :func:`with_accounting_hints`, :func:`bookkeeping_tables`).
"""

from datetime import UTC, date, datetime
from typing import Any

import dlt

from cs_kpis.sources.common.accounting import Accounting
from cs_kpis.sources.common.helpers import to_raw_text
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


def _appended_to(table: str, columns: dict[str, Any], row: dict[str, Any]) -> Any:
    """Route ``row`` to ``table`` (append, no keys), whatever the resource's own hints are."""
    return dlt.mark.with_hints(
        row,
        dlt.mark.make_hints(table_name=table, write_disposition="append", primary_key=[], merge_key=[],
                            columns=columns),
        create_table_variant=True,
    )


def with_quarantine_hints(row: dict[str, Any]) -> Any:
    """Route a quarantine row to ``_quarantine`` (append), whatever the resource's own hints are."""
    return _appended_to(QUARANTINE_TABLE, QUARANTINE_COLUMNS, row)


def with_accounting_hints(row: dict[str, Any]) -> Any:
    """Route an accounting row to ``_row_accounting`` (append)."""
    return _appended_to(ACCOUNTING_TABLE, ACCOUNTING_COLUMNS, row)


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
