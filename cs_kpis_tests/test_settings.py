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
