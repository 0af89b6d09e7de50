"""evaluate.py (volume, precision and lift per alert type) on the hand-built warehouse, worked out by hand."""

import math
from datetime import date

import pytest

from cs_kpis.defs.alerts import engine, evaluate
from cs_kpis_tests.alerts.fixtures import Warehouse, set_cells


@pytest.fixture
def result(tmp_path):
    wh = Warehouse()
    # A: red from 02-20 (health_red raised 02-20; the 60-day cooldown ends after the as-of day), and its MRR
    # falls to 0 on 03-15: churned within 30 days for every day 02-13 .. 03-14
    set_cells(wh.scores, "A", "2025-02-20", "2025-03-31", band="red", score=30.0, delta_30d=-50.0)
    # B: 19 of 20 seats active from 12-20 (expansion_opportunity raised 12-20), and its MRR rises to 1,500 on
    # 01-10: expanded within 30 days for every day 12-11 .. 01-09
    set_cells(wh.indicators, "B", "2024-12-20", "2025-03-31", seat_utilisation=0.95, active_users_30d=19, seats=20)
    wh.mrr_changes.loc[0] = ["A", date(2025, 3, 15), 0.0]
    wh.mrr_changes.loc[1] = ["B", date(2025, 1, 10), 1500.0]
    # C: usage down 50% from 03-10: usage_drop raised 03-16 (7 days), inside the last 4 weeks (after 03-03)
    set_cells(wh.indicators, "C", "2025-03-10", "2025-03-31", events_prior_30d=100, events_30d=50, usage_trend=-0.5)
    con = wh.build(tmp_path / "wh.duckdb")
    return evaluate.evaluate(con, engine.load_rules(), horizon_days=30, volume_weeks=4, warmup_days=0)


def test_window_and_base_rates(result):
    # outcome window: first day 2024-12-01 .. as-of - 30 = 2025-03-01: 91 days x 3 paying accounts
    assert (result["eval_first"], result["eval_last"]) == (date(2024, 12, 1), date(2025, 3, 1))
    assert result["account_days"] == 273
    # churned: A on 02-13 .. 03-01 (17 days); expanded: B on 12-11 .. 01-09 (30 days)
    assert result["base_rate"]["churned"] == pytest.approx(17 / 273)
    assert result["base_rate"]["expanded"] == pytest.approx(30 / 273)
    assert (result["active_accounts"], result["csms"]) == (3, 2)


def test_per_type_volume_precision_and_lift(result):
    t = result["table"].set_index("alert_type")
    red = t.loc["health_red"]
    assert (red["open"], red["evaluated"], red["precision"]) == (1, 1, 1.0)
    assert red["share_of_active"] == pytest.approx(1 / 3)
    assert red["lift"] == pytest.approx(273 / 17)
    assert red["per_week"] == 0  # raised 02-20: before the last 4 weeks
    exp = t.loc["expansion_opportunity"]
    assert (exp["outcome"], exp["evaluated"], exp["precision"]) == ("expanded", 1, 1.0)
    assert exp["lift"] == pytest.approx(273 / 30)
    usage = t.loc["usage_drop"]
    assert (usage["open"], usage["new_today"], usage["evaluated"]) == (1, 0, 0)  # raised after the window
    assert usage["per_week"] == pytest.approx(1 / 4) and usage["per_csm_week"] == pytest.approx(1 / 8)
    assert math.isnan(usage["precision"])
    assert t.loc["ticket_spike", "open"] == 0 and t.loc["ticket_spike", "per_week"] == 0
    assert result["accounts_with_risk_alert"] == 2  # A (health_red) and C (usage_drop); B's is a lead


def test_markdown_lists_every_type(result):
    text = evaluate.markdown(result, engine.load_rules())
    for t in engine.ALERT_TYPES:
        assert f"| {t} |" in text
    assert "| health_red | cooldown 60 d | 1 (0) | 33.3% | 0.0 | 0.00 | churned | 1 | 100.0% | 6.2% | 16.1x |" in text


def test_quiet_warehouse_has_no_notifications(tmp_path):
    con = Warehouse().build(tmp_path / "wh.duckdb")
    out = evaluate.evaluate(con, engine.load_rules(), horizon_days=30, volume_weeks=4, warmup_days=0)
    t = out["table"]
    assert t["open"].sum() == 0 and t["per_week"].sum() == 0 and t["evaluated"].sum() == 0
    assert out["base_rate"] == {"churned": 0.0, "expanded": 0.0} and out["by_severity"].empty
