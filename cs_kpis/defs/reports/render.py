"""Pure rendering: the report's data (plain DataFrames and dicts) -> one self-contained HTML string.

No warehouse, no Dagster, no network: plotly.js is inlined once in the page head, styles are inlined from
``template.html``. Every chart sits in ``<div class="chart" data-chart="<name>">``; the page records script
errors in ``window.__errors`` and, once loaded, writes their count into ``#js-error-count`` and the number
of charts that drew an SVG into ``#charts-drawn`` (the browser test reads both).
"""

import html
import math
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs

TEMPLATE_PATH = Path(__file__).parent / "template.html"
KPI_README = "cs_kpis/defs/kpis/README.md"
HEALTH_README = "cs_kpis/defs/health/README.md"
BAND_COLORS = {"green": "#2e9e5b", "yellow": "#e0b100", "red": "#d64541"}
BANDS = ("green", "yellow", "red")

DEFINITIONS = {
    "Ending MRR / ARR": "sum of the accounts' month-end MRR; ARR = 12 x ending MRR.",
    "NRR": "(start + expansion - contraction - churned) / start, monthly; T12: the accounts active 12 "
    "month ends ago, their MRR now / their MRR then.",
    "GRR": "(start - contraction - churned) / start; never above 100%. T12 as NRR with each account "
    "capped at its MRR 12 months ago.",
    "Logo churn": "accounts active at the start of the month and not at its end / accounts active at the start.",
    "Quick ratio": "(new + expansion + reactivation) / (contraction + churned); empty when nothing was lost.",
    "NPS": "% promoters (9-10) - % detractors (0-6) of the survey responses received in the month.",
    "Health band": "green / yellow / red from the health score (0-100), see " + HEALTH_README + ".",
    "Churn rate by band (backtest)": "share of accounts scored in the band that churned (MRR to half or less) "
    "within 90 days, pooled over the backtest months (kpis.health_backtest).",
    "Cohort retention": "a cohort's MRR at the end of each month since its first month / its MRR in the "
    "first month (net MRR retention).",
}


@dataclass
class ReportData:
    """Everything the report shows; empty DataFrames render as 'no data' notes, never as errors."""

    as_of_day: str
    period: str  # the latest month, 'YYYY-MM'
    segments: list[str] = field(default_factory=lambda: ["all"])
    revenue: pd.DataFrame = field(default_factory=pd.DataFrame)  # kpis.revenue_monthly rows
    cohorts: pd.DataFrame = field(default_factory=pd.DataFrame)  # kpis.cohort_retention rows
    bands_monthly: pd.DataFrame = field(default_factory=pd.DataFrame)  # month, band, accounts
    backtest_bands: pd.DataFrame = field(default_factory=pd.DataFrame)  # band, accounts, churned, churn_rate
    band_counts: dict = field(default_factory=dict)  # {'green': (now, prev), ...}
    nps: tuple | None = None  # (now, prev) NPS, either may be None
    risks: pd.DataFrame = field(default_factory=pd.DataFrame)
    risk_source: str = ""
    expansion: pd.DataFrame = field(default_factory=pd.DataFrame)
    expansion_source: str = ""
    movers: pd.DataFrame = field(default_factory=pd.DataFrame)
    worklist: pd.DataFrame = field(default_factory=pd.DataFrame)  # csm_name + account columns
    generated_at: str = ""


# ----------------------------------------------------------------------------------------------- formatting


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA or v is pd.NaT


def fmt_money(v) -> str:
    if _missing(v):
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
    return "–" if _missing(v) else f"{float(v) * 100:.{digits}f}%"


def fmt_num(v, digits: int = 2) -> str:
    return "–" if _missing(v) else f"{float(v):,.{digits}f}"


def _delta(now, prev, kind: str, good_up: bool = True) -> str:
    """'+1.2 pp vs prev' with a colour class; empty when either side is missing."""
    if _missing(now) or _missing(prev):
        return '<span class="delta">no previous period</span>'
    d = float(now) - float(prev)
    if kind == "pct":
        text = f"{d * 100:+.1f} pp"
    elif kind == "money":
        text = ("+" if d >= 0 else "") + fmt_money(d)
    else:
        text = f"{d:+,.2f}" if kind == "ratio" else f"{d:+,.0f}"
    cls = "flat" if d == 0 else ("up" if (d > 0) == good_up else "down")
    return f'<span class="delta {cls}">{text} vs prev</span>'


def _tile(label: str, value: str, delta: str, key: str) -> str:
    return (
        f'<div class="tile" data-kpi="{key}"><div class="label">{html.escape(label)}</div>'
        f'<div class="value">{value}</div>{delta}</div>'
    )


# ----------------------------------------------------------------------------------------------- sections


def _latest_two(revenue: pd.DataFrame, segment: str) -> tuple[dict | None, dict | None]:
    if revenue.empty:
        return None, None
    rows = revenue[revenue["segment"] == segment].sort_values("month")
    if rows.empty:
        return None, None
    recs = rows.to_dict("records")
    return recs[-1], (recs[-2] if len(recs) > 1 else None)


def headline_tiles(data: ReportData, segment: str = "all") -> str:
    cur, prev = _latest_two(data.revenue, segment)
    prev = prev or {}
    tiles = []
    if cur is not None:
        g = prev.get
        tiles += [
            _tile("Ending MRR", fmt_money(cur["ending_mrr"]),
                  _delta(cur["ending_mrr"], g("ending_mrr"), "money"), "ending_mrr"),
            _tile("ARR", fmt_money(12 * float(cur["ending_mrr"])),
                  _delta(12 * float(cur["ending_mrr"]), None if _missing(g("ending_mrr")) else
                         12 * float(g("ending_mrr")), "money"), "arr"),
            _tile("NRR (month)", fmt_pct(cur["nrr"]), _delta(cur["nrr"], g("nrr"), "pct"), "nrr"),
            _tile("GRR (month)", fmt_pct(cur["grr"]), _delta(cur["grr"], g("grr"), "pct"), "grr"),
            _tile("NRR (T12)", fmt_pct(cur.get("nrr_t12")), _delta(cur.get("nrr_t12"), g("nrr_t12"), "pct"),
                  "nrr_t12"),
            _tile("Logo churn", fmt_pct(cur["logo_churn_rate"]),
                  _delta(cur["logo_churn_rate"], g("logo_churn_rate"), "pct", good_up=False), "logo_churn"),
            _tile("Quick ratio", fmt_num(cur["quick_ratio"]),
                  _delta(cur["quick_ratio"], g("quick_ratio"), "ratio"), "quick_ratio"),
        ]
    else:
        tiles.append('<p class="note">No revenue KPIs (kpis.revenue_monthly is empty or missing).</p>')
    if segment == "all":
        if data.nps is not None:
            tiles.append(_tile("NPS", fmt_num(data.nps[0], 0), _delta(data.nps[0], data.nps[1], "count"), "nps"))
        for band in BANDS:
            now, before = data.band_counts.get(band, (None, None))
            if now is not None:
                tiles.append(_tile(f"Accounts {band}", f'<span class="dot {band}"></span>{int(now)}',
                                   _delta(now, before, "count", good_up=band != "red"), f"band_{band}"))
    return '<div class="tiles">' + "".join(tiles) + "</div>"


def segment_table(data: ReportData) -> str:
    if data.revenue.empty:
        return ""
    rows = []
    for seg in data.segments:
        cur, prev = _latest_two(data.revenue, seg)
        if cur is None:
            continue
        prev = prev or {}
        rows.append({
            "Segment": seg,
            "Ending MRR": fmt_money(cur["ending_mrr"]),
            "ARR": fmt_money(12 * float(cur["ending_mrr"])),
            "NRR": f'{fmt_pct(cur["nrr"])} {_delta(cur["nrr"], prev.get("nrr"), "pct")}',
            "GRR": f'{fmt_pct(cur["grr"])} {_delta(cur["grr"], prev.get("grr"), "pct")}',
            "NRR T12": fmt_pct(cur.get("nrr_t12")),
            "Logo churn": fmt_pct(cur["logo_churn_rate"]),
            "Quick ratio": fmt_num(cur["quick_ratio"]),
            "ARPA": fmt_money(cur.get("arpa")),
        })
    return _table(pd.DataFrame(rows), "segments", escape=False)


def _table(df: pd.DataFrame, name: str, escape: bool = True) -> str:
    if df is None or df.empty:
        return f'<p class="note" data-table="{name}">Nothing to show.</p>'
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = []
    for rec in df.itertuples(index=False):
        cells = []
        for v in rec:
            s = "–" if _missing(v) else str(v)
            cells.append(f"<td>{html.escape(s) if escape else s}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<table data-table="{name}"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table>')


# ----------------------------------------------------------------------------------------------- charts

_LAYOUT = {"template": "plotly_white", "height": 340, "margin": {"l": 50, "r": 20, "t": 40, "b": 40},
           "legend": {"orientation": "h", "y": -0.2}, "font": {"size": 12}}


def _chart(name: str, title: str, fig: go.Figure | None, note: str = "") -> str:
    head = f'<div class="chart-card"><h3>{html.escape(title)}</h3>'
    if fig is None:
        return head + f'<p class="note" data-empty-chart="{name}">No data for this chart.</p></div>'
    fig.update_layout(**_LAYOUT)
    div = pio.to_html(fig, full_html=False, include_plotlyjs=False, div_id=f"chart-{name}",
                      config={"displaylogo": False, "responsive": True})
    extra = f'<p class="note">{html.escape(note)}</p>' if note else ""
    return head + f'<div class="chart" data-chart="{name}">{div}</div>{extra}</div>'


def fig_bridge(data: ReportData, segment: str = "all") -> go.Figure | None:
    cur, _ = _latest_two(data.revenue, segment)
    if cur is None:
        return None
    steps = [("Starting", cur["starting_mrr"], "absolute"), ("New", cur["new_mrr"], "relative"),
             ("Expansion", cur["expansion_mrr"], "relative"),
             ("Reactivation", cur["reactivation_mrr"], "relative"),
             ("Contraction", -float(cur["contraction_mrr"]), "relative"),
             ("Churned", -float(cur["churned_mrr"]), "relative"), ("Ending", cur["ending_mrr"], "total")]
    values = [float(v) for _, v, _ in steps]
    return go.Figure(go.Waterfall(
        x=[s[0] for s in steps], y=values, measure=[s[2] for s in steps],
        text=[fmt_money(v) for v in values], textposition="outside",
        increasing={"marker": {"color": BAND_COLORS["green"]}},
        decreasing={"marker": {"color": BAND_COLORS["red"]}},
        totals={"marker": {"color": "#4a6fa5"}},
    ))


def fig_retention(data: ReportData, segment: str = "all") -> go.Figure | None:
    if data.revenue.empty:
        return None
    rows = data.revenue[data.revenue["segment"] == segment].sort_values("month")
    if rows.empty:
        return None
    fig = go.Figure()
    months = rows["month"].astype(str).str[:7]
    for col, label, dash in (("nrr", "NRR (month)", "solid"), ("grr", "GRR (month)", "solid"),
                             ("nrr_t12", "NRR (T12)", "dash"), ("grr_t12", "GRR (T12)", "dash")):
        if col in rows:
            fig.add_trace(go.Scatter(x=months, y=rows[col].astype(float), name=label, mode="lines+markers",
                                     line={"dash": dash}))
    fig.update_yaxes(tickformat=".0%")
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
    b = data.bands_monthly
    if b.empty:
        return None
    fig = go.Figure()
    for band in BANDS:
        rows = b[b["band"] == band].sort_values("month")
        fig.add_trace(go.Bar(x=rows["month"].astype(str).str[:7], y=rows["accounts"], name=band,
                             marker_color=BAND_COLORS[band]))
    fig.update_layout(barmode="stack")
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
    if data.revenue.empty:
        return None
    rows = data.revenue[data.revenue["segment"] == segment].sort_values("month")
    if rows.empty:
        return None
    return go.Figure(go.Bar(x=rows["month"].astype(str).str[:7], y=rows["expansion_mrr"].astype(float),
                            marker_color=BAND_COLORS["green"], name="expansion MRR"))


# ----------------------------------------------------------------------------------------------- worklist


def worklist_html(df: pd.DataFrame) -> str:
    if df is None or df.empty:
        return '<p class="note" data-table="worklist">No accounts with a CSM.</p>'
    out = []
    for csm, rows in df.groupby("CSM", sort=True):
        red = int((rows["Band"] == "red").sum())
        arr = pd.to_numeric(rows["_arr"], errors="coerce").sum()
        out.append(
            f'<details class="csm" data-csm="{html.escape(str(csm))}"><summary><b>{html.escape(str(csm))}</b>: '
            f"{len(rows)} accounts, {red} red, ARR {fmt_money(arr)}</summary>"
            + _table(rows.drop(columns=["CSM", "_arr"]), "worklist") + "</details>"
        )
    return "".join(out)


# ----------------------------------------------------------------------------------------------- page


def render_report(data: ReportData) -> str:
    """The whole page as one HTML string (plotly.js and styles inlined; no external requests)."""
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
            + _chart(f"bridge-{slug}", f"MRR bridge, {data.period}: {seg}", fig_bridge(data, seg))
            + _chart(f"retention-{slug}", f"NRR and GRR: {seg}", fig_retention(data, seg))
            + "</div></section>"
        )
    charts = "".join([
        _chart("bridge", f"MRR bridge, {data.period}", fig_bridge(data)),
        _chart("retention", "NRR and GRR trend (monthly and trailing 12)", fig_retention(data)),
        _chart("cohorts", "Cohort net MRR retention", fig_cohorts(data),
               "rows: cohort (first active month); columns: months since start"),
        _chart("bands", "Health band distribution (active accounts at month end)", fig_bands(data)),
        _chart("backtest", "Churn rate by health band (backtest, 90-day horizon)", fig_backtest(data)),
        _chart("expansion", "Expansion MRR by month", fig_expansion(data)),
    ])
    definitions = "".join(
        f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in DEFINITIONS.items()
    )
    page = Template(TEMPLATE_PATH.read_text()).substitute(
        title=f"Customer-success KPI report: {data.period}",
        period=html.escape(data.period),
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
        worklist=worklist_html(data.worklist),
        definitions=definitions,
        kpi_readme=KPI_README,
    )
    return page


def headline_markdown(data: ReportData) -> str:
    """The headline figures as a markdown table for the Dagster UI."""
    cur, prev = _latest_two(data.revenue, "all")
    rows = []
    if cur is not None:
        prev = prev or {}
        for label, col, f in (("Ending MRR", "ending_mrr", fmt_money), ("NRR", "nrr", fmt_pct),
                              ("GRR", "grr", fmt_pct), ("NRR T12", "nrr_t12", fmt_pct),
                              ("Logo churn", "logo_churn_rate", fmt_pct), ("Quick ratio", "quick_ratio", fmt_num)):
            rows.append((label, f(cur.get(col)), f(prev.get(col))))
        rows.insert(1, ("ARR", fmt_money(12 * float(cur["ending_mrr"])),
                        fmt_money(None if _missing(prev.get("ending_mrr")) else 12 * float(prev["ending_mrr"]))))
    if data.nps is not None:
        rows.append(("NPS", fmt_num(data.nps[0], 0), fmt_num(data.nps[1], 0)))
    for band in BANDS:
        now, before = data.band_counts.get(band, (None, None))
        if now is not None:
            rows.append((f"Accounts {band}", str(int(now)), "–" if before is None else str(int(before))))
    lines = [f"**{data.period}** (data as of {data.as_of_day})", "", "| KPI | this period | previous |",
             "|---|---:|---:|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines)
