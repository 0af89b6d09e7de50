"""Delighted (NPS) constants."""

SYSTEM = "nps"

ENTITY = "survey_responses"

PRIMARY_KEY = "id"
"""a digit string; kept as text, as Delighted sends it"""

UNIX_FIELDS: tuple[str, ...] = ("created_at", "updated_at")

SCORE_RANGE = (0, 10)

CURSOR_FIELD = "updated_at"
