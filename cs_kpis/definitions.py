"""The code location: every Dagster object under cs_kpis/defs/, found by walking the folder.

Each folder under defs/ (landing, raw, staging, ...) contributes its own assets, checks, resources and
automation; there is no central list to keep in sync. The project root is found from this file through
pyproject.toml's [tool.dg] section, so the package must be installed editable (`pip install -e .`).
"""

from pathlib import Path

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
