"""The tiny company loaded by dlt twice, extract day by extract day: into the DuckDB warehouse and into a lake.

The simulator writes the tiny company with two increments (three extract days); the manifest the sources read
is grown one day at a time, so every system loads three times and the lake's appended files must merge back
(latest version, child sets replaced with their parent, Stripe events kept first, Account versions) into what
dlt's own merge and scd2 left in the DuckDB warehouse.
"""

import json
from dataclasses import dataclass
from pathlib import Path

from cs_kpis.sources.pipelines import SOURCES, load_system


@dataclass(frozen=True)
class LakePair:
    landing: Path
    duckdb_warehouse: Path
    lake_warehouse: Path
    lake: Path


def load_both(root: Path, systems: tuple[str, ...] = tuple(SOURCES)) -> LakePair:
    from cs_kpis.simulator import generate

    landing = root / "landing"
    generate(landing, root / "truth", size="tiny", seed=1, increments=2)
    manifest_path = landing / "_manifest.json"
    manifest = json.loads(manifest_path.read_text())
    days = manifest["extract_days"]
    assert len(days) == 3, days
    pair = LakePair(landing, root / "duckdb.duckdb", root / "lake_wh.duckdb", root / "lake")
    for n in range(1, len(days) + 1):
        manifest_path.write_text(json.dumps({**manifest, "extract_days": days[:n]}))
        for system in systems:
            load_system(system, warehouse=pair.duckdb_warehouse, pipelines_dir=root / "pipes_duckdb",
                        landing_dir=landing, destination="duckdb")
            load_system(system, warehouse=pair.lake_warehouse, pipelines_dir=root / "pipes_lake",
                        landing_dir=landing, destination="filesystem", lake_dir=pair.lake)
    manifest_path.write_text(json.dumps(manifest))
    return pair
