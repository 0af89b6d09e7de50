"""Delighted reader against the fake API: page numbers, empty-page stop, since, retries, auth."""

from __future__ import annotations

import dataclasses

import pytest

from cs_kpis.sources.http import VendorAuthError
from cs_kpis.sources.nps.api import iter_records
from cs_kpis_tests.fakes import vendor_server as fake
from cs_kpis_tests.fakes.vendor_server import VendorServer
from cs_kpis_tests.sources_api.landing_builder import T0, expected

PATH = "/v1/survey_responses.json"


def _by_id(records):
    records = list(records)
    out = {r.obj["id"]: r.obj for r in records}
    assert len(out) == len(records), "a response came twice"
    return out


def test_responses_equal_landing_and_stop_on_empty_page(server: VendorServer, delighted_config) -> None:
    records = list(iter_records(delighted_config, "survey_responses", None))

    assert _by_id(records) == {o["id"]: o for o in expected("nps", "survey_responses")}
    reqs = server.requests_to(PATH)
    # 5 responses in pages of 2: pages 1..3 have data, page 4 is empty and ends the loop
    assert [r.query["page"] for r in reqs] == [["1"], ["2"], ["3"], ["4"]]
    assert all(r.query["per_page"] == ["100"] for r in reqs)
    assert records[-1].origin.endswith("page=3") and records[-1].position == 0
    assert {r.headers["Authorization"] for r in reqs} == {fake.basic_auth(fake.DELIGHTED_API_KEY, "")}


def test_updated_since(server: VendorServer, delighted_config) -> None:
    got = _by_id(iter_records(delighted_config, "survey_responses", T0))
    assert set(got) == {"103", "105"}  # 103 was re-scored on day 2
    assert got["103"]["score"] == 6
    assert server.requests_to(PATH)[0].query["updated_since"] == [str(T0)]


def test_429_waits_for_retry_after(server: VendorServer, delighted_config) -> None:
    server.fail(PATH, [429], retry_after="1", query_contains="page=2")

    assert len(list(iter_records(delighted_config, "survey_responses"))) == 5
    reqs = server.requests_to(PATH)
    i = [r.status for r in reqs].index(429)
    assert reqs[i + 1].query["page"] == ["2"]
    assert reqs[i + 1].at - reqs[i].at >= 0.95


def test_500_is_retried(server: VendorServer, delighted_config) -> None:
    server.fail(PATH, [500, 500])
    assert len(list(iter_records(delighted_config, "survey_responses"))) == 5
    assert [r.status for r in server.requests_to(PATH)][:3] == [500, 500, 200]


def test_401_fails_fast_without_leaking_the_key(server: VendorServer, delighted_config) -> None:
    bad = "dlWRONGkey0000000000000000000000"
    config = dataclasses.replace(delighted_config, api_key=bad)

    with pytest.raises(VendorAuthError) as err:
        list(iter_records(config, "survey_responses"))

    assert (
        str(err.value) == f"Delighted API rejected the credentials (401) for {PATH}: check DELIGHTED_API_KEY"
    )
    assert bad not in str(err.value) and bad not in repr(config)
    assert len(server.requests) == 1
