"""A tiny hand-built warehouse for the health models: the staging and marts tables they read, a few rows each.

Data as of 2025-04-30 (dim_day 2025-01-01 .. 2025-04-30). Accounts:

- acc_a: growth plan, 4 seats, MRR 100 from 2025-01-01; workspace ws_a, support org 1, billing cus_a,
  NPS respondents p1 and p2. Created 2025-01-01 10:00, first value event (Report Created) 2025-01-05 10:00.
- acc_b: starter plan from 2025-03-01 (no rows before), MRR 50.
- acc_c: growth plan, MRR 80 from 2025-01-01, churns on 2025-02-15 (MRR 0): the backtest's one churner.

Every number the tests pin is worked out next to the rows that produce it (see test_indicators_sql.py).
"""

import datetime as dt
import json
from pathlib import Path

import duckdb
import pandas as pd

from cs_kpis.defs.health.assets import SQL_DIR, product_config_rows, write_frame
from cs_kpis.defs.health.fingerprints import CARRIES, FINGERPRINTS
from cs_kpis.lib import incremental
from cs_kpis.lib.sql import bigint_instead_of_hugeint, build, load_models

MODELS = {m.name: m for m in load_models(SQL_DIR, "kpis")}
ACTIVITY_MODEL, INDICATOR_MODEL = MODELS["account_activity_daily"], MODELS["account_indicators_daily"]


def spec(model) -> incremental.Incremental:
    return model.incremental_spec(FINGERPRINTS[model.table], CARRIES.get(model.table))


def plan(con, model, **kw) -> incremental.BuildWindow:
    return incremental.plan(con, spec(model), **kw)


def build_window(con, model, window: incremental.BuildWindow, chunk_rows: int | None = None) -> dict:
    """Build an incremental model for ``window`` (what its asset does once it has planned)."""
    stats = incremental.build(con, spec(model), model.sql, window, chunk_rows)
    bigint_instead_of_hugeint(con, model.schema, model.name)
    return stats

PRODUCT = {
    "key_features": ["Report Created", "Dashboard Shared", "Alert Configured", "Integration Connected",
                     "Workflow Automated"],
    "plan_features": {"starter": 3, "growth": 5, "enterprise": 5},
    "onboarding_milestones": ["Data Source Connected", "Teammate Invited", "Report Created", "Dashboard Shared"],
    "value_event": "Report Created",
    "top_plan": "enterprise",
}

SCHEMAS = """
create schema if not exists staging;
create schema if not exists marts;
create schema if not exists kpis;
create table marts.dim_day (day date);
create table marts.dim_month (month date, month_end date, read_day date);
create table marts.account_xref (source_system varchar, source_id varchar, crm_account_id varchar);
create table marts.accounts (account_id varchar, root_account_id varchar, created_at timestamptz);
create table marts.subscription_periods (subscription_id varchar, account_id varchar, start_date date, end_date date,
    plan varchar, seats bigint, is_trial boolean, mrr decimal(18, 2));
create table marts.mrr_daily_changes (account_id varchar, change_date date, mrr decimal(18, 2),
    previous_mrr decimal(18, 2), next_change_date date);
create table marts.subscription_states (subscription_id varchar, customer_id varchar, changed_at timestamptz,
    event_id varchar, status varchar, cancel_at_period_end boolean, cancel_at timestamptz, ended_at timestamptz);
create table staging.stg_product__events (message_id varchar, event_type varchar, user_id varchar,
    event_name varchar, workspace_id varchar, occurred_at timestamptz, received_day date);
create table staging.stg_support__tickets (ticket_id bigint, organization_id bigint, status varchar,
    priority varchar, created_at timestamptz, updated_at timestamptz);
create table staging.stg_support__ticket_metrics (ticket_id bigint, solved_at timestamptz, reopens bigint,
    replies bigint, first_reply_minutes bigint, full_resolution_minutes bigint);
create table staging.stg_support__satisfaction_ratings (rating_id bigint, ticket_id bigint, score varchar,
    created_at timestamptz, updated_at timestamptz);
create table staging.stg_nps__survey_responses (response_id varchar, person_id varchar, score integer,
    responded_at timestamptz);
create table staging.stg_billing__events (event_id varchar, event_type varchar, customer_id varchar,
    created_at timestamptz);
create table staging.stg_billing__invoices (invoice_id varchar, customer_id varchar, status varchar,
    amount_due_minor bigint, due_at timestamptz, created_at timestamptz, paid_at timestamptz,
    voided_at timestamptz, marked_uncollectible_at timestamptz);
create table staging.stg_billing__invoice_lines (line_id varchar, invoice_id varchar, subscription_id varchar,
    price_id varchar, is_proration boolean, period_start timestamptz, period_end timestamptz);
create table staging.stg_billing__prices (price_id varchar, usage_type varchar);
create table marts.account_states (account_id varchar, valid_from date, valid_to date, csm_id varchar,
    segment varchar, csm_sentiment varchar, is_deleted boolean);
"""

AS_OF = dt.date(2025, 4, 30)
FIRST_DAY = dt.date(2025, 1, 1)

EVENTS = [
    # (user, event, occurred_at)
    ("u1", "Report Created", "2025-01-05 10:00:00"),   # value event: activation, ttfv 4.0 days; milestone 1
    ("u1", "Signed In", "2025-02-10 09:00:00"),        # the only event of the prior 30 days of 03-15
    ("u2", "Dashboard Shared", "2025-02-20 12:00:00"),  # key feature; milestone 2
    ("u2", "Signed In", "2025-03-01 08:00:00"),
    ("u2", "Signed In", "2025-03-01 18:00:00"),
    ("u3", "Signed In", "2025-03-10 11:00:00"),
]


def _insert(con, table: str, rows: list[tuple]) -> None:
    if rows:
        marks = ", ".join("?" for _ in rows[0])
        con.executemany(f"insert into {table} values ({marks})", rows)


def write_inputs(con) -> None:
    con.execute("set TimeZone = 'UTC'")
    con.execute(SCHEMAS)
    days = pd.date_range(FIRST_DAY, AS_OF, freq="D").date
    _insert(con, "marts.dim_day", [(d,) for d in days])
    _insert(con, "marts.dim_month", [
        (dt.date(2025, 1, 1), dt.date(2025, 1, 31), dt.date(2025, 1, 31)),
        (dt.date(2025, 2, 1), dt.date(2025, 2, 28), dt.date(2025, 2, 28)),
        (dt.date(2025, 3, 1), dt.date(2025, 3, 31), dt.date(2025, 3, 31)),
        (dt.date(2025, 4, 1), dt.date(2025, 4, 30), dt.date(2025, 4, 30)),
    ])
    write_frame(con, "kpis.health_product_config", product_config_rows(PRODUCT), {"value": "double"})
    _insert(con, "marts.account_xref", [
        ("product", "ws_a", "acc_a"), ("product", "ws_b", "acc_b"), ("product", "ws_c", "acc_c"),
        ("support", "1", "acc_a"), ("billing", "cus_a", "acc_a"), ("billing", "cus_c", "acc_c"),
        ("nps", "p1", "acc_a"), ("nps", "p2", "acc_a"),
    ])
    _insert(con, "marts.accounts", [
        ("acc_a", "acc_a", "2025-01-01 10:00:00+00"), ("acc_b", "acc_a", "2025-02-20 00:00:00+00"),
        ("acc_c", "acc_c", "2024-12-01 00:00:00+00"),
    ])
    _insert(con, "marts.subscription_periods", [
        ("sub_a", "acc_a", "2025-01-01", None, "growth", 4, False, 100),
        ("sub_b", "acc_b", "2025-03-01", None, "starter", 1, False, 50),
        ("sub_c", "acc_c", "2025-01-01", "2025-02-15", "growth", 10, False, 80),
    ])
    _insert(con, "marts.mrr_daily_changes", [
        ("acc_a", "2025-01-01", 100, 0, None),
        ("acc_b", "2025-03-01", 50, 0, None),
        ("acc_c", "2025-01-01", 80, 0, "2025-02-15"), ("acc_c", "2025-02-15", 0, 80, None),
    ])
    _insert(con, "marts.subscription_states", [
        ("sub_a", "cus_a", "2025-01-01 00:00:00+00", "evt_1", "active", False, None, None),
        # cancellation requested on 03-12: flagged from 03-12 on
        ("sub_a", "cus_a", "2025-03-12 15:00:00+00", "evt_2", "active", True, None, None),
        # the annual add-on: no renewal once it is set to cancel (04-20)
        ("sub_a2", "cus_a", "2025-04-20 09:00:00+00", "evt_3", "active", True, None, None),
    ])
    _insert(con, "staging.stg_product__events", [(*row, None) for row in [
        (f"m{i}", "track", u, e, "ws_a", ts + "+00") for i, (u, e, ts) in enumerate(EVENTS)
    ] + [
        ("g1", "group", None, None, "ws_a", "2025-03-10 11:00:00+00"),  # not a track call: ignored
        ("b1", "track", "ub", "Signed In", "ws_b", "2025-03-02 10:00:00+00"),
        ("c1", "track", "uc", "Signed In", "ws_c", "2025-01-02 10:00:00+00"),
    ]])
    # received the day it happened; every fifth event two days late (Segment's receivedAt)
    con.execute("update staging.stg_product__events set received_day = cast(occurred_at as date) + "
                "case when hash(message_id) % 5 = 0 then 2 else 0 end")
    _insert(con, "staging.stg_support__tickets", [
        (1, 1, "closed", "high", "2025-01-03 10:00:00+00", "2025-01-04 10:00:00+00"),
        (2, 1, "open", "urgent", "2025-03-01 10:00:00+00", "2025-03-01 10:00:00+00"),
        (3, 1, "solved", "normal", "2025-03-05 10:00:00+00", "2025-03-06 10:00:00+00"),
    ])
    _insert(con, "staging.stg_support__ticket_metrics", [
        (1, "2025-01-04 10:00:00+00", 0, 1, 30, 1440),
        (2, None, 0, 0, 60, None),
        (3, "2025-03-06 10:00:00+00", 0, 2, 90, 600),
    ])
    _insert(con, "staging.stg_support__satisfaction_ratings", [
        (11, 1, "good", "2025-01-04 10:00:00+00", "2025-01-05 10:00:00+00"),
        (12, 2, "offered", "2025-03-02 10:00:00+00", "2025-03-02 10:00:00+00"),
        (13, 3, "bad", "2025-03-06 10:00:00+00", "2025-03-07 10:00:00+00"),
    ])
    _insert(con, "staging.stg_nps__survey_responses", [
        ("r1", "p1", 10, "2025-01-10 10:00:00+00"),
        ("r2", "p1", 3, "2025-02-01 10:00:00+00"),
        ("r3", "p1", 8, "2025-03-01 10:00:00+00"),
        ("r4", "p2", 9, "2025-03-05 10:00:00+00"),
    ])
    _insert(con, "staging.stg_billing__events", [
        ("e1", "invoice.payment_failed", "cus_a", "2025-02-15 10:00:00+00"),
        ("e2", "invoice.paid", "cus_a", "2025-03-01 10:00:00+00"),
    ])
    _insert(con, "staging.stg_billing__invoices", [
        ("in_1", "cus_a", "paid", 10000, None, "2025-03-01 10:00:00+00", "2025-03-01 10:00:00+00", None, None),
        ("in_2", "cus_a", "open", 500, None, "2025-03-10 10:00:00+00", None, None, None),
        ("in_3", "cus_a", "paid", 120000, None, "2024-07-01 10:00:00+00", "2024-07-01 10:00:00+00", None, None),
        ("in_4", "cus_a", "void", 0, None, "2024-05-01 10:00:00+00", None, "2024-05-02 10:00:00+00", None),
        ("in_5", "cus_a", "paid", 0, None, "2024-05-01 10:00:00+00", "2024-05-01 10:00:00+00", None, None),
    ])
    _insert(con, "staging.stg_billing__invoice_lines", [
        # acc_a's plan is billed monthly (no term); its annual add-on sub_a2 is a term: 2024-07-01 .. 2025-07-01
        ("il_1", "in_1", "sub_a", "price_growth", False, "2025-03-01 00:00:00+00", "2025-04-01 00:00:00+00"),
        ("il_2", "in_3", "sub_a2", "price_growth", False, "2024-07-01 00:00:00+00", "2025-07-01 00:00:00+00"),
        # no term: a year on a void invoice, on a metered price, as a proration (they would end 05-01)
        ("il_3", "in_4", "sub_a3", "price_growth", False, "2024-05-01 00:00:00+00", "2025-05-01 00:00:00+00"),
        ("il_4", "in_5", "sub_a3", "price_metered", False, "2024-05-01 00:00:00+00", "2025-05-01 00:00:00+00"),
        ("il_5", "in_5", "sub_a3", "price_growth", True, "2024-05-01 00:00:00+00", "2025-05-01 00:00:00+00"),
    ])
    _insert(con, "staging.stg_billing__prices", [("price_growth", "licensed"), ("price_metered", "metered")])
    _insert(con, "marts.account_states", [("acc_a", "2025-03-01", None, "005csm_a", "SMB", "Yellow", False)])


def build_models(con, names=("account_activity_daily", "account_indicators_daily", "engagement_monthly")) -> None:
    for model in (ACTIVITY_MODEL, INDICATOR_MODEL):
        incremental.record(con, spec(model), None)  # the SQL reads its build window: none = every day
    for name in names:
        build(con, MODELS[name])


def make_warehouse(path: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path))
    write_inputs(con)
    build_models(con)
    return con


def write_company_config(folder: Path) -> Path:
    """A company configuration file whose product section is PRODUCT; returns its path (for CS_KPIS_CONFIG)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "company.yaml"
    path.write_text(json.dumps({"profile": "health-fixture", "landing_dir": "landing", "product": PRODUCT}))
    return path


def profile_nodes(node) -> list[dict]:
    """Every object of a DuckDB JSON profile (its tree of operators, whatever the version calls the keys)."""
    if isinstance(node, list):
        return [n for child in node for n in profile_nodes(child)]
    if not isinstance(node, dict):
        return []
    return [node, *(n for value in node.values() for n in profile_nodes(value))]


def operator_name(node: dict) -> str:
    """An operator's name in a DuckDB JSON profile (WINDOW, TABLE_SCAN, ...), whatever the version calls it."""
    return str(node.get("type", node.get("operator_type", node.get("operator_name", "")))).strip()


def operator_rows(node: dict) -> int:
    """The rows an operator of a DuckDB JSON profile emitted, whatever the version calls them."""
    return int(node.get("intermediate_rows", node.get("operator_cardinality", 0)))


def rows_scanned(node: dict) -> int:
    """The rows a scan operator of a DuckDB JSON profile read from its table, whatever the version calls them."""
    return int(node.get("rows_scanned", node.get("operator_rows_scanned", 0)) or 0)


def scanned_table(node: dict) -> str:
    """The table a scan operator of a DuckDB JSON profile reads (its extra info's Table, e.g.
    ``wh.staging.stg_product__events``, or its first line)."""
    extra = node.get("extra_info", "")
    if isinstance(extra, dict):
        return str(extra.get("Table", ""))
    return str(extra).strip().split("\n")[0]


class ScanCounter:
    """A DuckDB connection that profiles each statement it runs and counts the scans of ``table`` (schema.name)
    in them, except in the statements that contain ``skip`` (a model's own SQL; or any of several), or only in those that contain
    ``only``: how often a plan or a build reads an input's history; ``rows_scanned``: the rows each of those scans
    read from the table, ``rows_emitted``: the rows each passed on after its filters."""

    def __init__(self, con, profile: Path, table: str, skip: str | tuple[str, ...] | None = None,
                 only: str | None = None):
        self._con, self._profile, self._only = con, profile, only
        self._skip = (skip,) if isinstance(skip, str) else tuple(skip or ())
        self._table = table
        self.scans = 0
        self.rows_scanned: list[int] = []
        self.rows_emitted: list[int] = []
        con.execute("pragma enable_profiling = 'json'")
        con.execute(f"pragma profiling_output = '{profile}'")

    def execute(self, sql, *args, **kwargs):
        self._profile.unlink(missing_ok=True)
        result = self._con.execute(sql, *args, **kwargs)
        counted = not any(s in sql for s in self._skip) and (self._only is None or self._only in sql)
        if counted and self._profile.exists():
            tree = json.loads(self._profile.read_text())
            scans = [n for n in profile_nodes(tree)
                     if "SCAN" in operator_name(n) and f".{scanned_table(n)}".endswith(f".{self._table}")]
            self.scans += len(scans)
            self.rows_scanned += [rows_scanned(n) for n in scans]
            self.rows_emitted += [operator_rows(n) for n in scans]
        return result

    def __getattr__(self, name):
        return getattr(self._con, name)

    def stop(self) -> None:
        self._con.execute("pragma disable_profiling")
