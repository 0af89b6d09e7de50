"""Delighted (NPS) constants."""

SYSTEM = "nps"

ENTITY = "survey_responses"

PRIMARY_KEY = "id"
"""a digit string; kept as text, as Delighted sends it"""

UNIX_FIELDS: tuple[str, ...] = ("created_at", "updated_at")

SCORE_RANGE = (0, 10)

CURSOR_FIELD = "updated_at"

# Contract: the fields the pipeline uses, typed from Delighted's API reference
from cs_kpis.sources.common.contract import Field

CONTRACT: dict[str, Field] = {
    "id": Field("text", required=True),
    "person": Field("text"),
    "survey_type": Field("text"),
    "score": Field("integer", min=SCORE_RANGE[0], max=SCORE_RANGE[1]),
    "comment": Field("text"),
    "created_at": Field("unix"),
    "updated_at": Field("unix"),
    "person_properties": Field("object"),
    "person_properties.salesforce_account_id": Field("text"),
}
