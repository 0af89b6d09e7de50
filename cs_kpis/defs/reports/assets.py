"""reports/kpi_report: the monthly customer-success KPI report as one self-contained HTML file.

``load_report_data`` reads the warehouse (every table optional: a missing table leaves its section empty),
``render.render_report`` turns the data into HTML, and the asset writes it to
``<state>/reports/kpi_report.html``. The risk table uses ``alerts.alert_candidates`` when that table
exists and falls back to red or declining accounts from ``kpis.health_scores`` otherwise.
"""

import datetime as dt
import importlib.util

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource

from cs_kpis import settings
from cs_kpis.defs.reports import render
from cs_kpis.lib.sql import WAREHOUSE_POOL

REPORT_KEY = dg.AssetKey(["reports", "kpi_report"])
OWNERS = ["team:cs-analytics"]
TOP_N = 10
DECLINE_POINTS = 10.0
"""fallback risks: red accounts, or accounts whose score fell at least this much over 30 days"""
EXPANSION_MIN_USAGE = 75.0
COMPONENTS = ("usage", "adoption", "support", "sentiment", "billing")
REASON_BELOW = 50.0

UPSTREAM = [
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


def report_path():
    return settings.state_dir() / "reports" / "kpi_report.html"


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


def _movers(con, month) -> pd.DataFrame:
    if month is None or not _exists(con, "marts.mrr_monthly"):
        return pd.DataFrame()
    has_acc = _exists(con, "marts.accounts")
    m = _df(con, f"""
        select {'coalesce(a.account_name, m.account_id)' if has_acc else 'm.account_id'} as account_name,
               m.movement, m.prev_mrr, m.mrr, m.movement_amount
        from marts.mrr_monthly as m
        {'left join marts.accounts as a on a.account_id = m.account_id' if has_acc else ''}
        where m.month = ? and m.movement_amount <> 0
        order by abs(m.movement_amount) desc, account_name limit {TOP_N}
    """, [month])
    return pd.DataFrame({
        "Account": m["account_name"], "Movement": m["movement"], "MRR before": m["prev_mrr"].map(render.fmt_money),
        "MRR now": m["mrr"].map(render.fmt_money), "Change": m["movement_amount"].map(render.fmt_money),
    })


def _nps(con, month) -> tuple | None:
    if month is None or not _exists(con, "staging.stg_nps__survey_responses"):
        return None
    rows = _df(con, """
        select date_trunc('month', responded_at)::date as m,
               100.0 * (count(*) filter (where score >= 9) - count(*) filter (where score <= 6)) / count(*) as nps
        from staging.stg_nps__survey_responses
        where responded_at is not null and date_trunc('month', responded_at)::date
              between ?::date - interval 1 month and ?::date
        group by 1
    """, [month, month])
    by = {str(r["m"])[:10]: float(r["nps"]) for r in rows.to_dict("records")}
    prev = str((pd.Timestamp(month) - pd.DateOffset(months=1)).date())
    now = by.get(str(pd.Timestamp(month).date()))
    return None if now is None and by.get(prev) is None else (now, by.get(prev))


def load_report_data(con) -> render.ReportData:
    """Read every table the report shows; tables that do not exist leave their section empty."""
    con.execute("set TimeZone = 'UTC'")
    revenue = (_df(con, "select * from kpis.revenue_monthly order by segment, month")
               if _exists(con, "kpis.revenue_monthly") else pd.DataFrame())
    month = revenue["month"].max() if not revenue.empty else None
    segments = ["all"] + sorted(s for s in revenue["segment"].unique() if s != "all") if not revenue.empty else ["all"]
    cohorts = (_df(con, "select * from kpis.cohort_retention") if _exists(con, "kpis.cohort_retention")
               else pd.DataFrame())

    bands_monthly, band_counts, as_of = pd.DataFrame(), {}, None
    if _exists(con, "kpis.health_scores_daily"):
        as_of = con.execute("select max(day) from kpis.health_scores_daily").fetchall()[0][0]
        # one snapshot per month: its last scored day (the as-of day for the current month)
        bands_monthly = _df(con, """
            with ends as (select max(day) as day from kpis.health_scores_daily group by date_trunc('month', day))
            select date_trunc('month', d.day)::date as month, d.band, count(*) as accounts
            from kpis.health_scores_daily as d join ends using (day)
            where d.is_active group by 1, 2 order by 1, 2
        """)
        counts = _df(con, """
            select day, band, count(*) as n from kpis.health_scores_daily
            where is_active and day in (?::date, ?::date - interval 30 day) group by 1, 2
        """, [as_of, as_of])
        for band in render.BANDS:
            now = counts[(counts["band"] == band) & (counts["day"].astype(str).str[:10] == str(as_of)[:10])]["n"]
            before = counts[(counts["band"] == band) & (counts["day"].astype(str).str[:10] != str(as_of)[:10])]["n"]
            band_counts[band] = (int(now.sum()), int(before.sum()) if not before.empty else None)

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
    period_month = pd.Timestamp(month) if month is not None else None
    return render.ReportData(
        as_of_day=str(as_of)[:10] if as_of is not None else (str(month)[:10] if month is not None else "unknown"),
        period=period_month.strftime("%Y-%m") if period_month is not None else "no data",
        segments=segments, revenue=revenue, cohorts=cohorts, bands_monthly=bands_monthly,
        backtest_bands=backtest, band_counts=band_counts, nps=_nps(con, month), risks=risks,
        risk_source=risk_source, expansion=expansion,
        expansion_source=expansion_source, movers=_movers(con, month),
        worklist=_worklist(health, alerts),
        generated_at=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )


@dg.asset(
    key=REPORT_KEY,
    deps=UPSTREAM,
    group_name="reports",
    kinds={"html", "python"},
    owners=OWNERS,
    pool=WAREHOUSE_POOL,
    description=(
        "The monthly customer-success KPI report: one self-contained HTML file (charts drawn with plotly, "
        "plotly.js inlined, viewable offline) at `<state>/reports/kpi_report.html` with headline KPIs and "
        "their change vs the previous month, the MRR bridge, NRR/GRR trends, cohort retention, health bands, "
        "backtest churn by band, expansion, top risks (alerts.alert_candidates when it exists, else red or "
        "declining accounts), expansion opportunities, MRR movers, a per-CSM worklist and KPI definitions. "
        "See cs_kpis/defs/reports/README.md."
    ),
)
def kpi_report(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> dg.MaterializeResult:
    with duckdb.get_connection() as con:
        data = load_report_data(con)
    page = render.render_report(data)
    path = report_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    context.log.info(f"wrote {path} ({len(page) / 1e6:.1f} MB)")
    return dg.MaterializeResult(metadata={
        "path": dg.MetadataValue.path(str(path)),
        "period": data.period,
        "as_of_day": data.as_of_day,
        "headline": dg.MetadataValue.md(render.headline_markdown(data)),
        "risk_source": data.risk_source,
        "size_bytes": dg.MetadataValue.int(len(page.encode())),
    })
