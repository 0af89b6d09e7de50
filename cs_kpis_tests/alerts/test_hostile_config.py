"""Config values reach SQL only as bound parameters: hostile values in alert_rules.yaml neither run SQL nor
change what fires (issue 16: a crafted `severity` created a table, because the rules were spliced in with
string.Template)."""

import copy

import pytest
import yaml

from cs_kpis.defs.alerts import engine
from cs_kpis_tests.alerts.fixtures import AS_OF, Warehouse, set_cells

INJECT = "x'; create table main.pwned as select 1 as owned; --"


def _tables(con):
    return {t for (t,) in con.execute("select table_name from information_schema.tables").fetchall()}


@pytest.fixture
def con(tmp_path):
    wh = Warehouse()
    set_cells(wh.scores, "A", "2025-03-31", "2025-03-31", band="red", score=30.0, delta_30d=-50.0)
    c = wh.build(tmp_path / "wh.duckdb")
    yield c
    c.close()


def test_hostile_strings_are_bound_not_executed(con):
    rules = copy.deepcopy(engine.load_rules())
    rules["types"]["health_red"]["severity"] = INJECT  # load_rules refuses it; conditions() must be safe anyway
    rules["types"]["champion_inactive"]["match"] = "any' or 1=1; create table main.pwned2 as select 1; --"
    rules["types"]["champion_inactive"]["roles"] = ["Champion') or 1=1; create table main.pwned3 as select 1; --"]
    with pytest.raises(ValueError, match="types.health_red.severity"):
        engine.conditions(con, rules, AS_OF)
    rules["types"]["health_red"]["severity"] = "high"
    cond = engine.conditions(con, rules, AS_OF)
    assert not {"pwned", "pwned2", "pwned3"} & _tables(con)
    assert set(cond[cond["alert_type"] == "health_red"]["account_id"]) == {"A"}
    assert (cond["alert_type"] == "champion_inactive").sum() == 0


def test_load_rules_names_the_key_and_file(tmp_path):
    rules = yaml.safe_load(engine.RULES_PATH.read_text())
    for key, value, message in [
        ("severity", INJECT, "must be one of critical, high, medium, info"),
        ("min_days", "7 day preceding and current row) as x from t; --", "a number is expected"),
        ("cooldown_days", {"a": 1}, "plain value"),
        ("accounts", ["acc_1"], "the engine binds $accounts itself"),
        ("as_of", "2020-01-01", "the engine binds $as_of itself"),
    ]:
        bad = copy.deepcopy(rules)
        bad["types"]["usage_drop"][key] = value
        path = tmp_path / f"rules_{key}.yaml"
        path.write_text(yaml.safe_dump(bad))
        with pytest.raises(ValueError) as err:
            engine.load_rules(path)
        assert f"types.usage_drop.{key}" in str(err.value) and str(path) in str(err.value)
        assert message in str(err.value)


def test_shipped_rules_bind_every_name_their_sql_uses():
    rules = engine.load_rules()
    for t in engine.ALERT_TYPES:
        sql, params = engine.condition_sql(t, rules["types"][t], AS_OF, AS_OF)
        assert "first_day" in params and "as_of" in params
        assert "'$" not in sql
