"""The clock of an API load: when the extract ran, in UTC.

Files mode takes a row's extract day from its landing folder (``<system>/<entity>/<day>/``). An API load
has no folder: its extract day is the UTC date of the moment the load asks the vendor, so API rows carry
``_extract_day`` like file rows, and ``raw._row_accounting`` lists that day (the as-of day of the marts and
the staleness sensor read it). ``crm__accounts`` (scd2) takes that moment as its validity boundary.

``CS_KPIS_API_EXTRACT_TIME`` (ISO-8601; a value without an offset is UTC; a bare date is its midnight) fixes
the clock, e.g. to replay an export day through the API in a test, so the load equals files mode's load of
the same landing day. Unset: now.
"""

import os
from datetime import UTC, datetime

ENV = "CS_KPIS_API_EXTRACT_TIME"


def api_extract_time() -> datetime:
    """When this API load ran (timezone-aware UTC): ``CS_KPIS_API_EXTRACT_TIME`` if set, else now."""
    value = os.environ.get(ENV, "").strip()
    if not value:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"{ENV} must be an ISO-8601 date or timestamp, got {value!r}") from exc
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
