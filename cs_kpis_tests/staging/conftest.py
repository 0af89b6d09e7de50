"""The tiny simulator company, loaded into raw and built into staging and the account xref once per session.

The build takes ~25 s, so it is shared: tests read the warehouse, and tests that corrupt data work on a copy.
The layout is the `project_env` one (cs_kpis_tests/conftest.py) under a session tmp folder; the
environment is patched only while the company is generated and built, so other tests never see it.
"""

import shutil
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from cs_kpis_tests.conftest import _ENV, ProjectEnv

XREF_KEYS = [dg.AssetKey(["marts", "account_xref"]), dg.AssetKey(["marts", "unmatched_source_records"])]


@dataclass(frozen=True)
class TinyCompany:
    env: ProjectEnv
    result: dg.ExecuteInProcessResult

    @property
    def warehouse(self) -> Path:
        return self.env.warehouse

    def connect(self) -> duckdb.DuckDBPyConnection:
        return duckdb.connect(str(self.warehouse), read_only=True)

    def copy_warehouse(self, to: Path) -> Path:
        """A writable copy, for tests that corrupt data."""
        target = to / "warehouse.duckdb"
        shutil.copy(self.warehouse, target)
        return target


@pytest.fixture(scope="session")
def tiny_company(tmp_path_factory: pytest.TempPathFactory) -> TinyCompany:
    root = tmp_path_factory.mktemp("tiny_company")
    paths = {name: root / relative for name, relative in _ENV.items()}
    env = ProjectEnv(*paths.values())
    with pytest.MonkeyPatch.context() as mp:
        for name, path in paths.items():
            mp.setenv(name, str(path))
        mp.setenv("CS_KPIS_DEMO_SIZE", "tiny")
        mp.setenv("CS_KPIS_DEMO_SEED", "1")
        mp.setenv("RUNTIME__DLTHUB_TELEMETRY", "false")
        mp.setenv("DLT_DATA_DIR", str(root / "dlt_global"))

        from cs_kpis.simulator import generate

        generate(env.landing_dir, env.ground_truth_dir, size="tiny", seed=1)

        from cs_kpis.definitions import defs as load_defs

        defs = load_defs()
        keys = [k for k in defs.resolve_all_asset_keys() if k.path[0] in ("raw", "staging") or k in XREF_KEYS]
        result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            asset_selection=keys, instance=dg.DagsterInstance.ephemeral(), raise_on_error=False
        )
    assert result.success, [e.message for e in result.all_events if e.is_step_failure]
    return TinyCompany(env, result)
