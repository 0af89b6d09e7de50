"""Test-only pause points, so that a reliability test can kill a load at a known moment.

A point does nothing unless ``CS_KPIS_TEST_PAUSE_AT`` names it: then it creates the file named by
``CS_KPIS_TEST_PAUSE_MARKER`` (so the test knows the load got there) and sleeps
``CS_KPIS_TEST_PAUSE_SECONDS`` (default 600), long enough for the test to SIGKILL the process.
Never set these variables in production.
"""

import os
import time
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
