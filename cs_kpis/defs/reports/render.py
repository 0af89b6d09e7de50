"""Pure rendering: the report's data (plain DataFrames and dicts) -> one self-contained HTML string.

One page per cadence (week, month, quarter): the same sections, with the period's figures, their change vs
the previous period of the same cadence, and trends at that cadence (``ReportData.cadence``).

No warehouse, no Dagster, no network: plotly.js is inlined once in the page head, styles are inlined from
``template.html``. Every chart sits in ``<div class="chart" data-chart="<name>">``; the page records script
errors in ``window.__errors`` and, once loaded, writes their count into ``#js-error-count`` and the number
of charts that drew an SVG into ``#charts-drawn`` (the browser test reads both).
"""

import datetime as dt
import functools
import html
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs

from cs_kpis.defs.health.health_score import BANDS

TEMPLATE_PATH = Path(__file__).parent / "template.html"
KPI_README = "cs_kpis/defs/kpis/README.md"
HEALTH_README = "cs_kpis/defs/health/README.md"
BAND_COLORS = {"green": "#2e9e5b", "yellow": "#e0b100", "red": "#d64541"}
MIN_T12_COHORT_ACCOUNTS = 20
"""NRR/GRR T12 are shown only when the trailing-year cohort holds at least this many accounts: early in the
data the cohort a year back is a handful of accounts, and one of them moving swings the ratio by tens of
points (the weekly line of the demo company fell from 113% to 65% within two weeks on its first cohorts)"""
T12_RATIOS = ("nrr_t12", "grr_t12")
BRIDGE_ZOOM_BELOW = 0.2
"""the MRR bridge's y axis starts near its lowest level when all levels lie within this share of the highest"""



@dataclass(frozen=True)
class Cadence:
    name: str  # week, month, quarter: the value of kpis.revenue_periods.cadence
    adjective: str  # weekly, monthly, quarterly
    audience: str  # who reviews it
    file_suffix: str  # kpi_report<suffix>.html
    trend_periods: int  # how many periods the trend charts show, ending with the report's period
    t12_span: str  # the trailing-year comparison in words


CADENCES = {c.name: c for c in (
    Cadence("week", "weekly", "team", "_weekly", 52, "the same ISO week a year (52 weeks) earlier"),
    Cadence("month", "monthly", "leadership", "", 36, "the same month a year earlier"),
    Cadence("quarter", "quarterly", "executive", "_quarterly", 16, "the same quarter a year earlier"),
)}


def period_start_of(cadence: str, day: dt.date) -> dt.date:
    """The first day of the period of ``cadence`` that contains ``day`` (weeks start on Monday)."""
    if cadence == "week":
        return day - dt.timedelta(days=day.weekday())
    if cadence == "month":
        return day.replace(day=1)
    return day.replace(month=3 * ((day.month - 1) // 3) + 1, day=1)


def period_label(cadence: str, start) -> str:
    """2026-W43 (ISO week), 2026-10, 2026-Q4."""
    day = pd.Timestamp(start).date()
    if cadence == "week":
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    if cadence == "quarter":
        return f"{day.year}-Q{(day.month - 1) // 3 + 1}"
    return f"{day.year}-{day.month:02d}"


def definitions(cadence: str = "month") -> dict[str, str]:
    """Each KPI in one sentence, worded for the cadence (the full ones: defs/kpis/README.md)."""
    c = CADENCES[cadence]
    p = c.name
    return {
        "Ending MRR / ARR": f"sum of the accounts' MRR at the end of the {p} (for the current {p}: on the as-of "
        "day); ARR = 12 x ending MRR.",
        "NRR": f"(start + expansion - contraction - churned) / start over the {p}: the accounts active at the end "
        f"of the previous {p}, their MRR at the end of this {p} / their MRR then. T12: the accounts active at the "
        f"end of {c.t12_span}, their MRR now / their MRR then; left empty while that cohort holds fewer than "
        f"{MIN_T12_COHORT_ACCOUNTS} accounts.",
        "GRR": f"(start - contraction - churned) / start over the {p}; never above 100%. T12 as NRR with each "
        "account capped at its MRR a year earlier.",
        "Logo churn": f"accounts active at the start of the {p} and not at its end / accounts active at the start.",
        "Quick ratio": f"(new + expansion + reactivation) / (contraction + churned) over the {p}; empty when "
        "nothing was lost.",
        "MRR bridge": f"starting MRR + new + expansion + reactivation - contraction - churned = ending MRR; each "
        f"account's movement compares its MRR at the two ends of the {p} (an account that left and came back "
        f"within the {p} counts once, by its net change).",
        "NPS": f"% promoters (9-10) - % detractors (0-6) of the survey responses received in the {p}, with "
        "their number.",
        "Health band": f"green / yellow / red from the health score (0-100), active accounts on the last scored "
        f"day of the {p} vs of the previous {p}; see " + HEALTH_README + ".",
        "Churn rate by band (backtest)": "share of accounts scored in the band that churned (MRR to half or less) "
        "within 90 days, pooled over the backtest months (kpis.health_backtest).",
        "Cohort retention": "a cohort's MRR at the end of each month since its first month / its MRR in the "
        "first month (net MRR retention).",
    }


@dataclass(frozen=True)
class Nps:
    """NPS of the responses received in the period and in the previous one, with their counts."""

    now: float | None
    prev: float | None
    responses: int = 0
    prev_responses: int = 0


def blank_small_t12_cohorts(revenue: pd.DataFrame) -> pd.DataFrame:
    """kpis.revenue_periods rows with nrr_t12 / grr_t12 emptied where t12_cohort_accounts is below
    MIN_T12_COHORT_ACCOUNTS (see there)."""
    small = pd.to_numeric(revenue["t12_cohort_accounts"], errors="coerce").fillna(0) < MIN_T12_COHORT_ACCOUNTS
    out = revenue.copy()
    for col in T12_RATIOS:
        out[col] = out[col].astype(float).where(~small)
    return out


@dataclass
class ReportData:
    """Everything the report shows; empty DataFrames render as 'no data' notes, never as errors."""

    as_of_day: str
    period: str  # the report's period as a label: '2026-W43', '2026-10', '2026-Q3' ('no data' without one)
    cadence: str = "month"  # week, month or quarter
    period_start: str = ""  # 'YYYY-MM-DD'
    period_end: str = ""
    read_day: str = ""  # the day end-of-period figures are read (< period_end: the period is not over)
    is_complete: bool = True
    segments: list[str] = field(default_factory=lambda: ["all"])
    # kpis.revenue_periods rows of the cadence (period_start, label, segment, KPI columns), the report's
    # period last: the trend window, so the latest row of a segment is the report's period
    revenue: pd.DataFrame = field(default_factory=pd.DataFrame)
    revenue_source: str = "kpis.revenue_periods"
    cohorts: pd.DataFrame = field(default_factory=pd.DataFrame)  # kpis.cohort_retention rows
    bands_over_time: pd.DataFrame = field(default_factory=pd.DataFrame)  # period_start, label, band, accounts
    backtest_bands: pd.DataFrame = field(default_factory=pd.DataFrame)  # band, accounts, churned, churn_rate
    band_counts: dict = field(default_factory=dict)  # {'green': (now, prev), ...} at the two period ends
    nps: Nps | None = None
    not_connected: list[str] = field(default_factory=list)  # e.g. "NPS not connected" (systems.nps.mode: off)
    risks: pd.DataFrame = field(default_factory=pd.DataFrame)
    risk_source: str = ""
    expansion: pd.DataFrame = field(default_factory=pd.DataFrame)
    expansion_source: str = ""
    movers: pd.DataFrame = field(default_factory=pd.DataFrame)
    worklist: pd.DataFrame = field(default_factory=pd.DataFrame)  # csm_name + account columns
    generated_at: str = ""

    @property
    def spec(self) -> Cadence:
        return CADENCES[self.cadence]

    @property
    def period_words(self) -> str:
        """'the week 2026-W43 (2026-10-19 to 2026-10-25)', with 'to date' for a period that is not over."""
        if not self.period_start:
            return f"the {self.cadence} {self.period}"
        span = f"{self.period_start} to {self.period_end}" if self.period_end else self.period_start
        if not self.is_complete and self.read_day:
            span += f", to date: read on {self.read_day}, provisional"
        return f"the {self.cadence} {self.period} ({span})"


# ----------------------------------------------------------------------------------------------- formatting


def is_missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA or v is pd.NaT


def fmt_money(v) -> str:
    if is_missing(v):
        return "–"
    v = float(v)
    a = abs(v)
    sign = "-" if v < 0 else ""
    if a >= 1e6:
        return f"{sign}${a / 1e6:,.2f}M"
    if a >= 1e3:
        return f"{sign}${a / 1e3:,.1f}k"
    return f"{sign}${a:,.0f}"


def fmt_pct(v, digits: int = 1) -> str:
    return "–" if is_missing(v) else f"{float(v) * 100:.{digits}f}%"


def fmt_num(v, digits: int = 2) -> str:
    """'1,234.57'; a value that rounds to zero shows as 0, never as -0.0."""
    return "–" if is_missing(v) else f"{round(float(v), digits) + 0.0:,.{digits}f}"


def _delta(now, prev, kind: str, good_up: bool = True, vs: str = "prev") -> str:
    """'+1.2 pp vs prev month' with a colour class; a note when either side is missing."""
    if is_missing(now) or is_missing(prev):
        return '<span class="delta">no previous period</span>'
    d = float(now) - float(prev)
    if kind == "pct":
        text = f"{d * 100:+.1f} pp"
    elif kind == "money":
        text = ("+" if d >= 0 else "") + fmt_money(d)
    else:
        text = f"{d:+,.2f}" if kind == "ratio" else f"{d:+,.0f}"
    cls = "flat" if d == 0 else ("up" if (d > 0) == good_up else "down")
    return f'<span class="delta {cls}">{text} vs {html.escape(vs)}</span>'


def _tile(label: str, value: str, delta: str, key: str) -> str:
    return (
        f'<div class="tile" data-kpi="{key}"><div class="label">{html.escape(label)}</div>'
        f'<div class="value">{value}</div>{delta}</div>'
    )


# ----------------------------------------------------------------------------------------------- sections


def _latest_two(revenue: pd.DataFrame, segment: str,
                period_start: str = "") -> tuple[dict | None, dict | None]:
    """The segment's row for the report's period (its latest row) and the row of the period before."""
    if revenue.empty:
        return None, None
    rows = revenue[revenue["segment"] == segment].sort_values("period_start")
    if rows.empty:
        return None, None
    recs = rows.to_dict("records")
    if period_start and str(recs[-1]["period_start"])[:10] != period_start:
        return None, None  # the segment has no row for the report's period
    return recs[-1], (recs[-2] if len(recs) > 1 else None)


def _current(data: ReportData, segment: str) -> tuple[dict | None, dict | None]:
    return _latest_two(data.revenue, segment, data.period_start)


def headline_tiles(data: ReportData, segment: str = "all") -> str:
    cur, prev = _current(data, segment)
    prev = prev or {}
    name, vs = data.cadence, f"prev {data.cadence}"
    tiles = []
    if cur is not None:
        g = prev.get
        tiles += [
            _tile("Ending MRR", fmt_money(cur["ending_mrr"]),
                  _delta(cur["ending_mrr"], g("ending_mrr"), "money", vs=vs), "ending_mrr"),
            _tile("ARR", fmt_money(12 * float(cur["ending_mrr"])),
                  _delta(12 * float(cur["ending_mrr"]), None if is_missing(g("ending_mrr")) else
                         12 * float(g("ending_mrr")), "money", vs=vs), "arr"),
            _tile(f"NRR ({name})", fmt_pct(cur["nrr"]), _delta(cur["nrr"], g("nrr"), "pct", vs=vs), "nrr"),
            _tile(f"GRR ({name})", fmt_pct(cur["grr"]), _delta(cur["grr"], g("grr"), "pct", vs=vs), "grr"),
            _tile("NRR (T12)", fmt_pct(cur.get("nrr_t12")),
                  _delta(cur.get("nrr_t12"), g("nrr_t12"), "pct", vs=vs), "nrr_t12"),
            _tile("Logo churn", fmt_pct(cur["logo_churn_rate"]),
                  _delta(cur["logo_churn_rate"], g("logo_churn_rate"), "pct", good_up=False, vs=vs), "logo_churn"),
            _tile("Quick ratio", fmt_num(cur["quick_ratio"]),
                  _delta(cur["quick_ratio"], g("quick_ratio"), "ratio", vs=vs), "quick_ratio"),
        ]
    else:
        tiles.append(f'<p class="note">No revenue KPIs for this {name} (kpis.revenue_periods is empty or '
                     "missing).</p>")
    if segment == "all":
        if data.nps is not None:
            n = data.nps
            tiles.append(_tile("NPS", fmt_num(n.now, 0) + f' <small>({n.responses} responses)</small>',
                               _delta(n.now, n.prev, "count", vs=f"{vs} ({n.prev_responses} responses)"), "nps"))
        for line in data.not_connected:
            tiles.append(f'<p class="note">{html.escape(line)} (turned off in the company configuration: its '
                         "indicators are left out of the health score and its alerts are skipped).</p>")
        for band in BANDS:
            now, before = data.band_counts.get(band, (None, None))
            if now is not None:
                tiles.append(_tile(f"Accounts {band}", f'<span class="dot {band}"></span>{int(now)}',
                                   _delta(now, before, "count", good_up=band != "red", vs=vs), f"band_{band}"))
    return '<div class="tiles">' + "".join(tiles) + "</div>"


def segment_table(data: ReportData) -> str:
    if data.revenue.empty:
        return ""
    rows = []
    vs = f"prev {data.cadence}"
    for seg in data.segments:
        cur, prev = _current(data, seg)
        if cur is None:
            continue
        prev = prev or {}
        rows.append({  # the table is built unescaped (the cells hold delta markup): escape the data here
            "Segment": html.escape(seg),
            "Ending MRR": fmt_money(cur["ending_mrr"]),
            "ARR": fmt_money(12 * float(cur["ending_mrr"])),
            "NRR": f'{fmt_pct(cur["nrr"])} {_delta(cur["nrr"], prev.get("nrr"), "pct", vs=vs)}',
            "GRR": f'{fmt_pct(cur["grr"])} {_delta(cur["grr"], prev.get("grr"), "pct", vs=vs)}',
            "NRR T12": fmt_pct(cur.get("nrr_t12")),
            "Logo churn": fmt_pct(cur["logo_churn_rate"]),
            "Quick ratio": fmt_num(cur["quick_ratio"]),
            "ARPA": fmt_money(cur.get("arpa")),
        })
    return _table(pd.DataFrame(rows), "segments", escape=False)


def _table(df: pd.DataFrame, name: str, escape: bool = True) -> str:
    if df is None or df.empty:
        return f'<p class="note" data-table="{name}">Nothing to show.</p>'
    return _table_of(_head(df), _rows(df, escape), name)


def _head(df: pd.DataFrame) -> str:
    return "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)


def _rows(df: pd.DataFrame, escape: bool = True) -> list[str]:
    """Each row of ``df`` as a ``<tr>``, in order."""
    body = []
    for rec in df.itertuples(index=False):
        cells = []
        for v in rec:
            s = "–" if is_missing(v) else str(v)
            cells.append(f"<td>{html.escape(s) if escape else s}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return body


def _table_of(head: str, body: Iterable[str], name: str) -> str:
    return (f'<table data-table="{name}"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table>')


# ----------------------------------------------------------------------------------------------- charts

TEMPLATE = "plotly_white"
_LAYOUT = {"height": 340, "margin": {"l": 50, "r": 20, "t": 40, "b": 40},
           # legend above the plot: below it, it would cover the tilted period labels of a weekly axis
           "legend": {"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom"}, "font": {"size": 12}}


@functools.cache
def _template_json() -> dict:
    """TEMPLATE as plotly.js reads it, made once: plotly deep-copies a named template each time a figure is given
    one (10-20 ms a chart, 36 charts a run; BENCHMARKS.md "The event log's commits without a sync each", session 26)."""
    return pio.templates[TEMPLATE].to_plotly_json()


def _chart(name: str, title: str, fig: go.Figure | None, note: str = "") -> str:
    head = f'<div class="chart-card"><h3>{html.escape(title)}</h3>'
    if fig is None:
        return head + f'<p class="note" data-empty-chart="{name}">No data for this chart.</p></div>'
    # "none" (an empty template, cheap to copy) keeps plotly from applying its default one; the figure's JSON
    # then gets TEMPLATE's, as update_layout(template=TEMPLATE) would have written it
    fig.update_layout(template="none", **_LAYOUT)
    spec = fig.to_dict()
    spec["layout"]["template"] = _template_json()
    div = pio.to_html(spec, validate=False, full_html=False, include_plotlyjs=False, div_id=f"chart-{name}",
                      config={"displaylogo": False, "responsive": True})
    extra = f'<p class="note">{html.escape(note)}</p>' if note else ""
    return head + f'<div class="chart" data-chart="{name}">{div}</div>{extra}</div>'


def fig_bridge(data: ReportData, segment: str = "all") -> go.Figure | None:
    cur, _ = _current(data, segment)
    if cur is None:
        return None
    steps = [("Starting", cur["starting_mrr"], "absolute"), ("New", cur["new_mrr"], "relative"),
             ("Expansion", cur["expansion_mrr"], "relative"),
             ("Reactivation", cur["reactivation_mrr"], "relative"),
             ("Contraction", -float(cur["contraction_mrr"]), "relative"),
             ("Churned", -float(cur["churned_mrr"]), "relative"), ("Ending", cur["ending_mrr"], "total")]
    values = [float(v) for _, v, _ in steps]
    fig = go.Figure(go.Waterfall(
        x=[s[0] for s in steps], y=values, measure=[s[2] for s in steps],
        text=[fmt_money(v) for v in values], textposition="outside",
        increasing={"marker": {"color": BAND_COLORS["green"]}},
        decreasing={"marker": {"color": BAND_COLORS["red"]}},
        totals={"marker": {"color": "#4a6fa5"}},
    ))
    # the levels the bars reach; when the movements are small next to the base (a typical week), start the
    # y axis near the lowest level so they stay visible (the chart's note says so)
    levels = [values[0]]
    for v in values[1:-1]:
        levels.append(levels[-1] + v)
    lo, hi = min(levels + [values[-1]]), max(levels + [values[-1]])
    if lo > 0 and hi - lo < BRIDGE_ZOOM_BELOW * hi:
        pad = max(hi - lo, 0.002 * hi)
        fig.update_yaxes(range=[max(0.0, lo - 1.5 * pad), hi + 0.6 * pad])
    return fig


def bridge_axis_note(fig: go.Figure | None) -> str:
    """A note for a bridge whose y axis does not start at 0."""
    if fig is None or fig.layout.yaxis.range is None:
        return ""
    return f"The y axis starts at {fmt_money(fig.layout.yaxis.range[0])}, not 0, so that the movements show."


def _trend_rows(data: ReportData, segment: str) -> pd.DataFrame:
    if data.revenue.empty:
        return data.revenue
    return data.revenue[data.revenue["segment"] == segment].sort_values("period_start")


def fig_retention(data: ReportData, segment: str = "all") -> go.Figure | None:
    rows = _trend_rows(data, segment)
    if rows.empty:
        return None
    fig = go.Figure()
    name = data.cadence
    for col, label, dash in (("nrr", f"NRR ({name})", "solid"), ("grr", f"GRR ({name})", "solid"),
                             ("nrr_t12", "NRR (T12)", "dash"), ("grr_t12", "GRR (T12)", "dash")):
        if col in rows:
            fig.add_trace(go.Scatter(x=rows["label"], y=rows[col].astype(float), name=label, mode="lines+markers",
                                     line={"dash": dash}))
    fig.update_yaxes(tickformat=".0%")
    fig.update_xaxes(type="category")
    return fig


def fig_cohorts(data: ReportData) -> go.Figure | None:
    c = data.cohorts
    if c.empty:
        return None
    c = c.assign(cohort=c["cohort_month"].astype(str).str[:7])
    grid = c.pivot_table(index="cohort", columns="months_since_start", values="net_mrr_retention",
                         aggfunc="first").sort_index()
    z = grid.to_numpy(dtype=float)
    return go.Figure(go.Heatmap(
        z=z, x=[int(x) for x in grid.columns], y=list(grid.index), colorscale="RdYlGn", zmin=0, zmax=1.2,
        colorbar={"tickformat": ".0%"}, hovertemplate="cohort %{y}, month %{x}: %{z:.1%}<extra></extra>",
    )).update_xaxes(title="months since start").update_yaxes(autorange="reversed")


def fig_bands(data: ReportData) -> go.Figure | None:
    b = data.bands_over_time
    if b.empty:
        return None
    fig = go.Figure()
    for band in BANDS:
        rows = b[b["band"] == band].sort_values("period_start")
        fig.add_trace(go.Bar(x=rows["label"], y=rows["accounts"], name=band, marker_color=BAND_COLORS[band]))
    fig.update_layout(barmode="stack")
    fig.update_xaxes(type="category", categoryorder="array",
                     categoryarray=list(b.sort_values("period_start")["label"].drop_duplicates()))
    return fig


def fig_backtest(data: ReportData) -> go.Figure | None:
    b = data.backtest_bands
    if b.empty:
        return None
    b = b.set_index("band").reindex(list(BANDS)).dropna(subset=["churn_rate"]).reset_index()
    if b.empty:
        return None
    return go.Figure(go.Bar(
        x=b["band"], y=b["churn_rate"].astype(float), marker_color=[BAND_COLORS[x] for x in b["band"]],
        text=[f"{fmt_pct(r)} of {int(n)}" for r, n in zip(b["churn_rate"], b["accounts"])],
        textposition="outside",
    )).update_yaxes(tickformat=".0%")


def fig_expansion(data: ReportData, segment: str = "all") -> go.Figure | None:
    rows = _trend_rows(data, segment)
    if rows.empty:
        return None
    return go.Figure(go.Bar(x=rows["label"], y=rows["expansion_mrr"].astype(float),
                            marker_color=BAND_COLORS["green"], name="expansion MRR")).update_xaxes(type="category")


# ----------------------------------------------------------------------------------------------- worklist


def worklist_html(df: pd.DataFrame) -> str:
    if df is None or df.empty:
        return '<p class="note" data-table="worklist">No accounts with a CSM.</p>'
    # every account's row rendered once from the whole frame, then picked per CSM: a table of each CSM's own
    # frame (about 600 on the large company) cost a frame and its iteration each (BENCHMARKS.md "Small steps
    # of the nightly")
    df = df.reset_index(drop=True)  # row i of the frame is row_html[i]
    shown = df.drop(columns=["CSM", "_arr"])
    head = _head(shown)
    row_html = _rows(shown)
    out = []
    for csm, rows in df.groupby("CSM", sort=True):
        red = int((rows["Band"] == "red").sum())
        arr = pd.to_numeric(rows["_arr"], errors="coerce").sum()
        out.append(
            f'<details class="csm" data-csm="{html.escape(str(csm))}"><summary><b>{html.escape(str(csm))}</b>: '
            f"{len(rows)} accounts, {red} red, ARR {fmt_money(arr)}</summary>"
            + _table_of(head, (row_html[i] for i in rows.index), "worklist") + "</details>"
        )
    return "".join(out)


# ----------------------------------------------------------------------------------------------- page


def nav_html(data: ReportData, links: dict[str, str] | None) -> str:
    """Links to the reports of the other cadences (relative file names in the same folder)."""
    if not links:
        return ""
    items = []
    for name, href in links.items():
        c = CADENCES[name]
        text = f"{c.adjective.capitalize()} ({c.audience})"
        items.append(f"<b>{text}</b>" if name == data.cadence
                     else f'<a href="{html.escape(href)}" data-cadence="{name}">{text}</a>')
    return '<nav class="cadences">Reports: ' + " &middot; ".join(items) + "</nav>"


def _once(rendered: dict | None, name: str, source, make) -> str:
    """``make()``, or the HTML it gave for the same ``source`` object before, kept in ``rendered`` (None: always
    made anew). The object is kept too, so its id cannot be reused while ``rendered`` lives."""
    if rendered is None:
        return make()
    key = (name, id(source))
    if key not in rendered:
        rendered[key] = (source, make())
    return rendered[key][1]


def render_report(data: ReportData, links: dict[str, str] | None = None, rendered: dict | None = None) -> str:
    """The whole page as one HTML string (plotly.js and styles inlined; no external requests).

    ``links``: cadence -> file name of that cadence's report, shown as navigation in the header.
    ``rendered``: a dict shared by the pages of one run (the asset's cadences, whose ReportData hold the same
    worklist frame, ``assets.load_shared``): the worklist, a table of every account, is rendered once for all.
    """
    spec = data.spec
    segment_options = "".join(
        f'<option value="{html.escape(s)}">{html.escape(s)}</option>' for s in data.segments if s != "all"
    )
    seg_sections = []
    for seg in data.segments:
        if seg == "all":
            continue
        slug = "".join(ch if ch.isalnum() else "-" for ch in seg.lower())
        seg_sections.append(
            f'<section class="segment" data-segment="{html.escape(seg)}"><h3>Segment: {html.escape(seg)}</h3>'
            + headline_tiles(data, seg)
            + '<div class="grid">'
            + _chart(f"bridge-{slug}", f"MRR bridge, {data.period}: {seg}", seg_bridge := fig_bridge(data, seg),
                     bridge_axis_note(seg_bridge))
            + _chart(f"retention-{slug}", f"NRR and GRR by {data.cadence}: {seg}", fig_retention(data, seg))
            + "</div></section>"
        )
    name = data.cadence
    bridge = fig_bridge(data)
    bridge_note = (f"From the end of the previous {name} to the end of {data.period_words}. "
                   + bridge_axis_note(bridge)) if data.period_start else ""
    charts = "".join([
        _chart("bridge", f"MRR bridge, {data.period}", bridge, bridge_note.strip()),
        _chart("retention", f"NRR and GRR trend ({spec.adjective} and trailing 12 months)", fig_retention(data),
               f"the last {spec.trend_periods} {name}s at most; T12 compares with {spec.t12_span}"),
        _chart("cohorts", "Cohort net MRR retention", fig_cohorts(data),
               "rows: cohort (first active month); columns: months since start"),
        _chart("bands", f"Health band distribution (active accounts at {name} end)", fig_bands(data)),
        _chart("backtest", "Churn rate by health band (backtest, 90-day horizon)", fig_backtest(data)),
        _chart("expansion", f"Expansion MRR by {name}", fig_expansion(data)),
    ])
    defs = "".join(
        f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in definitions(name).items()
    )
    meta = f"Period: {data.period}"
    if data.period_start:
        meta += f", {data.period_start} to {data.period_end}"
    meta += f" ({spec.adjective}, {spec.audience} review)"
    provisional = ""
    if data.period_start and not data.is_complete:
        provisional = (f'<p class="provisional" data-provisional="true">This {name} is not over: its figures are '
                       f"read on {html.escape(data.read_day)} and will change; the previous {name} is "
                       "complete, so flows (new, churned, NRR) are not yet comparable.</p>")
    page = Template(TEMPLATE_PATH.read_text()).substitute(
        title=f"Customer-success KPI report: {data.period}",
        period=html.escape(data.period),
        period_meta=html.escape(meta),
        period_words=html.escape(data.period_words),
        nav=nav_html(data, links),
        provisional=provisional,
        revenue_source=html.escape(data.revenue_source),
        as_of_day=html.escape(data.as_of_day),
        generated_at=html.escape(data.generated_at),
        plotlyjs=get_plotlyjs(),
        headline=headline_tiles(data),
        segment_table=segment_table(data),
        charts=charts,
        segment_options=segment_options,
        segment_sections="".join(seg_sections),
        risks=_table(data.risks, "risks"),
        risk_source=html.escape(data.risk_source),
        expansion=_table(data.expansion, "expansion"),
        expansion_source=html.escape(data.expansion_source),
        movers=_table(data.movers, "movers"),
        worklist=_once(rendered, "worklist", data.worklist, lambda: worklist_html(data.worklist)),
        definitions=defs,
        kpi_readme=KPI_README,
    )
    return page


def headline_markdown(data: ReportData) -> str:
    """The headline figures as a markdown table for the Dagster UI."""
    cur, prev = _current(data, "all")
    rows = []
    if cur is not None:
        prev = prev or {}
        for label, col, f in (("Ending MRR", "ending_mrr", fmt_money), ("NRR", "nrr", fmt_pct),
                              ("GRR", "grr", fmt_pct), ("NRR T12", "nrr_t12", fmt_pct),
                              ("Logo churn", "logo_churn_rate", fmt_pct), ("Quick ratio", "quick_ratio", fmt_num)):
            rows.append((label, f(cur.get(col)), f(prev.get(col))))
        rows.insert(1, ("ARR", fmt_money(12 * float(cur["ending_mrr"])),
                        fmt_money(None if is_missing(prev.get("ending_mrr")) else 12 * float(prev["ending_mrr"]))))
    if data.nps is not None:
        n = data.nps
        rows.append(("NPS", "–" if n.now is None else f"{fmt_num(n.now, 0)} ({n.responses} responses)",
                     "–" if n.prev is None else f"{fmt_num(n.prev, 0)} ({n.prev_responses} responses)"))
    for line in data.not_connected:
        system, _, _ = line.rpartition(" not connected")
        rows.append((system, "not connected", "not connected"))
    for band in BANDS:
        now, before = data.band_counts.get(band, (None, None))
        if now is not None:
            rows.append((f"Accounts {band}", str(int(now)), "–" if before is None else str(int(before))))
    lines = [f"**{data.spec.adjective.capitalize()} report**: {data.period_words}; data as of {data.as_of_day}", "",
             f"| KPI | this {data.cadence} | previous {data.cadence} |", "|---|---:|---:|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines)
