"""All four readers against the fake server loaded with the simulator's tiny company (two extract days)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cs_kpis.sources.billing import api as stripe
from cs_kpis.sources.crm import api as salesforce
from cs_kpis.sources.nps import api as delighted
from cs_kpis.sources.support import api as zendesk
from cs_kpis_tests.fakes import vendor_server as fake
from cs_kpis_tests.fakes.vendor_server import VendorServer, load_landing, serve_landing

simulator = pytest.importorskip("cs_kpis.simulator")

FAST = {"backoff_base": 0.01, "max_retries": 3, "max_retry_delay": 5.0, "timeout": 10.0}


@pytest.fixture(scope="module")
def sim_landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sim")
    simulator.generate(root / "landing", root / "ground_truth", size="tiny", seed=1, increments=1)
    return root / "landing"


@pytest.fixture(scope="module")
def sim_server(sim_landing: Path) -> Iterator[VendorServer]:
    # pages of 50 keep the request count low; nested lists of 1 force many items/lines follow-ups
    with serve_landing(sim_landing, page_size=50, nested_page_size=1) as srv:
        yield srv


def _index(records, key: str) -> dict:
    records = list(records)
    assert all(r.obj is not None for r in records)
    out = {r.obj[key]: r.obj for r in records}
    assert len(out) == len(records)
    return out


@pytest.mark.parametrize("entity", stripe.ENTITIES)
def test_stripe(sim_server: VendorServer, sim_landing: Path, entity: str) -> None:
    config = stripe.StripeApiConfig(base_url=sim_server.base_url, api_key=fake.STRIPE_API_KEY, **FAST)
    landing = load_landing(sim_landing)[f"billing/{entity}"]
    if entity == "events":
        landing = [e for e in landing if e["type"] in stripe.EVENT_TYPES]
    assert landing
    assert _index(stripe.iter_records(config, entity), "id") == {o["id"]: o for o in landing}


@pytest.mark.parametrize("entity", list(salesforce.SOQL_FIELDS))
def test_salesforce(sim_server: VendorServer, sim_landing: Path, entity: str) -> None:
    config = salesforce.SalesforceApiConfig(
        instance_url=sim_server.base_url, access_token=fake.SALESFORCE_ACCESS_TOKEN, **FAST
    )
    fields = {"attributes", *config.fields[entity]}
    # the api returns the selected fields only: compare with the landing records cut to those
    landing = {
        o["Id"]: {k: v for k, v in o.items() if k in fields}
        for o in load_landing(sim_landing)[f"crm/{entity}"]
    }
    assert landing
    assert _index(salesforce.iter_records(config, entity), "Id") == landing


@pytest.mark.parametrize("entity", zendesk.ENTITIES)
def test_zendesk(sim_server: VendorServer, sim_landing: Path, entity: str) -> None:
    config = zendesk.ZendeskApiConfig(
        base_url=sim_server.base_url, email=fake.ZENDESK_EMAIL, api_token=fake.ZENDESK_API_TOKEN, **FAST
    )
    landing = load_landing(sim_landing)[f"support/{entity}"]
    assert landing
    assert _index(zendesk.iter_records(config, entity), "id") == {o["id"]: o for o in landing}


def test_delighted(sim_server: VendorServer, sim_landing: Path) -> None:
    config = delighted.DelightedApiConfig(
        base_url=sim_server.base_url, api_key=fake.DELIGHTED_API_KEY, **FAST
    )
    landing = load_landing(sim_landing)["nps/survey_responses"]
    assert landing
    assert _index(delighted.iter_records(config, "survey_responses"), "id") == {o["id"]: o for o in landing}
