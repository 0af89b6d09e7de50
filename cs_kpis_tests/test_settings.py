from pathlib import Path

import pytest
import yaml

from cs_kpis import settings

ALL_VARS = [
    "CS_KPIS_STATE_DIR",
    "CS_KPIS_WAREHOUSE",
    "CS_KPIS_DLT_DIR",
    "DAGSTER_HOME",
    "CS_KPIS_LANDING_DIR",
    "CS_KPIS_GROUND_TRUTH_DIR",
    "CS_KPIS_DEMO_SIZE",
    "CS_KPIS_DEMO_SEED",
    "CS_KPIS_CONFIG",
]
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def no_env(monkeypatch):
    for name in ALL_VARS:
        monkeypatch.delenv(name, raising=False)


def test_repo_root_is_the_parent_of_the_package():
    assert settings.REPO_ROOT == REPO
    assert (settings.REPO_ROOT / "pyproject.toml").exists()


def test_defaults_put_state_under_repo_dot_state(no_env):
    assert settings.state_dir() == REPO / ".state"
    assert settings.warehouse_path() == REPO / ".state" / "warehouse" / "cs_kpis.duckdb"
    assert settings.dlt_pipelines_dir() == REPO / ".state" / "dlt"
    assert settings.dagster_home() == REPO / ".state" / "dagster_home"
    assert settings.landing_dir() == REPO / "data" / "landing"
    assert settings.ground_truth_dir() == REPO / "data" / "ground_truth"
    assert settings.demo_size() == "demo"
    assert settings.demo_seed() == 42


def test_moving_the_state_dir_moves_everything_derived_from_it(no_env, monkeypatch, tmp_path):
    monkeypatch.setenv("CS_KPIS_STATE_DIR", str(tmp_path / "s"))
    assert settings.warehouse_path() == tmp_path / "s" / "warehouse" / "cs_kpis.duckdb"
    assert settings.dlt_pipelines_dir() == tmp_path / "s" / "dlt"
    assert settings.dagster_home() == tmp_path / "s" / "dagster_home"
    # the landing folder is data, not state: it stays under the repo
    assert settings.landing_dir() == REPO / "data" / "landing"


@pytest.mark.parametrize(
    ("var", "func"),
    [
        ("CS_KPIS_WAREHOUSE", settings.warehouse_path),
        ("CS_KPIS_DLT_DIR", settings.dlt_pipelines_dir),
        ("DAGSTER_HOME", settings.dagster_home),
        ("CS_KPIS_LANDING_DIR", settings.landing_dir),
        ("CS_KPIS_GROUND_TRUTH_DIR", settings.ground_truth_dir),
    ],
    ids=lambda v: v if isinstance(v, str) else v.__name__,
)
def test_each_path_follows_its_env_var_at_call_time(no_env, monkeypatch, tmp_path, var, func):
    monkeypatch.setenv(var, str(tmp_path / "x"))
    assert func() == tmp_path / "x"


def test_relative_env_paths_resolve_against_the_working_dir(no_env, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CS_KPIS_STATE_DIR", "rel")
    assert settings.state_dir() == tmp_path / "rel"


def test_demo_size_and_seed_from_env(no_env, monkeypatch):
    monkeypatch.setenv("CS_KPIS_DEMO_SIZE", "small")
    monkeypatch.setenv("CS_KPIS_DEMO_SEED", "7")
    assert settings.demo_size() == "small"
    assert settings.demo_seed() == 7


def test_ensure_dagster_home_writes_the_instance_config_once(tmp_path):
    home = settings.ensure_dagster_home(tmp_path / "home")
    config = yaml.safe_load((home / "dagster.yaml").read_text())
    assert config["telemetry"] == {"enabled": False}
    assert config["concurrency"]["pools"]["default_limit"] == 1
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"

    (home / "dagster.yaml").write_text("telemetry:\n  enabled: true\n")
    settings.ensure_dagster_home(home)
    assert "enabled: true" in (home / "dagster.yaml").read_text()


def test_dagster_yaml_is_a_valid_instance_config(tmp_path):
    from dagster import DagsterInstance

    home = settings.ensure_dagster_home(tmp_path / "home")
    with DagsterInstance.from_config(str(home)) as instance:
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"


def test_prepare_state_creates_folders_and_exports_paths(project_env, monkeypatch):
    import os

    paths = settings.prepare_state()
    assert project_env.state_dir.is_dir()
    assert project_env.warehouse.parent.is_dir()
    assert project_env.dlt_dir.is_dir()
    assert (project_env.dagster_home / "dagster.yaml").is_file()
    assert os.environ["DAGSTER_HOME"] == str(project_env.dagster_home)
    assert paths["CS_KPIS_WAREHOUSE"] == project_env.warehouse
    # the landing folder is the simulator's to create
    assert not project_env.landing_dir.exists()


# ------------------------------------------------------------------------------ the company configuration

TEMPLATE = REPO / "examples" / "company.yaml"


def test_without_a_config_file_the_demo_profile_is_used(no_env):
    from cs_kpis import config

    cfg = config.load()
    assert cfg is config.DEMO and cfg.is_demo
    assert cfg.enabled() == list(config.SYSTEMS)
    assert cfg.sql_names()["crm_csm"] == "csm__c"
    assert cfg.sql_names()["billing_account_id"] == "metadata__salesforce_account_id"


def test_the_demo_profiles_product_config_is_the_simulators_catalog():
    from cs_kpis import config
    from cs_kpis.simulator import catalog

    product = config.DEMO_PRODUCT
    assert product.key_features == list(catalog.KEY_FEATURES)
    assert product.plan_features == catalog.PLAN_FEATURES
    assert product.onboarding_milestones == list(catalog.ONBOARDING_MILESTONES)
    assert product.value_event == catalog.VALUE_EVENT
    assert product.top_plan in catalog.TIERS
    assert config.DEMO.reporting_currency == catalog.REPORTING_CURRENCY


def test_the_template_is_valid_in_files_mode_and_names_the_demos_fields(no_env, monkeypatch, tmp_path):
    from cs_kpis import config

    copy = tmp_path / "company.yaml"
    copy.write_text(TEMPLATE.read_text())
    monkeypatch.setenv("CS_KPIS_CONFIG", str(copy))
    cfg = config.load()
    assert not cfg.is_demo and cfg.profile == "my_company"
    assert cfg.enabled("files") == list(config.SYSTEMS)
    assert cfg.sql_names() == config.DEMO.sql_names()
    assert cfg.product == config.DEMO_PRODUCT
    # the landing folder is relative to the file, and settings follow the profile
    assert cfg.landing_dir == tmp_path / "landing"
    monkeypatch.setenv("CS_KPIS_LANDING_DIR", str(tmp_path / "elsewhere"))
    assert settings.landing_dir() == tmp_path / "landing"


def test_bom_and_crlf_config_files_are_read(tmp_path):
    from cs_kpis import config

    path = tmp_path / "company.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + TEMPLATE.read_bytes().replace(b"\n", b"\r\n"))
    assert config.load_file(path).profile == "my_company"


@pytest.mark.parametrize(("text", "key"), [
    ("profile: demo\n", "profile"),
    ("profile: acme\nlanding_dir: x\n", "product"),
    (("profile: acme\nproduct: {key_features: [a], plan_features: {p: 1}, onboarding_milestones: [a], "
     "value_event: a, top_plan: p}\n"), "landing_dir"),
    ("profile: acme\nsystems: {billing: {account_id_field: 'metadata.sf id'}}\n", "systems.billing.account_id_field"),
    ("profile: acme\nsystems: {crm: {password: x}}\n", "systems.crm.password"),
    ("- a list\n", "mapping"),
    ("profile: [unclosed\n", "YAML"),
])
def test_config_errors_name_the_key_and_the_file(tmp_path, text, key):
    from cs_kpis import config

    path = tmp_path / "company.yaml"
    path.write_text(text)
    with pytest.raises(config.ConfigError) as err:
        config.load_file(path)
    assert key in str(err.value) and str(path) in str(err.value)


def test_a_missing_config_file_is_named(no_env, monkeypatch, tmp_path):
    from cs_kpis import config

    monkeypatch.setenv("CS_KPIS_CONFIG", str(tmp_path / "nope.yaml"))
    with pytest.raises(config.ConfigError, match="nope.yaml"):
        config.load()


@pytest.mark.parametrize(("field", "column"), [
    ("CSM__c", "csm__c"), ("Customer_Success_Manager__c", "customer_success_manager__c"),
    ("metadata.salesforce_account_id", "metadata__salesforce_account_id"),
    ("organization_fields.SFDC_Id", "organization_fields__sfdc_id"), ("crmId", "crm_id"),
])
def test_raw_column_follows_dlts_naming(field, column):
    from cs_kpis import config

    assert config.raw_column(field) == column


@pytest.mark.parametrize("bad", ["a b", "x;drop", "1abc", "a..b", "", "a-b", "\"q\""])
def test_raw_column_refuses_anything_but_identifiers(bad):
    from cs_kpis import config

    with pytest.raises(ValueError):
        config.raw_column(bad)


def test_render_sql_replaces_known_placeholders_and_names_unknown_ones():
    from cs_kpis import config

    assert config.render_sql("select {{ crm_csm }} as csm_id", config.DEMO) == "select csm__c as csm_id"
    assert config.render_sql("select 1") == "select 1"
    with pytest.raises(config.ConfigError, match="model staging.x: unknown placeholder {{ crm_nope }}"):
        config.render_sql("select {{ crm_nope }}", config.DEMO, where="model staging.x")


def test_salesforce_api_mode_selects_the_orgs_custom_fields(tmp_path, monkeypatch):
    from cs_kpis import config
    from cs_kpis.defs.raw.assets import crm_api_config
    from cs_kpis.sources.crm.api import soql

    path = tmp_path / "company.yaml"
    path.write_text(TEMPLATE.read_text().replace("csm: CSM__c", "csm: Customer_Success_Manager__c")
                    .replace("contact_role: Role__c", "contact_role: Buying_Role__c"))
    monkeypatch.setenv("SALESFORCE_INSTANCE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("SALESFORCE_ACCESS_TOKEN", "token-for-the-test")
    api = crm_api_config(config.load_file(path))
    account, contact = soql(api, "Account", None), soql(api, "Contact", None)
    assert "Customer_Success_Manager__c" in account and "CSM__c" not in account
    assert "Segment__c" in account and "Buying_Role__c" in contact and " Role__c," not in contact


@pytest.mark.parametrize("system", ["billing", "support", "nps"])
def test_every_systems_join_key_field_is_checked_as_a_path(system):
    """The account-id field of each keyed system reaches SQL, so one shared validator rejects anything that is
    not a dotted path of identifiers (here: a splice attempt)."""
    from pydantic import ValidationError

    from cs_kpis.config import Systems

    with pytest.raises(ValidationError, match="account_id_field"):
        Systems.model_validate({system: {"account_id_field": "id) or (1=1"}})
