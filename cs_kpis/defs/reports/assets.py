"""reports/kpi_report: the customer-success KPI report, weekly (team), monthly (leadership) and quarterly
(executive), each as one HTML file; and reports.account_worklist (sql/account_worklist.sql), the table the
report's worklist, top risks and expansion leads come from.

``load_report_data(con, cadence, period)`` reads fixed warehouse tables (``REPORT_TABLES``: a missing one
stops the run naming it and the asset that builds it), ``render.render_report`` turns the data into HTML, and
the asset writes one file per cadence: ``<state>/reports/kpi_report.html`` (monthly),
``kpi_report_weekly.html`` and ``kpi_report_quarterly.html``; a report for a chosen period gets the period
in its name (``kpi_report_quarterly_2026-Q3.html``). Run config (``KpiReportConfig``) picks the cadences and
the period. The report holds no business rule: which accounts are at risk or expansion leads is decided by
the alert rules (alerts.alert_candidates), read through reports.account_worklist.
"""

import datetime as dt
import re
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource
from pydantic import Field

from cs_kpis import settings
from cs_kpis.defs.alerts.engine import SEVERITY_LEVELS, SEVERITY_RANK
from cs_kpis.defs.reports import render
from cs_kpis.lib import systems
from cs_kpis.lib.sql import WAREHOUSE_POOL, asset_key_for_table, load_models, sql_assets

REPORT_KEY = dg.AssetKey(["reports", "kpi_report"])
OWNERS = ["team:cs-analytics"]
SQL_DIR = Path(__file__).parent / "sql"
SCHEMA = "reports"
TOP_N = 10
MIN_T12_COHORT_ACCOUNTS = render.MIN_T12_COHORT_ACCOUNTS

CADENCES = tuple(render.CADENCES)  # week, month, quarter
DEFAULT_CADENCES = ("month", "week", "quarter")

WORKLIST = "reports.account_worklist"
REPORT_TABLES = (
    "kpis.revenue_periods", "kpis.mrr_periods", "kpis.cohort_retention", "kpis.health_scores_daily",
    "kpis.health_backtest", "marts.accounts", "staging.stg_nps__survey_responses", WORKLIST,
)
"""every table the report reads; each is built by the asset ``asset_key_for_table`` names (its deps)"""
UPSTREAM = [asset_key_for_table(*t.split(".")) for t in REPORT_TABLES]

worklist_assets = sql_assets(load_models(SQL_DIR, SCHEMA), group="reports", owners=OWNERS)


def report_path(cadence: str = "month", label: str | None = None):
    """``<state>/reports/kpi_report<_weekly|_quarterly>[_<label>].html``; no label: the latest report."""
    name = "kpi_report" + render.CADENCES[cadence].file_suffix + (f"_{label}" if label else "")
    return settings.state_dir() / "reports" / f"{name}.html"


def metadata_suffix(cadence: str) -> str:
    """Metadata keys per cadence: path, headline, ... (monthly), path_weekly, ..., path_quarterly, ..."""
    return render.CADENCES[cadence].file_suffix


# ----------------------------------------------------------------------------------------------- periods

LATEST_COMPLETE, CURRENT = "", "current"
_LABELS = {
    "week": re.compile(r"^(\d{4})-W(\d{1,2})$"),
    "month": re.compile(r"^(\d{4})-(\d{1,2})$"),
    "quarter": re.compile(r"^(\d{4})-Q([1-4])$"),
}
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_period(cadence: str, text: str) -> dt.date | None:
    """The first day of the period ``text`` names, for ``cadence``; None for the defaults ('' or 'current').

    ``text`` is a day (``2026-10-14``: the period that contains it, any cadence) or a label of the cadence:
    ``2026-W42`` (ISO week), ``2026-10``, ``2026-Q3``.
    """
    text = (text or "").strip()
    if text.lower() in (LATEST_COMPLETE, CURRENT, "latest"):
        return None
    if _DAY.match(text):
        return render.period_start_of(cadence, dt.date.fromisoformat(text))
    for kind, pattern in _LABELS.items():
        m = pattern.match(text)
        if not m:
            continue
        if kind != cadence:
            raise ValueError(f"period {text!r} names a {kind}, not a {cadence}: give a {cadence} label or a day "
                             "(YYYY-MM-DD), which works with every cadence")
        year, n = int(m.group(1)), int(m.group(2))
        if cadence == "week":
            return dt.date.fromisocalendar(year, n, 1)
        return dt.date(year, n if cadence == "month" else 3 * n - 2, 1)
    raise ValueError(f"period {text!r} not understood: use '' (latest complete), 'current', a day YYYY-MM-DD, "
                     "or a label like 2026-W42, 2026-10, 2026-Q3")


def choose_period(periods: pd.DataFrame, cadence: str, period: str = LATEST_COMPLETE) -> dict | None:
    """The report's period among ``periods`` (period_start, period_end, read_day, is_complete; one row each).

    Default: the latest complete period (the current one only when none is complete yet); 'current': the
    period that holds the data's as-of day, complete or not; otherwise the period ``parse_period`` names.
    """
    if periods.empty:
        return None
    ordered = periods.sort_values("period_start").to_dict("records")
    wanted = parse_period(cadence, period)
    if wanted is None:
        if (period or "").strip().lower() in (CURRENT, "latest"):
            return ordered[-1]
        complete = [p for p in ordered if p["is_complete"]]
        return complete[-1] if complete else ordered[-1]
    for p in ordered:
        if p["period_start"] == wanted.isoformat():
            return p
    raise ValueError(f"no {cadence} {render.period_label(cadence, wanted)} in the data: {cadence}s run from "
                     f"{render.period_label(cadence, ordered[0]['period_start'])} to "
                     f"{render.period_label(cadence, ordered[-1]['period_start'])}")


def _window_start(cadence: str, start: str) -> str:
    """The first period the trend charts show: ``trend_periods`` periods ending with ``start``."""
    n = render.CADENCES[cadence].trend_periods - 1
    step = {"week": pd.DateOffset(weeks=n), "month": pd.DateOffset(months=n), "quarter": pd.DateOffset(months=3 * n)}
    return str((pd.Timestamp(start) - step[cadence]).date())


def require_tables(con) -> None:
    """Stop with one clear error when a table the report reads is missing (its asset has not been built)."""
    found = {f"{s}.{t}" for s, t in con.execute(
        "select table_schema, table_name from information_schema.tables").fetchall()}
    missing = [t for t in REPORT_TABLES if t not in found]
    if missing:
        raise RuntimeError(
            "the KPI report reads tables that do not exist in the warehouse: "
            + ", ".join(f"{t} (asset {asset_key_for_table(*t.split('.')).to_user_string()})" for t in missing)
            + ". Materialize them first, e.g. python -m cs_kpis.run --select '+key:reports/kpi_report'")


def _revenue(con, cadence: str) -> pd.DataFrame:
    """Every row of the cadence (all periods and segments), with ISO-string dates and a period label; the
    trailing-year ratios are left empty where the cohort is smaller than MIN_T12_COHORT_ACCOUNTS."""
    df = _df(con, "select * from kpis.revenue_periods where cadence = ? order by segment, period_start", [cadence])
    if df.empty:
        return df
    for col in ("period_start", "period_end", "read_day"):
        df[col] = df[col].astype(str).str[:10]
    df["label"] = [render.period_label(cadence, v) for v in df["period_start"]]
    return render.blank_small_t12_cohorts(df)


def _df(con, sql: str, params=None) -> pd.DataFrame:
    return con.execute(sql, params or []).df()


def _date(v) -> str:
    return "–" if render.is_missing(v) else str(v)[:10]


def _worklist_rows(con, where: str, order: str) -> pd.DataFrame:
    return _df(con, f"select * from {WORKLIST} where {where} order by {order}")


def _most_severe(severities: str) -> str:
    """The most severe of the comma-separated severities, in the alert engine's order (SEVERITY_LEVELS)."""
    found = {s.strip() for s in str(severities).split(",")}
    return next((s for s in SEVERITY_LEVELS if s in found), "–")


def _risks(con) -> tuple[pd.DataFrame, str]:
    """Accounts with open risk alerts: most severe first (the alert engine's severity order), then ARR."""
    w = _worklist_rows(con, "risk_alerts is not null", "arr desc, account_name")
    if w.empty:
        return pd.DataFrame(), "No open risk alerts (alerts.alert_candidates)."
    w["severity"] = w["risk_severities"].map(_most_severe)
    w["_rank"] = w["severity"].map(SEVERITY_RANK).fillna(len(SEVERITY_RANK))
    w = w.sort_values(["_rank", "arr", "account_name"], ascending=[True, False, True], kind="stable").head(TOP_N)
    out = pd.DataFrame({
        "Account": w["account_name"], "Severity": w["severity"], "Alerts": w["risk_reasons"],
        "Owner (CSM)": w["csm_name"], "ARR": w["arr"].map(render.fmt_money),
        "Score": w["score"].map(lambda v: render.fmt_num(v, 0)), "Band": w["band"],
        "Renewal": w["renewal_date"].map(_date),
    })
    return out, ("Source: reports.account_worklist (the open alerts of alerts.alert_candidates, status new or "
                 "open, every type but expansion_opportunity), most severe first, then largest ARR.")


def _expansion(con) -> tuple[pd.DataFrame, str]:
    w = _worklist_rows(con, "expansion_reason is not null", "arr desc, account_name").head(TOP_N)
    out = pd.DataFrame({
        "Account": w["account_name"], "Segment": w["segment"], "Owner (CSM)": w["csm_name"],
        "ARR": w["arr"].map(render.fmt_money), "Score": w["score"].map(lambda v: render.fmt_num(v, 0)),
        "Reason": w["expansion_reason"], "Lead since": w["expansion_since"].map(_date),
    })
    return out, ("Source: reports.account_worklist (open expansion_opportunity alerts), largest ARR first; "
                 "'Lead since' is the first day the lead fired.")


def _worklist(con) -> pd.DataFrame:
    """Active accounts with a CSM, per CSM, lowest score first."""
    w = _worklist_rows(con, "is_active and csm_name is not null", "csm_name, score, account_name")
    return pd.DataFrame({
        "CSM": w["csm_name"], "Account": w["account_name"], "Segment": w["segment"],
        "Score": w["score"].map(lambda v: render.fmt_num(v, 0)), "Band": w["band"],
        "Trend (30d)": w["trend_30d"].map(lambda v: render.fmt_num(v, 1)),
        "Weak components": w["weak_components"].fillna("–"), "Open alerts": w["risk_alerts"].fillna("–"),
        "Renewal": w["renewal_date"].map(_date), "ARR": w["arr"].map(render.fmt_money), "_arr": w["arr"],
    })


def _movers(con, cadence: str, start: str | None) -> pd.DataFrame:
    """The accounts whose MRR moved most between the two ends of the period (kpis.mrr_periods)."""
    if start is None:
        return pd.DataFrame()
    m = _df(con, f"""
        select coalesce(a.account_name, m.account_id) as account_name,
               m.movement, m.prev_mrr, m.mrr, m.movement_amount
        from kpis.mrr_periods as m
        left join marts.accounts as a on a.account_id = m.account_id
        where m.cadence = ? and m.period_start = ? and m.movement_amount <> 0
        order by abs(m.movement_amount) desc, account_name limit {TOP_N}
    """, [cadence, start])
    return pd.DataFrame({
        "Account": m["account_name"], "Movement": m["movement"], "MRR before": m["prev_mrr"].map(render.fmt_money),
        "MRR now": m["mrr"].map(render.fmt_money), "Change": m["movement_amount"].map(render.fmt_money),
    })


def _nps(con, start: str | None, end: str | None, prev_start: str | None) -> render.Nps | None:
    """NPS and response count of the responses received in [start, end] and in [prev_start, start); None
    without any."""
    if start is None:
        return None
    rows = _df(con, """
        select case when cast(responded_at as date) >= ?::date then 'now' else 'prev' end as p, count(*) as n,
               100.0 * (count(*) filter (where score >= 9) - count(*) filter (where score <= 6)) / count(*) as nps
        from staging.stg_nps__survey_responses
        where responded_at is not null and cast(responded_at as date) between ?::date and ?::date
        group by 1
    """, [start, prev_start or start, end])
    by = {r["p"]: (float(r["nps"]), int(r["n"])) for r in rows.to_dict("records")}
    if not by:
        return None
    now, prev = by.get("now", (None, 0)), by.get("prev", (None, 0))
    return render.Nps(now=now[0], prev=prev[0], responses=now[1], prev_responses=prev[1])


BAND_DAYS = "_report_band_days"
"""the name :data:`BAND_DAYS_SQL`'s rows are registered under while :func:`_bands` reads them"""
BAND_DAYS_SQL = """
    select day, band, count(*) filter (where is_active) as accounts
    from kpis.health_scores_daily
    group by day, band
"""
"""active accounts per scored day and band (0 where every account of the band is inactive that day): the one
read of kpis.health_scores_daily that the as-of day and every cadence's band figures come from (a few rows a
day, where each cadence read every account-day three times)"""


def _band_days(con):
    """:data:`BAND_DAYS_SQL` as an Arrow table (read back with DuckDB's own types)."""
    return con.sql(BAND_DAYS_SQL).to_arrow_table()


@contextmanager
def _band_days_registered(con, band_days):
    """``band_days`` (:func:`_band_days`) readable as :data:`BAND_DAYS` on ``con`` inside the block."""
    con.register(BAND_DAYS, band_days)
    try:
        yield
    finally:
        con.unregister(BAND_DAYS)


def _bands(con, cadence: str, read_day: str | None, prev_end: str | None,
           window_start: str | None, band_days) -> tuple[pd.DataFrame, dict]:
    """Active accounts per band at each period end of the trend window, and at the report's period end vs
    the previous period's end (each read on the last scored day on or before it), from ``band_days``
    (:func:`_band_days`)."""
    if read_day is None:
        return pd.DataFrame(), {}
    with _band_days_registered(con, band_days):
        return _bands_of(con, cadence, read_day, prev_end, window_start)


def _bands_of(con, cadence: str, read_day: str, prev_end: str | None,
              window_start: str | None) -> tuple[pd.DataFrame, dict]:
    over_time = _df(con, f"""
        with ends as (
            select cast(date_trunc('{cadence}', day) as date) as period_start, max(day) as day
            from {BAND_DAYS} where day <= ?::date group by 1
        )
        select e.period_start, d.band, cast(sum(d.accounts) as bigint) as accounts
        from {BAND_DAYS} as d join ends as e on e.day = d.day
        where d.accounts > 0 and e.period_start >= ?::date group by 1, 2 order by 1, 2
    """, [read_day, window_start or read_day])
    if not over_time.empty:
        over_time["period_start"] = over_time["period_start"].astype(str).str[:10]
        over_time["label"] = [render.period_label(cadence, v) for v in over_time["period_start"]]
    counts = {}
    days = con.execute(f"select (select max(day) from {BAND_DAYS} where day <= ?::date), "
                       f"(select max(day) from {BAND_DAYS} where day <= ?::date)",
                       [read_day, prev_end or "0001-01-01"]).fetchall()[0]
    now_day, prev_day = days
    if now_day is None:
        return over_time, {}
    n = _df(con, f"select day, band, accounts as n from {BAND_DAYS} where accounts > 0 and day in (?, ?)",
            [now_day, prev_day or now_day])
    n["day"] = n["day"].astype(str).str[:10]
    for band in render.BANDS:
        now = n[(n["band"] == band) & (n["day"] == str(now_day)[:10])]["n"]
        before = n[(n["band"] == band) & (n["day"] == str(prev_day)[:10])]["n"]
        counts[band] = (int(now.sum()), None if prev_day is None or prev_day == now_day else int(before.sum()))
    return over_time, counts


def load_shared(con) -> dict:
    """What every cadence's page shows alike: cohorts, backtest, risks, expansion, the worklist, the as-of day,
    and the active accounts per scored day and band (``band_days``) each cadence's band figures come from."""
    require_tables(con)
    con.execute("set TimeZone = 'UTC'")
    cohorts = _df(con, "select * from kpis.cohort_retention")
    band_days = _band_days(con)
    with _band_days_registered(con, band_days):  # every scored day has rows there: the scores' last day
        as_of = con.execute(f"select max(day) from {BAND_DAYS}").fetchall()[0][0]
    parts = " union all ".join(
        f"select '{b}' as band, sum(accounts_{b}) as accounts, sum(churned_{b}) as churned "
        f"from kpis.health_backtest where scope = 'month' and is_current" for b in render.BANDS
    )
    backtest = _df(con, f"select band, accounts, churned, churned / nullif(accounts, 0) as churn_rate "
                        f"from ({parts})")
    risks, risk_source = _risks(con)
    expansion, expansion_source = _expansion(con)
    return {
        "as_of": str(as_of)[:10] if as_of is not None else None, "cohorts": cohorts, "backtest_bands": backtest,
        "band_days": band_days,
        "risks": risks, "risk_source": risk_source, "expansion": expansion, "expansion_source": expansion_source,
        "worklist": _worklist(con),
        "generated_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def load_report_data(con, cadence: str = "month", period: str = LATEST_COMPLETE,
                     shared: dict | None = None) -> render.ReportData:
    """Read every table the page of ``cadence`` shows for ``period`` (see ``choose_period``); a missing table
    fails (``require_tables``). ``shared``: ``load_shared(con)``, read once for several cadences."""
    if cadence not in render.CADENCES:
        raise ValueError(f"cadence {cadence!r} is not one of {', '.join(CADENCES)}")
    shared = shared if shared is not None else load_shared(con)
    con.execute("set TimeZone = 'UTC'")
    revenue = _revenue(con, cadence)
    chosen = None
    if not revenue.empty:
        periods = revenue[["period_start", "period_end", "read_day", "is_complete"]].drop_duplicates("period_start")
        chosen = choose_period(periods, cadence, period)
    elif parse_period(cadence, period) is not None:
        raise ValueError(f"no {cadence} data to report on for period {period!r} (kpis.revenue_periods has no "
                         f"{cadence} rows)")
    start = chosen["period_start"] if chosen else None
    window = _window_start(cadence, start) if start else None
    prev_start = None
    if start:
        revenue = revenue[(revenue["period_start"] <= start) & (revenue["period_start"] >= window)]
        earlier = sorted(p for p in revenue["period_start"].unique() if p < start)
        prev_start = earlier[-1] if earlier else str(render.period_start_of(
            cadence, dt.date.fromisoformat(start) - dt.timedelta(days=1)))
    segments = (["all"] + sorted(s for s in revenue["segment"].unique() if s != "all")
                if not revenue.empty else ["all"])
    prev_end = str(dt.date.fromisoformat(start) - dt.timedelta(days=1)) if start else None
    bands_over_time, band_counts = _bands(con, cadence, chosen["read_day"] if chosen else None, prev_end, window,
                                          shared["band_days"])
    as_of = shared["as_of"] or (str(revenue["read_day"].max()) if not revenue.empty else "unknown")
    return render.ReportData(
        as_of_day=as_of,
        period=render.period_label(cadence, start) if start else "no data",
        cadence=cadence,
        period_start=start or "",
        period_end=chosen["period_end"] if chosen else "",
        read_day=chosen["read_day"] if chosen else "",
        is_complete=bool(chosen["is_complete"]) if chosen else True,
        segments=segments, revenue=revenue, cohorts=shared["cohorts"],
        bands_over_time=bands_over_time, backtest_bands=shared["backtest_bands"], band_counts=band_counts,
        nps=_nps(con, start, chosen["read_day"] if chosen else None, prev_start),
        not_connected=systems.not_connected(systems.off_systems()),
        risks=shared["risks"], risk_source=shared["risk_source"], expansion=shared["expansion"],
        expansion_source=shared["expansion_source"], movers=_movers(con, cadence, start),
        worklist=shared["worklist"], generated_at=shared["generated_at"],
    )


class KpiReportConfig(dg.Config):
    """Run config of reports/kpi_report (the defaults are what the nightly job and `make run` build)."""

    cadences: list[str] = Field(
        default=list(DEFAULT_CADENCES),
        description="Which reports to write: any of week (team), month (leadership), quarter (executive). "
        "Default: all three (about a second each).",
    )
    period: str = Field(
        default=LATEST_COMPLETE,
        description="The period to report on, for every cadence chosen: '' = the latest complete period of each "
        "cadence; 'current' = the period holding the data's as-of day (to date, provisional); a day YYYY-MM-DD = "
        "the period containing it; or a label of the one cadence chosen (2026-W42, 2026-10, 2026-Q3). A chosen "
        "period is written to its own file (kpi_report_quarterly_2026-Q3.html); the defaults keep the fixed "
        "file names.",
    )


def _write(path, page: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)


@dg.asset(
    key=REPORT_KEY,
    deps=UPSTREAM,
    group_name="reports",
    kinds={"html", "python"},
    owners=OWNERS,
    pool=WAREHOUSE_POOL,
    description=(
        "The customer-success KPI report at three cadences: weekly (team), monthly (leadership) and quarterly "
        "(executive), each one self-contained HTML file (charts drawn with plotly, plotly.js inlined, viewable "
        "offline) under `<state>/reports/`: `kpi_report.html` (monthly), `kpi_report_weekly.html`, "
        "`kpi_report_quarterly.html`. Each shows headline KPIs for its period (kpis.revenue_periods) with the "
        "change vs the previous period of the same cadence, the period's MRR bridge, NRR/GRR trends at the "
        "cadence and trailing 12 months, cohort retention, health bands, backtest churn by band, expansion, "
        "top risks and expansion leads (the open alerts of alerts.alert_candidates, through "
        "reports.account_worklist), the period's MRR movers, a per-CSM worklist (reports.account_worklist) and "
        "KPI definitions. Run config picks the "
        "cadences and the period (default: all three, latest complete period). "
        "See cs_kpis/defs/reports/README.md."
    ),
)
def kpi_report(context: dg.AssetExecutionContext, config: KpiReportConfig,
               duckdb: DuckDBResource) -> dg.MaterializeResult:
    unknown = [c for c in config.cadences if c not in render.CADENCES]
    if unknown or not config.cadences:
        raise ValueError(f"cadences must be a non-empty list of {', '.join(CADENCES)}; got {config.cadences}")
    cadences = list(dict.fromkeys(config.cadences))  # in the order given, once each
    chosen = bool(config.period.strip())
    with duckdb.get_connection() as con:
        shared = load_shared(con)
        pages = [load_report_data(con, c, config.period, shared) for c in cadences]
    links = {c: report_path(c).name for c in CADENCES}
    metadata = {
        "cadences": ", ".join(cadences),
        "as_of_day": shared["as_of"] or "unknown",
        "risk_source": shared["risk_source"],
    }
    rendered: dict = {}  # the worklist, the same table on every cadence's page, rendered once
    for data in pages:
        page = render.render_report(data, links, rendered)
        path = report_path(data.cadence, data.period if chosen and data.period_start else None)
        _write(path, page)
        context.log.info(f"wrote {path} ({data.cadence} {data.period}, {len(page) / 1e6:.1f} MB)")
        sfx = metadata_suffix(data.cadence)
        metadata |= {
            f"path{sfx}": dg.MetadataValue.path(str(path)),
            f"period{sfx}": data.period,
            f"headline{sfx}": dg.MetadataValue.md(render.headline_markdown(data)),
            f"size_bytes{sfx}": dg.MetadataValue.int(len(page.encode())),
        }
    return dg.MaterializeResult(metadata=metadata)
