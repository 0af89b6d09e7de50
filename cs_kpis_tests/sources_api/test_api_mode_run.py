"""API mode runs the whole pipeline: `python -m cs_kpis.run` with CS_KPIS_INGEST_MODE=api against the fake
vendor server serving the tiny simulated company completes, and its staging, marts and KPI tables equal a
files-mode run of the same landing folder, row for row (``except all`` both ways).

The landing holds one extract day (the simulator's snapshot). The API load's clock is fixed to that day
(``CS_KPIS_API_EXTRACT_TIME``, cs_kpis/sources/common/clock.py), so API rows carry the same ``_extract_day``
and the scd2 accounts the same validity boundary as the files load. Product events and
``reference/fx_rates.csv`` come from the landing folder in both modes.

Left out of the comparison, by nature: the columns that name a load (``_dlt_load_id``, ``_dlt_id``,
``dlt_load_id``) and when a row was built (``built_at``, the wall clock of the run); and the rows' lineage ``_origin`` (a landing file vs an API page URL), which no
table below staging reads.
"""

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from cs_kpis import run
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


def _point_at(monkeypatch: pytest.MonkeyPatch, base: Path, landing: Path) -> Path:
    """Every state path under ``base``; the shared, read-only landing folder. Returns the warehouse."""
    for name, value in {
        "CS_KPIS_STATE_DIR": base / "state",
        "CS_KPIS_WAREHOUSE": base / "state/warehouse/cs_kpis.duckdb",
        "CS_KPIS_DLT_DIR": base / "state/dlt",
        "DAGSTER_HOME": base / "state/dagster_home",
        "CS_KPIS_LANDING_DIR": landing,
        "CS_KPIS_GROUND_TRUTH_DIR": landing.parent / "ground_truth",
    }.items():
        monkeypatch.setenv(name, str(value))
    return base / "state/warehouse/cs_kpis.duckdb"


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


@pytest.mark.slow  # two whole-graph runs of the tiny company: ~150-200 s on a shared 2-core machine
def test_run_in_api_mode_equals_files_mode(landing, server, tmp_path, monkeypatch, capsys):
    landing_dir, day = landing
    monkeypatch.setenv("CS_KPIS_DEMO_SIZE", "tiny")
    monkeypatch.setenv("CS_KPIS_DEMO_SEED", str(SEED))  # the landing above: read as is, not regenerated
    monkeypatch.delenv("CS_KPIS_CONFIG", raising=False)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")

    files_wh = _point_at(monkeypatch, tmp_path / "files", landing_dir)
    monkeypatch.setenv("CS_KPIS_INGEST_MODE", "files")
    assert run.main([]) == 0, capsys.readouterr().out

    api_wh = _point_at(monkeypatch, tmp_path / "api", landing_dir)
    for name, value in {
        "CS_KPIS_INGEST_MODE": "api",
        "CS_KPIS_API_EXTRACT_TIME": day,  # the API extract ran on the landing's extract day
        "STRIPE_API_KEY": fake.STRIPE_API_KEY, "STRIPE_BASE_URL": server.base_url,
        "SALESFORCE_INSTANCE_URL": server.base_url, "SALESFORCE_ACCESS_TOKEN": fake.SALESFORCE_ACCESS_TOKEN,
        "ZENDESK_BASE_URL": server.base_url, "ZENDESK_EMAIL": fake.ZENDESK_EMAIL,
        "ZENDESK_API_TOKEN": fake.ZENDESK_API_TOKEN,
        "DELIGHTED_API_KEY": fake.DELIGHTED_API_KEY, "DELIGHTED_BASE_URL": server.base_url,
    }.items():
        monkeypatch.setenv(name, value)
    before = len(server.requests)
    status = run.main([])
    out = capsys.readouterr().out
    assert status == 0, out
    # the vendors were really called: the API run did not read the landing folder's exports instead
    paths = {r.path for r in server.requests[before:]}
    assert any(p.startswith("/v1/subscriptions") for p in paths)
    assert any("/services/data/" in p for p in paths)
    assert any(p.startswith("/api/v2/") for p in paths)
    assert any(p.startswith("/v1/survey_responses") for p in paths)

    with duckdb.connect(str(api_wh), read_only=True) as con:
        # API rows carry the extract day of the load's clock, and the accounting lists it
        assert con.execute("select distinct _extract_day from raw.billing__subscriptions").fetchall() == [
            (__import__("datetime").date.fromisoformat(day),)]
        for table in MUST_MATCH:
            assert con.execute(f"select count(*) from {table}").fetchone()[0] > 0, table

    diff = differences(files_wh, api_wh)
    assert diff == {}, f"tables where api mode differs from files mode (only files, only api): {diff}"
