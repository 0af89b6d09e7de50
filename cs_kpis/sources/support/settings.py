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
