"""Stripe (billing) constants: entities, keys, Unix-second fields, currencies and amounts.

Money stays in integer minor units, as Stripe sends it; conversion belongs to staging.
"""

SYSTEM = "billing"

ENTITIES: tuple[str, ...] = ("customers", "products", "prices", "coupons", "subscriptions", "invoices", "events")
"""landing folders / API entities, one resource each"""

ENTITIES += ("invoiceitems",)
"""invoice items (ii_): prorations pending until the next invoice date a mid-period change; optional"""

OPTIONAL_ENTITIES: frozenset[str] = frozenset({"coupons", "invoices", "invoice_lines", "invoiceitems", "events"})
"""may be absent or empty (an account with no coupons, no invoice yet because every subscription is in trial,
no invoice items; no event when nothing changed in the 30 days Stripe keeps): the raw table is created anyway,
with the columns staging reads declared below"""

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

DECLARED_FIELDS: dict[str, dict[str, tuple[str, ...]]] = {
    "customers": {"text": ("name", "email", "currency", "metadata.salesforce_account_id"),
                  "bigint": ("balance",), "bool": ("delinquent",)},
    "products": {"text": ("name", "type", "metadata.plan_tier"), "bool": ("active",)},
    "prices": {
        "text": ("product", "currency", "type", "billing_scheme", "lookup_key", "nickname", "metadata.plan_tier",
                 "recurring.interval", "recurring.usage_type", "tiers_mode", "unit_amount_decimal",
                 "transform_quantity.round"),
        "bigint": ("unit_amount", "recurring.interval_count", "transform_quantity.divide_by"),
        "bool": ("active",), "json": ("tiers",),
    },
    "coupons": {"text": ("id", "name", "currency", "duration"),
                "bigint": ("amount_off", "duration_in_months", "times_redeemed"), "double": ("percent_off",),
                "bool": ("valid",), "json": ("currency_options",), "date": ("_extract_day",)},
    "subscriptions": {
        "text": ("customer", "status", "currency", "collection_method", "latest_invoice",
                 "cancellation_details.reason", "metadata.salesforce_account_id"),
        "bool": ("cancel_at_period_end",), "json": ("discounts",),
    },
    "subscription_items": {
        "text": ("subscription", "price.id", "price.product", "price.currency", "price.billing_scheme",
                 "price.nickname", "price.metadata.plan_tier", "price.recurring.interval",
                 "price.recurring.usage_type"),
        "bigint": ("quantity", "price.unit_amount", "price.recurring.interval_count"), "json": ("discounts",),
    },
    "invoices": {
        "text": ("id", "customer", "status", "billing_reason", "collection_method", "currency", "customer_name",
                 "number", "parent.subscription_details.subscription"),
        "bigint": ("amount_due", "amount_paid", "amount_remaining", "attempt_count", "subtotal", "total"),
        "json": ("discounts",), "date": ("_extract_day",),
    },
    "invoice_lines": {
        "text": ("id", "invoice", "currency", "description", "parent.type",
                 "parent.subscription_item_details.subscription", "parent.subscription_item_details.subscription_item",
                 "parent.subscription_item_details.proration_details.credited_items.invoice",
                 "pricing.price_details.price", "pricing.price_details.product"),
        "bigint": ("amount", "quantity", "subtotal"), "bool": ("parent.subscription_item_details.proration",),
        "json": ("discount_amounts", "discounts"), "date": ("_extract_day",),
    },
    "invoiceitems": {
        "text": ("id", "invoice", "customer", "currency", "description", "parent.subscription_details.subscription",
                 "parent.subscription_details.subscription_item", "pricing.price_details.price"),
        "bigint": ("amount", "quantity"), "bool": ("proration",), "date": ("_extract_day",),
    },
    "events": {"text": ("id", "type", "api_version"), "json": ("data",), "date": ("_extract_day",)},
}
"""every other field staging reads (besides the id and the Unix-second fields above), declared with the type
dlt infers for it, so its column exists while every value is still null: a first export may hold no customer
with a currency or a balance, no price with a nickname or a lookup key (or tiers, or transform_quantity), no
product or price with ``metadata.plan_tier``, no subscription cancelled or with a discount, no draft invoice
with a number, and a pending invoice item has ``invoice: null``. The optional entities' tables (coupons,
invoices and their lines, invoice items) are created even when no record comes, so their id and
``_extract_day`` are declared too. Events are insert-only and cannot be created empty (see
``cs_kpis/sources/common/entity.py``): a first export has events whenever anything changed in Stripe's last
30 days."""

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
    "coupons": frozenset({"currency_options"}),
}
"""kept as one JSON column: items and lines have their own tables; an event's object varies by type"""

CURSOR_FIELD: dict[str, str] = {"events": "created"}
"""API mode: Stripe lists filter on ``created``"""

EVENTS_WRITE_DISPOSITION = {"disposition": "merge", "strategy": "insert-only"}
"""events are immutable: append, skipping ids already loaded"""

CHILD_WRITE_DISPOSITION = {"disposition": "merge", "strategy": "delete-insert"}
"""a parent's new version replaces its whole set of items/lines (removed items disappear)"""

FX_RATES_FILE = "reference/fx_rates.csv"

# ---------------------------------------------------------------------------------------------------------
# Contracts: the fields the pipeline uses, typed and ranged from Stripe's API reference
# (https://docs.stripe.com/api, version 2025-03-31.basil). A record whose value does not fit is quarantined.

from cs_kpis.sources.common.contract import Field

_ID = Field("text", required=True)
_UNIX = Field("unix")
_AMOUNT = Field("integer", min=0)
"""minor units, never negative"""
_SIGNED_AMOUNT = Field("integer")
"""minor units; invoice totals and line amounts can be negative (prorations, credits)"""
_CURRENCY = Field("currency")
INTERVALS = frozenset({"day", "week", "month", "year"})

PRICE_FIELDS: dict[str, Field] = {
    "id": _ID,
    "product": Field("text"),
    "currency": _CURRENCY,
    "unit_amount": _AMOUNT,
    "recurring": Field("object"),
    "recurring.interval": Field("text", choices=INTERVALS),
    "recurring.interval_count": Field("integer", min=1),
    "recurring.usage_type": Field("text", choices=frozenset({"licensed", "metered"})),
    "billing_scheme": Field("text", choices=frozenset({"per_unit", "tiered"})),
    "unit_amount_decimal": Field("decimal", min=0),
    "tiers_mode": Field("text", choices=frozenset({"graduated", "volume"})),
    "tiers": Field("list"),
    "tiers[].up_to": Field("integer", min=1),
    "tiers[].unit_amount": _AMOUNT,
    "tiers[].unit_amount_decimal": Field("decimal", min=0),
    "tiers[].flat_amount": _AMOUNT,
    "tiers[].flat_amount_decimal": Field("decimal", min=0),
    "transform_quantity": Field("object"),
    "transform_quantity.divide_by": Field("integer", min=1),
    "transform_quantity.round": Field("text", choices=frozenset({"up", "down"})),
    "created": _UNIX,
    "active": Field("bool"),
    "metadata": Field("object"),
}

COUPON_FIELDS: dict[str, Field] = {
    "id": _ID,
    "percent_off": Field("number", min=0, max=100),
    "amount_off": _AMOUNT,
    "currency": _CURRENCY,
    "duration": Field("text", choices=frozenset({"once", "repeating", "forever"})),
    "duration_in_months": Field("integer", min=0),
    "created": _UNIX,
    "redeem_by": _UNIX,
    # an amount_off coupon's amounts in other currencies ({"eur": {"amount_off": 9000}}), listed only with
    # expand[]=data.currency_options
    "currency_options": Field("object"),
}


def _nested(prefix: str, fields: dict[str, Field], *, keep_id: bool = True) -> dict[str, Field]:
    return {f"{prefix}{path}": spec for path, spec in fields.items() if keep_id or path != "id"}


DISCOUNT_FIELDS: dict[str, Field] = {
    "discounts": Field("list"),
    "discounts[].id": Field("text"),
    **_nested("discounts[].coupon.", COUPON_FIELDS, keep_id=False),
    "discounts[].coupon.id": Field("text"),
    "discounts[].start": _UNIX,
    "discounts[].end": _UNIX,
}
"""the expanded discounts of a subscription, an item or an invoice, in Stripe's order: each coupon's
percent_off, amount_off with its own currency, and duration are read for MRR"""

SUBSCRIPTION_FIELDS: dict[str, Field] = {
    "id": _ID,
    "customer": Field("text", required=True),
    "status": Field("text", required=True, choices=frozenset({
        "incomplete", "incomplete_expired", "trialing", "active", "past_due", "canceled", "unpaid", "paused"})),
    "currency": _CURRENCY,
    "cancel_at_period_end": Field("bool"),
    **{path: _UNIX for path in UNIX_FIELDS["subscriptions"]},
    "items": Field("object"),
    "items.data": Field("list"),
    "items.data[].id": _ID,
    "items.data[].quantity": Field("integer", min=0),
    "items.data[].price": Field("object", required=True),
    "items.data[].current_period_start": _UNIX,
    "items.data[].current_period_end": _UNIX,
    **_nested("items.data[].price.", PRICE_FIELDS),
    **DISCOUNT_FIELDS,
    # an item's own discounts (listed expanded), applied to the item before the subscription's
    **_nested("items.data[].", DISCOUNT_FIELDS),
    "metadata": Field("object"),
}
"""a subscription with its items and their expanded prices, as listed and as carried by
``customer.subscription.*`` events"""

INVOICE_FIELDS: dict[str, Field] = {
    "id": _ID,
    "customer": Field("text", required=True),
    "status": Field("text", choices=frozenset({"draft", "open", "paid", "uncollectible", "void"})),
    "billing_reason": Field("text"),
    "currency": _CURRENCY,
    **{path: _UNIX for path in UNIX_FIELDS["invoices"]},
    "subtotal": _SIGNED_AMOUNT,
    "total": _SIGNED_AMOUNT,
    "amount_due": _AMOUNT,
    "amount_paid": _AMOUNT,
    "amount_remaining": _AMOUNT,
    "attempt_count": Field("integer", min=0),
    "parent.subscription_details.subscription": Field("text"),
    **DISCOUNT_FIELDS,
    "lines": Field("object"),
    "lines.data": Field("list"),
    "lines.data[].id": _ID,
    "lines.data[].amount": _SIGNED_AMOUNT,
    "lines.data[].currency": _CURRENCY,
    "lines.data[].period.start": _UNIX,
    "lines.data[].period.end": _UNIX,
    "lines.data[].quantity": Field("integer", min=0),
    "lines.data[].parent.subscription_item_details.subscription": Field("text"),
    "lines.data[].parent.subscription_item_details.proration": Field("bool"),
    "lines.data[].parent.subscription_item_details.subscription_item": Field("text"),
    # a credit proration's charge it credits: the invoice that holds it (and its line ids)
    "lines.data[].parent.subscription_item_details.proration_details.credited_items.invoice": Field("text"),
    # a line's own discounts (a subscription item's, listed expanded), applied to the line before the invoice's
    **_nested("lines.data[].", DISCOUNT_FIELDS),
    "lines.data[].discounts[].subscription_item": Field("text"),
}

CONTRACTS: dict[str, dict[str, Field]] = {
    "customers": {
        "id": _ID, "name": Field("text"), "email": Field("text"), "currency": _CURRENCY, "created": _UNIX,
        "delinquent": Field("bool"), "metadata": Field("object"), "metadata.salesforce_account_id": Field("text"),
    },
    "products": {"id": _ID, "name": Field("text"), "active": Field("bool"), "created": _UNIX, "updated": _UNIX,
                 "metadata": Field("object")},
    "prices": PRICE_FIELDS,
    "coupons": COUPON_FIELDS,
    "subscriptions": SUBSCRIPTION_FIELDS,
    "invoices": INVOICE_FIELDS,
    # pending and invoiced invoice items (GET /v1/invoiceitems): prorations of mid-period changes
    "invoiceitems": {
        "id": _ID, "customer": Field("text", required=True), "currency": _CURRENCY, "amount": _SIGNED_AMOUNT,
        "date": _UNIX, "period": Field("object"), "period.start": _UNIX, "period.end": _UNIX,
        "proration": Field("bool"), "quantity": Field("integer", min=0), "invoice": Field("text"),
        "parent.subscription_details.subscription": Field("text"), "description": Field("text"),
    },
    "events": {
        "id": _ID, "type": Field("text", required=True), "created": Field("unix", required=True),
        "data": Field("object", required=True), "data.object": Field("object", required=True),
        "data.previous_attributes": Field("object"),
    },
}
"""per entity; children are checked with their parent's contract (a subscription and its items are
quarantined together)"""

EVENT_OBJECTS: dict[str, dict[str, Field]] = {
    "customer.subscription.": SUBSCRIPTION_FIELDS,
    "invoice.": INVOICE_FIELDS,
}
"""event type prefix -> the contract of ``data.object`` (``data.previous_attributes`` is checked with the
same fields, none required: it holds the old values of the fields that changed)"""
