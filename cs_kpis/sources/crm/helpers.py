"""Pure transforms of Salesforce records into raw rows."""

import json
from typing import Any

from cs_kpis.sources.common.helpers import (
    check_currency,
    check_non_negative,
    convert_fields,
    flatten,
    parse_date,
    parse_salesforce_datetime,
    require_fields,
    strip_key,
)
from cs_kpis.sources.crm import settings


def prepare_record(obj: dict[str, Any], resource: str, currencies: set[str] | None = None) -> dict[str, Any]:
    """Strip ``attributes`` (also in nested relationships), check the Id, currency and amount, and parse
    datetimes and dates; raise Reject when the record cannot load."""
    row = strip_key(obj, "attributes")
    if resource == "account_history":
        for name in settings.HISTORY_VALUE_FIELDS:
            row[name] = history_value_text(row.get(name))
    require_fields(row, (settings.PRIMARY_KEY,))
    convert_fields(row, settings.DATETIME_FIELDS.get(resource, ()), parse_salesforce_datetime)
    convert_fields(row, settings.DATE_FIELDS.get(resource, ()), parse_date)
    check_currency(row, settings.CURRENCY_FIELDS.get(resource, ()), currencies)
    check_non_negative(row, settings.NON_NEGATIVE_FIELDS.get(resource, ()))
    return flatten(row)


def history_value_text(value: Any) -> str | None:
    """An AccountHistory ``OldValue``/``NewValue`` (``anyType``) as text: a string as it is, a number or
    boolean as its JSON text (``42``, ``true``), null as null."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), sort_keys=True)
