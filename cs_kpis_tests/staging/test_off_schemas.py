"""The empty raw tables of a system turned off (cs_kpis/defs/raw/off_schemas.json) have exactly the columns
and types a load of the tiny company gives: the staging models then build on them as on a real load."""

import pytest

from cs_kpis.defs.raw.off import OFFABLE, off_schemas


@pytest.mark.parametrize("system", OFFABLE)
def test_off_schemas_match_a_real_load(tiny_company, system):
    declared = off_schemas(system)
    with tiny_company.connect() as con:
        rows = con.execute(
            "select table_name, column_name, data_type from information_schema.columns "
            "where table_schema = 'raw' order by table_name, ordinal_position").fetchall()
    loaded: dict[str, list[list[str]]] = {}
    for table, column, dtype in rows:
        if table.split("__")[0] != system:
            continue
        loaded.setdefault(table, []).append([column, dtype])
    assert loaded, f"the tiny company loaded no {system} table"
    assert declared == loaded, ("off_schemas.json differs from what dlt writes; regenerate it from a load "
                                "of the tiny company (cs_kpis/defs/raw/off.py)")
