"""The Makefile's promises that CI relies on, checked without installing anything."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def _make(*args: str) -> subprocess.CompletedProcess:
    # not inherited from an outer `make test`: its flags and variables would leak into this one
    env = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL"}}
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        check=False,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(("pytest_rc", "make_fails"), [(0, False), (1, True), (5, True)])
def test_make_test_fails_on_pytest_failure_and_on_no_tests_collected(tmp_path, pytest_rc, make_fails):
    # a stand-in for pytest, and a venv stamp that is already up to date, so nothing is installed
    venv = tmp_path / "venv"
    venv.mkdir()
    (venv / ".cs_kpis-installed").touch()
    fake_pytest = f"{sys.executable} -c 'raise SystemExit({pytest_rc})'"
    result = _make("test", f"VENV={venv}", f"PYTEST={fake_pytest}", "-o", f"{venv}/.cs_kpis-installed")
    assert (result.returncode != 0) == make_fails, result.stderr
    if pytest_rc == 5:
        assert "collected no tests" in result.stderr


def test_make_test_runs_two_xdist_workers_by_file_or_package(tmp_path):
    # the units of cs_kpis_tests/conftest.py's scheduler exist only with --dist loadscope
    venv = tmp_path / "venv"
    venv.mkdir()
    (venv / ".cs_kpis-installed").touch()
    result = _make("-n", "test", f"VENV={venv}", "-o", f"{venv}/.cs_kpis-installed")
    assert "-m pytest -n 2 --dist loadscope" in result.stdout, result.stdout
    result = _make("-n", "test", f"VENV={venv}", "-o", f"{venv}/.cs_kpis-installed", "TEST_WORKERS=0")
    assert "-m pytest -n 0 --dist loadscope" in result.stdout, result.stdout


def test_make_run_creates_the_venv_when_missing(tmp_path):
    venv = tmp_path / "fresh" / ".venv"
    result = _make("-n", "run", f"VENV={venv}")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert f"test -x {venv}/bin/python || python3.11 -m venv {venv}" in lines
    assert f"{venv}/bin/python -m pip install --disable-pip-version-check -e '.[dev,spark]'" in lines
    assert lines[-1] == f"{venv}/bin/python -m cs_kpis.run"


def test_make_run_engine_spark_sets_the_engine(tmp_path):
    venv = tmp_path / "fresh" / ".venv"
    result = _make("-n", "run", f"VENV={venv}", "ENGINE=spark")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == f"CS_KPIS_ENGINE=spark {venv}/bin/python -m cs_kpis.run"


def test_ci_script_ends_with_make_test():
    script = (REPO / ".ci" / "run").read_text().strip().splitlines()
    assert script[-1] == "make test"
    assert "set -euo pipefail" in script


def test_make_ui_starts_dg_dev_on_the_workspace(tmp_path):
    # `dagster dev` prints a SupersessionWarning pointing to `dg dev`; the UI uses dg dev with the same
    # workspace file, host and port
    venv = tmp_path / "venv"
    venv.mkdir()
    (venv / ".cs_kpis-installed").touch()
    result = _make("-n", "ui", f"VENV={venv}", "UI_PORT=3917", "-o", f"{venv}/.cs_kpis-installed")
    assert result.returncode == 0, result.stderr
    last = result.stdout.splitlines()[-1].strip()
    assert last == f"exec {venv}/bin/dg dev --host 127.0.0.1 --port 3917 --workspace workspace.yaml", last
    assert "dagster dev" not in result.stdout
