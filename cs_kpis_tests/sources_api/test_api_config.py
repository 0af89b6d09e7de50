"""Configs: from_env, dlt-secrets fallback, secrets kept out of repr, logs and exceptions."""

from __future__ import annotations

import dataclasses
import logging
import pickle

import pytest

from cs_kpis.sources.billing.api import StripeApiConfig
from cs_kpis.sources.billing.api import iter_records as stripe_records
from cs_kpis.sources.crm.api import SalesforceApiConfig
from cs_kpis.sources.http import VendorApiError, VendorAuthError
from cs_kpis.sources.nps.api import DelightedApiConfig
from cs_kpis.sources.support.api import ZendeskApiConfig
from cs_kpis.sources.support.api import iter_records as zendesk_records
from cs_kpis_tests.fakes.vendor_server import VendorServer

ENV = {
    "STRIPE_API_KEY": "sk_live_envSECRET1",
    "SALESFORCE_INSTANCE_URL": "https://acme.my.salesforce.com",
    "SALESFORCE_ACCESS_TOKEN": "00DenvSECRET2",
    "ZENDESK_SUBDOMAIN": "acme",
    "ZENDESK_EMAIL": "ops@acme.example",
    "ZENDESK_API_TOKEN": "zdenvSECRET3",
    "DELIGHTED_API_KEY": "dlenvSECRET4",
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("STRIPE_BASE_URL", "DELIGHTED_BASE_URL", "ZENDESK_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)


def test_from_env(env: None) -> None:
    stripe = StripeApiConfig.from_env(page_size=10)
    assert (stripe.api_key, stripe.base_url, stripe.page_size) == (
        "sk_live_envSECRET1",
        "https://api.stripe.com",
        10,
    )
    sf = SalesforceApiConfig.from_env()
    assert (sf.instance_url, sf.access_token, sf.api_version) == (
        "https://acme.my.salesforce.com", "00DenvSECRET2", "v62.0"
    )  # fmt: skip
    zd = ZendeskApiConfig.from_env()
    assert (zd.base_url, zd.email, zd.api_token) == (
        "https://acme.zendesk.com",
        "ops@acme.example",
        "zdenvSECRET3",
    )
    dl = DelightedApiConfig.from_env()
    assert (dl.api_key, dl.base_url) == ("dlenvSECRET4", "https://api.delighted.com")

    for config in (stripe, sf, zd, dl):
        text = repr(config)
        assert "SECRET" not in text, text


def test_zendesk_base_url_wins_over_subdomain(env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZENDESK_BASE_URL", "https://support.acme.example")
    assert ZendeskApiConfig.from_env().base_url == "https://support.acme.example"


def test_missing_setting_names_the_variable(env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STRIPE_API_KEY")
    with pytest.raises(ValueError, match="STRIPE_API_KEY is not set"):
        StripeApiConfig.from_env()


def test_dlt_secrets_fallback(env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # dlt's environment provider maps sources.billing.stripe_api_key to this variable name
    monkeypatch.delenv("STRIPE_API_KEY")
    monkeypatch.setenv("SOURCES__BILLING__STRIPE_API_KEY", "sk_from_dlt")
    assert StripeApiConfig.from_env().api_key == "sk_from_dlt"


def test_secrets_stay_out_of_logs(
    server: VendorServer, stripe_config: StripeApiConfig, zendesk_config: ZendeskApiConfig, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    server.fail("/v1/customers", [500])
    list(stripe_records(stripe_config, "customers"))
    list(zendesk_records(zendesk_config, "tickets"))
    with pytest.raises(VendorAuthError):
        list(stripe_records(dataclasses.replace(stripe_config, api_key="sk_test_badSECRETkey"), "customers"))

    text = caplog.text
    assert "returned 500" in text  # the retry is logged...
    for secret in (stripe_config.api_key, zendesk_config.api_token, "sk_test_badSECRETkey"):
        assert secret not in text  # ...but no credential is


def test_errors_pickle_without_the_response(server: VendorServer, stripe_config: StripeApiConfig) -> None:
    with pytest.raises(VendorAuthError) as err:
        list(stripe_records(dataclasses.replace(stripe_config, api_key="sk_bad"), "customers"))
    copy = pickle.loads(pickle.dumps(err.value))
    assert isinstance(copy, VendorApiError) and str(copy) == str(err.value) and copy.response is None


def test_the_four_vendor_configs_share_one_base(monkeypatch: pytest.MonkeyPatch) -> None:
    # retries, back-off, timeout, lookback and from_env are defined once (cs_kpis.sources.http.VendorApiConfig)
    from cs_kpis.sources.billing.api import StripeApiConfig
    from cs_kpis.sources.crm.api import SalesforceApiConfig
    from cs_kpis.sources.http import VendorApiConfig
    from cs_kpis.sources.nps.api import DelightedApiConfig
    from cs_kpis.sources.support.api import ZendeskApiConfig

    for cls in (StripeApiConfig, SalesforceApiConfig, DelightedApiConfig, ZendeskApiConfig):
        assert issubclass(cls, VendorApiConfig) and "from_env" not in vars(cls), cls
    monkeypatch.setenv("ZENDESK_SUBDOMAIN", "acme")
    monkeypatch.setenv("ZENDESK_EMAIL", "ops@acme.test")
    monkeypatch.setenv("ZENDESK_API_TOKEN", "tok")
    monkeypatch.setenv("ZENDESK_LOOKBACK_SECONDS", "120")
    config = ZendeskApiConfig.from_env(page_size=7)
    assert (config.base_url, config.lookback_seconds, config.page_size, config.max_retry_delay) == (
        "https://acme.zendesk.com", 120, 7, 90.0)
    assert "tok" not in repr(config)
