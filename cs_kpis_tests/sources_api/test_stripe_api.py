"""Stripe reader against the fake Stripe API: pagination, nested lists, since, retries, auth."""

from __future__ import annotations

import dataclasses

import pytest

from cs_kpis.sources.billing.api import EVENT_TYPES, StripeApiConfig, iter_records
from cs_kpis.sources.http import VendorApiError, VendorAuthError
from cs_kpis_tests.fakes import vendor_server as fake
from cs_kpis_tests.fakes.vendor_server import VendorServer
from cs_kpis_tests.sources_api.landing_builder import T0, expected


def _by_id(records):
    records = list(records)
    out = {r.obj["id"]: r.obj for r in records}
    assert len(out) == len(records), "an object came twice"
    return out


@pytest.mark.parametrize(
    "entity", ["customers", "products", "prices", "coupons", "subscriptions", "invoices", "invoiceitems"]
)
def test_list_equals_landing_over_pages(
    server: VendorServer, stripe_config: StripeApiConfig, entity: str
) -> None:
    records = list(iter_records(stripe_config, entity, None))

    assert _by_id(records) == {o["id"]: o for o in expected("billing", entity)}
    pages = server.requests_to(f"/v1/{entity}")
    assert len(pages) >= 2, "page size 2 must force several pages"
    assert "starting_after" in pages[1].query
    # origin is the page URL, position the index within that page
    for record in records:
        assert record.origin.startswith(f"{server.base_url}/v1/{entity}?")
        assert record.position in (0, 1)
        assert record.error is None and record.raw_text is None


def test_every_request_carries_the_key_and_pinned_version(server: VendorServer, stripe_config) -> None:
    list(iter_records(stripe_config, "subscriptions"))
    list(iter_records(stripe_config, "invoices"))

    assert server.requests
    for req in server.requests:
        assert req.authorized
        assert req.headers["Authorization"] == f"Bearer {fake.STRIPE_API_KEY}"
        assert req.headers["Stripe-Version"] == "2025-03-31.basil"


def test_subscriptions_include_canceled_and_expanded_discounts(server: VendorServer, stripe_config) -> None:
    subs = _by_id(iter_records(stripe_config, "subscriptions"))

    assert subs["sub_T0003"]["status"] == "canceled"
    assert subs["sub_T0001"]["discounts"][0]["coupon"]["id"] == "COUPON1"
    first = server.requests_to("/v1/subscriptions")[0]
    assert first.query["status"] == ["all"]
    assert set(first.query["expand[]"]) == {"data.items.data.price", "data.discounts", "data.items.data.discounts"}


def test_nested_items_and_lines_are_followed(server: VendorServer, stripe_config) -> None:
    subs = _by_id(iter_records(stripe_config, "subscriptions"))
    invoices = _by_id(iter_records(stripe_config, "invoices"))

    items = subs["sub_T0002"]["items"]
    assert [i["id"] for i in items["data"]] == ["si_T0200", "si_T0201", "si_T0202"]
    assert items["has_more"] is False
    assert items["data"][0]["quantity"] == 12  # the day-2 state
    nested = server.requests_to("/v1/subscription_items")
    assert [r.query["subscription"] for r in nested] == [["sub_T0002"]]
    assert nested[0].query["starting_after"] == ["si_T0201"]

    lines = invoices["in_T0002"]["lines"]
    assert [line["amount"] for line in lines["data"]] == [24000, 50000, 2700]
    assert lines["has_more"] is False
    assert len(server.requests_to("/v1/invoices/in_T0002/lines")) == 1


def test_events_filtered_by_type_and_since(server: VendorServer, stripe_config) -> None:
    everything = expected("billing", "events")
    wanted = {e["id"]: e for e in everything if e["type"] in EVENT_TYPES}
    assert len(wanted) < len(everything)  # the landing holds one type we do not ask for

    assert _by_id(iter_records(stripe_config, "events", None)) == wanted

    recent = _by_id(iter_records(stripe_config, "events", T0))
    assert recent == {k: e for k, e in wanted.items() if e["created"] >= T0}
    assert set(recent) == {"evt_T0005", "evt_T0006", "evt_T0007"}
    assert server.requests_to("/v1/events")[-1].query["created[gte]"] == [str(T0)]


def test_since_is_ignored_by_plain_lists(server: VendorServer, stripe_config) -> None:
    # stripe lists cannot filter by modification time, so a since must not hide updated objects
    assert len(list(iter_records(stripe_config, "customers", T0))) == len(expected("billing", "customers"))


def test_429_waits_for_retry_after(server: VendorServer, stripe_config) -> None:
    server.fail("/v1/customers", [429], retry_after="1", query_contains="starting_after")

    records = list(iter_records(stripe_config, "customers"))

    assert _by_id(records) == {o["id"]: o for o in expected("billing", "customers")}
    reqs = server.requests_to("/v1/customers")
    statuses = [r.status for r in reqs]
    assert statuses.count(429) == 1
    i = statuses.index(429)
    assert reqs[i + 1].query == reqs[i].query  # the same page, asked again
    assert reqs[i + 1].at - reqs[i].at >= 0.95


def test_500_is_retried(server: VendorServer, stripe_config) -> None:
    server.fail("/v1/invoices", [500, 503])

    assert _by_id(iter_records(stripe_config, "invoices")) == {
        o["id"]: o for o in expected("billing", "invoices")
    }
    assert [r.status for r in server.requests_to("/v1/invoices")][:3] == [500, 503, 200]


def test_5xx_gives_up_after_max_retries(server: VendorServer, stripe_config) -> None:
    server.fail("/v1/products", [500] * 10)
    config = dataclasses.replace(stripe_config, max_retries=2)

    with pytest.raises(VendorApiError) as err:
        list(iter_records(config, "products"))

    assert err.value.status == 500
    assert "Stripe API returned 500 for /v1/products" in str(err.value)
    assert len(server.requests_to("/v1/products")) == 3


def test_401_fails_fast_without_leaking_the_key(server: VendorServer, stripe_config) -> None:
    bad_key = "sk_test_WRONGkey_0000000000009999"
    config = dataclasses.replace(stripe_config, api_key=bad_key)

    with pytest.raises(VendorAuthError) as err:
        list(iter_records(config, "customers"))

    message = str(err.value)
    assert message == "Stripe API rejected the credentials (401) for /v1/customers: check STRIPE_API_KEY"
    assert bad_key not in message and bad_key[-4:] not in message and bad_key not in repr(err.value)
    assert len(server.requests) == 1, "no retries on 401"
    assert bad_key not in repr(config)


def test_unknown_entity() -> None:
    with pytest.raises(ValueError, match="unknown Stripe entity"):
        list(iter_records(StripeApiConfig(api_key="x", base_url="http://127.0.0.1:9"), "charges"))


def test_prices_with_tiers_and_invoices_with_discounts_expanded(server: VendorServer, stripe_config) -> None:
    """A tiered price's tiers and an invoice's discounts (coupon, start, end) come only when asked; the MRR
    history reads both, so the lists ask for them, as the landing files hold them."""
    list(iter_records(stripe_config, "prices"))
    list(iter_records(stripe_config, "invoices"))

    assert server.requests_to("/v1/prices")[0].query["expand[]"] == ["data.tiers"]
    assert server.requests_to("/v1/invoices")[0].query["expand[]"] == ["data.discounts", "data.lines.data.discounts"]


def test_items_and_lines_with_their_own_discounts_expanded(server: VendorServer, stripe_config, monkeypatch) -> None:
    """A subscription item's own discounts and an invoice line's come as ids unless expanded; the MRR history
    values them (coupon, duration, end), so the lists ask for data.items.data.discounts and
    data.lines.data.discounts, and the rest of a truncated list (/v1/subscription_items,
    /v1/invoices/{id}/lines) for data.discounts."""
    from cs_kpis.sources.billing import api

    subs = _by_id(iter_records(stripe_config, "subscriptions"))
    invoices = _by_id(iter_records(stripe_config, "invoices"))
    # the third item and line come from the nested endpoints (the fake's nested page size is 2)
    assert subs["sub_T0002"]["items"]["data"][2]["discounts"][0]["coupon"]["id"] == "COUPON2"
    assert invoices["in_T0002"]["lines"]["data"][1]["discounts"][0]["coupon"]["amount_off"] == 500
    nested = server.requests_to("/v1/subscription_items") + server.requests_to("/v1/invoices/in_T0002/lines")
    assert nested and all(r.query["expand[]"] == ["data.discounts"] for r in nested)
    # without the expansions the fake server, as Stripe, sends the discount ids
    monkeypatch.setattr(api, "NESTED_EXPAND", ())
    monkeypatch.setitem(api.LIST_EXPAND, "invoices", ("data.discounts",))
    monkeypatch.setattr(api, "SUBSCRIPTION_EXPAND", ("data.items.data.price", "data.discounts"))
    plain = dataclasses.replace(stripe_config, subscription_expand=api.SUBSCRIPTION_EXPAND)
    assert _by_id(iter_records(plain, "subscriptions"))["sub_T0002"]["items"]["data"][2]["discounts"] == ["di_T0002"]
    assert _by_id(iter_records(plain, "invoices"))["in_T0002"]["lines"]["data"][1]["discounts"] == ["di_T0002"]


def test_coupons_with_currency_options_expanded(server: VendorServer, stripe_config, monkeypatch) -> None:
    """An amount_off coupon's amounts in other currencies come only with expand[]=data.currency_options; the
    MRR of a subscription in another currency reads them, so the coupons list asks for them."""
    coupons = _by_id(iter_records(stripe_config, "coupons"))
    assert server.requests_to("/v1/coupons")[0].query["expand[]"] == ["data.currency_options"]
    assert coupons["COUPON2"]["currency_options"] == {"eur": {"amount_off": 450}}
    # without the expansion the fake server, as Stripe, leaves the field out
    from cs_kpis.sources.billing import api

    monkeypatch.delitem(api.LIST_EXPAND, "coupons")
    assert "currency_options" not in _by_id(iter_records(stripe_config, "coupons"))["COUPON2"]
