"""The health benchmarks (benchmarks/health.py, benchmarks/health_copies.py, benchmarks/profile_ranges.py) on the
fixture warehouse: they build the health models as the assets do, and what they build is what the assets build.

Both scripts broke without a test noticing when the indicators started keeping a carry (session 23): they built the
model without it, which ``build_incremental`` refuses. These tests run their phases on the tiny fixture warehouse.
"""

import datetime as dt
import json
import shutil
from pathlib import Path

import duckdb
import pytest

from benchmarks import health, health_copies, profile_ranges
from cs_kpis.defs.health.assets import models
from cs_kpis.lib import incremental
from cs_kpis_tests.health.test_history import activity_and_full_build

OUTPUTS = health_copies.OUTPUTS
TABLES = (health.ACTIVITY, *OUTPUTS)


def _rows(path: Path, tables: tuple[str, ...]) -> dict[str, int]:
    with duckdb.connect(str(path), read_only=True) as con:
        return {t: con.execute(f"select count(*) from {t}").fetchall()[0][0] for t in tables}


def _equal(diff: dict) -> bool:
    return all(d["a_not_b"] == 0 and d["b_not_a"] == 0 and d["rows"][0] == d["rows"][1] for d in diff.values())


@pytest.fixture(scope="module")
def assets_built(built_wh: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture warehouse after what the assets do on a first run (test_history's activity_and_full_build)."""
    path = tmp_path_factory.mktemp("assets_built") / "wh.duckdb"
    shutil.copyfile(built_wh, path)
    with duckdb.connect(str(path)) as con:
        con.execute("set TimeZone = 'UTC'")
        activity_and_full_build(con)
    assert all(n > 0 for n in _rows(path, TABLES).values())
    return path


def test_health_benchmark_history_and_nightly_build_what_the_assets_build(built_wh: Path, assets_built: Path,
                                                                          tmp_path: Path) -> None:
    warehouse = tmp_path / "wh.duckdb"
    shutil.copyfile(built_wh, warehouse)

    out = health.history(warehouse, "1GB")
    assert out["rows"] == _rows(assets_built, OUTPUTS)
    assert _equal(health_copies.compare(assets_built, warehouse, TABLES))

    out = health.nightly(warehouse, "1GB")  # the as-of day deleted from the outputs, then the nightly's builds
    assert out["indicators"]["mode"] != "full", out["indicators"]
    assert _equal(health_copies.compare(assets_built, warehouse, TABLES))


def test_health_benchmark_nightly_reads_the_carry_the_night_before_kept(built_wh: Path, tmp_path: Path) -> None:
    # A real nightly reads the running sums' carry its previous night kept. The benchmark's night (the as-of day
    # deleted) recreates that carry (health.previous_night); without it the night summed every activity row. A
    # product event on the two last days, so that the activity's window starts where the indicators' does (the
    # fixture's activity ends weeks earlier, and then a real nightly sums the carry again too).
    warehouse = tmp_path / "wh.duckdb"
    shutil.copyfile(built_wh, warehouse)
    with duckdb.connect(str(warehouse)) as con:
        as_of = con.execute("select max(day) from marts.dim_day").fetchall()[0][0]
        spec = {m.table: m for m in models}[health.INDICATORS].incremental_spec()
        carry_day = as_of - dt.timedelta(days=spec.lookback() + spec.reads_days)  # the night's first read day
        # and users first active the day before the carry's day (in the carry) and on it (in the night's windows)
        for name, day, user in (("last1", as_of - dt.timedelta(days=1), "ub"), ("last0", as_of, "ub"),
                                ("carry1", carry_day - dt.timedelta(days=1), "uc1"), ("carry0", carry_day, "uc0")):
            con.execute("insert into staging.stg_product__events values (?, 'track', ?, 'Signed In', 'ws_b', "
                        "cast(? as timestamptz), ?)", [name, user, f"{day} 09:00:00+00", day])
    health.history(warehouse, "1GB")
    reference = tmp_path / "history.duckdb"
    shutil.copyfile(warehouse, reference)

    out = health.nightly(warehouse, "1GB")
    stats = out["indicators"]
    assert stats["mode"] == "incremental" and stats["start_day"] == str(as_of - dt.timedelta(days=out["lookback_days"]))
    assert stats["carry_read"] == out["previous_night"]["carry_day"] == str(carry_day), stats
    # the carry is read, not summed again: a wrong one would show in the rows, which equal the history's
    assert _equal(health_copies.compare(reference, warehouse, TABLES))


def test_health_benchmark_nightly_rebuilds_the_accounts_whose_old_tickets_it_changed(
        assets_built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(incremental, "MAX_REBUILT_SHARE", 1.0)  # one of the fixture's 3 accounts: above 10 %
    warehouse = tmp_path / "wh.duckdb"
    shutil.copyfile(assets_built, warehouse)
    out = health.nightly(warehouse, "1GB", changed_accounts=1)
    assert out["reprioritised"]["tickets"] == 1, out
    # the old ticket's account is rebuilt on every day, as a real night does with old inputs that changed
    assert out["indicators"]["accounts_rebuilt"] == "1" and out["indicators"]["mode"] == "incremental", out


def test_health_benchmark_first_nightly_after_a_full_build_of_the_day_before(assets_built: Path,
                                                                             tmp_path: Path) -> None:
    # the night benchmarks.run full measures: the first after a full build, which was as of the day before; the
    # calendar is as it was, and the night's tables equal the assets' full build of the as-of day
    warehouse = tmp_path / "wh.duckdb"
    shutil.copyfile(assets_built, warehouse)
    with duckdb.connect(str(warehouse)) as con:
        calendar = con.execute("select * from marts.dim_day order by day").fetchall()
        as_of = calendar[-1][0]
        full = health.full_build_the_night_before(con)
        assert full["as_of"] == as_of and full["full_build_as_of"] == as_of - dt.timedelta(days=1)
        for table in OUTPUTS[:2]:
            assert con.execute(f"select max(day) from {table}").fetchall()[0][0] == as_of - dt.timedelta(days=1)
        built = {b["model"]: b for b in incremental.builds(con) if b["is_current"]}
        assert built[health.INDICATORS]["mode"] == "full" and built[health.INDICATORS]["as_of"] == full["full_build_as_of"]
        assert con.execute("select * from marts.dim_day order by day").fetchall() == calendar
    out = health.nightly(warehouse, "1GB", after_full_build=True)
    assert out["full_build_the_night_before"]["as_of"] == str(as_of)
    assert out["indicators"]["mode"] == "incremental" and out["scores"]["mode"] == "incremental", out
    assert _equal(health_copies.compare(assets_built, warehouse, TABLES))


def test_copies_history_then_nightly_equal_a_history_of_twice_the_accounts(assets_built: Path, tmp_path: Path) -> None:
    copies = tmp_path / "copies.duckdb"
    counts = health_copies.copies(assets_built, copies, 2)
    assert counts["marts.accounts"] == 2 * _rows(assets_built, ("marts.accounts",))["marts.accounts"]

    history = health_copies.history(copies, tmp_path / "history.duckdb", "1GB", "1GB", None)
    # each copy's accounts are scored as the originals were: twice the rows of the assets' own build
    assert history["rows"] == {t: 2 * n for t, n in _rows(assets_built, OUTPUTS).items()}

    night = health_copies.nightly(tmp_path / "history.duckdb", tmp_path / "night.duckdb", "1GB", "1GB")
    assert night["indicators"]["mode"] != "full", night["indicators"]
    # the as-of day, deleted then rebuilt by the nightly, equals the full build it started from
    assert _equal(health_copies.compare(tmp_path / "history.duckdb", tmp_path / "night.duckdb"))


def test_profile_ranges_profiles_every_range_of_a_build_that_equals_the_assets(assets_built: Path, tmp_path: Path,
                                                                              capsys: pytest.CaptureFixture) -> None:
    warehouse = tmp_path / "wh.duckdb"
    shutil.copyfile(assets_built, warehouse)
    rows = _rows(assets_built, (health.INDICATORS,))[health.INDICATORS]
    out = tmp_path / "profile"
    assert profile_ranges.main(["--warehouse", str(warehouse), "--model", health.INDICATORS, "--out", str(out),
                                "--memory-limit", "1GB", "--chunk-rows", str(rows // 3)]) == 0

    summary = json.loads((out / "summary.json").read_text())
    ranges = summary["ranges"]
    assert len(ranges) == int(summary["build"]["account_ranges"]) >= 2
    for entry in ranges:
        assert (out / entry["profile"]).is_file()
        assert entry["operator_seconds"] > 0
        assert "WINDOW" in {o["type"] for o in entry["top"]}  # the running sums' windows are among the costly ones
    assert f"{len(ranges)} range(s)" in capsys.readouterr().out
    # a full build as the asset's: the same rows
    assert _equal(health_copies.compare(assets_built, warehouse, (health.INDICATORS,)))
