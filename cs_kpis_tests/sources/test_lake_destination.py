"""The filesystem destination (cs_kpis/sources/lake.py): dlt appends Parquet to a lake, views merge it back.

The test company of landing_builder (three extract days: Account versions, a subscription's item set replaced,
Stripe events, an event repeated across days) is loaded day by day into the DuckDB warehouse and into a lake;
every raw table read back from the lake equals dlt's merged DuckDB table row for row.
"""

import json
from pathlib import Path

import duckdb
import pytest

from cs_kpis.sources import lake
from cs_kpis_tests.landing_builder import write_landing
from cs_kpis_tests.portability.lake_build import load_both, raw_tables_compared
from cs_kpis_tests.sources.landing_builder import DAYS, tiny_company, tiny_events


def _landing(root: Path) -> Path:
    events = {day: tiny_events(day, i * 100, 10) for i, day in enumerate(DAYS)}
    events[DAYS[1]].append(events[DAYS[0]][3])  # a Segment retry a day later: loaded once
    return write_landing(root, tiny_company(), events=events)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("lake_pair")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RUNTIME__DLTHUB_TELEMETRY", "false")
        mp.setenv("DLT_DATA_DIR", str(root / "dlt_global"))
        return load_both(root, _landing(root / "landing"))


def test_every_raw_table_read_from_the_lake_equals_the_duckdb_destination(pair) -> None:
    compared = raw_tables_compared(pair.duckdb_warehouse, pair.lake_warehouse)
    # _row_accounting has a row per load: three loads on the lake's side, one on DuckDB's (see load_both);
    # the records each entity read add up the same
    assert {t for t, (_, _, equal) in compared.items() if not equal} == {"_row_accounting"}, compared
    read = "select source, entity, sum(rows_read) from raw._row_accounting group by all order by all"
    with duckdb.connect(str(pair.duckdb_warehouse), read_only=True) as a, \
            duckdb.connect(str(pair.lake_warehouse), read_only=True) as b:
        assert a.execute(read).fetchall() == b.execute(read).fetchall()
        assert len(a.execute(read).fetchall()) >= 15
    # the cases the merge-on-read has to get right are present in the data
    with duckdb.connect(str(pair.duckdb_warehouse), read_only=True) as con:
        assert con.execute("select count(*) from raw.crm__accounts where _dlt_valid_to is not null").fetchone()[0] == 2
        assert con.execute("select count(*) from raw.billing__subscription_items").fetchone()[0] == 2
    assert compared["crm__accounts"][:2] == (5, 5)
    assert compared["product__events"][:2] == (30, 30)
    assert len(list((pair.lake / "dlt" / "raw" / "crm__accounts").glob("*.parquet"))) == 3  # one file per day


def test_the_lake_is_appended_to_and_read_through_views(pair) -> None:
    rules = lake.read_rules(pair.lake)
    assert rules["crm__accounts"] == {"kind": "scd2", "natural_key": ["id"]}
    assert rules["billing__events"] == {"kind": "first", "keys": ["id"]}
    assert rules["billing__subscription_items"] == {"kind": "latest", "keys": ["id"], "merge_keys": ["subscription"]}
    with duckdb.connect(str(pair.lake_warehouse), read_only=True) as con:
        kinds = dict(con.execute("select table_name, table_type from information_schema.tables "
                                 "where table_schema = 'raw'").fetchall())
        appended = con.execute("select count(*) from raw_lake.billing__subscriptions").fetchone()[0]
        merged = con.execute("select count(*) from raw.billing__subscriptions").fetchone()[0]
    assert set(kinds.values()) == {"VIEW"}
    assert (appended, merged) == (4, 2)  # two on day 1, a new version of each on days 2 and 3


def test_a_killed_loads_files_are_discarded_and_a_warehouse_table_is_never_replaced(pair, tmp_path) -> None:
    folder = pair.lake / "dlt" / "raw" / "billing__customers"
    orphan = folder / "1999999999.000001.deadbeef.parquet"  # a load id that never reached _dlt_loads
    orphan.write_bytes(next(folder.glob("*.parquet")).read_bytes())
    failed = folder.parent / "_row_accounting" / f"{lake.FAILED_PREFIX}1.parquet"
    failed.parent.mkdir(exist_ok=True)
    failed.write_bytes(b"kept")
    try:
        assert lake.discard_incomplete_files(pair.lake, "raw", ["billing__customers", "_row_accounting"]) == {
            "billing__customers": 1}
        assert not orphan.exists() and failed.exists()
    finally:
        failed.unlink()
    # a warehouse whose raw table was loaded by the duckdb destination is refused, not overwritten
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        con.execute("create schema raw; create table raw.billing__customers (id varchar)")
        with pytest.raises(RuntimeError, match="raw.billing__customers is a table in the warehouse"):
            lake.publish_duckdb(con, pair.lake)
        assert con.execute("select count(*) from raw.billing__customers").fetchone()[0] == 0


def test_the_destination_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(lake.ENV_RAW_DESTINATION, raising=False)
    assert lake.raw_destination() == "duckdb"
    monkeypatch.setenv(lake.ENV_RAW_DESTINATION, "filesystem")
    assert lake.raw_destination() == "filesystem"
    monkeypatch.setenv(lake.ENV_RAW_DESTINATION, "delta")
    with pytest.raises(ValueError, match="CS_KPIS_RAW_DESTINATION must be one of"):
        lake.raw_destination()


def test_manifest_is_restored(pair) -> None:
    assert json.loads((pair.landing / "_manifest.json").read_text())["extract_days"] == list(DAYS)
