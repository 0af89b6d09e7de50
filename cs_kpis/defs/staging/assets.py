"""staging/<model>: one table per raw table, renamed to snake_case and cast, built from ``sql/*.sql``.

Each model is ``select`` from exactly one ``raw.<system>__<entity>`` table: renames, casts, JSON fields
flattened, simple arithmetic (minor to major units). Joins and aggregations belong to marts.
"""

from pathlib import Path

import dagster as dg

from cs_kpis.lib.sql import load_models, model_key, sql_assets

SCHEMA = "staging"
GROUP = "staging"
SQL_DIR = Path(__file__).parent / "sql"


def key(name: str) -> dg.AssetKey:
    """The key of the staging model ``staging.<name>``, for the modules that
    name it: import it, don't retype it (cs_kpis.lib.sql.model_key)."""
    return model_key(SQL_DIR, SCHEMA, name)


STAGING_MODELS = load_models(SQL_DIR, SCHEMA)
"""the parsed model files; checks.py and the tests read grains and column docs from here"""

staging_assets = sql_assets(STAGING_MODELS, group=GROUP)
