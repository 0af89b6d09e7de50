"""Fixtures: the tiny hand-built warehouse of fixtures.py, with the health SQL models built on it."""

import pytest

from cs_kpis_tests.health.fixtures import make_warehouse


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    """(connection, path) of the fixture warehouse with account_activity_daily, account_indicators_daily and
    engagement_monthly built; shared by a module's tests, which only read it."""
    path = tmp_path_factory.mktemp("health") / "wh.duckdb"
    con = make_warehouse(path)
    yield con, path
    con.close()
