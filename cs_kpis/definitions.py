"""The code location: every Dagster object under cs_kpis/defs/, found by walking the folder.

Each folder under defs/ (landing, raw, staging, ...) contributes its own assets, checks, resources and
automation; there is no central list to keep in sync. The project root is found from this file through
pyproject.toml's [tool.dg] section, so the package must be installed editable (`pip install -e .`).

The checks of one asset run in one step (cs_kpis.lib.checks.batch_checks: one for its blocking checks, one for
the others), with the check names the layers give them: a step of a single check cost about 70 CPU ms (Dagster's
step, the pool's slot, a warehouse connection) where most checks' queries cost a few (BENCHMARKS.md, "Check steps").
"""

from pathlib import Path

import dagster as dg

from cs_kpis.lib.checks import batched


@dg.definitions
def defs() -> dg.Definitions:
    return batched(dg.load_from_defs_folder(path_within_project=Path(__file__).parent))
