"""Test-only pause points, so that a reliability test can kill a load at a known moment.

Production code has no hook: ``install()``, called by the test's subprocess entry points (crash_driver.py,
pool_child.py), wraps functions the load calls at the moments of interest. A point does nothing unless
``CS_KPIS_TEST_PAUSE_AT`` names it: then it creates the file named by ``CS_KPIS_TEST_PAUSE_MARKER`` (so the
test knows the load got there) and sleeps ``CS_KPIS_TEST_PAUSE_SECONDS`` (default 600), long enough for the
test to SIGKILL the process.

Points:
- ``extracted.<system>__<entity>``: every record of the entity read and checked against its contract, no
  row handed to dlt yet (after ``contract_change`` in cs_kpis/sources/common/steps.py);
- ``loaded.<system>.<n>``: the system's n-th dlt load completed (after ``ensure_bookkeeping_tables`` in
  cs_kpis/sources/common/runner.py);
- ``before_complete.<system>.<n>``: the n-th package of the system loaded, not yet marked complete (dlt's
  ``Load.complete_package``);
- ``product.after_insert``: a batch of product events inserted by the direct DuckDB insert, its dlt state
  not yet committed (after ``load_day`` in cs_kpis/sources/product);
- ``product.before_duplicate_delete``: a batch's insert committed, its duplicates not yet deleted (before
  ``delete_duplicates_sql`` in cs_kpis/sources/product/loader.py).
"""

import functools
import os
import time
from collections import Counter
from pathlib import Path

PAUSE_AT_ENV = "CS_KPIS_TEST_PAUSE_AT"
MARKER_ENV = "CS_KPIS_TEST_PAUSE_MARKER"
SECONDS_ENV = "CS_KPIS_TEST_PAUSE_SECONDS"


def pause_point(name: str) -> None:
    """Pause here when ``CS_KPIS_TEST_PAUSE_AT`` equals ``name``; otherwise return at once."""
    if os.environ.get(PAUSE_AT_ENV) != name:
        return
    marker = os.environ.get(MARKER_ENV)
    if marker:
        Path(marker).write_text(f"{name} {os.getpid()}\n")
    time.sleep(float(os.environ.get(SECONDS_ENV) or 600))


def _after(module, name: str, point) -> None:
    """Replace ``module.name`` by a wrapper that calls it, then ``pause_point(point(*args))``."""
    original = getattr(module, name)

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        result = original(*args, **kwargs)
        pause_point(point(*args, **kwargs))
        return result

    setattr(module, name, wrapper)


def _before(module, name: str, point: str) -> None:
    """Replace ``module.name`` by a wrapper that calls ``pause_point(point)``, then it."""
    original = getattr(module, name)

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        pause_point(point)
        return original(*args, **kwargs)

    setattr(module, name, wrapper)


def install() -> None:
    """Put the pause points in place in this process (idempotent)."""
    from dlt.load.load import Load

    from cs_kpis.sources import product
    from cs_kpis.sources.common import runner, steps
    from cs_kpis.sources.product import helpers as product_helpers

    if getattr(install, "done", False):
        return
    install.done = True
    loads: Counter = Counter()
    completed: Counter = Counter()

    def loaded(pipeline) -> str:
        system = pipeline.pipeline_name.removeprefix("cs_kpis_raw_")
        loads[system] += 1
        return f"loaded.{system}.{loads[system]}"

    _after(steps, "contract_change", lambda label, *a, **k: "extracted." + label.replace("/", "__"))
    _after(runner, "ensure_bookkeeping_tables", loaded)
    _after(product, "load_day", lambda *a, **k: "product.after_insert")
    _before(product_helpers, "delete_duplicates_sql", "product.before_duplicate_delete")

    original_complete = Load.complete_package

    def complete_package(self, load_id, schema, aborted=False):
        completed[schema.name] += 1
        pause_point(f"before_complete.{schema.name}.{completed[schema.name]}")
        return original_complete(self, load_id, schema, aborted)

    Load.complete_package = complete_package
