"""Shared fixtures: every test runs against state in its own tmp_path, never the repo's .state/."""

import sys
import types
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from cs_kpis_tests.landing_fakes import write_fake_landing

# env var -> location under tmp_path; the same layout as the defaults under the repo
TEST_ENV = {
    "CS_KPIS_STATE_DIR": "state",
    "CS_KPIS_WAREHOUSE": "state/warehouse/cs_kpis.duckdb",
    "CS_KPIS_DLT_DIR": "state/dlt",
    "DAGSTER_HOME": "state/dagster_home",
    "CS_KPIS_LANDING_DIR": "data/landing",
    "CS_KPIS_GROUND_TRUTH_DIR": "data/ground_truth",
}


@dataclass(frozen=True)
class ProjectEnv:
    state_dir: Path
    warehouse: Path
    dlt_dir: Path
    dagster_home: Path
    landing_dir: Path
    ground_truth_dir: Path


@pytest.fixture
def project_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ProjectEnv:
    """Point every cs_kpis path at tmp_path. Folders are not created: the code under test does that."""
    paths = {name: tmp_path / relative for name, relative in TEST_ENV.items()}
    for name, path in paths.items():
        monkeypatch.setenv(name, str(path))
    monkeypatch.delenv("CS_KPIS_DEMO_SIZE", raising=False)
    monkeypatch.delenv("CS_KPIS_DEMO_SEED", raising=False)
    return ProjectEnv(*paths.values())


@dataclass
class FakeSimulator:
    calls: list[dict] = field(default_factory=list)
    fail: bool = False


@pytest.fixture
def fake_simulator(monkeypatch: pytest.MonkeyPatch) -> FakeSimulator:
    """Swap cs_kpis.simulator in sys.modules for a module whose generate() writes a minimal landing folder.

    Tests using it neither import nor depend on the real simulator. Set ``.fail = True`` to make it raise.
    """
    fake = FakeSimulator()

    def generate(
        landing_dir, ground_truth_dir, size="demo", seed=42, as_of=None, increments=0, bad_input=False
    ):
        fake.calls.append({"landing_dir": Path(landing_dir), "size": size, "seed": seed})
        if fake.fail:
            raise RuntimeError("simulated simulator failure")
        Path(ground_truth_dir).mkdir(parents=True, exist_ok=True)
        return write_fake_landing(Path(landing_dir), size=size, seed=seed)

    module = types.ModuleType("cs_kpis.simulator")
    module.generate = generate
    monkeypatch.setitem(sys.modules, "cs_kpis.simulator", module)
    return fake


# packages whose tests share an expensive session or package fixture (a Spark JVM and the tiny warehouse's
# Parquet exports; a generated company; a built tiny company): under pytest-xdist each worker builds its own
# copy of a session fixture, so each of these packages runs on one worker
ONE_WORKER_PACKAGES = ("portability", "simulator", "reliability", "staging")


def scope_of(nodeid: str) -> str:
    """The unit of work a test belongs to under ``make test``'s xdist scheduling: its package when that is one
    of ONE_WORKER_PACKAGES, else its file (or its class), as ``--dist loadscope`` makes them."""
    parts = nodeid.split("/")
    if len(parts) > 2 and parts[0] == "cs_kpis_tests" and parts[1] in ONE_WORKER_PACKAGES:
        return "/".join(parts[:2])
    return nodeid.rsplit("::", 1)[0]


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """``--dist loadscope`` (what ``make test`` passes) with the units of :func:`scope_of`.

    xdist orders the units by their number of tests, so the large packages start first and small files fill
    the workers at the end."""
    if config.getoption("dist", "no") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class PackageScopeScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return scope_of(nodeid)

    return PackageScopeScheduling(config, log)
