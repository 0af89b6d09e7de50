"""Fixtures for the reliability tests: one tiny simulated company with increments, and helpers that run
the raw ingestion in a subprocess and compare warehouses table by table."""

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

simulator = pytest.importorskip("cs_kpis.simulator")

ROOT = Path(__file__).resolve().parents[2]

# columns that differ between two correct runs: dlt's load ids and row ids, and wall-clock stamps
VOLATILE = ("_dlt_load_id", "_dlt_id", "loaded_at")


@pytest.fixture(scope="session")
def tiny_landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny company: a snapshot and two increments (three extract days)."""
    root = tmp_path_factory.mktemp("reliability_sim")
    simulator.generate(root / "landing", root / "ground_truth", size="tiny", seed=7, increments=2)
    return root / "landing"


@pytest.fixture(scope="session")
def reference(tiny_landing: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The uninterrupted serial run (the ingestion CLI): its tables and its per-system accounting."""
    tmp = tmp_path_factory.mktemp("reference")
    out = run_ingest(tiny_landing, tmp / "w.duckdb", tmp / "dlt", child_env(tmp))
    results = {r["system"]: r for r in map(json.loads, out.splitlines())}
    return {"tables": raw_snapshot(tmp / "w.duckdb"), "results": results}


def child_env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CS_KPIS_TEST_PAUSE")}
    env.update(RUNTIME__DLTHUB_TELEMETRY="false", DLT_DATA_DIR=str(tmp / "dlt_global"), **extra)
    return env


def ingest_cmd(landing: Path | None, warehouse: Path, pipelines_dir: Path, *args: str) -> list[str]:
    cmd = [sys.executable, "-m", "cs_kpis_tests.reliability.crash_driver",
           "--warehouse", str(warehouse), "--pipelines-dir", str(pipelines_dir)]
    if landing is not None:
        cmd += ["--landing", str(landing)]
    return cmd + list(args)


def run_ingest(landing: Path | None, warehouse: Path, pipelines_dir: Path, env: dict[str, str], *args: str) -> str:
    """Run the ingestion to completion in a subprocess; returns its stdout (one JSON line per system)."""
    res = subprocess.run(ingest_cmd(landing, warehouse, pipelines_dir, *args), check=False, env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-4000:]
    return res.stdout


def raw_snapshot(warehouse: Path, schema: str = "raw", exclude_columns: tuple[str, ...] = VOLATILE,
                 exclude_prefixes: tuple[str, ...] = ()) -> dict[str, list[str]]:
    """Every table of ``schema`` except dlt's own (``_dlt_*``): sorted rows, volatile columns left out."""
    out: dict[str, list[str]] = {}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = [t for (t,) in con.execute(
            "select table_name from information_schema.tables where table_schema = ? order by 1", [schema]
        ).fetchall() if not t.startswith("_dlt_")]
        for table in tables:
            columns = [c for (c,) in con.execute(
                "select column_name from information_schema.columns where table_schema = ? and table_name = ?"
                " order by column_name", [schema, table]).fetchall()
                if c not in exclude_columns and not c.startswith(exclude_prefixes)]
            quoted = ", ".join(f'"{c}"' for c in columns)
            rows = con.execute(f'select {quoted} from {schema}."{table}"').fetchall()
            out[table] = sorted(repr(r) for r in rows)
    return out
