"""Subprocess entry point of the crash tests: the raw ingestion CLI with the test-only pause points of
pause.py in place (among them one inside dlt's load step, just before a package is marked complete: all
its tables loaded, its state row written, but no ``_dlt_loads`` row yet, the worst moment to die).

    python -m cs_kpis_tests.reliability.crash_driver <cs_kpis.sources.pipelines arguments>
"""

import sys

from cs_kpis.sources import pipelines
from cs_kpis_tests.reliability import pause

if __name__ == "__main__":
    pause.install()
    sys.exit(pipelines.main(sys.argv[1:]))
