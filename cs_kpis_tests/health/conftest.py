"""Fixtures: the tiny hand-built warehouse of fixtures.py, with the health SQL models built on it."""

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


@pytest.fixture
def wh(tmp_path):
    """A writable fixture warehouse of the test's own, every health model fully built: the reference that
    windowed, nightly and ranged builds are compared with."""
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    write_inputs(con)
    build_models(con)
    yield con
    con.close()
