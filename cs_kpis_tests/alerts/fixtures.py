"""A tiny hand-built warehouse for the alert engine: only the columns the alert SQL reads.

Days 2024-12-01 .. 2025-03-31 (as-of day 2025-03-31), accounts A, B, C, each owned by a CSM (A and C: Cara
Smith, B: Dev Patel), MRR 1,000 each. By default nothing fires (usage flat, green health, no term contract,
seats half used, no tickets); each test sets the few cells that make its condition fire and works out the
expected alert by hand.
"""

import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd

from cs_kpis.defs.health.assets import write_frame

FIRST, AS_OF = dt.date(2024, 12, 1), dt.date(2025, 3, 31)
DAYS = [FIRST + dt.timedelta(days=i) for i in range((AS_OF - FIRST).days + 1)]
ACCOUNTS = ("A", "B", "C")
COMPONENT_DELTAS = [f"{c}_delta" for c in ("usage", "adoption", "support", "sentiment", "billing")]
CSM = {"A": ("u_csm1", "Cara Smith"), "B": ("u_csm2", "Dev Patel"), "C": ("u_csm1", "Cara Smith")}


def d(s: str) -> dt.date:
    return dt.date.fromisoformat(s)


def base_indicators() -> pd.DataFrame:
    rows = [{"account_id": a, "day": day, "is_active": True, "is_trial": False, "mrr": 1000.0, "arr": 12000.0,
             "plan": "growth",
             "seats": 10, "events_30d": 100, "events_prior_30d": 100, "usage_trend": 0.0, "active_users_30d": 5,
             "feature_adoption": 0.4, "seat_utilisation": 0.5, "open_urgent_high": 0, "days_to_renewal": 200,
             "cancellation_scheduled": 0} for a in ACCOUNTS for day in DAYS]
    return pd.DataFrame(rows)


def base_scores() -> pd.DataFrame:
    rows = [{"day": day, "account_id": a, "is_active": True, "arr": 12000.0, "score": 80.0, "band": "green",
             "components_present": "usage,support", "delta_7d": 0.0, "delta_30d": 0.0}
            for a in ACCOUNTS for day in DAYS]
    return pd.DataFrame(rows)


def set_cells(df: pd.DataFrame, account: str, start: str, end: str, **values) -> None:
    mask = (df["account_id"] == account) & (df["day"] >= d(start)) & (df["day"] <= d(end))
    for col, v in values.items():
        df.loc[mask, col] = v


class Warehouse:
    """Frames to edit, then ``build(path)`` writes them all to a DuckDB file."""

    def __init__(self):
        self.indicators = base_indicators()
        self.scores = base_scores()
        self.changes = pd.DataFrame(columns=["day", "account_id", "window_days", "delta", "reason",
                                             *COMPONENT_DELTAS])
        self.activity = pd.DataFrame({"account_id": pd.Series(dtype=str), "day": pd.Series(dtype=object),
                                      "tickets_created": pd.Series(dtype="int64")})
        self.contacts = pd.DataFrame(columns=["contact_id", "account_id", "first_name", "last_name", "role",
                                              "product_user_id", "created_at"])
        self.events = pd.DataFrame(columns=["message_id", "user_id", "occurred_at"])
        self.nps = pd.DataFrame(columns=["response_id", "crm_account_id", "score", "respondent_email", "comment",
                                         "responded_at"])
        # billing: customer cus_<account> maps to each account
        self.xref = pd.DataFrame([("billing", f"cus_{a}", a) for a in ACCOUNTS],
                                 columns=["source_system", "source_id", "crm_account_id"])
        # MRR changes (only what evaluate.py reads): the account's MRR from change_date on
        self.mrr_changes = pd.DataFrame(columns=["account_id", "change_date", "mrr"])
        # the CRM state over time (marts.account_states): each account with its CSM since long before
        self.account_states = pd.DataFrame(
            [(a, "2020-01-01", None, CSM[a][0], False) for a in ACCOUNTS],
            columns=["account_id", "valid_from", "valid_to", "csm_id", "is_deleted"])

    def set_renewal(self, account: str, renewal: str | None) -> None:
        """``account``'s renewal (days_to_renewal) on every day: the days to ``renewal``, None for none."""
        rows = self.indicators["account_id"] == account
        self.indicators["days_to_renewal"] = self.indicators["days_to_renewal"].astype("Int64")  # nullable
        self.indicators.loc[rows, "days_to_renewal"] = [
            pd.NA if renewal is None else (d(renewal) - day).days for day in self.indicators.loc[rows, "day"]]

    def build(self, path: Path):
        con = duckdb.connect(str(path))
        for s in ("kpis", "marts", "staging"):
            con.execute(f"create schema if not exists {s}")
        write_frame(con, "kpis.account_indicators_daily", self.indicators,
                    {"day": "date", "mrr": "decimal(18, 2)", "arr": "decimal(18, 2)"})
        write_frame(con, "kpis.health_scores_daily", self.scores, {"day": "date"})
        write_frame(con, "kpis.health_score_changes", self.changes,
                    {"day": "date", "window_days": "integer", "delta": "double", "reason": "varchar",
                     "account_id": "varchar", **dict.fromkeys(COMPONENT_DELTAS, "double")})
        write_frame(con, "kpis.account_activity_daily", self.activity, {"day": "date", "tickets_created": "bigint"})
        write_frame(con, "kpis.health_product_config", pd.DataFrame(
            [("top_plan", "enterprise", None)], columns=["setting", "name", "value"]), {"value": "double"})
        write_frame(con, "marts.accounts", pd.DataFrame(
            [(a, f"Account {a}", CSM[a][0]) for a in ACCOUNTS], columns=["account_id", "account_name", "csm_id"]))
        write_frame(con, "marts.account_states", self.account_states, {"valid_from": "date", "valid_to": "date"})
        write_frame(con, "staging.stg_crm__users", pd.DataFrame(
            [("u_csm1", "Cara Smith", "cara@example.com"), ("u_csm2", "Dev Patel", "dev@example.com")],
            columns=["user_id", "user_name", "email"]))
        contact_casts = {c: "varchar" for c in self.contacts.columns if c != "created_at"}
        write_frame(con, "staging.stg_crm__contacts", self.contacts, {**contact_casts, "created_at": "timestamptz"})
        write_frame(con, "staging.stg_product__events", self.events,
                    {"message_id": "varchar", "user_id": "varchar", "occurred_at": "timestamptz"})
        write_frame(con, "staging.stg_nps__survey_responses", self.nps,
                    {"response_id": "varchar", "crm_account_id": "varchar", "score": "integer",
                     "respondent_email": "varchar", "comment": "varchar", "responded_at": "timestamptz"})
        write_frame(con, "marts.account_xref", self.xref)
        write_frame(con, "marts.mrr_daily_changes", self.mrr_changes,
                    {"account_id": "varchar", "change_date": "date", "mrr": "decimal(18, 2)"})
        return con
