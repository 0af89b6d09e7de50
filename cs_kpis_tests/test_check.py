"""`python -m cs_kpis.check`: config validation, the files-mode landing checks, and API mode against the fake
vendor server (good credentials, a 401 naming the system, an unreachable host, a missing secret by key)."""

import json
import shutil
import socket
from pathlib import Path

import pytest

from cs_kpis import check, run, tuning
from cs_kpis_tests.fakes import vendor_server as fake

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = REPO / "examples" / "company.yaml"
API_ENV = ("STRIPE_API_KEY", "STRIPE_BASE_URL", "SALESFORCE_INSTANCE_URL", "SALESFORCE_ACCESS_TOKEN",
           "ZENDESK_BASE_URL", "ZENDESK_SUBDOMAIN", "ZENDESK_EMAIL", "ZENDESK_API_TOKEN", "DELIGHTED_API_KEY",
           "DELIGHTED_BASE_URL")


@pytest.fixture(scope="module")
def tiny_landing(tmp_path_factory) -> Path:
    from cs_kpis.simulator import generate

    root = tmp_path_factory.mktemp("check_tiny")
    generate(root / "landing", root / "truth", size="tiny", seed=3)
    return root / "landing"


@pytest.fixture
def no_api_env(monkeypatch):
    for name in API_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DLT_PROJECT_DIR", "/nonexistent-dlt-project")  # no .dlt/secrets.toml is read


def _template(tmp_path: Path, monkeypatch, edit=None) -> Path:
    """The template copied as is (``edit`` may change its text); CS_KPIS_CONFIG points at the copy."""
    path = tmp_path / "company.yaml"
    text = TEMPLATE.read_text()
    path.write_text(edit(text) if edit else text)
    monkeypatch.setenv("CS_KPIS_CONFIG", str(path))
    return path


def _lines(capsys) -> dict[str, str]:
    out = capsys.readouterr().out
    return {line.split()[0]: line for line in out.splitlines() if line and not line.startswith(("all", "some"))}


def test_the_template_as_is_with_an_empty_landing_folder_fails_check_and_run_and_stays_empty(
        project_env, tmp_path, monkeypatch, capsys):
    _template(tmp_path, monkeypatch)
    landing = tmp_path / "landing"
    landing.mkdir()
    assert check.main([]) == 1
    lines = _lines(capsys)
    assert "ok" in lines["config"] and "my_company" in lines["config"]
    assert "PROBLEM" in lines["landing"] and str(landing) in lines["landing"] and "_manifest.json" in lines["landing"]
    assert run.main([]) == 1
    captured = capsys.readouterr()
    assert str(landing) in captured.out + captured.err
    assert list(landing.iterdir()) == []


def test_the_template_on_a_demo_export_passes(project_env, tmp_path, monkeypatch, capsys, tiny_landing):
    _template(tmp_path, monkeypatch, lambda t: t.replace("landing_dir: landing", f"landing_dir: {tiny_landing}"))
    assert check.main([]) == 0, capsys.readouterr().out
    lines = _lines(capsys)
    assert set(lines) == {"config", "settings", "landing", "crm", "billing", "product", "support", "nps"}
    assert all(" ok " in line for line in lines.values()), lines
    # the template writes every default under settings: but the three file paths and the warehouse's memory limit,
    # spill limit and spill folder (commented out)
    assert f"{len(tuning.SETTINGS) - 6} from the file, 0 from the environment" in lines["settings"]


def test_a_renamed_field_missing_from_the_export_is_named_with_its_key(project_env, tmp_path, monkeypatch, capsys,
                                                                        tiny_landing):
    _template(tmp_path, monkeypatch, lambda t: t.replace("landing_dir: landing", f"landing_dir: {tiny_landing}")
              .replace("csm: CSM__c", "csm: Customer_Success_Manager__c"))
    assert check.main([]) == 1
    line = _lines(capsys)["crm"]
    assert "Customer_Success_Manager__c" in line and "systems.crm.fields.csm" in line and "fix:" in line


def test_a_system_turned_off_is_not_read(project_env, tmp_path, monkeypatch, capsys, tiny_landing):
    nps_off = tmp_path / "landing"
    shutil.copytree(tiny_landing, nps_off)
    shutil.rmtree(nps_off / "nps")
    _template(tmp_path, monkeypatch, lambda t: t.replace(
        "  nps:                         # Delighted\n    mode: files", "  nps:\n    mode: off"))
    assert check.main([]) == 0, capsys.readouterr().out


def test_a_broken_sample_part_is_named(project_env, tmp_path, monkeypatch, capsys, tiny_landing):
    landing = tmp_path / "landing"
    shutil.copytree(tiny_landing, landing)
    manifest = json.loads((landing / "_manifest.json").read_text())
    part = landing / "support" / "tickets" / manifest["extract_days"][0] / "part-00001.json"
    part.write_text('{"tickets": [')
    _template(tmp_path, monkeypatch)
    assert check.main([]) == 1
    assert str(part) in _lines(capsys)["support"]


def test_a_reporting_currency_unlike_the_exports_is_a_problem(project_env, tmp_path, monkeypatch, capsys,
                                                             tiny_landing):
    _template(tmp_path, monkeypatch, lambda t: t.replace("landing_dir: landing", f"landing_dir: {tiny_landing}")
              .replace("reporting_currency: USD", "reporting_currency: EUR"))
    assert check.main([]) == 1
    line = _lines(capsys)["landing"]
    assert "'USD'" in line and "'EUR'" in line


@pytest.mark.parametrize(("edit", "key"), [
    (lambda t: t.replace("reporting_currency: USD", "reporting_currency: dollars"), "reporting_currency"),
    (lambda t: t.replace("profile: my_company", "profile: my_company\nlanding_folder: x"), "landing_folder"),
    (lambda t: t.replace("csm: CSM__c", "csm: CSM__c; drop table raw.crm__accounts"), "systems.crm.fields.csm"),
    (lambda t: t.replace("    mode: files\n    account_id_field: external_id", "    mode: ftp\n"
                         "    account_id_field: external_id"), "systems.support.mode"),
    (lambda t: t.replace("top_plan: enterprise", "top_plan: platinum"), "product"),
    (lambda t: t + "\nstripe_api_key: sk_live_123\n", "stripe_api_key"),
])
def test_an_invalid_config_exits_2_naming_key_and_file(project_env, tmp_path, monkeypatch, capsys, edit, key):
    path = _template(tmp_path, monkeypatch, edit)
    assert check.main([]) == 2
    out = capsys.readouterr().out
    assert key in out and str(path) in out
    assert "sk_live_123" not in out


# ----------------------------------------------------------------------------------------------- api mode

def _api_template(tmp_path, monkeypatch, tiny_landing):
    _template(tmp_path, monkeypatch, lambda t: t.replace("landing_dir: landing", f"landing_dir: {tiny_landing}")
              .replace("mode: files\n    fields", "mode: api\n    fields")
              .replace("mode: files\n    account_id_field: metadata", "mode: api\n    account_id_field: metadata")
              .replace("mode: files\n    account_id_field: external_id", "mode: api\n    account_id_field: external_id")
              .replace("    mode: files\n    account_id_field: person", "    mode: api\n    account_id_field: person"))


def _api_env(monkeypatch, base_url: str, **override):
    values = {"STRIPE_API_KEY": fake.STRIPE_API_KEY, "STRIPE_BASE_URL": base_url,
              "SALESFORCE_INSTANCE_URL": base_url, "SALESFORCE_ACCESS_TOKEN": fake.SALESFORCE_ACCESS_TOKEN,
              "ZENDESK_BASE_URL": base_url, "ZENDESK_EMAIL": fake.ZENDESK_EMAIL,
              "ZENDESK_API_TOKEN": fake.ZENDESK_API_TOKEN, "DELIGHTED_API_KEY": fake.DELIGHTED_API_KEY,
              "DELIGHTED_BASE_URL": base_url} | override
    for name, value in values.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)


@pytest.fixture(scope="module")
def server(tiny_landing):
    with fake.serve_landing(tiny_landing) as srv:
        yield srv


def test_api_mode_with_good_credentials(project_env, tmp_path, monkeypatch, capsys, tiny_landing, server, no_api_env):
    _api_template(tmp_path, monkeypatch, tiny_landing)
    _api_env(monkeypatch, server.base_url)
    assert check.main([]) == 0, capsys.readouterr().out
    lines = _lines(capsys)
    for system in ("crm", "billing", "support", "nps"):
        assert "ok" in lines[system] and "api: authenticated call" in lines[system], lines[system]
    assert "files:" in lines["product"]  # product events always come from the landing folder
    assert fake.STRIPE_API_KEY not in "".join(lines.values())


def test_api_mode_a_401_names_the_system(project_env, tmp_path, monkeypatch, capsys, tiny_landing, server,
                                         no_api_env):
    _api_template(tmp_path, monkeypatch, tiny_landing)
    _api_env(monkeypatch, server.base_url, STRIPE_API_KEY="sk_test_wrong", ZENDESK_API_TOKEN="wrong")
    assert check.main([]) == 1
    lines = _lines(capsys)
    assert "PROBLEM" in lines["billing"] and "billing refused the credentials (HTTP 401" in lines["billing"]
    assert "STRIPE_API_KEY" in lines["billing"] and "sk_test_wrong" not in lines["billing"]
    assert "support refused the credentials" in lines["support"]
    assert " ok " in lines["crm"] and " ok " in lines["nps"]


def test_api_mode_an_unreachable_host(project_env, tmp_path, monkeypatch, capsys, tiny_landing, no_api_env):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _api_template(tmp_path, monkeypatch, tiny_landing)
    _api_env(monkeypatch, f"http://127.0.0.1:{port}")
    assert check.main([]) == 1
    line = _lines(capsys)["crm"]
    assert f"cannot reach 127.0.0.1:{port}" in line and "fix:" in line


def test_api_mode_a_missing_secret_is_named_by_its_key(project_env, tmp_path, monkeypatch, capsys, tiny_landing,
                                                       server, no_api_env):
    _api_template(tmp_path, monkeypatch, tiny_landing)
    _api_env(monkeypatch, server.base_url, DELIGHTED_API_KEY=None)
    assert check.main([]) == 1
    line = _lines(capsys)["nps"]
    assert "missing secret" in line and "DELIGHTED_API_KEY" in line


@pytest.mark.slow
def test_the_template_on_a_demo_export_runs_every_asset(project_env, tmp_path, monkeypatch, capsys, tiny_landing):
    """Done-when of issue 14: the demo's exports under the template, values filled in: check passes and the
    run command builds every table (as landing/exports, nothing generated)."""
    import duckdb

    landing = tmp_path / "exports"
    shutil.copytree(tiny_landing, landing)
    _template(tmp_path, monkeypatch, lambda t: t.replace("landing_dir: landing", "landing_dir: exports"))
    before = sorted(p.relative_to(landing).as_posix() for p in landing.rglob("*"))
    assert check.main([]) == 0
    assert run.main([]) == 0, capsys.readouterr().err[-3000:]
    out = capsys.readouterr().out
    assert "landing_manifest_complete" in out
    with duckdb.connect(str(project_env.warehouse), read_only=True) as con:
        # the models' tables; the builds' bookkeeping (kpis._build_*: kpis._build_accounts lists accounts a
        # nightly rebuilt, none on a first build) is not a model
        empty = [f"{s}.{t}" for s, t in con.execute(
            "select table_schema, table_name from information_schema.tables where table_schema in "
            "('staging', 'marts', 'kpis') and table_type = 'BASE TABLE' and not starts_with(table_name, '_')"
            ).fetchall()
            if con.execute(f"select count(*) from {s}.{t}").fetchone()[0] == 0]
    assert sorted(p.relative_to(landing).as_posix() for p in landing.rglob("*")) == before
    assert not empty or set(empty) <= {"marts.unmatched_source_records"}, empty


def test_api_mode_with_an_fx_csv_of_its_own(project_env, tmp_path, monkeypatch, capsys, tiny_landing, server,
                                            no_api_env):
    """Billing from the API and FX rates from a CSV named in the configuration: the check names that file."""
    _api_template(tmp_path, monkeypatch, tiny_landing)
    cfg = tmp_path / "company.yaml"
    cfg.write_text(cfg.read_text().replace("  source: landing ", "  source: csv\n  path: treasury/rates.csv\n  # "))
    _api_env(monkeypatch, server.base_url)
    assert check.main([]) == 1
    line = _lines(capsys)["fx"]
    assert "PROBLEM" in line and str(tmp_path / "treasury" / "rates.csv") in line and "fx.path" in line
    (tmp_path / "treasury").mkdir()
    shutil.copy(tiny_landing / "reference" / "fx_rates.csv", tmp_path / "treasury" / "rates.csv")
    assert check.main([]) == 0, capsys.readouterr().out
    assert " ok " in _lines(capsys)["fx"]
