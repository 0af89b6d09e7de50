"""API mode end to end: the dlt sources and the Dagster raw assets against the fake vendor server serving
the tiny simulated company load the same raw tables as files mode; incremental API runs re-read a
lookback window before the cursor without duplicating rows, and pick up the changes.

Compared: every table of billing, crm, support and nps, rows sorted, leaving out the bookkeeping columns
that tell the two modes apart by design (``_origin``: landing file or page URL, ``_extract_day``: the day
the API load ran, not the file's folder, ``_dlt_*``), and for the scd2 ``crm__accounts`` the current versions (an API snapshot has
no past extract days to version by). ``_row_accounting`` differs by design (an API run reads each
object's latest state once, files mode the snapshot plus every increment).
"""

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from cs_kpis.lib.extracts import newest_extract_days
from cs_kpis.sources.billing.api import StripeApiConfig
from cs_kpis.sources.crm.api import SalesforceApiConfig
from cs_kpis.sources.nps.api import DelightedApiConfig
from cs_kpis.sources.pipelines import load_system
from cs_kpis.sources.support.api import ZendeskApiConfig
from cs_kpis_tests.fakes import vendor_server as fake
from cs_kpis_tests.fakes.vendor_server import VendorServer, load_landing, serve_landing

simulator = pytest.importorskip("cs_kpis.simulator")

API_SYSTEMS = ("billing", "crm", "support", "nps")
BOOKKEEPING = ("_origin", "_extract_day", "loaded_at")


@pytest.fixture(scope="module")
def env() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as mp:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
            mp.delenv(name, raising=False)
        mp.setenv("NO_PROXY", "127.0.0.1,localhost")
        mp.setenv("RUNTIME__DLTHUB_TELEMETRY", "false")
        yield mp


@pytest.fixture(scope="module")
def company(tmp_path_factory: pytest.TempPathFactory, env: pytest.MonkeyPatch) -> dict[str, Path]:
    """The tiny company (snapshot + one increment), its snapshot alone, and a files-mode warehouse."""
    root = tmp_path_factory.mktemp("api_e2e")
    env.setenv("DLT_DATA_DIR", str(root / "dlt_global"))
    manifest = simulator.generate(root / "landing", root / "truth", size="tiny", seed=1, increments=1)
    last = max(manifest["extract_days"])
    snapshot = root / "snapshot"
    shutil.copytree(root / "landing", snapshot)
    for day_dir in list(snapshot.glob(f"*/*/{last}")):
        shutil.rmtree(day_dir)
    files_wh = root / "files.duckdb"
    for system in API_SYSTEMS:
        load_system(system, warehouse=files_wh, pipelines_dir=root / "files_dlt", landing_dir=root / "landing")
    return {"root": root, "landing": root / "landing", "snapshot": snapshot, "files": files_wh}


@pytest.fixture(scope="module")
def server(company: dict[str, Path]) -> Iterator[VendorServer]:
    with serve_landing(company["landing"], page_size=100, nested_page_size=100) as srv:
        yield srv


def configs(base_url: str, lookback: int = 3600) -> dict[str, object]:
    return {
        "billing": StripeApiConfig(base_url=base_url, api_key=fake.STRIPE_API_KEY, lookback_seconds=lookback),
        "crm": SalesforceApiConfig(instance_url=base_url, access_token=fake.SALESFORCE_ACCESS_TOKEN,
                                   lookback_seconds=lookback),
        "support": ZendeskApiConfig(base_url=base_url, email=fake.ZENDESK_EMAIL, api_token=fake.ZENDESK_API_TOKEN,
                                    lookback_seconds=lookback),
        "nps": DelightedApiConfig(base_url=base_url, api_key=fake.DELIGHTED_API_KEY, lookback_seconds=lookback),
    }


def tables(warehouse: Path, systems: tuple[str, ...] = API_SYSTEMS) -> dict[str, list[str]]:
    """Rows of every table of ``systems``, sorted, without bookkeeping columns; crm__accounts: current."""
    out = {}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        names = [t for (t,) in con.execute(
            "select table_name from information_schema.tables where table_schema = 'raw'").fetchall()
            if t.split("__")[0] in systems]
        for name in names:
            columns = [c for (c,) in con.execute(
                "select column_name from information_schema.columns where table_schema = 'raw' and table_name = ?"
                " order by column_name", [name]).fetchall()
                if not c.startswith("_dlt_") and c not in BOOKKEEPING]
            where = " where _dlt_valid_to is null" if name == "crm__accounts" else ""
            rows = con.execute(f"select {', '.join(columns)} from raw.{name}{where}").fetchall()
            out[name] = sorted(repr(r) for r in rows)
    return out


def assert_same(api: dict[str, list[str]], files: dict[str, list[str]]) -> None:
    assert sorted(api) == sorted(files)
    for name, rows in files.items():
        assert rows, name
        assert api[name] == rows, f"raw.{name}: api mode differs from files mode"


def test_dagster_raw_assets_in_api_mode(company: dict[str, Path], server: VendorServer,
                                        env: pytest.MonkeyPatch) -> None:
    """CS_KPIS_INGEST_MODE=api and the vendors' env vars: every raw asset materializes, product events
    from the landing folder, and the tables equal files mode's."""
    from cs_kpis.defs.raw.assets import raw_definitions
    from cs_kpis.defs.raw.resources import RawDltResource

    root = company["root"]
    for name, value in {
        "CS_KPIS_INGEST_MODE": "api",
        "CS_KPIS_LANDING_DIR": str(company["landing"]),
        "CS_KPIS_WAREHOUSE": str(root / "dagster_api.duckdb"),
        "CS_KPIS_DLT_DIR": str(root / "dagster_dlt"),
        "STRIPE_API_KEY": fake.STRIPE_API_KEY, "STRIPE_BASE_URL": server.base_url,
        "SALESFORCE_INSTANCE_URL": server.base_url, "SALESFORCE_ACCESS_TOKEN": fake.SALESFORCE_ACCESS_TOKEN,
        "ZENDESK_BASE_URL": server.base_url, "ZENDESK_EMAIL": fake.ZENDESK_EMAIL,
        "ZENDESK_API_TOKEN": fake.ZENDESK_API_TOKEN,
        "DELIGHTED_API_KEY": fake.DELIGHTED_API_KEY, "DELIGHTED_BASE_URL": server.base_url,
    }.items():
        env.setenv(name, value)
    try:
        defs = raw_definitions()
        assets = list(defs.assets)
        before = len(server.requests)
        result = dg.materialize(assets, resources={"dlt": RawDltResource()}, instance=dg.DagsterInstance.ephemeral())
    finally:
        env.delenv("CS_KPIS_INGEST_MODE")
    assert result.success
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert len(materialized) == 22 and "raw/product/events" in materialized
    assert "raw/crm/account_history" in materialized
    # the four vendors were called; the api-mode assets do not depend on the landing folder
    paths = {r.path for r in server.requests[before:]}
    assert any(p.startswith("/v1/customers") for p in paths)
    assert any("/services/data/" in p for p in paths)
    assert any(p.startswith("/api/v2/") for p in paths)
    assert any(p.startswith("/v1/survey_responses") for p in paths)
    specs = {s.key.to_user_string(): s for a in assets for s in a.specs}
    assert not specs["raw/billing/customers"].deps
    assert specs["raw/product/events"].deps
    assert_same(tables(root / "dagster_api.duckdb"), tables(company["files"]))
    with duckdb.connect(str(root / "dagster_api.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from raw.product__events").fetchall()[0][0] > 0


def test_incremental_api_runs_with_lookback(company: dict[str, Path], server: VendorServer) -> None:
    """Run 1 sees the snapshot, run 2 the company a day later, asking for changes since the cursor minus
    the lookback: no duplicates, every change picked up, and far fewer objects read than a full load."""
    root = company["root"]
    warehouse, dlt_dir = root / "incremental.duckdb", root / "incremental_dlt"
    full_data = server.data
    try:
        server.data = load_landing(company["snapshot"])
        first = {s: load_system(s, warehouse=warehouse, pipelines_dir=dlt_dir, landing_dir=company["landing"],
                                mode="api", config=c) for s, c in configs(server.base_url).items()}
        server.data = full_data
        before = len(server.requests)
        second = {s: load_system(s, warehouse=warehouse, pipelines_dir=dlt_dir, landing_dir=company["landing"],
                                 mode="api", config=c) for s, c in configs(server.base_url).items()}
    finally:
        server.data = full_data
    assert_same(tables(warehouse), tables(company["files"]))
    for system in API_SYSTEMS:
        assert first[system]["balanced"] and second[system]["balanced"]
    # incremental, not a full reload: the cursors went out as filters ...
    queries = [(r.path, r.query) for r in server.requests[before:]]
    soql = [q["q"][0] for p, q in queries if "/services/data/" in p and "q" in q]
    # (field history rows are never modified: AccountHistory's cursor is its CreatedDate)
    assert soql and all(("CreatedDate >=" if "FROM AccountHistory" in q else "SystemModstamp >=") in q for q in soql)
    assert any("FROM AccountHistory" in q for q in soql)
    assert all(int(q["updated_since"][0]) > 0 for p, q in queries if p.startswith("/v1/survey_responses"))
    assert all(int(q["start_time"][0]) > 0 for p, q in queries if p.startswith("/api/v2/incremental/"))
    # ... and the second run read a fraction of what the first read (changes + the lookback window)
    for system in ("crm", "nps"):
        assert second[system]["rows_read"] < first[system]["rows_read"] / 2, system


def test_lookback_rereads_late_rows_without_duplicates(company: dict[str, Path], server: VendorServer) -> None:
    """Two API runs back to back: the second re-reads the lookback window (rows read > 0), loads nothing
    twice, and the tables do not change."""
    root = company["root"]
    warehouse, dlt_dir = root / "twice.duckdb", root / "twice_dlt"
    config = configs(server.base_url, lookback=86_400 * 3)["nps"]
    load_system("nps", warehouse=warehouse, pipelines_dir=dlt_dir, landing_dir=company["landing"], mode="api",
                config=config)
    once = tables(warehouse, ("nps",))
    again = load_system("nps", warehouse=warehouse, pipelines_dir=dlt_dir, landing_dir=company["landing"],
                        mode="api", config=config)
    assert again["rows_read"] > 0  # the window before the cursor was read again
    assert tables(warehouse, ("nps",)) == once
    with duckdb.connect(str(warehouse), read_only=True) as con:
        total, distinct = con.execute("select count(*), count(distinct id) from raw.nps__survey_responses").fetchall()[0]
    assert total == distinct


def test_api_rows_carry_the_extract_day_of_the_loads_clock(company: dict[str, Path], server: VendorServer,
                                                           env: pytest.MonkeyPatch) -> None:
    """Every staging model selects ``_extract_day``: API rows carry the UTC day the load ran
    (CS_KPIS_API_EXTRACT_TIME fixes the clock), ``_row_accounting`` lists that day (the marts' as-of day and
    the staleness sensor read it), and the scd2 accounts take the load's moment as validity boundary."""
    root = company["root"]
    warehouse, dlt_dir = root / "clock.duckdb", root / "clock_dlt"
    env.setenv("CS_KPIS_API_EXTRACT_TIME", "2026-11-30T05:06:07")  # no offset: UTC
    try:
        for system, config in configs(server.base_url).items():
            load_system(system, warehouse=warehouse, pipelines_dir=dlt_dir, landing_dir=company["landing"],
                        mode="api", config=config)
    finally:
        env.delenv("CS_KPIS_API_EXTRACT_TIME")
    day = dt.date(2026, 11, 30)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        lineage = [t for (t,) in con.execute(
            "select table_name from information_schema.columns where table_schema = 'raw' "
            "and column_name = '_extract_day'").fetchall()]
        assert {"billing__subscriptions", "billing__invoice_lines", "crm__contacts", "support__tickets",
                "nps__survey_responses"} <= set(lineage)
        for table in lineage:
            assert con.execute(f"select distinct _extract_day from raw.{table}").fetchall() == [(day,)], table
        assert newest_extract_days(con) == {system: day for system in API_SYSTEMS}
        [(valid_from,)] = con.execute("select distinct _dlt_valid_from from raw.crm__accounts").fetchall()
        assert valid_from.replace(tzinfo=None) == dt.datetime(2026, 11, 30, 5, 6, 7)
    # unset: the clock is now (UTC)
    from cs_kpis.sources.common.clock import api_extract_time

    before = dt.datetime.now(dt.UTC)
    assert before <= api_extract_time() <= dt.datetime.now(dt.UTC)
    env.setenv("CS_KPIS_API_EXTRACT_TIME", "yesterday")
    try:
        with pytest.raises(ValueError, match="CS_KPIS_API_EXTRACT_TIME must be an ISO-8601"):
            api_extract_time()
    finally:
        env.delenv("CS_KPIS_API_EXTRACT_TIME")
