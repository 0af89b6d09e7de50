"""Zendesk reader against the fake API: incremental exports, offset pages, since, retries, auth."""

from __future__ import annotations

import dataclasses

import pytest

from cs_kpis.sources.http import VendorAuthError
from cs_kpis.sources.support.api import iter_records
from cs_kpis_tests.fakes import vendor_server as fake
from cs_kpis_tests.fakes.vendor_server import VendorServer
from cs_kpis_tests.sources_api.landing_builder import T0, expected

ORGS = "/api/v2/incremental/organizations.json"
TICKETS = "/api/v2/incremental/tickets/cursor.json"


def _by_id(records):
    records = list(records)
    out = {r.obj["id"]: r.obj for r in records}
    assert len(out) == len(records), "an object came twice"
    return out


@pytest.mark.parametrize("entity", ["organizations", "tickets", "ticket_metrics", "satisfaction_ratings"])
def test_entity_equals_landing_over_pages(server: VendorServer, zendesk_config, entity: str) -> None:
    records = list(iter_records(zendesk_config, entity, None))

    assert _by_id(records) == {o["id"]: o for o in expected("support", entity)}
    assert len({r.origin for r in records}) >= 2, "page size 2 must force several pages"
    assert all(r.authorized for r in server.requests)


def test_time_export_stops_at_end_of_stream(server: VendorServer, zendesk_config) -> None:
    list(iter_records(zendesk_config, "organizations"))

    reqs = server.requests_to(ORGS)
    assert reqs[0].query["start_time"] == ["0"]
    # 5 organizations, pages of 2: three requests, although the last page still has a next_page
    assert len(reqs) == 3


def test_cursor_export_switches_from_start_time_to_cursor(server: VendorServer, zendesk_config) -> None:
    list(iter_records(zendesk_config, "tickets", T0))

    first, *rest = server.requests_to(TICKETS)
    assert first.query["start_time"] == [str(T0)] and "cursor" not in first.query
    assert rest and all("cursor" in r.query and "start_time" not in r.query for r in rest)


def test_since(server: VendorServer, zendesk_config) -> None:
    org_ids = set(_by_id(iter_records(zendesk_config, "organizations", T0)))
    assert org_ids == {360000000002, 360000000005}
    assert set(_by_id(iter_records(zendesk_config, "tickets", T0))) == {2, 5, 6}
    assert set(_by_id(iter_records(zendesk_config, "satisfaction_ratings", T0))) == {20001902, 20001904}
    # ticket_metrics has no time filter in the api: always the full list
    assert len(list(iter_records(zendesk_config, "ticket_metrics", T0))) == len(
        expected("support", "ticket_metrics")
    )


def test_basic_auth_with_api_token(server: VendorServer, zendesk_config) -> None:
    list(iter_records(zendesk_config, "ticket_metrics"))
    expected_header = fake.basic_auth(f"{fake.ZENDESK_EMAIL}/token", fake.ZENDESK_API_TOKEN)
    assert {r.headers["Authorization"] for r in server.requests} == {expected_header}


def test_429_waits_for_retry_after(server: VendorServer, zendesk_config) -> None:
    server.fail(TICKETS, [429], retry_after="1", query_contains="cursor=")

    assert _by_id(iter_records(zendesk_config, "tickets")) == {
        o["id"]: o for o in expected("support", "tickets")
    }
    reqs = server.requests_to(TICKETS)
    i = [r.status for r in reqs].index(429)
    assert reqs[i + 1].query == reqs[i].query
    assert reqs[i + 1].at - reqs[i].at >= 0.95


def test_500_is_retried(server: VendorServer, zendesk_config) -> None:
    server.fail("/api/v2/ticket_metrics.json", [500], query_contains="page=2")

    got = _by_id(iter_records(zendesk_config, "ticket_metrics"))

    assert got == {o["id"]: o for o in expected("support", "ticket_metrics")}
    assert 500 in [r.status for r in server.requests_to("/api/v2/ticket_metrics.json")]


def test_401_fails_fast_without_leaking_the_token(server: VendorServer, zendesk_config) -> None:
    bad = "zdWRONGtoken000000000000000000000000"
    config = dataclasses.replace(zendesk_config, api_token=bad)

    with pytest.raises(VendorAuthError) as err:
        list(iter_records(config, "organizations"))

    assert str(err.value) == (
        f"Zendesk API rejected the credentials (401) for {ORGS}: check ZENDESK_EMAIL and ZENDESK_API_TOKEN"
    )
    assert bad not in str(err.value) and bad not in repr(config)
    assert len(server.requests) == 1
