"""Stripe (billing) constants: entities, keys, Unix-second fields, currencies and amounts.

Money stays in integer minor units, as Stripe sends it; conversion belongs to staging.
"""

SYSTEM = "billing"

ENTITIES: tuple[str, ...] = ("customers", "products", "prices", "coupons", "subscriptions", "invoices", "events")
"""landing folders / API entities, one resource each"""

ENTITIES += ("invoiceitems",)
"""invoice items (ii_): prorations pending until the next invoice date a mid-period change; optional"""

OPTIONAL_ENTITIES: frozenset[str] = frozenset({"invoiceitems"})
"""may be absent or empty (an account with no invoice items): the raw table is created anyway, with the
columns staging reads declared below"""

TABLE_NAMES: dict[str, str] = {"invoiceitems": "invoice_items"}
"""raw table name (``billing__<name>``) where it differs from the landing folder / API entity"""

CHILDREN: dict[str, tuple[str, str, str]] = {
    "subscription_items": ("subscriptions", "items", "subscription"),
    "invoice_lines": ("invoices", "lines", "invoice"),
}
"""child resource -> (parent entity, parent list field, foreign key column added to each row)"""

PRIMARY_KEY = "id"

UNIX_FIELDS: dict[str, tuple[str, ...]] = {
    "customers": ("created",),
    "products": ("created", "updated"),
    "prices": ("created",),
    "coupons": ("created", "redeem_by"),
    "subscriptions": (
        "created", "start_date", "billing_cycle_anchor", "trial_start", "trial_end", "cancel_at",
        "canceled_at", "ended_at", "current_period_start", "current_period_end",
    ),
    "subscription_items": ("created", "current_period_start", "current_period_end", "price.created"),
    "invoices": (
        "created", "due_date", "period_start", "period_end", "effective_at", "next_payment_attempt",
        "webhooks_delivered_at", "status_transitions.finalized_at", "status_transitions.paid_at",
        "status_transitions.marked_uncollectible_at", "status_transitions.voided_at",
    ),
    "invoice_lines": ("period.start", "period.end"),
    "events": ("created",),
    "invoiceitems": ("date", "period.start", "period.end"),
}
"""Unix seconds, loaded as timestamps"""

TEXT_FIELDS: dict[str, tuple[str, ...]] = {
    "invoiceitems": (
        "id", "invoice", "customer", "currency", "parent.subscription_details.subscription",
        "parent.subscription_details.subscription_item", "pricing.price_details.price",
    ),
}
"""declared text columns: a pending invoice item has ``invoice: null``, and staging reads it even when all are"""

BOOL_FIELDS: dict[str, tuple[str, ...]] = {"invoiceitems": ("proration",)}
BIGINT_FIELDS: dict[str, tuple[str, ...]] = {"invoiceitems": ("amount", "quantity")}
DATE_FIELDS: dict[str, tuple[str, ...]] = {"invoiceitems": ("_extract_day",)}

CURRENCY_FIELDS: dict[str, tuple[str, ...]] = {
    "customers": ("currency",),
    "prices": ("currency",),
    "coupons": ("currency",),
    "subscriptions": ("currency",),
    "subscription_items": ("price.currency",),
    "invoices": ("currency",),
    "invoice_lines": ("currency",),
    "invoiceitems": ("currency",),
}

NON_NEGATIVE_FIELDS: dict[str, tuple[str, ...]] = {
    "prices": ("unit_amount",),
    "coupons": ("amount_off", "percent_off"),
    "subscription_items": ("quantity", "price.unit_amount"),
    "invoices": ("amount_due", "amount_paid", "amount_remaining"),
}
"""amounts that are never negative in Stripe; invoice totals and line amounts can be (prorations)"""

JSON_PATHS: dict[str, frozenset[str]] = {
    "subscriptions": frozenset({"items"}),
    "invoices": frozenset({"lines"}),
    "events": frozenset({"data"}),
}
"""kept as one JSON column: items and lines have their own tables; an event's object varies by type"""

CURSOR_FIELD: dict[str, str] = {"events": "created"}
"""API mode: Stripe lists filter on ``created``"""

EVENTS_WRITE_DISPOSITION = {"disposition": "merge", "strategy": "insert-only"}
"""events are immutable: append, skipping ids already loaded"""

CHILD_WRITE_DISPOSITION = {"disposition": "merge", "strategy": "delete-insert"}
"""a parent's new version replaces its whole set of items/lines (removed items disappear)"""

FX_RATES_FILE = "reference/fx_rates.csv"
