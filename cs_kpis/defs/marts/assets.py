"""Marts: entity-grain tables (subscription periods, daily and monthly MRR, accounts) and their spines."""

from pathlib import Path

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource

from cs_kpis.defs.staging import assets as staging
from cs_kpis.lib.engine import SQL_ENGINE, SqlEngineResource
from cs_kpis.lib.extracts import RAW_SYSTEM_ASSETS, newest_extract_day
from cs_kpis.lib.sql import WAREHOUSE_POOL, load_models, model_key, sql_assets, table_metadata

SQL_DIR = Path(__file__).parent / "sql"
SCHEMA = "marts"
POSITIONS = 100
"""rows of marts.dim_position: the most items one subscription state may carry"""

CALENDAR_DOCS = {
    "dim_day": (("One row per calendar day from the first subscription start (or billing event) to the "
                "data's as-of day (the newest extract day loaded across every source system)."),
                {"day": "calendar day (UTC)"}),
    "dim_month": (("One row per calendar month of marts.dim_day, with the day its month-end figures are read "
                  "on: the month's last day, or the as-of day for the current, unfinished month."),
                  {"month": "first day of the month", "month_end": "last day of the month",
                   "read_day": "the day month-end figures are read: least(month_end, as-of day)"}),
    "dim_position": (("The integers 0..99: a spine for taking JSON arrays apart with portable SQL "
                     "(no generators in models; see docs/PORTABILITY.md)."), {"position": "0-based index"}),
}


def key(name: str) -> dg.AssetKey:
    """The key of the mart (a SQL model or a calendar table built here) ``marts.<name>``, for the modules that
    name it: import it, don't retype it (cs_kpis.lib.sql.model_key)."""
    return model_key(SQL_DIR, SCHEMA, name, python_built=CALENDAR_DOCS)


DIM_DAY, DIM_MONTH, DIM_POSITION = key("dim_day"), key("dim_month"), key("dim_position")


@dg.multi_asset(
    specs=[
        dg.AssetSpec(key(name), group_name="marts", kinds={"duckdb", "python"}, owners=["team:data-eng"],
                     description=doc, deps=[staging.key("stg_billing__events"),
                                            staging.key("stg_billing__subscriptions"), *RAW_SYSTEM_ASSETS]
                     if name != "dim_position" else [])
        for name, (doc, _) in CALENDAR_DOCS.items()
    ],
    pool=WAREHOUSE_POOL,
    resource_defs={"sql_engine": SQL_ENGINE},
)
def calendar(duckdb: DuckDBResource, sql_engine: SqlEngineResource):
    """Spine tables built in Python, so that every SQL model stays free of engine-specific generators."""
    with duckdb.get_connection() as con:
        for name, meta in build_calendar(con, sql_engine).items():
            yield dg.MaterializeResult(asset_key=key(name), metadata=meta)


SPAN_SQL = """
select min(first_day) as first_day, max(last_day) as last_day from (
    select min(cast(created_at as date)) as first_day,
           max(coalesce(extract_day, cast(created_at as date))) as last_day
    from staging.stg_billing__events
    union all
    select min(cast(coalesce(started_at, created_at) as date)), max(extract_day)
    from staging.stg_billing__subscriptions) as d
"""
"""the history starts with the first subscription (Stripe keeps only ~30 days of events, the subscriptions
list keeps every start); the as-of day is the last extract day loaded. Portable: runs on the chosen engine"""


def _day(value):
    """A date from either engine's frame (DuckDB: date or NaT, Spark: date or None)."""
    return None if value is None or pd.isna(value) else pd.Timestamp(value).date()


def build_calendar(con, sql_engine: SqlEngineResource | None = None) -> dict[str, dict]:
    """(Re)build dim_day, dim_month and dim_position; return each table's UI metadata.

    The two dates that bound the spine are read on the chosen engine (``sql_engine``; DuckDB without one);
    the rows are generated in Python (no generator is portable SQL, docs/PORTABILITY.md), written to the
    warehouse, and in Spark mode published to Spark at once (``SqlEngineResource.publish``)."""
    con.execute("set TimeZone = 'UTC'")
    span = sql_engine.query(con, SPAN_SQL) if sql_engine is not None else con.execute(SPAN_SQL).df()
    first, as_of = _day(span["first_day"][0]), _day(span["last_day"][0])
    loaded = newest_extract_day(con)  # across systems: a quiet Stripe day does not hold the as-of day back
    if first and loaded and loaded > as_of:
        as_of = loaded
    days = pd.DataFrame({"day": pd.date_range(first, as_of, freq="D").date if first else []})
    months = pd.DataFrame({"month": sorted({d.replace(day=1) for d in days["day"]})})
    months["month_end"] = [(pd.Timestamp(m) + pd.offsets.MonthEnd(0)).date() for m in months["month"]]
    months["read_day"] = [min(e, as_of) for e in months["month_end"]]
    tables = {"dim_day": days, "dim_month": months, "dim_position": pd.DataFrame({"position": range(POSITIONS)})}
    con.execute("create schema if not exists marts")
    out = {}
    for name, df in tables.items():
        con.register("_frame", df)
        cast = ", ".join(f"cast({c} as {'integer' if c == 'position' else 'date'}) as {c}" for c in df.columns)
        con.execute(f"create or replace table marts.{name} as select {cast} from _frame")
        con.unregister("_frame")
        out[name] = table_metadata(con, "marts", name, CALENDAR_DOCS[name][1])
        if sql_engine is not None:
            out[name].update(sql_engine.publish(con, "marts", name))
    out["dim_day"]["as_of"] = str(as_of)
    return out


models = load_models(SQL_DIR, SCHEMA)
marts_assets = sql_assets(models, group="marts")
