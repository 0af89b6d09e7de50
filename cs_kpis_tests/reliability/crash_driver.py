"""Subprocess entry point of the crash tests: the raw ingestion CLI plus one test-only pause point
inside dlt's load step, just before a package is marked complete (all its tables loaded, its state
row written, but no ``_dlt_loads`` row yet): the worst moment to die.

    python -m cs_kpis_tests.reliability.crash_driver <cs_kpis.sources.pipelines arguments>
"""

import sys
from collections import Counter

from dlt.load.load import Load

from cs_kpis.sources import pipelines
from cs_kpis.sources.common.hooks import pause_point

_completed: Counter = Counter()
_original = Load.complete_package


def _complete_package(self, load_id, schema, aborted=False):
    _completed[schema.name] += 1
    pause_point(f"before_complete.{schema.name}.{_completed[schema.name]}")
    return _original(self, load_id, schema, aborted)


Load.complete_package = _complete_package

if __name__ == "__main__":
    sys.exit(pipelines.main(sys.argv[1:]))
