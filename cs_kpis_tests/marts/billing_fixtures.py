"""Hand-built Stripe subscription histories, written straight into the staging tables the marts read.

Each helper returns the subscription object exactly as a customer.subscription.* event carries it
(only the fields the marts read), so that a test reads like a story: created, trial ends, seats change,
a discount expires, it is cancelled.
"""

import datetime as dt
import json

import duckdb

from cs_kpis.defs.marts.assets import SQL_DIR, build_calendar
from cs_kpis.lib.sql import build, load_models


def ts(day: str, hour: int = 12) -> int:
    d = dt.date.fromisoformat(day)
    return int(dt.datetime(d.year, d.month, d.day, hour, tzinfo=dt.UTC).timestamp())


def item(unit_amount: int, quantity: int | None = 1, interval: str = "month", count: int = 1,
         usage: str = "licensed", tier: str = "growth") -> dict:
    d = {"price": {"unit_amount": unit_amount, "recurring": {"interval": interval, "interval_count": count,
                                                              "usage_type": usage},
                   "metadata": {"plan_tier": tier}, "nickname": tier}}
    if quantity is not None:
        d["quantity"] = quantity
    return d


def coupon(duration: str, percent_off: float | None = None, amount_off: int | None = None,
           currency: str = "usd", end: str | None = None) -> dict:
    """an expanded discount; an amount_off coupon has its own currency, as every Stripe amount_off coupon does"""
    return {"id": f"C_{duration}_{percent_off or amount_off}", "coupon": {
        "id": f"{duration}-{percent_off or amount_off}", "duration": duration, "percent_off": percent_off,
        "amount_off": amount_off, "currency": currency if amount_off is not None else None},
        "end": ts(end) if end else None}


BILLING_TABLES = {
    # the columns of the Stripe staging tables the invoice path of the marts reads
    "stg_billing__subscriptions": (
        "subscription_id varchar, customer_id varchar, status varchar, currency varchar, created_at timestamptz, "
        "started_at timestamptz, trial_start_at timestamptz, trial_end_at timestamptz, ended_at timestamptz, "
        "cancel_at_period_end boolean, cancel_at timestamptz, discount_coupon_id varchar, "
        "discount_percent_off double, discount_amount_off_minor bigint, discount_start_at timestamptz, "
        "discount_end_at timestamptz, discounts varchar, extract_day date"),
    "stg_billing__subscription_items": (
        "subscription_item_id varchar, subscription_id varchar, price_id varchar, plan_tier varchar, "
        "price_name varchar, unit_amount_minor bigint, quantity bigint, interval varchar, interval_count integer, "
        "usage_type varchar, discounts varchar"),
    "stg_billing__invoices": (
        "invoice_id varchar, customer_id varchar, subscription_id varchar, status varchar, billing_reason varchar, "
        "attempt_count bigint, created_at timestamptz, finalized_at timestamptz, paid_at timestamptz, "
        "voided_at timestamptz, marked_uncollectible_at timestamptz, currency varchar, subtotal_minor bigint, "
        "total_minor bigint, amount_due_minor bigint, amount_paid_minor bigint, discount_id varchar, "
        "discount_coupon_id varchar, discount_duration varchar, discount_percent_off double, "
        "discount_amount_off_minor bigint, discount_start_at timestamptz, discount_end_at timestamptz, "
        "discounts varchar"),
    "stg_billing__invoice_lines": (
        "line_id varchar, invoice_id varchar, subscription_id varchar, subscription_item_id varchar, "
        "price_id varchar, is_proration boolean, is_proration_credit boolean, quantity bigint, "
        "period_start timestamptz, period_end timestamptz, currency varchar, amount_minor bigint, "
        "discount_amount_minor bigint, discount_amounts varchar, discounts varchar"),
    "stg_billing__prices": (
        "price_id varchar, plan_tier varchar, price_name varchar, unit_amount_minor bigint, interval varchar, "
        "interval_count integer, usage_type varchar, price_type varchar, billing_scheme varchar, "
        "unit_amount_decimal double, tiers_mode varchar, tiers varchar, transform_divide_by bigint, "
        "transform_round varchar"),
    "stg_billing__coupons": ("coupon_id varchar, duration varchar, currency varchar, amount_off_minor bigint, "
                             "currency_options json"),
    "stg_billing__invoice_items": (
        "invoice_item_id varchar, invoice_id varchar, is_pending boolean, customer_id varchar, "
        "subscription_id varchar, subscription_item_id varchar, price_id varchar, is_proration boolean, "
        "is_proration_credit boolean, quantity bigint, period_start timestamptz, period_end timestamptz, "
        "currency varchar, amount_minor bigint"),
}


class Ledger:
    """Collects subscription events, CRM accounts, customers and FX rates; writes them to DuckDB.

    The Stripe objects a real account keeps for ever (subscriptions, their items, invoices with lines,
    prices) go in ``tables``: table name -> list of row dicts, written to the staging tables above.
    """

    def __init__(self):
        self.events: list[tuple] = []
        self.accounts: list[str] = []
        self.customers: dict[str, str | None] = {}
        self.rates: dict[tuple[str, str], float] = {}
        self.tables: dict[str, list[dict]] = {name: [] for name in BILLING_TABLES}
        self.n = 0

    def account(self, account_id: str, customer_id: str | None = None) -> str:
        self.accounts.append(account_id)
        self.customers[customer_id or "cus_" + account_id] = account_id
        return "cus_" + account_id if customer_id is None else customer_id

    def state(self, sub_id: str, customer: str, day: str, items: list[dict], status: str = "active",
              currency: str = "usd", discount: dict | None = None, ended: str | None = None,
              cancel_at_period_end: bool = False, event_type: str = "customer.subscription.updated",
              hour: int = 12, discounts: list[dict] | None = None, event_id: str | None = None) -> None:
        self.n += 1
        obj = {"id": sub_id, "object": "subscription", "customer": customer, "status": status,
               "currency": currency, "items": {"object": "list", "data": items},
               "discounts": discounts or ([discount] if discount else []),
               "cancel_at_period_end": cancel_at_period_end,
               "cancel_at": None, "ended_at": ts(ended, hour) if ended else None}
        self.events.append((event_id or f"evt_{self.n:05d}", event_type, ts(day, hour), "subscription", sub_id, customer,
                            json.dumps(obj), day))

    def write(self, con: duckdb.DuckDBPyConnection, as_of: str) -> None:
        con.execute("set TimeZone = 'UTC'")
        con.execute("create schema if not exists staging")
        con.execute("""create or replace table staging.stg_billing__events (event_id varchar, event_type varchar,
            created_at timestamptz, object_type varchar, object_id varchar, customer_id varchar, object json,
            previous_attributes json, extract_day date)""")
        for e in self.events:
            con.execute("insert into staging.stg_billing__events values (?, ?, to_timestamp(?), ?, ?, ?, ?, null, ?)",
                        [*e[:7], as_of])
        con.execute("create or replace table staging.stg_billing__customers "
                    "(customer_id varchar, crm_account_id varchar, currency varchar)")
        for cus, acct in self.customers.items():
            con.execute("insert into staging.stg_billing__customers values (?, ?, 'USD')", [cus, acct])
        con.execute("""create or replace table staging.stg_crm__accounts (account_id varchar, account_name varchar,
            parent_account_id varchar, owner_id varchar, csm_id varchar, segment varchar, industry varchar,
            country varchar, csm_sentiment varchar, workspace_id varchar, created_at timestamptz,
            is_deleted boolean, valid_from timestamptz, valid_to timestamptz, is_current boolean)""")
        for a in self.accounts:
            con.execute("insert into staging.stg_crm__accounts values (?, ?, null, 'u1', 'u2', 'SMB', null, null, "
                        "null, null, now(), false, now(), null, true)", [a, a])
        # no field history: marts.account_states is the loaded versions alone
        con.execute("""create or replace table staging.stg_crm__account_history (history_id varchar,
            account_id varchar, field_name varchar, tracked_field varchar, data_type varchar, old_value varchar,
            new_value varchar, changed_at timestamptz, changed_by_id varchar, is_deleted boolean, extract_day date)""")
        for name, columns in BILLING_TABLES.items():
            con.execute(f"create or replace table staging.{name} ({columns})")
            for row in self.tables[name]:
                cols = ", ".join(row)
                marks = ", ".join("?" for _ in row)
                con.execute(f"insert into staging.{name} ({cols}) values ({marks})", list(row.values()))
        con.execute("create or replace table staging.stg_billing__fx_rates "
                    "(rate_date date, currency varchar, rate decimal(18, 6))")
        starts = [dt.datetime.fromtimestamp(e[2], dt.UTC).date() for e in self.events]
        starts += [r["started_at"].date() for r in self.tables["stg_billing__subscriptions"]]
        day = min(starts)
        while day <= dt.date.fromisoformat(as_of):
            for cur in sorted({"USD", "EUR", "GBP"} | {c for c, _ in self.rates}):
                # the latest rate set on or before this day; 1.0 when none was set
                known = sorted((d, v) for (c, d), v in self.rates.items() if c == cur and d <= day.isoformat())
                con.execute("insert into staging.stg_billing__fx_rates values (?, ?, ?)",
                            [day, cur, known[-1][1] if known else 1.0])
            day += dt.timedelta(days=1)


MODEL_ORDER = ("accounts", "account_states", "price_tiers", "coupon_amounts", "discount_objects", "subscription_item_discounts",
               "subscription_history_states", "subscription_states", "subscription_periods", "mrr_daily_changes", "mrr_daily")


def build_marts(con: duckdb.DuckDBPyConnection, names=MODEL_ORDER) -> None:
    """Build the calendar and the marts models in dependency order, as the assets do."""
    build_calendar(con)
    models = {m.name: m for m in load_models(SQL_DIR, "marts")}
    for name in names:
        build(con, models[name])


def month_end_mrr(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], float]:
    rows = con.execute("""
        select a.account_id, strftime(m.month, '%Y-%m') as ym, coalesce(c.mrr, 0) as mrr
        from marts.dim_month as m
        cross join marts.accounts as a
        left join marts.mrr_daily_changes as c
            on c.account_id = a.account_id and c.change_date <= m.read_day
            and (c.next_change_date is null or c.next_change_date > m.read_day)
    """).fetchall()
    return {(a, ym): float(v) for a, ym, v in rows}
