"""The KPI report: data loading from a hand-written warehouse, pure rendering, the asset, and the page as a
browser draws it (headless Chromium: charts rendered, no script errors, a screenshot taken), for the monthly
report here and the weekly and quarterly ones in test_cadences.py."""

import dataclasses
import html
import re
import shutil
import subprocess

import dagster as dg
import duckdb
import pandas as pd
import pytest
from dagster_duckdb import DuckDBResource

from cs_kpis.defs.reports import assets, render
from cs_kpis_tests.reports.fixtures import build_warehouse, build_worklist

CHARTS = {"bridge", "retention", "cohorts", "bands", "backtest", "expansion"}
TITLES = ("MRR bridge, 2026-10", "NRR and GRR trend", "Cohort net MRR retention", "Health band distribution",
          "Churn rate by health band", "Expansion MRR by month", "Top risks", "Top expansion opportunities",
          "Biggest MRR movers", "CSM worklist", "Definitions and data freshness")


@pytest.fixture
def warehouse(tmp_path):
    return build_warehouse(tmp_path / "wh.duckdb")


@pytest.fixture
def data(warehouse):
    con = duckdb.connect(warehouse, read_only=True)
    try:
        yield assets.load_report_data(con)
    finally:
        con.close()


@pytest.fixture
def page(data):
    return render.render_report(data)


# ----------------------------------------------------------------------------------------------- data


def test_headline_figures_and_changes(data):
    md = render.headline_markdown(data)
    assert data.period == "2026-10" and data.as_of_day == "2026-10-31"
    assert "| Ending MRR | $1.6k | $1.2k |" in md
    assert "| ARR | $19.2k | $14.4k |" in md
    assert "| NRR | 104.2% | 109.1% |" in md
    assert "| Logo churn | 0.0% | 25.0% |" in md
    # NPS: October 10, 9, 3, 8 -> (2 - 1) / 4 = 25; September 2, 10 -> 0
    assert (data.nps.now, data.nps.prev) == (25.0, 0.0)
    # active accounts at the end of October (last scored day 10-31: a4 is inactive) vs the end of September
    # (09-30: a1 and a2 green, a3 and a4 yellow)
    assert data.band_counts == {"green": (1, 2), "yellow": (1, 2), "red": (1, 0)}
    assert data.segments == ["all", "SMB"]


def test_backtest_pools_current_config_months(data):
    rates = data.backtest_bands.set_index("band")["churn_rate"].to_dict()
    assert rates == pytest.approx({"green": 0.05, "yellow": 0.2, "red": 0.6})


def test_risks_come_from_open_alerts(data):
    assert "alerts.alert_candidates" in data.risk_source
    # open alerts only (the resolved one is left out), most severe first; the expansion alert goes to its table
    assert list(data.risks["Account"]) == ["Initech", "Globex"]
    assert list(data.risks["Severity"]) == ["high", "medium"]
    assert list(data.risks["Owner (CSM)"]) == ["Grace Hopper", "Ada Lovelace"]
    assert list(data.risks["Alerts"]) == ["health_drop: score fell 25 points in 30 days",
                                          "renewal_risk: renewal in 20 days, score 55"]
    assert list(data.expansion["Reason"]) == ["seats 95% used"]
    page = render.render_report(data)
    assert "score fell 25 points in 30 days" in page and "score back to 88" not in page
    # the worklist names each account's open risk alerts
    assert data.worklist.set_index("Account")["Open alerts"].to_dict() == {
        "Globex": "renewal_risk", "Acme Corp": "–", "Initech": "health_drop"}


def test_the_report_adds_no_risk_rule_of_its_own(tmp_path):
    # Globex's score fell 20 points in 30 days and it is yellow; without an open alert it is not a risk (the
    # report used to add red and 10-point-drop accounts by its own rule; the alert rules alone decide now)
    path = build_warehouse(tmp_path / "wh.duckdb")
    with duckdb.connect(path) as con:
        con.execute("delete from alerts.alert_candidates where account_id = 'a2'")
        build_worklist(con)
    with duckdb.connect(path, read_only=True) as con:
        data = assets.load_report_data(con)
    assert list(data.risks["Account"]) == ["Initech"]


def test_renewal_is_the_same_in_top_risks_and_the_worklist(data):
    # one renewal per account (reports.account_worklist), shown alike in both tables
    risks = data.risks.set_index("Account")["Renewal"].to_dict()
    worklist = data.worklist.set_index("Account")["Renewal"].to_dict()
    assert risks == {"Initech": "2026-11-20", "Globex": "–"}
    assert all(worklist[a] == r for a, r in risks.items())


def test_worklist_per_csm_riskiest_first(data):
    wl = data.worklist
    ada = wl[wl["CSM"] == "Ada Lovelace"]
    assert list(ada["Account"]) == ["Globex", "Acme Corp"]  # score 55 before 88
    assert "Umbrella" not in set(wl["Account"])  # inactive
    assert wl.set_index("Account").loc["Initech", "Renewal"] == "2026-11-20"
    assert wl.set_index("Account").loc["Initech", "Weak components"] == "usage 10, adoption 20, support 45"


def test_a_trend_that_rounds_to_zero_shows_as_0(tmp_path):
    path = build_warehouse(tmp_path / "wh.duckdb")
    with duckdb.connect(path) as con:
        con.execute("update kpis.health_scores set delta_30d = -0.04 where account_id = 'a1'")
        build_worklist(con)
        assert con.execute("select cast(trend_30d as varchar) from reports.account_worklist "
                           "where account_id = 'a1'").fetchall() == [("0.0",)]
    with duckdb.connect(path, read_only=True) as con:
        data = assets.load_report_data(con)
    assert data.worklist.set_index("Account").loc["Acme Corp", "Trend (30d)"] == "0.0"
    assert render.fmt_num(-0.04, 1) == "0.0" and render.fmt_num(-0.06, 1) == "-0.1"


def test_nps_shows_its_response_count(data):
    assert data.nps == render.Nps(now=25.0, prev=0.0, responses=4, prev_responses=2)
    assert "| NPS | 25 (4 responses) | 0 (2 responses) |" in render.headline_markdown(data)
    assert "(4 responses)" in render.headline_tiles(data)


def test_t12_ratios_are_empty_below_the_minimum_cohort(tmp_path):
    path = build_warehouse(tmp_path / "wh.duckdb")
    with duckdb.connect(path) as con:
        con.execute("update kpis.revenue_periods set t12_cohort_accounts = ? "
                    "where cadence = 'month' and period_start = date '2026-10-01' and segment = 'all'",
                    [render.MIN_T12_COHORT_ACCOUNTS - 1])
    with duckdb.connect(path, read_only=True) as con:
        data = assets.load_report_data(con)
    assert "| NRR T12 | – | – |" in render.headline_markdown(data)
    with duckdb.connect(path) as con:
        con.execute("update kpis.revenue_periods set t12_cohort_accounts = ? where t12_cohort_accounts is not null",
                    [render.MIN_T12_COHORT_ACCOUNTS])
    with duckdb.connect(path, read_only=True) as con:
        data = assets.load_report_data(con)
    assert "| NRR T12 | 110.0% | – |" in render.headline_markdown(data)
    assert f"fewer than {render.MIN_T12_COHORT_ACCOUNTS} accounts" in render.render_report(data)


def test_movers_and_expansion(data):
    assert list(data.movers["Account"]) == ["Globex", "Acme Corp", "Initech"]
    assert list(data.expansion["Account"]) == ["Acme Corp"]
    assert list(data.expansion["Lead since"]) == ["2026-10-25"]
    assert "expansion_opportunity" in data.expansion_source


def test_a_missing_table_fails_naming_it_and_its_asset(tmp_path):
    path = build_warehouse(tmp_path / "wh.duckdb")
    with duckdb.connect(path) as con:
        con.execute("drop table kpis.mrr_periods")
        with pytest.raises(RuntimeError, match=r"kpis\.mrr_periods \(asset kpis/mrr_periods\)"):
            assets.load_report_data(con)


def test_asset_deps_are_the_tables_it_reads():
    deps = {k.to_user_string() for k in assets.kpi_report.asset_deps[assets.REPORT_KEY]}
    assert deps == {t.replace(".", "/") for t in assets.REPORT_TABLES}
    assert "reports/account_worklist" in deps


# ----------------------------------------------------------------------------------------------- page


def test_page_is_self_contained(page):
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=[\"']?https?:", page, re.IGNORECASE)
    assert "Plotly" in page and page.count('class="chart"') == len(CHARTS) + 2 * 1  # + SMB bridge, trend
    for title in TITLES:
        assert title in page
    assert "cs_kpis/defs/kpis/README.md" in page and "Data as of <b>2026-10-31</b>" in page
    # the browser test's status line is in the DOM but not shown to a reader
    assert '<p id="page-status" hidden>' in page


def test_pages_rendered_together_share_the_worklist_and_equal_pages_rendered_alone(warehouse):
    con = duckdb.connect(warehouse, read_only=True)
    try:
        shared = assets.load_shared(con)
        pages = [assets.load_report_data(con, c, "", shared) for c in ("month", "week")]
    finally:
        con.close()
    other = dataclasses.replace(pages[1], worklist=pages[1].worklist.iloc[:1])  # another frame: its own table
    rendered: dict = {}
    together = [render.render_report(p, None, rendered) for p in (*pages, other)]
    assert together == [render.render_report(p) for p in (*pages, other)]
    assert len(rendered) == 2 and together[2].count('data-table="worklist"') == 1 < together[0].count(
        'data-table="worklist"')


# ----------------------------------------------------------------------------------------------- asset


def test_asset_writes_report_with_metadata(tmp_path, warehouse, monkeypatch):
    # default run config: all three cadences, each for its latest complete period, at the fixed file names
    monkeypatch.setenv("CS_KPIS_STATE_DIR", str(tmp_path / "state"))
    result = dg.materialize([assets.kpi_report], resources={"duckdb": DuckDBResource(database=warehouse)},
                            instance=dg.DagsterInstance.ephemeral())
    assert result.success
    reports = tmp_path / "state" / "reports"
    assert sorted(p.name for p in reports.iterdir()) == [
        "kpi_report.html", "kpi_report_quarterly.html", "kpi_report_weekly.html"]
    path = reports / "kpi_report.html"
    assert path.exists() and "Customer-success KPI report: 2026-10" in path.read_text()
    meta = result.asset_materializations_for_node("reports__kpi_report")[0].metadata
    assert meta["path"].value == str(path)
    assert "| NRR | 104.2% | 109.1% |" in meta["headline"].value
    assert meta["path_weekly"].value == str(reports / "kpi_report_weekly.html")
    assert meta["period_weekly"].value == "2026-W43" and meta["period_quarterly"].value == "2026-Q3"
    assert "| NRR | 95.8% | 99.1% |" in meta["headline_weekly"].value
    assert "| GRR | 85.0% | 100.0% |" in meta["headline_quarterly"].value
    assert meta["cadences"].value == "month, week, quarter" and meta["as_of_day"].value == "2026-10-31"
    # the pages link to each other by relative file name
    assert 'href="kpi_report_weekly.html"' in path.read_text()


def test_asset_spec():
    spec = assets.kpi_report.specs_by_key[assets.REPORT_KEY]
    assert spec.group_name == "reports" and set(spec.kinds) == {"html", "python"} and spec.owners
    assert assets.kpi_report.op.pool == "warehouse"


# ----------------------------------------------------------------------------------------------- browser


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def run_chromium(binary, tmp_path, url, *extra) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    args = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
            "--virtual-time-budget=10000", "--window-size=1400,4000", *extra, url]
    return subprocess.run(args, check=False, capture_output=True, text=True, timeout=60)


def test_report_draws_in_headless_chromium(tmp_path, page):
    binary = chromium()
    if binary is None:
        pytest.skip("chromium not found (make test installs the Debian package where apt is available)")
    report = tmp_path / "kpi_report.html"
    report.write_text(page, encoding="utf-8")
    url = report.as_uri()

    dom = run_chromium(binary, tmp_path, url, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    errors = re.search(r'id="js-error-count">([^<]*)<', html).group(1)
    assert errors == "0", re.search(r'data-errors="([^"]*)"', html)
    drawn = re.search(r'id="charts-drawn">([^<]*)<', html).group(1)
    assert drawn == "8/8", drawn
    # every chart container holds a rendered plotly SVG
    for name in CHARTS | {"bridge-smb", "retention-smb"}:
        block = html.split(f'data-chart="{name}"', 1)
        assert len(block) == 2, f"chart {name} missing"
        assert '<svg class="main-svg"' in block[1].split('class="chart-card"', 1)[0], f"chart {name} did not draw"
    # the bridge drew its seven steps
    bridge = html.split('data-chart="bridge"', 1)[1].split('class="chart-card"', 1)[0]
    for step in ("Starting", "Expansion", "Churned", "Ending"):
        assert f">{step}<" in bridge
    for title in TITLES:
        assert title in html

    shot = tmp_path / "shot.png"
    res = run_chromium(binary, tmp_path, url, f"--screenshot={shot}")
    assert res.returncode == 0 and shot.exists() and shot.stat().st_size > 20_000, res.stderr[-2000:]


def test_the_worklist_unique_check_passes_with_several_alerts_and_fails_on_a_repeated_account(tmp_path):
    from dagster_duckdb import DuckDBResource

    from cs_kpis.defs.reports.checks import worklist_unique

    path = build_warehouse(tmp_path / "wh.duckdb")
    with duckdb.connect(path) as con:
        # a second open risk for Globex: the worklist still has one row for it (risks are listed, not joined)
        con.execute("""insert into alerts.alert_candidates values ('a2:health_drop', 'a2', 'health_drop', 'high',
            'open', 'score fell 21 points in 30 days', 'Ada Lovelace', 'Globex', 4800.0, date '2026-10-29')""")
        build_worklist(con)
    result = worklist_unique(duckdb=DuckDBResource(database=path))
    assert result.passed, result.metadata
    with duckdb.connect(path) as con:
        con.execute("insert into reports.account_worklist select * from reports.account_worklist where account_id = 'a2'")
    result = worklist_unique(duckdb=DuckDBResource(database=path))
    assert not result.passed and result.metadata["violations"].value == 1


def test_worklist_rows_are_rendered_once_and_picked_per_csm():
    """worklist_html renders every account's row once and picks each CSM's rows (in the frame's order); the
    reference renders a table of each CSM's own frame, as it did before. A frame whose index is not 0..n-1
    (filtered, reordered) must give the same page."""
    df = pd.DataFrame({
        "CSM": ["zoe", "ann", "zoe", "ann", "bob", "ann"],
        "Account": ["z1", "a1", "z2 <b>", "a2", "b1", "a3"],
        "Score": ["40", "90", None, "55", "12", "70"],
        "Band": ["red", "green", "red", "yellow", "red", "green"],
        "ARR": ["$1", "$2", "$3", "$4", "$5", "$6"],
        "_arr": [1.0, 2.0, None, 4.0, 5.0, 6.0],
    }, index=[10, 3, 7, 0, 99, 5])

    def reference(frame):
        out = []
        for csm, rows in frame.groupby("CSM", sort=True):
            red = int((rows["Band"] == "red").sum())
            arr = pd.to_numeric(rows["_arr"], errors="coerce").sum()
            out.append(
                f'<details class="csm" data-csm="{html.escape(str(csm))}"><summary><b>{html.escape(str(csm))}</b>: '
                f"{len(rows)} accounts, {red} red, ARR {render.fmt_money(arr)}</summary>"
                + render._table(rows.drop(columns=["CSM", "_arr"]), "worklist") + "</details>")
        return "".join(out)

    for frame in (df, df.iloc[::-1], df[df["Account"] != "a2"], df.reset_index(drop=True)):
        assert render.worklist_html(frame) == reference(frame)
    got = render.worklist_html(df)
    assert got.index('data-csm="ann"') < got.index('data-csm="bob"') < got.index('data-csm="zoe"')
    assert got.index("a1") < got.index("a2") < got.index("a3") and "z2 &lt;b&gt;" in got


def _chart_layouts(page_html: str) -> list[dict]:
    import json
    decoder, out = json.JSONDecoder(), []
    for m in re.finditer(r'Plotly\.newPlot\(\s*"[^"]+",\s*', page_html):
        _, end = decoder.raw_decode(page_html, m.end())   # the traces
        start = page_html.index(",", end) + 1
        while page_html[start].isspace():
            start += 1
        out.append(decoder.raw_decode(page_html, start)[0])
    return out


def test_every_chart_carries_the_plotly_white_template(page):
    import plotly.io as pio
    layouts = _chart_layouts(page)
    assert len(layouts) >= 5
    white = pio.templates["plotly_white"].to_plotly_json()
    assert all(layout["template"] == white and layout["height"] == 340 for layout in layouts)


def test_rendering_copies_no_named_plotly_template_per_chart(data, monkeypatch):
    # plotly deep-copies a named template whenever a figure is given one (10-20 ms a chart): the report's charts
    # take the template's JSON made once instead (render._template_json)
    from _plotly_utils.basevalidators import BaseTemplateValidator
    named = []
    original = BaseTemplateValidator.validate_coerce

    def recording(self, v, skip_invalid=False):
        if isinstance(v, str) and v != "none":
            named.append(v)
        return original(self, v, skip_invalid=skip_invalid)

    monkeypatch.setattr(BaseTemplateValidator, "validate_coerce", recording)
    import plotly.graph_objects as go
    go.Figure().update_layout(template="plotly_white")  # the recorder sees a named template given to plotly
    assert named == ["plotly_white"]
    named.clear()
    render._template_json()  # made once per process (cached): its own copy does not count
    page_html = render.render_report(data)
    assert len(_chart_layouts(page_html)) >= 5 and named == []
