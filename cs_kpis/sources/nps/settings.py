"""Delighted (NPS) constants."""

SYSTEM = "nps"

ENTITY = "survey_responses"

PRIMARY_KEY = "id"
"""a digit string; kept as text, as Delighted sends it"""

UNIX_FIELDS: tuple[str, ...] = ("created_at", "updated_at")

SCORE_RANGE = (0, 10)

CURSOR_FIELD = "updated_at"

OPTIONAL = True
"""a day may bring no response at all (no survey sent yet, or nobody answered): the raw table is created
anyway, with the columns staging reads declared below"""

DECLARED_FIELDS: dict[str, tuple[str, ...]] = {
    "text": ("id", "person", "survey_type", "comment", "permalink", "person_properties.salesforce_account_id",
             "person_properties.Company", "person_properties.Email"),
    "bigint": ("score",),
    "date": ("_extract_day",),
}
"""every field staging reads besides the Unix timestamps, declared with the type dlt infers for it, so its
column exists while every value is still null (no comment on any response of a first day; person properties
that the survey sends without a Company or an Email) and when no response came"""

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
