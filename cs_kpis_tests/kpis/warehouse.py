"""Hand-written contract tables (the marts and staging inputs of the kpis layer) in a tmp DuckDB.

The kpis layer's inputs are built by other layers; these tests write them by hand so that every number
the KPI models produce can be checked against arithmetic done in the test's comments.
"""

import datetime as dt
from collections.abc import Iterable, Sequence
from pathlib import Path

import duckdb

from cs_kpis.lib.sql import SqlModel, build

REPO = Path(__file__).resolve().parents[2]
MARTS_SQL_DIR = REPO / "cs_kpis" / "defs" / "marts" / "sql"
# the marts models the kpis layer reads that are built from the same contract tables
MARTS_PERIOD_MODELS = ("dim_period", "mrr_period_ends", "mrr_monthly")
KPI_SQL_DIR = REPO / "cs_kpis" / "defs" / "kpis" / "sql"

# build order: the periods and their account-grain MRR, marts.mrr_monthly (their month rows), the parent roll-up,
# the one revenue model and the tables selected from it, then the cohorts
KPI_BUILD_ORDER = ("dim_period", "mrr_period_ends", "mrr_periods", "mrr_monthly", "mrr_monthly_parent", "revenue_by_grain",
                   "revenue_monthly", "revenue_monthly_parent", "revenue_periods", "cohort_retention")

SCHEMAS = """
create schema if not exists marts;
create schema if not exists staging;
create table marts.dim_month (month date, month_end date, read_day date);
create table marts.mrr_daily_changes (account_id varchar, change_date date, mrr decimal(18, 2));
create table marts.accounts (
    account_id varchar, account_name varchar, parent_account_id varchar, root_account_id varchar,
    segment varchar, csm_id varchar, owner_id varchar, industry varchar, country varchar, created_at timestamp);
create table staging.stg_crm__accounts (
    account_id varchar, segment varchar, valid_from timestamp, valid_to timestamp, is_current boolean);
create table staging.stg_billing__invoices (
    invoice_id varchar, customer_id varchar, subscription_id varchar, status varchar, created_at timestamp,
    period_start timestamp, period_end timestamp, currency varchar, total_minor bigint, amount_due_minor bigint,
    discount_duration varchar, discount_end_at timestamp);
create table staging.stg_billing__invoice_lines (
    line_id varchar, invoice_id varchar, subscription_id varchar, amount_minor bigint, currency varchar,
    period_start timestamp, period_end timestamp, is_proration boolean, price_id varchar, quantity bigint,
    minor_units_per_major integer, discount_amount_minor bigint,
    -- the hand-written credits here are all negative: marked as staging marks those
    is_proration_credit boolean generated always as (is_proration and amount_minor < 0) virtual);
create table staging.stg_billing__invoice_items (
    invoice_item_id varchar, invoice_id varchar, is_pending boolean, customer_id varchar, subscription_id varchar,
    price_id varchar, is_proration boolean, quantity bigint, period_start timestamp, period_end timestamp,
    currency varchar, minor_units_per_major integer, amount_minor bigint,
    is_proration_credit boolean generated always as (is_proration and amount_minor < 0) virtual);
create table staging.stg_billing__prices (
    price_id varchar, usage_type varchar, "interval" varchar, interval_count integer, unit_amount_minor bigint,
    price_type varchar);
create table staging.stg_billing__subscriptions (subscription_id varchar, customer_id varchar, ended_at timestamp);
create table staging.stg_billing__fx_rates (rate_date date, currency varchar, rate double);
create table staging.stg_billing__customers (customer_id varchar, crm_account_id varchar);
create table marts.account_xref (source_system varchar, source_id varchar, crm_account_id varchar, matched boolean);
"""


def d(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def next_month(month: dt.date) -> dt.date:
    return (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def connect(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute(SCHEMAS)
    return con


def write_contract(
    con,
    changes: Iterable[tuple[str, str, float]],
    accounts: Iterable[tuple[str, str | None, str | None, str]],
    data_as_of: str,
) -> None:
    """marts.mrr_daily_changes, marts.accounts and marts.dim_month as the marts layer would build them.

    ``changes``: (account_id, change_date, mrr); ``accounts``: (account_id, parent_account_id,
    root_account_id or None for itself, segment).
    """
    changes = list(changes)
    con.executemany("insert into marts.mrr_daily_changes values (?, ?, ?)",
                    [(a, d(day), mrr) for a, day, mrr in changes])
    accounts = list(accounts)
    if accounts:  # executemany refuses an empty list
        con.executemany(
            "insert into marts.accounts (account_id, account_name, parent_account_id, root_account_id, segment) "
            "values (?, ?, ?, ?, ?)",
            [(a, a.title(), parent, root or a, segment) for a, parent, root, segment in accounts],
        )
    as_of = d(data_as_of)
    month = month_start(min(d(day) for _, day, mrr in changes if mrr > 0))
    rows = []
    while month <= as_of:
        month_end = next_month(month) - dt.timedelta(days=1)
        rows.append((month, month_end, min(month_end, as_of)))
        month = next_month(month)
    con.executemany("insert into marts.dim_month values (?, ?, ?)", rows)


def marts_period_models() -> list[SqlModel]:
    """marts.dim_period, marts.mrr_period_ends and marts.mrr_monthly, from their own SQL files."""
    return [SqlModel.from_file(MARTS_SQL_DIR / f"{name}.sql", "marts") for name in MARTS_PERIOD_MODELS]


def kpi_models() -> dict[str, SqlModel]:
    from cs_kpis.defs.kpis.assets import kpi_models as models

    return {m.name: m for m in models()}


def write_dim_day(con) -> None:
    """marts.dim_day (the day spine marts.dim_period reads) as the marts layer builds it: one row per day of
    marts.dim_month up to the data's as-of day."""
    con.execute("""
        create or replace table marts.dim_day as
        select cast(unnest(generate_series(min(month), max(read_day), interval 1 day)) as date) as day
        from marts.dim_month
    """)


def build_all(con) -> None:
    write_dim_day(con)
    models = {**kpi_models(), **{m.name: m for m in marts_period_models()}}
    for name in KPI_BUILD_ORDER:
        build(con, models[name])


def rows(con, sql: str, params: Sequence = ()) -> list[dict]:
    cur = con.execute(sql, list(params))
    cols = [c[0] for c in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
