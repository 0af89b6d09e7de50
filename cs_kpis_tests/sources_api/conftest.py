"""Fixtures for the vendor API reader tests: a landing folder and the fake vendor server serving it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cs_kpis.sources.billing.api import StripeApiConfig
from cs_kpis.sources.crm.api import SalesforceApiConfig
from cs_kpis.sources.nps.api import DelightedApiConfig
from cs_kpis.sources.support.api import ZendeskApiConfig
from cs_kpis_tests.fakes import vendor_server as fake
from cs_kpis_tests.fakes.vendor_server import VendorServer, serve_landing
from cs_kpis_tests.sources_api.landing_builder import build_landing


@pytest.fixture(autouse=True)
def _only_localhost(monkeypatch: pytest.MonkeyPatch) -> None:
    # a proxy from the environment must not capture the calls to 127.0.0.1
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    """A small two-day landing folder."""
    return build_landing(tmp_path / "landing")


@pytest.fixture
def server(landing: Path) -> Iterator[VendorServer]:
    """The fake vendor server on 127.0.0.1, pages of 2 objects, nested Stripe lists of 2."""
    with serve_landing(landing, page_size=2, nested_page_size=2) as srv:
        yield srv


# small backoff so the 5xx tests are fast; max_retry_delay stays above Retry-After so it is honoured
FAST = {"backoff_base": 0.01, "max_retries": 3, "max_retry_delay": 5.0, "timeout": 10.0}


@pytest.fixture
def stripe_config(server: VendorServer) -> StripeApiConfig:
    """Stripe config pointing at the fake, with the valid key."""
    return StripeApiConfig(base_url=server.base_url, api_key=fake.STRIPE_API_KEY, **FAST)


@pytest.fixture
def salesforce_config(server: VendorServer) -> SalesforceApiConfig:
    """Salesforce config pointing at the fake, with the valid token."""
    return SalesforceApiConfig(
        instance_url=server.base_url, access_token=fake.SALESFORCE_ACCESS_TOKEN, **FAST
    )


@pytest.fixture
def zendesk_config(server: VendorServer) -> ZendeskApiConfig:
    """Zendesk config pointing at the fake, with the valid email and token."""
    return ZendeskApiConfig(
        base_url=server.base_url, email=fake.ZENDESK_EMAIL, api_token=fake.ZENDESK_API_TOKEN, **FAST
    )


@pytest.fixture
def delighted_config(server: VendorServer) -> DelightedApiConfig:
    """Delighted config pointing at the fake, with the valid key."""
    return DelightedApiConfig(base_url=server.base_url, api_key=fake.DELIGHTED_API_KEY, **FAST)
