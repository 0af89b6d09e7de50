"""Zendesk (support) constants: entities, keys, ISO timestamps and BIGINT ids."""

SYSTEM = "support"

ENTITIES: tuple[str, ...] = ("organizations", "tickets", "ticket_metrics", "satisfaction_ratings")
"""landing folders / API entities; each export page holds its records under the entity's name"""

PRIMARY_KEY = "id"

ISO_FIELDS: dict[str, tuple[str, ...]] = {
    "organizations": ("created_at", "updated_at"),
    "tickets": ("created_at", "updated_at", "due_at"),
    "ticket_metrics": (
        "created_at", "updated_at", "solved_at", "assigned_at", "initially_assigned_at",
        "status_updated_at", "latest_comment_added_at", "requester_updated_at", "assignee_updated_at",
    ),
    "satisfaction_ratings": ("created_at", "updated_at"),
}

ID_FIELDS: dict[str, tuple[str, ...]] = {
    "organizations": ("id",),
    "tickets": ("id", "organization_id", "requester_id", "submitter_id", "assignee_id", "group_id", "brand_id"),
    "ticket_metrics": ("id", "ticket_id"),
    "satisfaction_ratings": ("id", "ticket_id", "assignee_id", "group_id", "requester_id"),
}
"""Zendesk ids pass 2^31: declared BIGINT, and a non-integer id is quarantined"""

CURSOR_FIELD = "updated_at"

OPTIONAL_ENTITIES: frozenset[str] = frozenset({"satisfaction_ratings"})
"""may be empty (an account without satisfaction surveys): the raw table is created anyway, with the columns
staging reads declared below"""

DECLARED_FIELDS: dict[str, dict[str, tuple[str, ...]]] = {
    "organizations": {"text": ("name", "external_id"), "json": ("domain_names", "tags")},
    "tickets": {
        "text": ("status", "priority", "type", "subject", "via.channel", "satisfaction_rating.score"),
        "bigint": ("satisfaction_rating.id",),
        "bool": ("has_incidents",),
        "json": ("tags",),
    },
    "ticket_metrics": {
        "bigint": ("reopens", "replies", "group_stations", "assignee_stations",
                   *(f"{m}.{c}" for m in ("reply_time_in_minutes", "first_resolution_time_in_minutes",
                                          "full_resolution_time_in_minutes", "on_hold_time_in_minutes")
                     for c in ("calendar", "business"))),
    },
    "satisfaction_ratings": {"text": ("score", "comment"), "date": ("_extract_day",)},
}
"""the other fields staging reads, declared (typed as dlt infers them) so their columns exist while every value
is still null: an account without satisfaction surveys has ``satisfaction_rating: null`` on every ticket, and a
first export may hold no solved ticket, no priority and no reply time"""


# Contracts: the fields the pipeline uses, typed from Zendesk's API reference (a record whose value does
# not fit is quarantined, e.g. a ticket whose priority is a number)
from cs_kpis.sources.common.contract import Field

_ID = Field("integer", required=True, min=1)
_REF = Field("integer", min=1)
_ISO = Field("iso")
_MINUTES = Field("integer", min=0)

CONTRACTS: dict[str, dict[str, Field]] = {
    "organizations": {
        "id": _ID, "name": Field("text"), "external_id": Field("text"), "domain_names": Field("list"),
        "created_at": _ISO, "updated_at": _ISO,
    },
    "tickets": {
        "id": _ID, **{f: _REF for f in ID_FIELDS["tickets"] if f != "id"},
        "status": Field("text", choices=frozenset({"new", "open", "pending", "hold", "solved", "closed", "deleted"})),
        "priority": Field("text", choices=frozenset({"low", "normal", "high", "urgent"})),
        "type": Field("text", choices=frozenset({"problem", "incident", "question", "task"})),
        "subject": Field("text"), "tags": Field("list"), "tags[]": Field("text"), "via": Field("object"), "via.channel": Field("text"),
        "satisfaction_rating": Field("object"), "satisfaction_rating.score": Field("text"),
        **{f: _ISO for f in ISO_FIELDS["tickets"]},
    },
    "ticket_metrics": {
        "id": _ID, "ticket_id": Field("integer", required=True, min=1),
        "reopens": Field("integer", min=0), "replies": Field("integer", min=0),
        **{f"{m}.{c}": _MINUTES for m in ("reply_time_in_minutes", "full_resolution_time_in_minutes",
                                           "first_resolution_time_in_minutes", "agent_wait_time_in_minutes",
                                           "requester_wait_time_in_minutes")
           for c in ("calendar", "business")},
        **{f: _ISO for f in ISO_FIELDS["ticket_metrics"]},
    },
    "satisfaction_ratings": {
        "id": _ID, **{f: _REF for f in ID_FIELDS["satisfaction_ratings"] if f != "id"},
        "score": Field("text", choices=frozenset({"offered", "unoffered", "good", "bad"})),
        "comment": Field("text"), **{f: _ISO for f in ISO_FIELDS["satisfaction_ratings"]},
    },
}
