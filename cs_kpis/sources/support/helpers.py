"""Pure transforms of Zendesk objects into raw rows."""

from typing import Any

from cs_kpis.sources.common.helpers import Reject, convert_flat_fields, flatten, parse_iso, require_fields
from cs_kpis.sources.support import settings


def prepare_object(obj: dict[str, Any], entity: str) -> dict[str, Any]:
    """Check the id and integer id fields, parse ISO timestamps; raise Reject when it cannot load."""
    require_fields(obj, (settings.PRIMARY_KEY,))
    for field in settings.ID_FIELDS.get(entity, ()):
        value = obj.get(field)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise Reject(f"wrong type in {field}: expected an integer id, got {value!r}")
    row = flatten(obj)
    convert_flat_fields(row, settings.ISO_FIELDS.get(entity, ()), parse_iso)
    return row


def id_columns(entity: str) -> dict[str, dict[str, str]]:
    """dlt column hints making the id fields BIGINT (the references nullable, as dlt infers them: a hint that
    differs from the inferred column trips the frozen data types when an empty table is materialized)."""
    return {
        field: {"data_type": "bigint"} if field == settings.PRIMARY_KEY else {"data_type": "bigint", "nullable": True}
        for field in settings.ID_FIELDS.get(entity, ())
    }
