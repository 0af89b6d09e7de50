"""Fixtures: the tiny hand-built warehouse of fixtures.py, with the health SQL models built on it."""

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from cs_kpis_tests.health.fixtures import build_models, make_warehouse, write_inputs


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    """(connection, path) of the fixture warehouse with account_activity_daily, account_indicators_daily and
    engagement_monthly built; shared by a module's tests, which only read it."""
    path = tmp_path_factory.mktemp("health") / "wh.duckdb"
    con = make_warehouse(path)
    yield con, path
    con.close()


@pytest.fixture(scope="session")
def built_wh(tmp_path_factory) -> Path:
    """The fixture warehouse with every health model fully built, once per test process (about 1 CPU s):
    the file ``wh`` copies."""
    path = tmp_path_factory.mktemp("health_built") / "wh.duckdb"
    con = duckdb.connect(str(path))
    write_inputs(con)
    build_models(con)
    con.close()
    assert not path.with_name(path.name + ".wal").exists()  # checkpointed: the file alone is the database
    return path


@pytest.fixture
def wh(built_wh, tmp_path):
    """A writable fixture warehouse of the test's own, every health model fully built: the reference that
    windowed, nightly and ranged builds are compared with. A copy of ``built_wh``'s file, opened with the
    session setting write_inputs gives its connection (UTC)."""
    path = tmp_path / "wh.duckdb"
    shutil.copyfile(built_wh, path)
    con = duckdb.connect(str(path))
    con.execute("set TimeZone = 'UTC'")
    yield con
    con.close()


@pytest.fixture(scope="session")
def prepared_files(built_wh, tmp_path_factory) -> dict:
    """The files of ``wh_after``: its key -> a warehouse file, made once per test process."""
    return {"folder": tmp_path_factory.mktemp("health_prepared")}


@pytest.fixture
def wh_after(built_wh, prepared_files, tmp_path):
    """``wh`` with the first steps of a test already taken: ``wh_after(prepare, *args)`` returns a writable
    connection (session TimeZone UTC) to the test's own copy of the fixture warehouse after
    ``prepare(con, *args)``. The steps run once per test process for each (prepare, args, CS_KPIS_* environment)
    on a copy of ``built_wh``'s file, on a connection of their own, which is closed (checkpointed) before the file
    is copied: tests whose first steps are the same full builds (the parameters of one test that differ only
    later, the tests that start from one full build) build them once. ``prepare`` must depend on nothing else (a
    module attribute a test patches included): what it reads of the environment is in the key."""
    opened = []

    def open_after(prepare: Callable, *args) -> duckdb.DuckDBPyConnection:
        env = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("CS_KPIS_")))
        key = (prepare.__module__, prepare.__qualname__, args, env)
        if key not in prepared_files:
            path = prepared_files["folder"] / f"{len(prepared_files)}.duckdb"
            shutil.copyfile(built_wh, path)
            con = duckdb.connect(str(path))
            try:
                con.execute("set TimeZone = 'UTC'")
                prepare(con, *args)
            finally:
                con.close()
            assert not path.with_name(path.name + ".wal").exists()
            prepared_files[key] = path
        path = tmp_path / "wh.duckdb"
        assert not path.exists(), "one prepared warehouse per test"
        shutil.copyfile(prepared_files[key], path)
        con = duckdb.connect(str(path))
        con.execute("set TimeZone = 'UTC'")
        opened.append(con)
        return con

    yield open_after
    for con in opened:
        con.close()


@pytest.fixture
def fresh_wh(tmp_path):
    """``wh`` built on the test's own connection, its rows never checkpointed: for a test that reads a query
    profile's rows scanned, which depend on how the rows lie in row groups (a copy of ``built_wh``'s file holds
    them checkpointed, and rows a test adds go to a row group of their own, which a filter on day can skip)."""
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    write_inputs(con)
    build_models(con)
    yield con
    con.close()
