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

from cs_kpis_tests.conftest import ProjectEnv
from cs_kpis_tests.tiny_build import build_tiny_company

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
    env, result = build_tiny_company(tmp_path_factory.mktemp("tiny_company"),
                                     lambda k: k.path[0] in ("raw", "staging") or k in XREF_KEYS)
    return TinyCompany(env, result)
