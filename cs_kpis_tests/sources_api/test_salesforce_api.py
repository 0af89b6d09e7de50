"""Salesforce reader against the fake REST API: SOQL, queryAll, nextRecordsUrl, since, retries, auth."""

from __future__ import annotations

import dataclasses
from urllib.parse import parse_qs, urlsplit

import pytest

from cs_kpis.sources.crm.api import SalesforceApiConfig, iter_records, soql
from cs_kpis.sources.http import VendorAuthError
from cs_kpis_tests.fakes import vendor_server as fake
from cs_kpis_tests.fakes.vendor_server import VendorServer
from cs_kpis_tests.sources_api.landing_builder import T0, expected

QUERY_ALL = "/services/data/v62.0/queryAll"


def _by_id(records):
    records = list(records)
    out = {r.obj["Id"]: r.obj for r in records}
    assert len(out) == len(records), "a record came twice"
    return out


@pytest.mark.parametrize("entity", ["Account", "User", "Contact", "Opportunity"])
def test_query_equals_landing_over_pages(server: VendorServer, salesforce_config, entity: str) -> None:
    records = list(iter_records(salesforce_config, entity, None))

    assert _by_id(records) == {o["Id"]: o for o in expected("crm", entity)}
    # ordered by SystemModstamp, and the relative nextRecordsUrl was followed
    stamps = [r.obj["SystemModstamp"] for r in records]
    assert stamps == sorted(stamps)
    follow_ups = [r for r in server.requests if r.path.startswith("/services/data/v62.0/query/")]
    assert len(follow_ups) >= 1
    assert all("q" not in r.query for r in follow_ups), "the query must not be re-sent with the locator"
    assert {r.position for r in records} <= {0, 1}
    assert all(r.authorized for r in server.requests)


def test_query_all_returns_deleted_rows(server: VendorServer, salesforce_config) -> None:
    accounts = _by_id(iter_records(salesforce_config, "Account"))
    assert accounts["001FAKE0000000004A"]["IsDeleted"] is True
    assert server.requests_to(QUERY_ALL), "must use queryAll, not query"


def test_since_filters_on_system_modstamp(server: VendorServer, salesforce_config) -> None:
    accounts = _by_id(iter_records(salesforce_config, "Account", T0))
    assert set(accounts) == {"001FAKE0000000003A", "001FAKE0000000004A", "001FAKE0000000005A"}

    q = server.requests_to(QUERY_ALL)[-1].query["q"][0]
    assert q == soql(salesforce_config, "Account", T0)
    assert q.endswith("FROM Account WHERE SystemModstamp >= 2025-06-01T00:00:00Z ORDER BY SystemModstamp")
    assert q.startswith("SELECT Id, Name, ParentId, OwnerId, CSM__c, Segment__c,")

    assert set(_by_id(iter_records(salesforce_config, "Opportunity", T0))) == {"006FAKE0000000003A"}


def test_origin_is_the_page_url(server: VendorServer, salesforce_config) -> None:
    records = list(iter_records(salesforce_config, "Account"))
    first = urlsplit(records[0].origin)
    assert first.path == QUERY_ALL
    assert parse_qs(first.query)["q"][0].startswith("SELECT Id")
    assert urlsplit(records[-1].origin).path.startswith("/services/data/v62.0/query/")
    assert all(fake.SALESFORCE_ACCESS_TOKEN not in r.origin for r in records)


def test_429_waits_for_retry_after(server: VendorServer, salesforce_config) -> None:
    server.fail(QUERY_ALL, [429], retry_after="1")

    assert _by_id(iter_records(salesforce_config, "User")) == {o["Id"]: o for o in expected("crm", "User")}
    reqs = server.requests_to(QUERY_ALL)
    assert [r.status for r in reqs] == [429, 200]
    assert reqs[1].at - reqs[0].at >= 0.95


def test_500_is_retried_on_a_follow_up_page(server: VendorServer, salesforce_config) -> None:
    server.fail("/services/data/v62.0/query/", [500], prefix=True)

    records = list(iter_records(salesforce_config, "Account"))

    assert _by_id(records) == {o["Id"]: o for o in expected("crm", "Account")}
    follow_ups = [r for r in server.requests if r.path.startswith("/services/data/v62.0/query/")]
    assert [r.status for r in follow_ups][:2] == [500, 200]
    assert follow_ups[0].path == follow_ups[1].path


def test_401_fails_fast_without_leaking_the_token(server: VendorServer, salesforce_config) -> None:
    bad = "00DWRONG0000000!AQcAQNotTheRightToken"
    config = dataclasses.replace(salesforce_config, access_token=bad)

    with pytest.raises(VendorAuthError) as err:
        list(iter_records(config, "Account"))

    assert str(err.value) == (
        f"Salesforce API rejected the credentials (401) for {QUERY_ALL}: check SALESFORCE_ACCESS_TOKEN"
    )
    assert bad not in str(err.value) and bad not in repr(config)
    assert len(server.requests) == 1


def test_config_repr_hides_token() -> None:
    config = SalesforceApiConfig(instance_url="https://x.my.salesforce.com", access_token="00Dsecret!token")
    assert "00Dsecret" not in repr(config)
