"""reports/kpi_report: the customer-success KPI report, weekly (team), monthly (leadership) and quarterly
(executive), each as one self-contained HTML file.

``load_report_data(con, cadence, period)`` reads the warehouse (every table optional: a missing table leaves
its section empty), ``render.render_report`` turns the data into HTML, and the asset writes one file per
cadence: ``<state>/reports/kpi_report.html`` (monthly), ``kpi_report_weekly.html`` and
``kpi_report_quarterly.html``; a report for a chosen period gets the period in its name
(``kpi_report_quarterly_2026-Q3.html``). Run config (``KpiReportConfig``) picks the cadences and the period.
The risk table uses ``alerts.alert_candidates`` when that table exists and falls back to red or declining
accounts from ``kpis.health_scores`` otherwise.
"""

import datetime as dt
import importlib.util
import re

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource
from pydantic import Field

from cs_kpis import settings
from cs_kpis.defs.reports import render
from cs_kpis.lib import systems
from cs_kpis.lib.sql import WAREHOUSE_POOL

REPORT_KEY = dg.AssetKey(["reports", "kpi_report"])
OWNERS = ["team:cs-analytics"]
TOP_N = 10
DECLINE_POINTS = 10.0
"""fallback risks: red accounts, or accounts whose score fell at least this much over 30 days"""
EXPANSION_MIN_USAGE = 75.0
COMPONENTS = ("usage", "adoption", "support", "sentiment", "billing")
REASON_BELOW = 50.0

CADENCES = tuple(render.CADENCES)  # week, month, quarter
DEFAULT_CADENCES = ("month", "week", "quarter")

UPSTREAM = [
    dg.AssetKey(["kpis", "revenue_periods"]),
    dg.AssetKey(["kpis", "mrr_periods"]),
    dg.AssetKey(["kpis", "revenue_monthly"]),
    dg.AssetKey(["kpis", "cohort_retention"]),
    dg.AssetKey(["kpis", "health_scores_daily"]),
    dg.AssetKey(["kpis", "health_scores"]),
    dg.AssetKey(["kpis", "health_backtest"]),
    dg.AssetKey(["marts", "accounts"]),
    dg.AssetKey(["marts", "mrr_monthly"]),
    dg.AssetKey(["staging", "stg_crm__users"]),
]
ALERTS = dg.AssetKey(["alerts", "alert_candidates"])
if importlib.util.find_spec("cs_kpis.defs.alerts") is not None:
    # the alerting layer is optional: when its code is there, the report runs after it
    UPSTREAM.append(ALERTS)


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


def _revenue(con, cadence: str) -> tuple[pd.DataFrame, str]:
    """Every row of the cadence (all periods and segments), with ISO-string dates and a period label."""
    if _exists(con, "kpis.revenue_periods"):
        df, source = _df(con, "select * from kpis.revenue_periods where cadence = ? order by segment, period_start",
                         [cadence]), "kpis.revenue_periods"
    elif cadence == "month" and _exists(con, "kpis.revenue_monthly"):
        # before kpis.revenue_periods exists: its month rows are this table (a check keeps them equal)
        df = _df(con, "select *, month as period_start, last_day(month) as period_end, last_day(month) as read_day, "
                      "true as is_complete from kpis.revenue_monthly order by segment, month")
        source = "kpis.revenue_monthly"
    else:
        return pd.DataFrame(), "kpis.revenue_periods"
    if df.empty:
        return df, source
    for col in ("period_start", "period_end", "read_day"):
        df[col] = df[col].astype(str).str[:10]
    df["label"] = [render.period_label(cadence, v) for v in df["period_start"]]
    return df, source


def _exists(con, table: str) -> bool:
    schema, name = table.split(".")
    return bool(con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?", [schema, name]
    ).fetchall()[0][0])


def _df(con, sql: str, params=None) -> pd.DataFrame:
    return con.execute(sql, params or []).df()


def _reasons(row) -> str:
    low = [f"{c} {row[f'{c}_score']:.0f}" for c in COMPONENTS
           if f"{c}_score" in row and not render._missing(row[f"{c}_score"]) and row[f"{c}_score"] < REASON_BELOW]
    return ", ".join(low) or "–"


def _date(v) -> str:
    return "–" if render._missing(v) else str(v)[:10]


def _health(con) -> pd.DataFrame:
    """Latest score per account with name, segment, CSM name and next renewal (when the tables exist)."""
    if not _exists(con, "kpis.health_scores"):
        return pd.DataFrame()
    has_acc, has_users = _exists(con, "marts.accounts"), _exists(con, "staging.stg_crm__users")
    has_subs = _exists(con, "staging.stg_billing__subscriptions")
    acc = ("left join marts.accounts as a on a.account_id = h.account_id" if has_acc else "")
    users = ("left join staging.stg_crm__users as u on u.user_id = a.csm_id" if has_acc and has_users else "")
    subs = ("left join (select crm_account_id, min(current_period_end) as renewal "
            "from staging.stg_billing__subscriptions where ended_at is null and canceled_at is null "
            "group by 1) as s on s.crm_account_id = h.account_id" if has_subs else "")
    cols = ", ".join(f"h.{c}_score" for c in COMPONENTS)
    return _df(con, f"""
        select h.account_id, {'a.account_name' if has_acc else 'h.account_id'} as account_name,
               {'a.segment' if has_acc else "'unknown'"} as segment,
               {'a.csm_id' if has_acc else 'null'} as csm_id,
               {'coalesce(u.user_name, a.csm_id)' if users else ('a.csm_id' if has_acc else 'null')} as csm_name,
               h.is_active, h.arr, h.score, h.band, h.delta_7d, h.delta_30d, {cols},
               {'s.renewal' if has_subs else 'null'} as renewal
        from kpis.health_scores as h {acc} {users} {subs}
    """)


SEVERITY_RANK = {"critical": 0, "high": 1, "medium": 2, "info": 3}
OPEN_STATUSES = ("new", "open")
EXPANSION_ALERT = "expansion_opportunity"
ALERT_COLUMNS = {  # alerts.alert_candidates column -> report heading (columns missing from the table are left out)
    "account_name": "Account", "alert_type": "Alert", "severity": "Severity", "reason": "Reason",
    "owner_name": "Owner (CSM)", "arr": "ARR", "status": "Status", "first_seen": "First seen",
}


def _alerts(con, health: pd.DataFrame) -> pd.DataFrame | None:
    """Open alert candidates (status new or open), most severe and largest ARR first; None without the table."""
    if not _exists(con, "alerts.alert_candidates"):
        return None
    a = _df(con, "select * from alerts.alert_candidates")
    if "status" in a:
        a = a[a["status"].isin(OPEN_STATUSES)]
    if not health.empty and "account_id" in a:
        names = health[["account_id", "account_name", "csm_name", "arr"]].rename(
            columns={"account_name": "_name", "csm_name": "_csm", "arr": "_arr"})
        a = a.merge(names, on="account_id", how="left")
        for col, fill in (("account_name", "_name"), ("owner_name", "_csm"), ("arr", "_arr")):
            a[col] = a[col].fillna(a[fill]) if col in a else a[fill]
    a = a.assign(_rank=a["severity"].map(SEVERITY_RANK).fillna(9) if "severity" in a else 9,
                 _sort_arr=pd.to_numeric(a["arr"], errors="coerce").fillna(0) if "arr" in a else 0)
    return a.sort_values(["_rank", "_sort_arr"], ascending=[True, False])


def _alert_table(a: pd.DataFrame) -> pd.DataFrame:
    cols = [c for c in ALERT_COLUMNS if c in a]
    out = a[cols].head(TOP_N).rename(columns=ALERT_COLUMNS)
    if "ARR" in out:
        out["ARR"] = out["ARR"].map(render.fmt_money)
    if "First seen" in out:
        out["First seen"] = out["First seen"].map(_date)
    return out


def _risks(alerts: pd.DataFrame | None, health: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    if alerts is not None:
        risky = alerts[alerts["alert_type"] != EXPANSION_ALERT] if "alert_type" in alerts else alerts
        return _alert_table(risky), ("Source: alerts.alert_candidates (open alerts: status new or open), most "
                                     "severe first, then largest ARR.")
    if health.empty:
        return pd.DataFrame(), "No alerts and no health scores available."
    h = health[health["is_active"].fillna(False).astype(bool)]
    h = h[(h["band"] == "red") | (h["delta_30d"].astype(float) <= -DECLINE_POINTS)]
    h = h.sort_values(["arr", "score"], ascending=[False, True]).head(TOP_N)
    out = pd.DataFrame({
        "Account": h["account_name"], "Segment": h["segment"], "Owner (CSM)": h["csm_name"],
        "ARR": h["arr"].map(render.fmt_money), "Score": h["score"].map(lambda v: f"{v:.0f}"),
        "Band": h["band"], "30-day change": h["delta_30d"].map(lambda v: render.fmt_num(v, 1)),
        "Reasons": h.apply(_reasons, axis=1),
    })
    return out, (f"alerts.alert_candidates does not exist: showing red accounts and accounts whose health "
                 f"score fell {DECLINE_POINTS:.0f}+ points in 30 days, largest ARR first.")


def _expansion(alerts: pd.DataFrame | None, health: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    if alerts is not None and "alert_type" in alerts and (alerts["alert_type"] == EXPANSION_ALERT).any():
        return (_alert_table(alerts[alerts["alert_type"] == EXPANSION_ALERT]),
                "Source: alerts.alert_candidates, alert type expansion_opportunity, largest ARR first.")
    note = (f"Green, active accounts with a usage score of {EXPANSION_MIN_USAGE:.0f}+ "
            "(kpis.health_scores), largest ARR first.")
    if health.empty:
        return pd.DataFrame(), note
    h = health[health["is_active"].fillna(False).astype(bool) & (health["band"] == "green")]
    h = h[h["usage_score"].astype(float) >= EXPANSION_MIN_USAGE]
    h = h.sort_values("arr", ascending=False).head(TOP_N)
    return pd.DataFrame({
        "Account": h["account_name"], "Segment": h["segment"], "Owner (CSM)": h["csm_name"],
        "ARR": h["arr"].map(render.fmt_money), "Score": h["score"].map(lambda v: f"{v:.0f}"),
        "Usage": h["usage_score"].map(lambda v: f"{v:.0f}"),
        "Adoption": h["adoption_score"].map(lambda v: render.fmt_num(v, 0)),
        "30-day change": h["delta_30d"].map(lambda v: render.fmt_num(v, 1)),
    }), note


def _worklist(health: pd.DataFrame, alerts: pd.DataFrame | None = None) -> pd.DataFrame:
    if health.empty:
        return pd.DataFrame()
    h = health[health["is_active"].fillna(False).astype(bool) & health["csm_name"].notna()]
    h = h.sort_values(["csm_name", "score"])
    out = pd.DataFrame({
        "CSM": h["csm_name"], "Account": h["account_name"], "Segment": h["segment"],
        "Score": h["score"].map(lambda v: f"{v:.0f}"), "Band": h["band"],
        "Trend (30d)": h["delta_30d"].map(lambda v: render.fmt_num(v, 1)),
        "Reasons": h.apply(_reasons, axis=1), "Renewal": h["renewal"].map(_date),
        "ARR": h["arr"].map(render.fmt_money), "_arr": h["arr"],
    })
    if alerts is not None and {"account_id", "alert_type"} <= set(alerts.columns):
        by_account = alerts.groupby("account_id")["alert_type"].agg(lambda t: ", ".join(sorted(set(t))))
        out.insert(7, "Open alerts", h["account_id"].map(by_account).fillna("–"))
    return out


def _movers(con, cadence: str, start: str | None) -> pd.DataFrame:
    """The accounts whose MRR moved most between the two ends of the period (kpis.mrr_periods)."""
    if start is None:
        return pd.DataFrame()
    if _exists(con, "kpis.mrr_periods"):
        source, where, params = "kpis.mrr_periods", "m.cadence = ? and m.period_start = ?", [cadence, start]
    elif cadence == "month" and _exists(con, "marts.mrr_monthly"):
        source, where, params = "marts.mrr_monthly", "m.month = ?", [start]
    else:
        return pd.DataFrame()
    has_acc = _exists(con, "marts.accounts")
    m = _df(con, f"""
        select {'coalesce(a.account_name, m.account_id)' if has_acc else 'm.account_id'} as account_name,
               m.movement, m.prev_mrr, m.mrr, m.movement_amount
        from {source} as m
        {'left join marts.accounts as a on a.account_id = m.account_id' if has_acc else ''}
        where {where} and m.movement_amount <> 0
        order by abs(m.movement_amount) desc, account_name limit {TOP_N}
    """, params)
    return pd.DataFrame({
        "Account": m["account_name"], "Movement": m["movement"], "MRR before": m["prev_mrr"].map(render.fmt_money),
        "MRR now": m["mrr"].map(render.fmt_money), "Change": m["movement_amount"].map(render.fmt_money),
    })


def _nps(con, start: str | None, end: str | None, prev_start: str | None) -> tuple | None:
    """(NPS of the responses received in [start, end], NPS of those in [prev_start, start)); None without any."""
    if start is None or not _exists(con, "staging.stg_nps__survey_responses"):
        return None
    rows = _df(con, """
        select case when cast(responded_at as date) >= ?::date then 'now' else 'prev' end as p,
               100.0 * (count(*) filter (where score >= 9) - count(*) filter (where score <= 6)) / count(*) as nps
        from staging.stg_nps__survey_responses
        where responded_at is not null and cast(responded_at as date) between ?::date and ?::date
        group by 1
    """, [start, prev_start or start, end])
    by = {r["p"]: float(r["nps"]) for r in rows.to_dict("records")}
    return None if not by else (by.get("now"), by.get("prev"))


def _bands(con, cadence: str, read_day: str | None, prev_end: str | None,
           window_start: str | None) -> tuple[pd.DataFrame, dict]:
    """Active accounts per band at each period end of the trend window, and at the report's period end vs
    the previous period's end (each read on the last scored day on or before it)."""
    if read_day is None or not _exists(con, "kpis.health_scores_daily"):
        return pd.DataFrame(), {}
    over_time = _df(con, f"""
        with ends as (
            select cast(date_trunc('{cadence}', day) as date) as period_start, max(day) as day
            from kpis.health_scores_daily where day <= ?::date group by 1
        )
        select e.period_start, d.band, count(*) as accounts
        from kpis.health_scores_daily as d join ends as e on e.day = d.day
        where d.is_active and e.period_start >= ?::date group by 1, 2 order by 1, 2
    """, [read_day, window_start or read_day])
    if not over_time.empty:
        over_time["period_start"] = over_time["period_start"].astype(str).str[:10]
        over_time["label"] = [render.period_label(cadence, v) for v in over_time["period_start"]]
    counts = {}
    days = con.execute("select (select max(day) from kpis.health_scores_daily where day <= ?::date), "
                       "(select max(day) from kpis.health_scores_daily where day <= ?::date)",
                       [read_day, prev_end or "0001-01-01"]).fetchall()[0]
    now_day, prev_day = days
    if now_day is None:
        return over_time, {}
    n = _df(con, "select day, band, count(*) as n from kpis.health_scores_daily where is_active and day in (?, ?) "
                 "group by 1, 2", [now_day, prev_day or now_day])
    n["day"] = n["day"].astype(str).str[:10]
    for band in render.BANDS:
        now = n[(n["band"] == band) & (n["day"] == str(now_day)[:10])]["n"]
        before = n[(n["band"] == band) & (n["day"] == str(prev_day)[:10])]["n"]
        counts[band] = (int(now.sum()), None if prev_day is None or prev_day == now_day else int(before.sum()))
    return over_time, counts


def load_shared(con) -> dict:
    """What every cadence's page shows alike: cohorts, backtest, risks, expansion, the worklist, the as-of day."""
    con.execute("set TimeZone = 'UTC'")
    cohorts = (_df(con, "select * from kpis.cohort_retention") if _exists(con, "kpis.cohort_retention")
               else pd.DataFrame())
    as_of = (con.execute("select max(day) from kpis.health_scores_daily").fetchall()[0][0]
             if _exists(con, "kpis.health_scores_daily") else None)
    backtest = pd.DataFrame()
    if _exists(con, "kpis.health_backtest"):
        parts = " union all ".join(
            f"select '{b}' as band, sum(accounts_{b}) as accounts, sum(churned_{b}) as churned "
            f"from kpis.health_backtest where scope = 'month' and is_current" for b in render.BANDS
        )
        backtest = _df(con, f"select band, accounts, churned, churned / nullif(accounts, 0) as churn_rate "
                            f"from ({parts})")
    health = _health(con)
    alerts = _alerts(con, health)
    risks, risk_source = _risks(alerts, health)
    expansion, expansion_source = _expansion(alerts, health)
    return {
        "as_of": str(as_of)[:10] if as_of is not None else None, "cohorts": cohorts, "backtest_bands": backtest,
        "risks": risks, "risk_source": risk_source, "expansion": expansion, "expansion_source": expansion_source,
        "worklist": _worklist(health, alerts),
        "generated_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def load_report_data(con, cadence: str = "month", period: str = LATEST_COMPLETE,
                     shared: dict | None = None) -> render.ReportData:
    """Read every table the page of ``cadence`` shows for ``period`` (see ``choose_period``); tables that do
    not exist leave their section empty. ``shared``: ``load_shared(con)``, read once for several cadences."""
    if cadence not in render.CADENCES:
        raise ValueError(f"cadence {cadence!r} is not one of {', '.join(CADENCES)}")
    shared = shared if shared is not None else load_shared(con)
    con.execute("set TimeZone = 'UTC'")
    revenue, revenue_source = _revenue(con, cadence)
    chosen = None
    if not revenue.empty:
        periods = revenue[["period_start", "period_end", "read_day", "is_complete"]].drop_duplicates("period_start")
        chosen = choose_period(periods, cadence, period)
    elif parse_period(cadence, period) is not None:
        raise ValueError(f"no {cadence} data to report on for period {period!r} ({revenue_source} is missing "
                         "or empty)")
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
    bands_over_time, band_counts = _bands(con, cadence, chosen["read_day"] if chosen else None, prev_end, window)
    as_of = shared["as_of"] or (str(revenue["read_day"].max()) if not revenue.empty else "unknown")
    return render.ReportData(
        as_of_day=as_of,
        period=render.period_label(cadence, start) if start else "no data",
        cadence=cadence,
        period_start=start or "",
        period_end=chosen["period_end"] if chosen else "",
        read_day=chosen["read_day"] if chosen else "",
        is_complete=bool(chosen["is_complete"]) if chosen else True,
        segments=segments, revenue=revenue, revenue_source=revenue_source, cohorts=shared["cohorts"],
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
        "top risks (alerts.alert_candidates when it exists, else red or declining accounts), expansion "
        "opportunities, the period's MRR movers, a per-CSM worklist and KPI definitions. Run config picks the "
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
    for data in pages:
        page = render.render_report(data, links)
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
