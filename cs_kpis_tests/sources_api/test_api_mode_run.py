"""API mode runs the whole pipeline: `python -m cs_kpis.run` in API mode against the fake vendor server
serving the tiny simulated company completes, and its staging, marts, KPI and alert tables equal a files-mode
run of the same landing folder, row for row (``except all`` both ways). API mode chosen both ways: the demo
profile's CS_KPIS_INGEST_MODE=api, and a company profile (CS_KPIS_CONFIG) with ``systems.<name>.mode: api``.

The landing holds one extract day (the simulator's snapshot). The API load's clock is fixed to that day
(``CS_KPIS_API_EXTRACT_TIME``, cs_kpis/sources/common/clock.py), so API rows carry the same ``_extract_day``
and the scd2 accounts the same validity boundary as the files load. Product events and
``reference/fx_rates.csv`` come from the landing folder in both modes.

Left out of the comparison, by nature: the columns that name a load or run (``_dlt_load_id``, ``_dlt_id``,
``dlt_load_id``, ``run_id``) and when a row was built (``built_at``, ``logged_at``: the run's wall clock);
the rows' lineage ``_origin`` (a landing file vs an API page URL); the raw tables, which differ by design in
those columns and in fields the API does not select (Salesforce SOQL lists its fields); and the reports
(HTML stamped with the run). Floating point is compared to 9 decimals.

The demo company in API mode (slow) is compared with the simulator's ground truth instead: month-end MRR on
every account-month, churn and reactivation months and revenue_monthly's KPIs (cs_kpis_tests/ground_truth.py).
"""

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
import yaml

from cs_kpis import config, run
from cs_kpis_tests import ground_truth as gt
from cs_kpis_tests.fakes import vendor_server as fake
from cs_kpis_tests.fakes.vendor_server import VendorServer, serve_landing

simulator = pytest.importorskip("cs_kpis.simulator")

SEED = 7
SCHEMAS = ("staging", "marts", "kpis", "alerts")
LOAD_IDS = {"_dlt_load_id", "_dlt_id", "dlt_load_id"}
"""which load a row came from: differs between any two runs"""
RUN_STAMPS = {"built_at", "logged_at", "run_id"}
"""when a row was built (wall clock of the run)"""
LINEAGE = {"_origin", "origin"}
"""a landing file name in files mode, the API page URL in API mode"""
MUST_MATCH = ("marts.mrr_monthly", "marts.subscription_periods", "marts.accounts", "kpis.revenue_monthly")


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("api_run")
    manifest = simulator.generate(root / "landing", root / "ground_truth", size="tiny", seed=SEED)
    [day] = manifest["extract_days"]
    return root / "landing", str(day)


@pytest.fixture
def server(landing: tuple[Path, str]) -> Iterator[VendorServer]:
    with serve_landing(landing[0], page_size=100, nested_page_size=100) as srv:
        yield srv


def _point_at(mp: pytest.MonkeyPatch, base: Path, landing: Path) -> Path:
    """Every state path under ``base``; the shared, read-only landing folder. Returns the warehouse."""
    for name, value in {
        "CS_KPIS_STATE_DIR": base / "state",
        "CS_KPIS_WAREHOUSE": base / "state/warehouse/cs_kpis.duckdb",
        "CS_KPIS_DLT_DIR": base / "state/dlt",
        "DAGSTER_HOME": base / "state/dagster_home",
        "CS_KPIS_LANDING_DIR": landing,
        "CS_KPIS_GROUND_TRUTH_DIR": landing.parent / "ground_truth",
        "CS_KPIS_DEMO_SIZE": "tiny",
        "CS_KPIS_DEMO_SEED": str(SEED),  # the demo profile reads the landing above as is, never regenerates
        "NO_PROXY": "127.0.0.1,localhost",
    }.items():
        mp.setenv(name, str(value))
    for name in ("CS_KPIS_CONFIG", "CS_KPIS_INGEST_MODE", "CS_KPIS_API_EXTRACT_TIME", "HTTP_PROXY", "HTTPS_PROXY",
                 "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        mp.delenv(name, raising=False)
    return base / "state/warehouse/cs_kpis.duckdb"


@pytest.fixture(scope="module")
def files_warehouse(landing: tuple[Path, str]) -> Path:
    """The baseline: the demo profile's run in files mode of the same landing folder."""
    with pytest.MonkeyPatch.context() as mp:
        warehouse = _point_at(mp, landing[0].parent / "files", landing[0])
        assert run.main([]) == 0
    return warehouse


def _company_config(path: Path, landing: Path) -> Path:
    """A company profile with the demo's field names and product, every vendor in API mode (Segment files)."""
    data = config.DEMO.model_dump(mode="json")
    data.update(profile="acme", landing_dir=str(landing))
    for system in ("crm", "billing", "support", "nps"):
        data["systems"][system]["mode"] = "api"
    path.write_text(yaml.safe_dump(data))
    return path


def _columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[str]:
    """The compared column expressions: floating point rounded to 9 decimals (a mean's last bits depend on
    the order DuckDB's parallel aggregation adds the values in, in either mode)."""
    out = []
    for column, data_type in con.execute(
            "select column_name, data_type from information_schema.columns where table_catalog = "
            "current_database() and table_schema = ? and table_name = ? order by ordinal_position",
            [schema, table]).fetchall():
        if column in LOAD_IDS | RUN_STAMPS | LINEAGE:
            continue
        quoted = f'"{column}"'
        out.append(f"round({quoted}, 9)" if data_type in ("DOUBLE", "FLOAT", "REAL") else quoted)
    return out


def differences(files_wh: Path, api_wh: Path) -> dict[str, tuple[int, int]]:
    """{schema.table: (rows only in files mode, rows only in api mode)} for every table that differs,
    or that exists on one side only (then (-1, -1))."""
    out: dict[str, tuple[int, int]] = {}
    with duckdb.connect(str(files_wh), read_only=True) as con:
        con.execute(f"attach '{api_wh}' as api (read_only)")
        files_db = con.execute("select current_database()").fetchone()[0]
        for schema in SCHEMAS:
            names = {t for (t,) in con.execute(
                "select table_name from information_schema.tables where table_catalog = ? and table_schema = ?",
                [files_db, schema]).fetchall()}
            api_names = {t for (t,) in con.execute(
                "select table_name from information_schema.tables where table_catalog = 'api' and table_schema = ?",
                [schema]).fetchall()}
            for name in sorted(names ^ api_names):
                out[f"{schema}.{name}"] = (-1, -1)
            for name in sorted(names & api_names):
                cols = ", ".join(_columns(con, schema, name))
                mine = f"select {cols} from {files_db}.{schema}.{name}"
                theirs = f"select {cols} from api.{schema}.{name}"
                only_files = con.execute(f"select count(*) from ({mine} except all {theirs})").fetchone()[0]
                only_api = con.execute(f"select count(*) from ({theirs} except all {mine})").fetchone()[0]
                if only_files or only_api:
                    out[f"{schema}.{name}"] = (only_files, only_api)
    return out


def _api_env(server: VendorServer, day: str) -> dict[str, str]:
    """Every vendor pointed at the fake server with valid credentials; the API extract runs on ``day``."""
    return {
        "CS_KPIS_API_EXTRACT_TIME": day,  # the API extract ran on the landing's extract day
        "STRIPE_API_KEY": fake.STRIPE_API_KEY, "STRIPE_BASE_URL": server.base_url,
        "SALESFORCE_INSTANCE_URL": server.base_url, "SALESFORCE_ACCESS_TOKEN": fake.SALESFORCE_ACCESS_TOKEN,
        "ZENDESK_BASE_URL": server.base_url, "ZENDESK_EMAIL": fake.ZENDESK_EMAIL,
        "ZENDESK_API_TOKEN": fake.ZENDESK_API_TOKEN,
        "DELIGHTED_API_KEY": fake.DELIGHTED_API_KEY, "DELIGHTED_BASE_URL": server.base_url,
    }


@pytest.mark.slow  # whole-graph runs of the tiny company: ~80-100 s each on a shared 2-core machine
@pytest.mark.parametrize("profile", ["demo", "company"])
def test_run_in_api_mode_equals_files_mode(profile, landing, files_warehouse, server, tmp_path, monkeypatch, capsys):
    """demo: CS_KPIS_INGEST_MODE=api; company: a config file with systems.<name>.mode: api."""
    landing_dir, day = landing
    api_wh = _point_at(monkeypatch, tmp_path / "api", landing_dir)
    if profile == "demo":
        monkeypatch.setenv("CS_KPIS_INGEST_MODE", "api")
    else:
        monkeypatch.setenv("CS_KPIS_CONFIG", str(_company_config(tmp_path / "company.yaml", landing_dir)))
    for name, value in _api_env(server, day).items():
        monkeypatch.setenv(name, value)
    status = run.main([])
    out = capsys.readouterr().out
    assert status == 0, out
    # the vendors were really called: the API run did not read the landing folder's exports instead
    paths = {r.path for r in server.requests}
    assert any(p.startswith("/v1/subscriptions") for p in paths)
    assert any("/services/data/" in p for p in paths)
    assert any(p.startswith("/api/v2/") for p in paths)
    assert any(p.startswith("/v1/survey_responses") for p in paths)

    with duckdb.connect(str(api_wh), read_only=True) as con:
        # API rows carry the extract day of the load's clock
        assert con.execute("select distinct _extract_day from raw.billing__subscriptions").fetchall() == [
            (dt.date.fromisoformat(day),)]
        for table in MUST_MATCH:
            assert con.execute(f"select count(*) from {table}").fetchone()[0] > 0, table

    diff = differences(files_warehouse, api_wh)
    assert diff == {}, f"tables where api mode differs from files mode (only files, only api): {diff}"


@pytest.mark.slow  # the demo company generated, served and loaded through the vendors' APIs: minutes
def test_demo_company_in_api_mode_matches_ground_truth(tmp_path, monkeypatch, capsys):
    """The demo company with the default ~30 days of Stripe events (history before them from invoices, invoice
    items and the subscriptions list), loaded in API mode from the fake vendor server: month-end MRR equals the
    simulator's on every account-month, churn and reactivation months match, and kpis.revenue_monthly's
    monthly KPIs equal the bridge worked out from the ground truth (helpers of cs_kpis_tests/ground_truth.py,
    as the files-mode tests in test_ground_truth.py)."""
    manifest = simulator.generate(tmp_path / "landing", tmp_path / "ground_truth", size="demo", seed=42)
    assert manifest["event_retention_days"] == 30
    [day] = manifest["extract_days"]
    warehouse = _point_at(monkeypatch, tmp_path / "api", tmp_path / "landing")
    monkeypatch.setenv("CS_KPIS_DEMO_SIZE", "demo")
    monkeypatch.setenv("CS_KPIS_DEMO_SEED", "42")
    monkeypatch.setenv("CS_KPIS_INGEST_MODE", "api")
    with serve_landing(tmp_path / "landing", page_size=100, nested_page_size=100) as server:
        for name, value in _api_env(server, str(day)).items():
            monkeypatch.setenv(name, value)
        status = run.main([])
        out = capsys.readouterr().out
        assert status == 0, out
        stripe_paths = {r.path for r in server.requests if r.path.startswith("/v1/")}
    # the history came through the API: events, invoices (with their lines) and the subscriptions list
    for path in ("/v1/events", "/v1/invoices", "/v1/subscriptions"):
        assert any(p.startswith(path) for p in stripe_paths), path
    with duckdb.connect(str(warehouse), read_only=True) as con:
        first_event = con.execute("select min(cast(created_at as date)) from staging.stg_billing__events").fetchone()[0]
        assert (dt.date.fromisoformat(str(day)) - first_event).days <= 31  # 30 days of events, as Stripe keeps

    truth_dir = tmp_path / "ground_truth"
    truth = gt.truth_month_end(truth_dir)
    assert len(truth) > 10_000
    diffs = gt.differences(truth, gt.month_end(warehouse))
    assert diffs == [], f"{len(diffs)} of {len(truth)} account-months differ, e.g. {diffs[:5]}"
    expected_events = gt.truth_churn_events(truth_dir)
    assert len(expected_events) > 100
    assert set(gt.warehouse_rows(warehouse, gt.CHURN_AND_REACTIVATION_FROM_DAILY_CHANGES)) == expected_events
    assert set(gt.warehouse_rows(warehouse, gt.MOVEMENTS_FROM_MRR_MONTHLY)) == expected_events
    kpi_diffs = gt.revenue_monthly_differences(warehouse, truth)
    assert kpi_diffs == [], f"{len(kpi_diffs)} month/column values differ, e.g. {kpi_diffs[:5]}"
