"""Secrets never leave: a vendor server that echoes the request's headers in its error bodies (as some do)
must not get a credential, in any encoding, into an exception, a log line, the Dagster event log or compute
logs, dlt's trace (trace.pickle) or a warehouse table.

Issue 16: on a 5xx the error message kept 300 characters of the body, and redaction removed only the raw
secret strings, so Delighted's key, base64-encoded in the Basic auth header, reached the console, the event
log, the compute logs and trace.pickle. The fake vendor server is subclassed here (its module is not edited):
every error answer carries the request headers.
"""

from __future__ import annotations

import base64
import pickle
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import dagster as dg
import duckdb
import pytest

from cs_kpis.sources.billing.api import StripeApiConfig
from cs_kpis.sources.billing.api import iter_records as stripe_records
from cs_kpis.sources.crm.api import SalesforceApiConfig
from cs_kpis.sources.crm.api import iter_records as salesforce_records
from cs_kpis.sources.http import VendorApiError, redact
from cs_kpis.sources.nps.api import DelightedApiConfig
from cs_kpis.sources.nps.api import iter_records as delighted_records
from cs_kpis.sources.support.api import ZendeskApiConfig
from cs_kpis.sources.support.api import iter_records as zendesk_records
from cs_kpis_tests.fakes import vendor_server as fake
from cs_kpis_tests.fakes.vendor_server import VendorServer

FAST = {"backoff_base": 0.01, "max_retries": 1, "max_retry_delay": 1.0, "timeout": 10.0}


class EchoingVendorServer(VendorServer):
    """The fake vendor server, but every error answer (4xx/5xx) echoes the request headers and path."""

    echoed = 0

    def handle(self, method: str, raw_path: str, headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        status, body, extra = super().handle(method, raw_path, headers)
        if status >= 400:
            echo = {"echo": {"headers": dict(headers), "path": raw_path}}
            body = [*body, echo] if isinstance(body, list) else {**(body if isinstance(body, dict) else {}), **echo}
            type(self).echoed += 1
        return status, body, extra


def _basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


CREDENTIALS = {
    "stripe key": fake.STRIPE_API_KEY,
    "salesforce token": fake.SALESFORCE_ACCESS_TOKEN,
    "zendesk token": fake.ZENDESK_API_TOKEN,
    "delighted key": fake.DELIGHTED_API_KEY,
}


def forms() -> dict[str, str]:
    """Each credential in each encoding it could leak in (computed here, not by the code under test)."""
    out = {}
    for name, value in CREDENTIALS.items():
        out[f"{name} raw"] = value
        out[f"{name} url-quoted"] = quote(value, safe="")
        out[f"{name} url-quoted-plus"] = quote_plus(value, safe="")
        out[f"{name} base64"] = base64.b64encode(value.encode()).decode().rstrip("=")
    out["delighted Basic header"] = _basic(fake.DELIGHTED_API_KEY, "").rstrip("=")
    out["zendesk Basic header"] = _basic(f"{fake.ZENDESK_EMAIL}/token", fake.ZENDESK_API_TOKEN).rstrip("=")
    return out


def leaks(text: str | bytes) -> list[str]:
    data = text if isinstance(text, bytes) else text.encode()
    return [name for name, form in forms().items() if form.encode() in data]


@pytest.fixture
def echo_server(landing: Path):
    EchoingVendorServer.echoed = 0
    with EchoingVendorServer(landing, page_size=2, nested_page_size=2) as srv:
        yield srv


def test_redact_covers_every_encoding():
    secrets = list(CREDENTIALS.values())
    for name, form in forms().items():
        assert "***" in redact(f"before {form} after", secrets), name
        assert not leaks(redact(f"x{form}y", secrets)), name
    header = f"Authorization: Basic {_basic(fake.DELIGHTED_API_KEY, '')}"
    assert not leaks(redact(header, secrets))
    url = f"https://x.example/hook/{quote(fake.STRIPE_API_KEY)}?api_key={quote_plus(fake.STRIPE_API_KEY)}"
    assert not leaks(redact(url, secrets))


@pytest.mark.parametrize("vendor", ["stripe", "salesforce", "zendesk", "delighted"])
@pytest.mark.parametrize("status", [500, 401])
def test_error_from_an_echoing_server_carries_status_path_and_code_only(echo_server, vendor, status, caplog):
    base = echo_server.base_url
    read = {
        "stripe": (lambda: stripe_records(StripeApiConfig(base_url=base, api_key=fake.STRIPE_API_KEY, **FAST),
                                          "customers"), "/v1/customers"),
        "salesforce": (lambda: salesforce_records(SalesforceApiConfig(
            instance_url=base, access_token=fake.SALESFORCE_ACCESS_TOKEN, **FAST), "Account"), "/services/data/"),
        "zendesk": (lambda: zendesk_records(ZendeskApiConfig(
            base_url=base, email=fake.ZENDESK_EMAIL, api_token=fake.ZENDESK_API_TOKEN, **FAST), "organizations"),
            "/api/v2/incremental/organizations.json"),
        "delighted": (lambda: delighted_records(DelightedApiConfig(
            base_url=base, api_key=fake.DELIGHTED_API_KEY, **FAST)), "/v1/survey_responses.json"),
    }
    reader, path = read[vendor]
    echo_server.fail(path, [status] * 5, prefix=vendor == "salesforce")
    with pytest.raises(VendorApiError) as err:
        list(reader())
    assert EchoingVendorServer.echoed >= 1  # the server did echo the credentials back
    message = str(err.value)
    assert f" {status} " in message or f"({status})" in message
    assert path.rstrip("/") in message
    if status == 500 and vendor == "salesforce":
        assert "(error code UNKNOWN_EXCEPTION)" in message
    assert "echo" not in message and "Authorization" not in message
    everything = message + repr(err.value) + caplog.text
    assert not leaks(everything)
    assert not leaks(pickle.dumps(err.value))


def _warehouse_text(path: Path) -> str:
    parts = []
    with duckdb.connect(str(path), read_only=True) as con:
        for schema, table in con.execute("select table_schema, table_name from information_schema.tables").fetchall():
            parts.append(repr(con.execute(f'select * from "{schema}"."{table}"').fetchall()))
    return "\n".join(parts)


def test_dagster_run_against_an_echoing_server_leaks_nothing(tmp_path, landing, echo_server, monkeypatch, capfd,
                                                             caplog):
    from cs_kpis.defs.raw.assets import build_raw_assets
    from cs_kpis.defs.raw.resources import RawDltResource

    base = echo_server.base_url
    env = {
        "STRIPE_API_KEY": fake.STRIPE_API_KEY, "STRIPE_BASE_URL": base,
        "SALESFORCE_INSTANCE_URL": base, "SALESFORCE_ACCESS_TOKEN": fake.SALESFORCE_ACCESS_TOKEN,
        "ZENDESK_BASE_URL": base, "ZENDESK_EMAIL": fake.ZENDESK_EMAIL, "ZENDESK_API_TOKEN": fake.ZENDESK_API_TOKEN,
        "DELIGHTED_API_KEY": fake.DELIGHTED_API_KEY, "DELIGHTED_BASE_URL": base,
        "RUNTIME__DLTHUB_TELEMETRY": "false", "DLT_DATA_DIR": str(tmp_path / "dlt_global"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for cls in (SalesforceApiConfig, ZendeskApiConfig, DelightedApiConfig):  # fast retries
        original = cls.from_env.__func__
        monkeypatch.setattr(cls, "from_env", classmethod(lambda c, _o=original, **kw: _o(c, **{**FAST, **kw})))
    # Delighted: 5xx with the echo until the retries run out; Zendesk: a 401 with the echo
    echo_server.fail("/v1/survey_responses.json", [500] * 10)
    echo_server.fail("/api/v2/incremental/organizations.json", [401])
    warehouse, dlt_dir, home = tmp_path / "wh.duckdb", tmp_path / "dlt", tmp_path / "dagster_home"
    assets = build_raw_assets(landing_dir=landing, warehouse=warehouse, pipelines_dir=dlt_dir, mode="api",
                              systems=("crm", "support", "nps"))
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        result = dg.materialize(assets, resources={"dlt": RawDltResource()}, instance=instance,
                                raise_on_error=False)
        assert not result.success
        events = instance.all_logs(result.run_id)
        event_text = "\n".join(repr(e) for e in events)
        # the failures were reported, with status, path and (where the vendor has one) the code
        assert "Delighted API returned 500 for /v1/survey_responses.json" in event_text
        assert "Zendesk API rejected the credentials (401)" in event_text
        assert EchoingVendorServer.echoed >= 2
        assert not leaks(event_text), "Dagster event log"
    captured = capfd.readouterr()
    assert not leaks(captured.out + captured.err), "console"
    assert not leaks(caplog.text), "log records"
    traces = list(dlt_dir.rglob("trace.pickle"))
    assert traces, "dlt wrote no trace.pickle: nothing was checked"
    files = [p for root in (home, dlt_dir, tmp_path / "dlt_global") if root.exists()
             for p in root.rglob("*") if p.is_file()]
    # checked below: the event log (runs/<run id>.db), the compute logs (storage/<run id>/compute_logs/*.err)
    assert any(p.parent.name == "runs" and p.suffix == ".db" for p in files)
    assert any(p.parent.name == "compute_logs" and p.suffix == ".err" for p in files)
    for path in files:
        assert not leaks(path.read_bytes()), f"{path} holds a credential"
    for path in traces:
        assert not leaks(repr(pickle.loads(path.read_bytes()))), f"{path} (unpickled)"
    assert warehouse.exists()
    assert not leaks(_warehouse_text(warehouse)), "a warehouse table"
