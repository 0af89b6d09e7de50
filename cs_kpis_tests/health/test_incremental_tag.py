"""The ``@incremental`` model tag (cs_kpis/lib/sql.py, cs_kpis/lib/incremental.py): what it reads, what it
refuses, and the shared control table a build leaves behind."""

import datetime as dt

import pytest

from cs_kpis.defs.health.fingerprints import CARRIES
from cs_kpis.lib import incremental
from cs_kpis.lib.sql import SqlModel
from cs_kpis.lib.sql import build_incremental as sql_build_incremental
from cs_kpis_tests.health.fixtures import ACTIVITY_MODEL, INDICATOR_MODEL
from cs_kpis_tests.health.test_history import rows, same

HEADER = "-- Rows per account and day.\n-- @grain account_id, day\n"


def model(tmp_path, tag: str, header: str = HEADER) -> SqlModel:
    path = tmp_path / "m.sql"
    path.write_text(f"{header}-- @incremental {tag}\nselect 1 as account_id, current_date as day\n")
    return SqlModel.from_file(path, "kpis")


def test_the_tag_sets_lookback_history_and_chunk_size(tmp_path):
    spec = model(tmp_path, "lookback_days=3 history=limited chunk_rows=1_000").incremental_spec()
    assert (spec.lookback_days, spec.limited_history, spec.chunk_rows) == (3, True, 1000)
    default = model(tmp_path, "").incremental_spec()
    assert (default.lookback_days, default.limited_history, default.chunk_rows) == (7, False, incremental.CHUNK_ROWS)


@pytest.mark.parametrize("tag, message", [
    ("lookback=7", "unknown setting"), ("history=some", "all or limited"), ("chunk_rows=many", "whole number"),
    ("lookback_days=0", "at least 1"), ("listed=own", "listed must be window"),
    # a setting that sizes ranges only with another (incremental.build_ranges ignored it without that one)
    ("rows_per_gb=1000 window_rows_per_gb=2000", "window_rows_per_gb needs reads_days"),
    ("chunk_rows=1000 reads_days=30", "reads_days needs rows_per_gb"),
    ("reads_days=30 window_rows_per_gb=2000", "reads_days needs rows_per_gb"),
    # the carry runs through the first day a window reads: without reads_days there is none
    ("carry=kpis._my_carry", "carry needs reads_days"),
    ("rows_per_gb=1000 reads_days=30 carry=kpis.my_carry", "carry must name a table")])
def test_a_bad_tag_fails_naming_the_setting_and_file(tmp_path, tag, message):
    with pytest.raises(ValueError, match=message) as err:
        model(tmp_path, tag)
    assert "m.sql" in str(err.value)


def test_an_incremental_model_needs_account_id_and_day_in_its_grain(tmp_path):
    with pytest.raises(ValueError, match="account_id and day"):
        model(tmp_path, "", header="-- One row per month.\n-- @grain month\n")


def test_the_health_models_are_tagged_and_read_the_tables_they_build_after():
    assert ACTIVITY_MODEL.incremental == {"lookback_days": 7, "chunk_rows": 40_000_000, "rows_per_gb": 1_500_000,
                                          "reads_days": 34}
    assert INDICATOR_MODEL.incremental == {"lookback_days": 7, "limited_history": True, "rows_per_gb": 250_000,
                                           "reads_days": 89, "window_rows_per_gb": 1_500_000, "listed_in_window": True,
                                           "carry_table": "kpis._indicator_carry"}
    assert ACTIVITY_MODEL.table in INDICATOR_MODEL.incremental_spec().upstream


def build_incremental(con, model, **kw) -> dict:
    return sql_build_incremental(con, model, carry=CARRIES.get(model.table), **kw)


def test_a_model_reading_a_carry_is_not_built_without_it(wh):
    # its SQL reads the carry table: a build that did not keep it would read a stale one
    with pytest.raises(ValueError, match="reads the carry kpis._indicator_carry"):
        sql_build_incremental(wh, INDICATOR_MODEL)


def test_a_full_upstream_build_makes_the_next_build_full(wh, monkeypatch):
    """One control table: the indicators see that the activity they read was rebuilt whole since their
    last build, and rebuild whole too; each model keeps one current row."""
    monkeypatch.setenv(incremental.ENV_LOOKBACK_DAYS, "3")
    full = rows(wh, INDICATOR_MODEL.table)
    build_incremental(wh, ACTIVITY_MODEL, full_refresh=True)
    build_incremental(wh, INDICATOR_MODEL, full_refresh=True)
    assert build_incremental(wh, INDICATOR_MODEL)["mode"] == "incremental"
    stats = build_incremental(wh, ACTIVITY_MODEL)
    assert stats["mode"] == "incremental" and stats["start_day"] <= dt.date(2025, 4, 28)
    build_incremental(wh, ACTIVITY_MODEL, full_refresh=True)
    stats = build_incremental(wh, INDICATOR_MODEL)
    assert stats["mode"] == "full" and "kpis.account_activity_daily fully rebuilt" in stats["reason"]
    same(rows(wh, INDICATOR_MODEL.table), full)
    current = [(b["model"], b["mode"]) for b in incremental.builds(wh) if b["is_current"]]
    assert sorted(current) == [(ACTIVITY_MODEL.table, "full"), (INDICATOR_MODEL.table, "full")]


def test_rows_per_gb_sizes_the_ranges_from_duckdbs_memory_limit(tmp_path):
    import duckdb

    spec = model(tmp_path, "chunk_rows=1_000_000 rows_per_gb=1_000").incremental_spec()
    assert spec.rows_per_gb == 1000
    with duckdb.connect() as con:
        con.execute("set memory_limit = '2GB'")  # DuckDB reports it as '1.8 GiB' (1.93 GB)
        assert 1900 <= incremental.range_rows(con, spec) <= 2000
        assert incremental.range_rows(con, spec, chunk_rows=50) == 50  # an explicit size wins
        con.execute("set memory_limit = '4TB'")
        assert incremental.range_rows(con, spec) == 1_000_000  # never above chunk_rows
        assert incremental.range_rows(con, model(tmp_path, "chunk_rows=7").incremental_spec()) == 7


@pytest.mark.parametrize("reported, gb", [("1.8 GiB", 1.8 * 1024**3 / 1e9), ("512.0 MiB", 512 * 1024**2 / 1e9),
                                          ("8GB", 8.0), ("100 bytes", 1e-7), ("lots", None)])
def test_memory_limit_gb_reads_duckdbs_units(reported, gb):
    class Con:
        def execute(self, sql):
            return self

        def fetchall(self):
            return [(reported,)]

    got = incremental.memory_limit_gb(Con())
    assert got == pytest.approx(gb) if gb is not None else got is None


@pytest.mark.parametrize("first, last, where", [
    (None, None, None),
    ("acc_a", None, "where a.account_id > 'acc_a'"),
    (None, "o'k", "where a.account_id <= 'o''k'"),
    ("acc_a", "acc_b", "where a.account_id > 'acc_a' and a.account_id <= 'acc_b'"),
])
def test_a_range_is_rendered_as_constants_on_the_marked_scans(first, last, where):
    sql = "select *\nfrom t as a\n    -- account range: a.account_id\n"
    got = incremental.with_account_range(sql, first, last)
    assert got == (sql if where is None else f"select *\nfrom t as a\n    {where}\n")
    # the indicators mark their three scans of the activity (the carry, the trailing windows, the listed
    # accounts' earlier days)
    assert INDICATOR_MODEL.sql.count("-- account range: a.account_id") == 3
