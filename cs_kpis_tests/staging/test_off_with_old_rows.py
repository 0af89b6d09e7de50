"""A system turned off whose raw tables still hold rows from an earlier configuration (it was in files mode).

The rule (cs_kpis/lib/systems.py, README "Connect your own company"): off means staging reads nothing from
it. Every ``staging.stg_<system>__*`` model builds empty with its usual columns, the raw rows stay where they
are (nothing is deleted; turning the system on again uses them), and the report says "not connected"."""

import json

import duckdb
import pytest

from cs_kpis import config
from cs_kpis.defs.raw.off import create_sql, off_schemas
from cs_kpis.defs.staging.assets import STAGING_MODELS
from cs_kpis.lib import sql as sqllib
from cs_kpis.lib import systems

OFF = ("support", "nps")


def _models(system: str):
    return [m for m in STAGING_MODELS if m.name.startswith(f"stg_{system}__")]


def _counts(con, tables) -> dict[str, int]:
    return {t: con.execute(f"select count(*) from {t}").fetchall()[0][0] for t in tables}


def _columns(con, table: str) -> list[tuple]:
    schema, name = table.split(".")
    return con.execute("select column_name, data_type from information_schema.columns where table_schema = ? "
                       "and table_name = ? order by ordinal_position", [schema, name]).fetchall()


@pytest.fixture
def off_profile(tmp_path, monkeypatch):
    path = tmp_path / "company.yaml"
    path.write_text(json.dumps({
        "profile": "switched-off-co", "landing_dir": "exports", "product": config.DEMO_PRODUCT.as_dict(),
        "systems": {"support": {"mode": "off"}, "nps": {"mode": "off"}}}))
    monkeypatch.setenv("CS_KPIS_CONFIG", str(path))
    return path


def test_staging_reads_nothing_from_an_off_system_with_old_raw_rows(tiny_company, tmp_path, off_profile):
    warehouse = tiny_company.copy_warehouse(tmp_path)
    staged = [m.table for s in OFF for m in _models(s)]
    raw = [f"raw.{t}" for s in OFF for t in off_schemas(s)]
    with duckdb.connect(str(warehouse)) as con:
        before_raw, before_staged = _counts(con, raw), _counts(con, staged)
        columns = {t: _columns(con, t) for t in staged}
        assert before_raw["raw.nps__survey_responses"] > 0 and before_staged["staging.stg_support__tickets"] > 0
        # the off asset's "create table if not exists" leaves the old rows alone
        for system in OFF:
            for table, cols in off_schemas(system).items():
                con.execute(create_sql(table, cols))
        for system in ("crm", "billing", "product", *OFF):
            for model in _models(system):
                sqllib.build(con, model)
        assert _counts(con, raw) == before_raw, "the raw rows of the systems turned off are kept"
        assert set(_counts(con, staged).values()) == {0}, "staging reads nothing from a system that is off"
        assert {t: _columns(con, t) for t in staged} == columns, "same columns and types as when it was on"
        others = [m.table for s in ("crm", "billing", "product") for m in _models(s)]
        assert all(n > 0 for n in _counts(con, others).values()), "the systems still on are unchanged"
    assert systems.off_systems() == list(OFF)
    assert systems.not_connected(systems.off_systems()) == ["Support not connected", "NPS not connected"]


def test_turned_on_again_the_old_rows_come_back(tiny_company, tmp_path, off_profile, monkeypatch):
    warehouse = tiny_company.copy_warehouse(tmp_path)
    [model] = _models("nps")
    with duckdb.connect(str(warehouse)) as con:
        before = con.execute(f"select * from {model.table} order by all").fetchall()
        sqllib.build(con, model)
        assert _counts(con, [model.table]) == {model.table: 0}
        monkeypatch.delenv("CS_KPIS_CONFIG")  # the demo profile: every system on
        sqllib.build(con, model)
        assert con.execute(f"select * from {model.table} order by all").fetchall() == before


def test_only_staging_models_of_the_off_system_are_guarded():
    sql = "select 1 as x"
    assert systems.read_nothing_when_off("staging.stg_nps__survey_responses", sql, ["nps"]).endswith("where 1 = 0")
    assert systems.read_nothing_when_off("staging.stg_nps__survey_responses", sql, []) == sql
    assert systems.read_nothing_when_off("staging.stg_support__tickets", sql, ["nps"]) == sql
    assert systems.read_nothing_when_off("marts.nps_by_account", sql, ["nps"]) == sql
