"""Segment (product) constants: the events table and the fields read from each event line."""

SYSTEM = "product"

ENTITY = "events"

FOLDER = "product/events"
"""``<received_day>/part-*.jsonl``, at most 200,000 lines per part"""

TABLE = "product__events"

BATCH_BYTES = 2_000_000_000
"""event files loaded by one set-based insert, at most (a batch holds at least one received day);
~2 GB is ~5M events, so a demo company's snapshot is one batch and memory stays bounded on large ones"""

PRIMARY_KEY = "messageId"

SEGMENT_FIELDS: dict[str, str] = {
    "type": "VARCHAR",
    "messageId": "VARCHAR",
    "userId": "VARCHAR",
    "anonymousId": "VARCHAR",
    "event": "VARCHAR",
    "timestamp": "VARCHAR",
    "originalTimestamp": "VARCHAR",
    "sentAt": "VARCHAR",
    "receivedAt": "VARCHAR",
    "groupId": "VARCHAR",
    "context": "STRUCT(groupId VARCHAR)",
    "properties": "JSON",
    "traits": "JSON",
}
"""what DuckDB reads from each line; timestamps stay text until checked, so a bad one is quarantined"""

MAX_LINE_BYTES = 32_768
"""Segment's limit for one message (32 KB): a longer line is quarantined as oversized. The fast insert,
which never sees lines, enforces it on what it stores (``properties`` and ``traits`` together); a file
read line by line (one with another bad line) enforces it on the whole line."""

TIMESTAMP_FIELDS: tuple[str, ...] = ("timestamp", "originalTimestamp", "sentAt", "receivedAt")

TABLE_COLUMNS: dict[str, str] = {
    "message_id": "VARCHAR",
    "type": "VARCHAR",
    "user_id": "VARCHAR",
    "anonymous_id": "VARCHAR",
    "event": "VARCHAR",
    "timestamp": "TIMESTAMPTZ",
    "original_timestamp": "TIMESTAMPTZ",
    "sent_at": "TIMESTAMPTZ",
    "received_at": "TIMESTAMPTZ",
    "group_id": "VARCHAR",
    "context_group_id": "VARCHAR",
    "properties": "JSON",
    "traits": "JSON",
    "_received_day": "DATE",
    "_origin": "VARCHAR",
    "_dlt_load_id": "VARCHAR",
}
"""``raw.product__events``: Segment's spec fields, ``context.groupId`` flattened, JSON kept as JSON"""
