"""Subprocess entry point of the prefetch tests: the raw assets of the five systems materialized in Dagster,
in-process as ``python -m cs_kpis.run`` runs them, with the file systems extracted ahead of their steps
(cs_kpis/defs/raw/prefetch.py; ``CS_KPIS_RAW_PREFETCH=0`` in the environment keeps them serial) and the
test-only pause points of pause.py in place, in the background process too.

    python -m cs_kpis_tests.reliability.prefetch_driver <landing> <warehouse> <pipelines dir>

Prints one JSON line: ``prefetched`` (the raw steps that loaded packages the background process extracted,
from their log), ``in_step`` (those that extracted in their step from the state the first raw step restored,
the pending input being too small for a background process), ``step_started`` (raw step -> its STEP_START
time) and ``first_extract`` (system -> the id of its first load of this run, which dlt takes from the time that
load's extract started).
"""

import json
import os
import sys
from pathlib import Path

import dagster as dg
import duckdb

from cs_kpis.defs.raw.assets import build_raw_assets
from cs_kpis.defs.raw.prefetch import EXTRACTED_IN_STEP, LOADED_AHEAD, PREFETCH_ENV
from cs_kpis.defs.raw.resources import RawDltResource
from cs_kpis_tests.reliability import pause

# at import: the prefetch process (spawned) imports this module as its ``__mp_main__``, so the pause points
# are in place there too (``extracted.support__tickets`` then pauses the background extract)
pause.install()


def main(argv: list[str]) -> int:
    landing, warehouse, pipelines_dir = map(Path, argv)
    os.environ.setdefault(PREFETCH_ENV, "1")
    started = 0.0
    if warehouse.exists():
        with duckdb.connect(str(warehouse), read_only=True) as con:
            started = float(con.execute("select coalesce(max(load_id::double), 0) from raw._dlt_loads").fetchone()[0])
    assets = build_raw_assets(landing_dir=landing, warehouse=warehouse, pipelines_dir=pipelines_dir)
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(assets, resources={"dlt": RawDltResource()}, instance=instance)
        logs = instance.all_logs(result.run_id)
        steps = {e.dagster_event.step_key: e.timestamp for e in logs
                 if e.dagster_event is not None and e.dagster_event.event_type_value == "STEP_START"}
        prefetched = sorted({e.step_key for e in logs if e.step_key and LOADED_AHEAD in (e.user_message or "")})
        in_step = sorted({e.step_key for e in logs if e.step_key and EXTRACTED_IN_STEP in (e.user_message or "")})
    with duckdb.connect(str(warehouse), read_only=True) as con:
        first = dict(con.execute("select schema_name, min(load_id::double) from raw._dlt_loads "
                                 "where load_id::double > ? group by 1", [started]).fetchall())
    print(json.dumps({"success": result.success, "prefetched": prefetched, "in_step": in_step, "step_started": steps,
                      "first_extract": first}))
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
