"""dlt into the DuckDB warehouse and into a lake, extract day by extract day, and the raw tables compared.

The manifest the sources read is grown one extract day at a time, so every system loads once per day and the
lake's appended files must merge back (latest version, child sets replaced with their parent, Stripe events
kept first, Account versions) into exactly what dlt's own merge and scd2 left in the DuckDB warehouse.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import duckdb

from cs_kpis.sources.pipelines import SOURCES, load_system
from cs_kpis_tests.portability import compare

NOT_COMPARED = ("_dlt_id", "_dlt_load_id", "loaded_at")
"""differ between any two loads of the same data: dlt's row ids and load ids, the bookkeeping's clock"""


@dataclass(frozen=True)
class LakePair:
    landing: Path
    duckdb_warehouse: Path
    lake_warehouse: Path
    lake: Path


def load_both(root: Path, landing: Path, systems: tuple[str, ...] = tuple(SOURCES), *,
              per_day_duckdb: bool = False) -> LakePair:
    """Load ``landing`` into a lake day by day and into DuckDB (in one go, or day by day too) under ``root``;
    the manifest is restored after."""
    manifest_path = landing / "_manifest.json"
    original = manifest_path.read_text()
    manifest = json.loads(original)
    days = manifest["extract_days"]
    pair = LakePair(landing, root / "duckdb.duckdb", root / "lake_wh.duckdb", root / "lake")
    try:
        for n in range(1, len(days) + 1):
            manifest_path.write_text(json.dumps({**manifest, "extract_days": days[:n]}))
            for system in systems:
                load_system(system, warehouse=pair.lake_warehouse, pipelines_dir=root / "pipes_lake",
                            landing_dir=landing, destination="filesystem", lake_dir=pair.lake)
                if per_day_duckdb:
                    load_system(system, warehouse=pair.duckdb_warehouse, pipelines_dir=root / "pipes_duckdb",
                                landing_dir=landing, destination="duckdb")
    finally:
        manifest_path.write_text(original)
    if not per_day_duckdb:
        # dlt's merge keeps the same rows whether the days come in one load or three (scd2 loads day by day
        # anyway); loading once keeps the test cheap
        for system in systems:
            load_system(system, warehouse=pair.duckdb_warehouse, pipelines_dir=root / "pipes_duckdb",
                        landing_dir=landing, destination="duckdb")
    return pair


def _tables(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    rows = con.execute(
        "select table_name, column_name from information_schema.columns where table_schema = 'raw' "
        "and table_name not like '\\_dlt%' escape '\\' order by table_name, ordinal_position").fetchall()
    out: dict[str, list[str]] = {}
    for table, column in rows:
        out.setdefault(table, []).append(column)
    return out


def raw_tables_compared(duckdb_warehouse: Path, lake_warehouse: Path) -> dict[str, tuple[int, int, bool]]:
    """table -> (rows in the DuckDB destination, rows read from the lake, equal row for row), over the
    tables and columns of the DuckDB destination minus :data:`NOT_COMPARED`. A table or column the lake
    lacks raises."""
    with duckdb.connect(str(duckdb_warehouse), read_only=True) as a, duckdb.connect(str(lake_warehouse),
                                                                                 read_only=True) as b:
        for con in (a, b):
            con.execute("set TimeZone = 'UTC'")
        ta, tb = _tables(a), _tables(b)
        out = {}
        for table, columns in ta.items():
            assert table in tb, f"raw.{table} is missing from the lake"
            missing = set(columns) - set(tb[table])
            assert not missing, f"raw.{table}: columns missing from the lake: {sorted(missing)}"
            cols = ", ".join(f'"{c}"' for c in columns if c not in NOT_COMPARED)
            sql = f'select {cols} from raw."{table}"'
            ra, rb = compare.rows(a.sql(sql).to_arrow_table()), compare.rows(b.sql(sql).to_arrow_table())
            out[table] = (len(ra), len(rb), ra == rb)
        return out
