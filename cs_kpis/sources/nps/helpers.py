"""Pure transforms of Delighted survey responses into raw rows."""

from typing import Any

from cs_kpis.sources.common.helpers import Reject, convert_flat_fields, flatten, parse_unix, require_fields
from cs_kpis.sources.nps import settings


def prepare_response(obj: dict[str, Any]) -> dict[str, Any]:
    """Check id and score (an integer 0-10), parse Unix timestamps; raise Reject when it cannot load."""
    require_fields(obj, (settings.PRIMARY_KEY,))
    score = obj.get("score")
    low, high = settings.SCORE_RANGE
    if score is not None and (isinstance(score, bool) or not isinstance(score, int) or not low <= score <= high):
        raise Reject(f"wrong type in score: expected an integer {low}-{high}, got {score!r}")
    row = flatten(obj)
    convert_flat_fields(row, settings.UNIX_FIELDS, parse_unix)
    return row
