"""kpis/<model>: one asset per ``sql/*.sql`` file (see cs_kpis.lib.sql); the monthly revenue tables add a bridge preview."""

from pathlib import Path

import dagster as dg

from cs_kpis.lib.sql import NIGHTLY_FRESHNESS, SqlModel, load_models, model_key, sql_assets

SQL_DIR = Path(__file__).parent / "sql"
SCHEMA = "kpis"


def key(name: str) -> dg.AssetKey:
    """The key of the KPI model ``kpis.<name>``, for the modules that
    name it: import it, don't retype it (cs_kpis.lib.sql.model_key)."""
    return model_key(SQL_DIR, SCHEMA, name)


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


def kpi_models() -> list[SqlModel]:
    """Every ``sql/*.sql`` model: revenue_periods, revenue_monthly and revenue_monthly_parent are each a
    selection of kpis.revenue_by_grain, where the revenue KPI formulas are written once."""
    return load_models(SQL_DIR, SCHEMA)


@dg.definitions
def kpis_definitions() -> dg.Definitions:
    return dg.Definitions(
        assets=sql_assets(kpi_models(), group="kpis", owners=("team:data-eng",), extra_metadata=extra_metadata,
                          freshness_policy=NIGHTLY_FRESHNESS)
    )
