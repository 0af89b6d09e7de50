"""The one record type every reader yields, whether it reads landing files or a vendor API.

A reader never drops anything: an object it cannot parse still comes out, with ``obj=None``, the raw
text and the reason, so that the source can quarantine it and the row accounting holds.
"""

from typing import Any, NamedTuple


class RawRecord(NamedTuple):
    obj: dict[str, Any] | None
    """the parsed API object, exactly as the vendor sent it; None when it could not be parsed"""
    origin: str
    """where it came from: a landing file path relative to the landing folder, or the API page URL"""
    position: int
    """0-based index of the object in its file or page (the line number for JSON-lines files)"""
    raw_text: str | None = None
    """the original text, kept only when the object could not be parsed"""
    error: str | None = None
    """why the object could not be parsed"""
    records: int = 1
    """how many vendor records an unparsed entry stands for: 1 for a record, the estimated number of
    records lost for the unreadable rest of a part"""
