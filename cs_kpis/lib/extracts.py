"""The newest extract day loaded per source system, read from ``raw._row_accounting``.

Every raw load appends one accounting row per entity with the extract days it processed (``extract_days``,
a JSON list), also for a day whose parts held no rows; an API load lists the UTC day it ran
(cs_kpis/sources/common/clock.py). So the newest day a system handed over is known even
when nothing happened in it (a quiet Stripe day has no events, but it was still extracted and loaded).
Used for the as-of day of the marts (``marts.dim_day``) and by the on-call staleness sensor.
"""

import datetime as dt
import json

from cs_kpis.lib.sql import raw_key

# one raw asset per system: a dependency on it means "that system's raw load ran first" (one step loads
# every entity of a system)
RAW_SYSTEM_ASSETS = tuple(raw_key(system, entity) for system, entity in (
    ("billing", "events"), ("crm", "accounts"), ("support", "tickets"), ("nps", "survey_responses"),
    ("product", "events")))


def newest_extract_days(con) -> dict[str, dt.date]:
    """{system: newest extract day loaded}; empty when nothing was loaded yet (or no table)."""
    try:
        rows = con.execute("select source, extract_days from raw._row_accounting "
                           "where extract_days is not null").fetchall()
    except Exception as exc:
        if "does not exist" in str(exc):
            return {}
        raise
    out: dict[str, dt.date] = {}
    for system, days in rows:
        values = json.loads(days) if isinstance(days, str) else days
        for day in values or []:
            d = dt.date.fromisoformat(str(day)[:10])
            if system not in out or d > out[system]:
                out[system] = d
    return out


def newest_extract_day(con) -> dt.date | None:
    """The newest extract day loaded across every system."""
    days = newest_extract_days(con)
    return max(days.values()) if days else None
