"""``make test``'s units of work under pytest-xdist (cs_kpis_tests/conftest.py): the packages that share a
session fixture run on one worker each, every other file is a unit of its own."""

import pytest

from cs_kpis_tests.conftest import ONE_WORKER_PACKAGES, scope_of


@pytest.mark.parametrize(("nodeid", "unit"), [
    # one unit for the whole package: one Spark JVM and one tiny warehouse, not one per worker
    ("cs_kpis_tests/portability/test_models_on_spark.py::test_model[marts.mrr_monthly]", "cs_kpis_tests/portability"),
    ("cs_kpis_tests/portability/test_lint.py::TestRules::test_rule[a::b]", "cs_kpis_tests/portability"),
    ("cs_kpis_tests/simulator/test_workers.py::test_two_workers", "cs_kpis_tests/simulator"),
    ("cs_kpis_tests/staging/test_staging.py::test_x", "cs_kpis_tests/staging"),
    ("cs_kpis_tests/reliability/test_crash_resume.py::test_y[billing]", "cs_kpis_tests/reliability"),
    # any other package: each file (or class) is a unit, as --dist loadscope makes it
    ("cs_kpis_tests/sources/test_sources.py::test_each_source_loads", "cs_kpis_tests/sources/test_sources.py"),
    ("cs_kpis_tests/alerts/test_engine.py::TestPlan::test_full", "cs_kpis_tests/alerts/test_engine.py::TestPlan"),
    ("cs_kpis_tests/test_run.py::test_run_materializes", "cs_kpis_tests/test_run.py"),
])
def test_each_test_belongs_to_its_package_or_its_file(nodeid, unit):
    assert scope_of(nodeid) == unit


def test_the_packages_grouped_are_the_ones_with_shared_fixtures():
    assert set(ONE_WORKER_PACKAGES) == {"portability", "simulator", "reliability", "staging"}
