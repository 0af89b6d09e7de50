"""kpis/<model>: one asset per ``sql/*.sql`` file (see cs_kpis.lib.sql); revenue_monthly adds a bridge preview."""

from dataclasses import replace
from pathlib import Path

import dagster as dg

from cs_kpis.lib.sql import NIGHTLY_FRESHNESS, SqlModel, load_models, sql_assets

SQL_DIR = Path(__file__).parent / "sql"
SCHEMA = "kpis"
PREVIEW_MONTHS = 6
BRIDGE_COLUMNS = (
    "month", "starting_mrr", "new_mrr", "expansion_mrr", "reactivation_mrr", "contraction_mrr",
    "churned_mrr", "ending_mrr", "nrr", "grr",
)


def mrr_bridge_preview(con, table: str = "kpis.revenue_monthly", months: int = PREVIEW_MONTHS) -> str:
    """The latest ``months`` of segment 'all' as a markdown table, oldest first."""
    df = con.execute(
        f"select {', '.join(BRIDGE_COLUMNS)} from {table} where segment = 'all' order by month desc limit {months}"
    ).df()
    df = df.sort_values("month")
    df["month"] = df["month"].astype(str).str[:7]
    # money with cents and thousands separators, ratios as fractions
    return df.to_markdown(index=False, floatfmt=("",) + (",.2f",) * 7 + (".4f", ".4f"))


def extra_metadata(con, model: SqlModel) -> dict:
    if model.name in ("revenue_monthly", "revenue_monthly_parent"):
        return {"mrr_bridge_preview": dg.MetadataValue.md(mrr_bridge_preview(con, model.table))}
    return {}


PARENT_SOURCE = ("from marts.mrr_monthly as m", "from kpis.mrr_monthly_parent as m")
PARENT_DESCRIPTION = (
    "The monthly MRR bridge and revenue KPIs per segment at the PARENT-account grain: children rolled up to "
    "the top of their hierarchy (kpis.mrr_monthly_parent) before movements are classified, so a child that "
    "churns while its sibling expands is a contraction or an expansion of the parent, never a churn. Segment "
    "is the root account's current CRM segment ('unknown' when not in the CRM); 'all' covers every "
    "hierarchy. Every column is defined exactly as in kpis.revenue_monthly, with \"account\" read as "
    "\"parent account (hierarchy)\": the model is kpis.revenue_monthly's SQL run on the rolled-up table."
)


def parent_model(account_model: SqlModel) -> SqlModel:
    """kpis.revenue_monthly_parent: revenue_monthly.sql on kpis.mrr_monthly_parent (one SQL, two grains)."""
    old, new = PARENT_SOURCE
    if account_model.sql.count(old) != 1:
        raise ValueError(f"revenue_monthly.sql must read its accounts exactly once as `{old}`")
    return replace(account_model, name="revenue_monthly_parent", sql=account_model.sql.replace(old, new),
                   description=PARENT_DESCRIPTION)


def kpi_models() -> list[SqlModel]:
    models = load_models(SQL_DIR, SCHEMA)
    account = next(m for m in models if m.name == "revenue_monthly")
    return [*models, parent_model(account)]


@dg.definitions
def kpis_definitions() -> dg.Definitions:
    return dg.Definitions(
        assets=sql_assets(kpi_models(), group="kpis", owners=("team:data-eng",), extra_metadata=extra_metadata,
                          freshness_policy=NIGHTLY_FRESHNESS)
    )
