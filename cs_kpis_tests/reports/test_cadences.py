"""The weekly (team) and quarterly (executive) KPI reports: period choice, figures vs the previous period of the
same cadence, run config and output files, figures computed by the SQL models from hand-written MRR changes,
and the pages drawn in headless Chromium."""

import datetime as dt
import re

import dagster as dg
import duckdb
import pandas as pd
import pytest
from dagster_duckdb import DuckDBResource

from cs_kpis.defs.reports import assets, render
from cs_kpis_tests.kpis.periods import (
    QUARTER_ACCOUNTS,
    QUARTER_CHANGES,
    WEEK_ACCOUNTS,
    WEEK_CHANGES,
    make_period_warehouse,
)
from cs_kpis_tests.reports.fixtures import add_missing_report_inputs, build_warehouse
from cs_kpis_tests.reports.test_kpi_report import CHARTS, chromium, run_chromium


@pytest.fixture
def warehouse(tmp_path):
    return build_warehouse(tmp_path / "wh.duckdb")


def load(warehouse, cadence, period=""):
    con = duckdb.connect(warehouse, read_only=True)
    try:
        return assets.load_report_data(con, cadence, period)
    finally:
        con.close()


def bridge_values(data, segment="all"):
    return list(render.fig_bridge(data, segment).data[0].y)


# ----------------------------------------------------------------------------------------------- periods


@pytest.mark.parametrize(("cadence", "text", "start"), [
    ("week", "2026-10-21", dt.date(2026, 10, 19)),   # a Wednesday -> its Monday
    ("week", "2026-W43", dt.date(2026, 10, 19)),
    ("week", "2026-W01", dt.date(2025, 12, 29)),     # ISO week 1 of 2026 starts in 2025
    ("month", "2026-10-21", dt.date(2026, 10, 1)),
    ("month", "2026-10", dt.date(2026, 10, 1)),
    ("quarter", "2026-08-15", dt.date(2026, 7, 1)),
    ("quarter", "2026-Q4", dt.date(2026, 10, 1)),
    ("quarter", "", None),
    ("week", "current", None),
])
def test_parse_period(cadence, text, start):
    assert assets.parse_period(cadence, text) == start


@pytest.mark.parametrize(("cadence", "text", "message"), [
    ("week", "2026-Q3", "names a quarter, not a week"),
    ("month", "2026-W43", "names a week, not a month"),
    ("quarter", "last one", "not understood"),
])
def test_parse_period_refuses(cadence, text, message):
    with pytest.raises(ValueError, match=message):
        assets.parse_period(cadence, text)


def test_period_labels():
    assert render.period_label("week", "2026-10-19") == "2026-W43"
    assert render.period_label("week", "2024-12-30") == "2025-W01"
    assert render.period_label("month", "2026-10-01") == "2026-10"
    assert render.period_label("quarter", "2026-07-01") == "2026-Q3"


def test_choose_period_default_is_the_latest_complete_one():
    periods = pd.DataFrame({
        "period_start": ["2026-10-12", "2026-10-19", "2026-10-26"],
        "period_end": ["2026-10-18", "2026-10-25", "2026-11-01"],
        "read_day": ["2026-10-18", "2026-10-25", "2026-10-31"],
        "is_complete": [True, True, False],
    })
    assert assets.choose_period(periods, "week")["period_start"] == "2026-10-19"
    assert assets.choose_period(periods, "week", "current")["period_start"] == "2026-10-26"
    assert assets.choose_period(periods, "week", "2026-10-13")["period_start"] == "2026-10-12"
    # nothing complete yet: the current period
    assert assets.choose_period(periods.iloc[2:], "week")["period_start"] == "2026-10-26"
    with pytest.raises(ValueError, match="no week 2026-W40 in the data: weeks run from 2026-W42 to 2026-W44"):
        assets.choose_period(periods, "week", "2026-W40")


# ----------------------------------------------------------------------------------------------- weekly


def test_weekly_figures_against_the_previous_week(warehouse):
    data = load(warehouse, "week")
    # W44 is not over (read on Saturday Oct 31): the default is the latest complete week
    assert (data.period, data.period_start, data.period_end, data.is_complete) == (
        "2026-W43", "2026-10-19", "2026-10-25", True)
    md = render.headline_markdown(data)
    assert "the week 2026-W43 (2026-10-19 to 2026-10-25)" in md and "| KPI | this week | previous week |" in md
    for row in ("| Ending MRR | $1.1k | $1.2k |", "| NRR | 95.8% | 99.1% |", "| GRR | 93.2% | 99.1% |",
                "| NRR T12 | 102.0% | 105.0% |", "| Logo churn | 25.0% | 25.0% |", "| Quick ratio | 0.38 | 4.00 |"):
        assert row in md, row
    # the week's bridge: 1180 + 30 expansion - 20 contraction - 60 churned = 1130
    assert bridge_values(data) == [1180, 0, 30, 0, -20, -60, 1130]
    assert bridge_values(data, "SMB") == [480, 0, 0, 0, -20, -60, 400]
    # the week's movers (kpis.mrr_periods), biggest first
    assert list(data.movers["Account"]) == ["Umbrella", "Acme Corp", "Initech"]
    assert list(data.movers["Movement"]) == ["churn", "expansion", "contraction"]
    # no NPS response in W42 or W43: no NPS tile; health bands: the last scored day of each week is 10-01
    assert data.nps is None
    assert data.band_counts == {"green": (1, None), "yellow": (2, None), "red": (1, None)}
    # trends at the weekly cadence, ending with the report's week
    assert list(data.revenue[data.revenue["segment"] == "all"]["label"]) == ["2026-W42", "2026-W43"]
    assert list(data.bands_over_time["label"].unique()) == ["2026-W40"]


def test_current_week_is_marked_provisional(warehouse):
    data = load(warehouse, "week", "current")
    assert (data.period, data.read_day, data.is_complete) == ("2026-W44", "2026-10-31", False)
    page = render.render_report(data)
    assert 'data-provisional="true"' in page and "This week is not over" in page
    assert "to date: read on 2026-10-31, provisional" in page
    # SMB has no row for W44: its section says so instead of showing another week's figures
    assert "No revenue KPIs for this week" in page


def test_weekly_page_words(warehouse):
    page = render.render_report(load(warehouse, "week"))
    for text in ("Customer-success KPI report: 2026-W43", "weekly, team review", "MRR bridge, 2026-W43",
                 "NRR and GRR trend (weekly and trailing 12 months)", "Expansion MRR by week",
                 "Health band distribution (active accounts at week end)", "NRR (week)", "vs prev week",
                 "over the week: the accounts active at the end of the previous week"):
        assert text in page, text
    assert "data-provisional" not in page


# ----------------------------------------------------------------------------------------------- quarterly


def test_quarterly_figures_against_the_previous_quarter(warehouse):
    data = load(warehouse, "quarter")
    assert (data.period, data.period_start, data.period_end) == ("2026-Q3", "2026-07-01", "2026-09-30")
    md = render.headline_markdown(data)
    for row in ("| Ending MRR | $1.2k | $1.0k |", "| NRR | 100.0% | 100.0% |", "| GRR | 85.0% | 100.0% |",
                "| NRR T12 | 112.0% | – |", "| Logo churn | 25.0% | 0.0% |", "| Quick ratio | 2.33 | – |",
                "| NPS | 0 (2 responses) | – |"):
        assert row in md, row
    assert bridge_values(data) == [1000, 200, 150, 0, -50, -100, 1200]
    assert list(data.movers["Account"]) == ["Globex", "Umbrella"]  # +200 new, -100 churn
    # September NPS responses 2 and 10 -> 0; none in Q2
    assert data.nps == render.Nps(now=0.0, prev=None, responses=2, prev_responses=0)
    # bands on the last scored day of Q3 (09-30); nothing scored by the end of Q2
    assert data.band_counts == {"green": (2, None), "yellow": (2, None), "red": (0, None)}
    page = render.render_report(data)
    for text in ("Customer-success KPI report: 2026-Q3", "quarterly, executive review", "GRR (quarter)",
                 "Expansion MRR by quarter", "vs prev quarter"):
        assert text in page, text


def test_a_chosen_quarter(warehouse):
    data = load(warehouse, "quarter", "2026-Q2")
    assert data.period == "2026-Q2" and bridge_values(data) == [700, 300, 0, 0, 0, 0, 1000]
    assert "| Ending MRR | $1.0k | – |" in render.headline_markdown(data)  # no Q1 row: no previous quarter


# ----------------------------------------------------------------------------------------------- from the SQL


def test_weekly_report_from_the_models(tmp_path):
    """kpis.revenue_periods built from hand-written MRR changes (cs_kpis_tests/kpis/test_revenue_periods.py)."""
    con = make_period_warehouse(tmp_path, WEEK_CHANGES, WEEK_ACCOUNTS, data_as_of="2024-01-31")
    add_missing_report_inputs(con, tmp_path)
    try:
        data = assets.load_report_data(con, "week")
    finally:
        con.close()
    # week 4 (Jan 22-28); week 5 is read on Wednesday Jan 31 and not over
    assert data.period == "2024-W04"
    md = render.headline_markdown(data)
    # W4: (530 + 90 - 60) / 530 = 105.7%, GRR 470 / 530 = 88.7%, quick ratio 90 / 60; W3: 530 / 730 = 72.6%
    for row in ("| Ending MRR | $560 | $530 |", "| NRR | 105.7% | 72.6% |", "| GRR | 88.7% | 72.6% |",
                "| Logo churn | 0.0% | 25.0% |", "| Quick ratio | 1.50 | 0.00 |", "| NRR T12 | – | – |"):
        assert row in md, row
    assert bridge_values(data) == [530, 0, 90, 0, -60, 0, 560]
    assert dict(zip(data.movers["Account"], data.movers["Change"], strict=True)) == {"W_A": "$90", "W_C": "-$60"}


def test_quarterly_report_from_the_models(tmp_path, monkeypatch):
    # the hand-written cohort has a few accounts: show its trailing-year ratio (the minimum is tested apart)
    monkeypatch.setattr(render, "MIN_T12_COHORT_ACCOUNTS", 1)
    con = make_period_warehouse(tmp_path, QUARTER_CHANGES, QUARTER_ACCOUNTS, data_as_of="2024-04-15")
    add_missing_report_inputs(con, tmp_path)
    try:
        data = assets.load_report_data(con, "quarter")
    finally:
        con.close()
    assert data.period == "2024-Q1"
    md = render.headline_markdown(data)
    # Q1-24: 450 / 480 = 93.8%, quick ratio 250 / 30 = 8.33; Q4-23: 430 / 530 = 81.1%, 50 / 100 = 0.50;
    # T12: 650 / 700 = 92.9%; Q4-23 has no year-earlier quarter
    for row in ("| Ending MRR | $700 | $480 |", "| NRR | 93.8% | 81.1% |", "| GRR | 93.8% | 81.1% |",
                "| Logo churn | 0.0% | 0.0% |", "| Quick ratio | 8.33 | 0.50 |", "| NRR T12 | 92.9% | – |"):
        assert row in md, row
    assert bridge_values(data) == [480, 0, 0, 250, -30, 0, 700]
    assert list(data.movers["Movement"]) == ["reactivation", "contraction"]


# ----------------------------------------------------------------------------------------------- asset


def materialize(warehouse, run_config=None):
    return dg.materialize([assets.kpi_report], resources={"duckdb": DuckDBResource(database=warehouse)},
                          instance=dg.DagsterInstance.ephemeral(), run_config=run_config, raise_on_error=False)


def test_run_config_picks_cadence_and_period(tmp_path, warehouse, monkeypatch):
    monkeypatch.setenv("CS_KPIS_STATE_DIR", str(tmp_path / "state"))
    config = {"ops": {"reports__kpi_report": {"config": {"cadences": ["quarter"], "period": "2026-Q2"}}}}
    result = materialize(warehouse, config)
    assert result.success
    reports = tmp_path / "state" / "reports"
    # a chosen period goes to its own file; the latest reports (fixed names) are left alone
    assert [p.name for p in reports.iterdir()] == ["kpi_report_quarterly_2026-Q2.html"]
    meta = result.asset_materializations_for_node("reports__kpi_report")[0].metadata
    assert set(meta) >= {"path_quarterly", "period_quarterly", "headline_quarterly", "size_bytes_quarterly"}
    assert "path" not in meta and "path_weekly" not in meta
    assert meta["period_quarterly"].value == "2026-Q2"
    assert "Customer-success KPI report: 2026-Q2" in (reports / "kpi_report_quarterly_2026-Q2.html").read_text()


def test_a_day_works_for_every_cadence(tmp_path, warehouse, monkeypatch):
    monkeypatch.setenv("CS_KPIS_STATE_DIR", str(tmp_path / "state"))
    result = materialize(warehouse, {"ops": {"reports__kpi_report": {"config": {"period": "2026-10-20"}}}})
    assert result.success
    meta = result.asset_materializations_for_node("reports__kpi_report")[0].metadata
    assert (meta["period"].value, meta["period_weekly"].value, meta["period_quarterly"].value) == (
        "2026-10", "2026-W43", "2026-Q4")
    names = sorted(p.name for p in (tmp_path / "state" / "reports").iterdir())
    assert names == ["kpi_report_2026-10.html", "kpi_report_quarterly_2026-Q4.html", "kpi_report_weekly_2026-W43.html"]


@pytest.mark.parametrize(("config", "message"), [
    ({"cadences": ["fortnight"]}, "cadences must be a non-empty list"),
    ({"cadences": ["week"], "period": "2030-W01"}, "no week 2030-W01 in the data"),
])
def test_bad_run_config_fails_the_run_with_a_message(tmp_path, warehouse, monkeypatch, config, message):
    monkeypatch.setenv("CS_KPIS_STATE_DIR", str(tmp_path / "state"))
    result = materialize(warehouse, {"ops": {"reports__kpi_report": {"config": config}}})
    assert not result.success
    failure = result.get_step_failure_events()[0].event_specific_data.error
    assert message in failure.to_string()


# ----------------------------------------------------------------------------------------------- browser


@pytest.mark.parametrize(("cadence", "period", "label"), [("week", "", "2026-W43"), ("quarter", "", "2026-Q3"),
                                                          ("week", "current", "2026-W44")])
def test_weekly_and_quarterly_reports_draw_in_headless_chromium(tmp_path, warehouse, cadence, period, label):
    binary = chromium()
    if binary is None:
        pytest.skip("chromium not found (make test installs the Debian package where apt is available)")
    data = load(warehouse, cadence, period)
    assert data.period == label
    report = tmp_path / f"kpi_report_{cadence}.html"
    report.write_text(render.render_report(data, {c: f"kpi_report_{c}.html" for c in render.CADENCES}),
                      encoding="utf-8")
    url = report.as_uri()

    dom = run_chromium(binary, tmp_path, url, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    errors = re.search(r'id="js-error-count">([^<]*)<', html).group(1)
    assert errors == "0", re.search(r'data-errors="([^"]*)"', html)
    drawn, total = re.search(r'id="charts-drawn">(\d+)/(\d+)<', html).groups()
    # SMB has no row for the current week: its bridge is a 'no data' note, its trend still draws
    expected = 8 if period != "current" else 7
    assert drawn == total == str(expected), (drawn, total)
    for name in CHARTS | {"retention-smb"}:
        block = html.split(f'data-chart="{name}"', 1)
        assert len(block) == 2, f"chart {name} missing"
        assert '<svg class="main-svg"' in block[1].split('class="chart-card"', 1)[0], f"chart {name} did not draw"
    bridge = html.split('data-chart="bridge"', 1)[1].split('class="chart-card"', 1)[0]
    for step in ("Starting", "Expansion", "Churned", "Ending"):
        assert f">{step}<" in bridge
    # the trend's x axis carries the cadence's period labels
    retention = html.split('data-chart="retention"', 1)[1].split('class="chart-card"', 1)[0]
    assert f">{label}<" in retention
    for title in (f"MRR bridge, {label}", "NRR and GRR trend", f"Expansion MRR by {cadence}", "Top risks",
                  "CSM worklist", "Definitions and data freshness"):
        assert title in html, title

    shot = tmp_path / "shot.png"
    res = run_chromium(binary, tmp_path, url, f"--screenshot={shot}")
    assert res.returncode == 0 and shot.exists() and shot.stat().st_size > 20_000, res.stderr[-2000:]
