"""Stripe API reader (API mode of the billing source).

``iter_records(config, entity, since)`` yields the same Stripe objects a landing file holds
(``billing/<entity>/<day>/part-*.json``, see docs/LANDING.md), one :class:`RawRecord` each, with
``origin`` = the list page URL and ``position`` = the index in that page.

Credentials: ``STRIPE_API_KEY`` (optional ``STRIPE_BASE_URL``), or in dlt secrets
``sources.billing.stripe_api_key`` / ``sources.billing.stripe_base_url``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from dlt.sources.helpers.rest_client import RESTClient
from dlt.sources.helpers.rest_client.auth import BearerTokenAuth
from dlt.sources.helpers.rest_client.paginators import BasePaginator
from requests import Request, Response

from cs_kpis.sources.http import (
    VendorApiConfig,
    error_hook,
    iter_page_records,
    iter_pages,
    make_client,
    read_setting,
)
from cs_kpis.sources.records import RawRecord

SOURCE = "Stripe"
SYSTEM = "billing"

ENTITIES: dict[str, str] = {
    "customers": "/v1/customers",
    "products": "/v1/products",
    "prices": "/v1/prices",
    "coupons": "/v1/coupons",
    "subscriptions": "/v1/subscriptions",
    "invoices": "/v1/invoices",
    "events": "/v1/events",
    "invoiceitems": "/v1/invoiceitems",
}
"""entity name -> list endpoint"""

EVENT_TYPES: tuple[str, ...] = (
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "customer.subscription.paused",
    "customer.subscription.resumed",
    "customer.subscription.trial_will_end",
    "invoice.paid",
    "invoice.payment_failed",
)
"""event types requested from /v1/events (``types[]`` takes at most 20)"""

SUBSCRIPTION_EXPAND: tuple[str, ...] = ("data.items.data.price", "data.discounts", "data.items.data.discounts")
"""``expand[]`` for /v1/subscriptions, so the objects match the landing files: the subscription's discounts and
each item's own (applied to the item before the subscription's), with their coupon, start and end"""

LIST_EXPAND: dict[str, tuple[str, ...]] = {
    "prices": ("data.tiers",),  # a tiered price's tiers: Stripe includes them only when asked
    # each discount with its coupon, start and end, not just its id: the invoice's, and each line's own (a
    # subscription item's discount, applied to its line before the invoice's)
    "invoices": ("data.discounts", "data.lines.data.discounts"),
    "coupons": ("data.currency_options",),  # an amount_off coupon's amounts in other currencies
}
"""``expand[]`` for the other lists the MRR history reads, so the objects match the landing files"""

NESTED_EXPAND: tuple[str, ...] = ("data.discounts",)
"""``expand[]`` for the rest of a truncated ``items`` or ``lines`` list (``/v1/subscription_items``,
``/v1/invoices/{id}/lines``): each item's or line's own discounts, expanded as in the parent's list"""

_MAX_LIMIT = 100  # stripe rejects limit > 100


@dataclass(frozen=True, kw_only=True)
class StripeApiConfig(VendorApiConfig):
    """How to reach Stripe. The key never shows in ``repr``, logs or exception messages."""

    SYSTEM: ClassVar[str] = SYSTEM
    ENV_PREFIX: ClassVar[str] = "STRIPE"

    base_url: str = "https://api.stripe.com"
    api_key: str = field(repr=False)
    page_size: int = 100
    """``limit`` per list request (Stripe allows 1..100)"""
    stripe_version: str = "2025-03-31.basil"
    """pinned ``Stripe-Version``: field locations moved in basil (see fixtures/SHAPES.md)"""
    subscription_expand: tuple[str, ...] = SUBSCRIPTION_EXPAND
    event_types: tuple[str, ...] = EVENT_TYPES

    @classmethod
    def settings_from_env(cls, overrides: Any) -> dict[str, Any]:
        """``STRIPE_API_KEY`` (and optional ``STRIPE_BASE_URL``), or dlt secrets."""
        return {
            "api_key": read_setting("STRIPE_API_KEY", SYSTEM),
            "base_url": read_setting("STRIPE_BASE_URL", SYSTEM, required=False, default=cls.base_url),
        }


class StripeListPaginator(BasePaginator):
    """Stripe list pagination: while ``has_more``, ask again with ``starting_after=<last id>``."""

    def __init__(self) -> None:
        super().__init__()
        self._last_id: str | None = None

    def update_state(self, response: Response, data: list[Any] | None = None) -> None:
        """Remember the last id of the page, or stop when ``has_more`` is false."""
        has_more = bool(response.json().get("has_more"))
        last = data[-1] if data else None
        # an empty page claiming has_more would loop forever: stop there
        if has_more and isinstance(last, dict) and last.get("id"):
            self._last_id = last["id"]
        else:
            self._has_next_page = False

    def update_request(self, request: Request) -> None:
        """Ask for the page after the last object seen."""
        request.params = dict(request.params or {})
        request.params["starting_after"] = self._last_id


def iter_records(config: StripeApiConfig, entity: str, since: int | None = None) -> Iterator[RawRecord]:
    """Yield every object of one Stripe list endpoint, unchanged, as a :class:`RawRecord`.

    Args:
        config: where and how to connect.
        entity: one of ``customers, products, prices, coupons, subscriptions, invoices, events,
            invoiceitems`` (all invoice items, pending and invoiced: an item's ``invoice`` is set once billed).
        since: Unix seconds. Used only for ``events`` (``created[gte]``): Stripe's other list
            endpoints cannot filter by modification time, so they always return the full list.

    Subscriptions are listed with ``status=all`` and ``expand[]`` of the item prices and of the
    subscription's and the items' discounts; prices with their tiers and invoices with their own and their
    lines' discounts expanded (``LIST_EXPAND``).
    Nested ``items`` (subscriptions) and ``lines`` (invoices) lists that Stripe truncates
    (``has_more: true``) are completed from ``/v1/subscription_items`` and ``/v1/invoices/{id}/lines``;
    the completed list then has ``has_more: false``, as in a landing file. Nothing else is changed.

    Raises:
        ValueError: unknown entity.
        VendorAuthError: the key was rejected (401/403), at once, without retries.
        VendorApiError: another error status, after the retries for 429/5xx ran out.
    """
    if entity not in ENTITIES:
        raise ValueError(f"unknown Stripe entity {entity!r}; expected one of {sorted(ENTITIES)}")
    client = _client(config)
    hook = error_hook(SOURCE, "STRIPE_API_KEY", [config.api_key])
    params: dict[str, Any] = {"limit": _limit(config)}
    if entity == "subscriptions":
        # without status=all stripe leaves out canceled subscriptions, i.e. all the churn
        params["status"] = "all"
        params["expand[]"] = list(config.subscription_expand)
    elif entity in LIST_EXPAND:
        params["expand[]"] = list(LIST_EXPAND[entity])
    elif entity == "events":
        params["types[]"] = list(config.event_types)
        if since is not None:
            params["created[gte]"] = int(since)

    pages = iter_pages(
        client,
        ENTITIES[entity],
        params=params,
        paginator=StripeListPaginator(),
        data_selector="data",
        hook=hook,
        secrets=[config.api_key],
    )
    for record in iter_page_records(pages):
        obj = record.obj
        if obj is not None and entity == "subscriptions":
            _complete_nested_list(
                client, config, hook, obj, "items", "/v1/subscription_items",
                {"subscription": obj.get("id"), "expand[]": list(NESTED_EXPAND)},
            )
        elif obj is not None and entity == "invoices":
            _complete_nested_list(
                client, config, hook, obj, "lines", f"/v1/invoices/{obj.get('id')}/lines",
                {"expand[]": list(NESTED_EXPAND)},
            )
        yield record


def _client(config: StripeApiConfig) -> RESTClient:
    return make_client(
        base_url=config.base_url,
        auth=BearerTokenAuth(token=config.api_key),
        headers={"Stripe-Version": config.stripe_version},
        **config.client_settings(),
    )


def _limit(config: StripeApiConfig) -> int:
    return max(1, min(int(config.page_size), _MAX_LIMIT))


def _complete_nested_list(
    client: RESTClient,
    config: StripeApiConfig,
    hook: Any,
    obj: dict[str, Any],
    key: str,
    path: str,
    params: dict[str, Any],
) -> None:
    """Fetch the rest of a truncated nested list envelope (``obj[key]``) in place."""
    nested = obj.get(key)
    if not isinstance(nested, dict) or not nested.get("has_more"):
        return
    data = list(nested.get("data") or [])
    if not data or not obj.get("id"):
        return  # nothing to continue from; leave it as stripe sent it
    first_params = {**params, "limit": _limit(config), "starting_after": data[-1]["id"]}
    for objects, _origin in iter_pages(
        client,
        path,
        params=first_params,
        paginator=StripeListPaginator(),
        data_selector="data",
        hook=hook,
        secrets=[config.api_key],
    ):
        data.extend(objects)
    nested["data"] = data
    nested["has_more"] = False
