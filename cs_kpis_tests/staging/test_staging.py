"""Staging on the tiny simulator company: one model per raw table, same rows, unique grain, renames and casts."""

import re

import dagster as dg
import pytest
from dagster_duckdb import DuckDBResource

from cs_kpis.defs.staging.assets import STAGING_MODELS
from cs_kpis.defs.staging.checks import build_grain_checks
from cs_kpis.lib.sql import asset_key_for_table, strip_comments
from cs_kpis_tests.staging.checking import run_check

MODELS = {m.name: m for m in STAGING_MODELS}

# the columns other layers build on (the staging contract); models may add more
CONTRACT = {
    "stg_crm__accounts": [
        "account_id",
        "account_name",
        "parent_account_id",
        "owner_id",
        "csm_id",
        "segment",
        "industry",
        "country",
        "csm_sentiment",
        "workspace_id",
        "created_at",
        "is_deleted",
        "valid_from",
        "valid_to",
        "is_current",
    ],
    "stg_crm__users": ["user_id", "user_name", "email", "role", "is_active"],
    "stg_crm__contacts": ["contact_id", "account_id", "role", "product_user_id", "email", "created_at"],
    "stg_billing__customers": ["customer_id", "crm_account_id", "customer_name", "currency", "created_at"],
    "stg_billing__events": [
        "event_id",
        "event_type",
        "created_at",
        "object_type",
        "object_id",
        "customer_id",
        "object",
        "previous_attributes",
        "extract_day",
    ],
    "stg_billing__fx_rates": ["rate_date", "currency", "rate"],
    "stg_billing__invoices": [
        "invoice_id",
        "customer_id",
        "subscription_id",
        "status",
        "billing_reason",
        "created_at",
        "due_at",
        "period_start",
        "period_end",
        "currency",
        "amount_due_minor",
        "amount_paid_minor",
        "amount_remaining_minor",
        "total_minor",
        "subtotal_minor",
    ],
    "stg_billing__invoice_lines": [
        "line_id",
        "invoice_id",
        "subscription_id",
        "subscription_item_id",
        "price_id",
        "amount_minor",
        "currency",
        "period_start",
        "period_end",
        "is_proration",
        "quantity",
    ],
    "stg_billing__prices": [
        "price_id",
        "product_id",
        "currency",
        "unit_amount_minor",
        "interval",
        "interval_count",
        "usage_type",
        "plan_tier",
    ],
    "stg_product__events": [
        "message_id",
        "event_type",
        "user_id",
        "event_name",
        "occurred_at",
        "received_at",
        "workspace_id",
        "properties",
        "traits",
    ],
    "stg_support__organizations": ["organization_id", "organization_name", "crm_account_id", "created_at"],
    "stg_support__tickets": [
        "ticket_id",
        "organization_id",
        "status",
        "priority",
        "type",
        "created_at",
        "updated_at",
        "satisfaction_score",
        "channel",
    ],
    "stg_support__ticket_metrics": [
        "ticket_metric_id",
        "ticket_id",
        "solved_at",
        "reopens",
        "replies",
        "first_reply_minutes",
        "full_resolution_minutes",
    ],
    "stg_support__satisfaction_ratings": ["rating_id", "ticket_id", "score", "created_at", "updated_at"],
    "stg_nps__survey_responses": [
        "response_id",
        "person_id",
        "score",
        "comment",
        "crm_account_id",
        "responded_at",
    ],
}


def _columns(con, table: str) -> dict[str, str]:
    schema, name = table.split(".")
    rows = con.execute(
        "select column_name, data_type from information_schema.columns where table_schema = ? and table_name = ? "
        "order by ordinal_position",
        [schema, name],
    ).fetchall()
    return dict(rows)


def _count(con, table: str) -> int:
    return con.execute(f"select count(*) from {table}").fetchall()[0][0]


def _raw_table(model_name: str) -> str:
    return "raw." + model_name.removeprefix("stg_")


@pytest.fixture(scope="module")
def con(tiny_company):
    with tiny_company.connect() as connection:
        yield connection


def test_every_raw_data_table_has_exactly_one_staging_model(con):
    raw_tables = {
        name
        for (name,) in con.execute(
            "select table_name from information_schema.tables where table_schema = 'raw'"
        ).fetchall()
        if not name.startswith("_")  # _dlt_*, _quarantine, _row_accounting belong to the raw loads
    }
    assert len(raw_tables) >= 20
    assert {f"stg_{t}" for t in raw_tables} == set(MODELS), "add (or remove) a staging model per raw table"
    for name, model in MODELS.items():
        assert model.deps == [asset_key_for_table("raw", _raw_table(name).split(".")[1])], name


@pytest.mark.parametrize("name", sorted(MODELS))
def test_staging_keeps_every_raw_row(con, name):
    assert _count(con, f"staging.{name}") == _count(con, _raw_table(name))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_grain_is_declared_unique_and_not_null(con, name):
    model = MODELS[name]
    assert model.grain, f"{name} declares no @grain"
    cols = ", ".join(model.grain)
    nulls = " or ".join(f"{c} is null" for c in model.grain)
    assert _count(con, f"(select {cols} from {model.table} group by {cols} having count(*) > 1) d") == 0
    assert _count(con, f"(select * from {model.table} where {nulls}) n") == 0


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_column_is_documented(con, name):
    model = MODELS[name]
    built = set(_columns(con, model.table))
    assert built == set(model.columns), "@column docs must list exactly the built columns"
    assert all(desc.strip() for desc in model.columns.values())


@pytest.mark.parametrize("name", sorted(CONTRACT))
def test_contract_columns_exist(con, name):
    missing = [c for c in CONTRACT[name] if c not in _columns(con, f"staging.{name}")]
    assert not missing, f"staging.{name} lost contract columns: {missing}"


@pytest.mark.parametrize("name", sorted(MODELS))
def test_staging_sql_has_no_join_and_no_group_by(name):
    body = strip_comments(MODELS[name].sql).lower()
    assert not re.search(r"\bjoin\b", body), "staging renames and casts; joins belong to marts"
    assert not re.search(r"\bgroup\s+by\b", body), "staging renames and casts; aggregations belong to marts"
    assert "qualify" not in body  # PORTABILITY.md


def test_staging_assets_are_in_their_group_and_every_grain_is_checked(tiny_company):
    evaluations = [
        e for e in tiny_company.result.get_asset_check_evaluations() if e.asset_key.path[0] == "staging"
    ]
    # the grain checks (unique, not null) and zero_amount_prorations_are_recognised
    assert len(evaluations) == 2 * len(MODELS) + 1
    assert all(e.passed for e in evaluations), [e.check_name for e in evaluations if not e.passed]
    materialized = {
        e.asset_key
        for e in tiny_company.result.get_asset_materialization_events()
        if e.asset_key.path[0] == "staging"
    }
    assert materialized == {m.key for m in STAGING_MODELS}


def test_fx_rates_types_and_values(con):
    assert _columns(con, "staging.stg_billing__fx_rates") == {
        "rate_date": "DATE",
        "currency": "VARCHAR",
        "rate": "DECIMAL(18,6)",
    }
    [(lower, usd)] = con.execute(
        "select sum(case when currency <> upper(currency) then 1 else 0 end), "
        "max(case when currency = 'USD' then rate end) from staging.stg_billing__fx_rates"
    ).fetchall()
    assert lower == 0
    assert usd == 1


def test_timestamps_stay_timestamptz_and_flags_are_boolean(con):
    accounts = _columns(con, "staging.stg_crm__accounts")
    assert accounts["valid_from"] == accounts["created_at"] == "TIMESTAMP WITH TIME ZONE"
    assert accounts["is_current"] == accounts["is_deleted"] == "BOOLEAN"
    assert _columns(con, "staging.stg_billing__invoices")["created_at"] == "TIMESTAMP WITH TIME ZONE"
    assert _columns(con, "staging.stg_billing__events")["created_at"] == "TIMESTAMP WITH TIME ZONE"
    assert _columns(con, "staging.stg_product__events")["occurred_at"] == "TIMESTAMP WITH TIME ZONE"
    assert _columns(con, "staging.stg_billing__events")["object"] == "JSON"


def test_stripe_money_in_minor_units_with_major_units_alongside(con):
    prices = _columns(con, "staging.stg_billing__prices")
    assert prices["unit_amount_minor"] == "BIGINT" and prices["unit_amount"] == "DECIMAL(18,2)"
    [(mismatches,)] = con.execute(
        "select count(*) from staging.stg_billing__invoices "
        "where amount_due <> cast(amount_due_minor as double) / 100 or currency <> upper(currency)"
    ).fetchall()
    assert mismatches == 0


def test_most_customers_carry_a_crm_account_id(con):
    [(customers, with_account, lower_currency)] = con.execute(
        "select count(*), count(crm_account_id), sum(case when currency <> upper(currency) then 1 else 0 end) "
        "from staging.stg_billing__customers"
    ).fetchall()
    assert with_account >= 0.9 * customers
    assert lower_currency == 0


def test_renames_read_the_right_vendor_fields(con):
    [(accounts, current, with_csm, with_segment, with_workspace)] = con.execute(
        "select count(*), sum(case when is_current then 1 else 0 end), count(csm_id), count(segment), "
        "count(workspace_id) from staging.stg_crm__accounts"
    ).fetchall()
    assert accounts == current == with_csm == with_segment == with_workspace
    assert {r for (r,) in con.execute("select distinct role from staging.stg_crm__users").fetchall()} == {
        "CSM",
        "AE",
    }
    [(tracks, tracks_with_workspace, groups_with_workspace)] = con.execute(
        "select sum(case when event_type = 'track' then 1 else 0 end), "
        "sum(case when event_type = 'track' and workspace_id is not null then 1 else 0 end), "
        "sum(case when event_type = 'group' and workspace_id is not null then 1 else 0 end) "
        "from staging.stg_product__events"
    ).fetchall()
    assert tracks == tracks_with_workspace and groups_with_workspace > 0
    [(updates, with_previous, with_customer)] = con.execute(
        "select count(*), count(previous_attributes), count(customer_id) from staging.stg_billing__events "
        "where event_type = 'customer.subscription.updated'"
    ).fetchall()
    assert updates == with_previous == with_customer > 0


def test_unique_check_fails_on_a_duplicated_row(tiny_company, tmp_path):
    warehouse = tiny_company.copy_warehouse(tmp_path)
    model = MODELS["stg_billing__fx_rates"]
    unique, not_null = build_grain_checks([model])
    assert run_check(unique, warehouse).passed

    with DuckDBResource(database=str(warehouse)).get_connection() as con:
        con.execute(f"insert into {model.table} select * from {model.table} limit 1")
    failed = run_check(unique, warehouse)
    assert not failed.passed
    assert failed.severity == dg.AssetCheckSeverity.ERROR
    assert failed.metadata["violations"].value == 1
    assert run_check(not_null, warehouse).passed

    with DuckDBResource(database=str(warehouse)).get_connection() as con:
        con.execute(
            f"update {model.table} set currency = null where rate_date = (select min(rate_date) from {model.table})"
        )
    assert not run_check(not_null, warehouse).passed


def test_grain_checks_are_blocking():
    checks = build_grain_checks(STAGING_MODELS)
    specs = [spec for c in checks for spec in c.check_specs]
    assert len(specs) == 2 * len(STAGING_MODELS)
    assert all(spec.blocking for spec in specs)


def test_zero_amount_prorations_check_warns_of_a_credit_the_rule_cannot_tell(tiny_company, tmp_path):
    """The tiny company's prorations are all told (English descriptions, credited lines); a proration of 0
    with no credited line and a localized description (the rule takes it for a charge) is named, as a warning."""
    from cs_kpis.defs.staging.checks import ZERO_PRORATIONS_RECOGNISED, staging_checks

    [check] = [c for c in staging_checks if next(iter(c.check_keys)).name == ZERO_PRORATIONS_RECOGNISED]
    warehouse = tiny_company.copy_warehouse(tmp_path)
    assert run_check(check, warehouse).passed

    with DuckDBResource(database=str(warehouse)).get_connection() as con:
        [(line_id,)] = con.execute(
            "select min(line_id) from staging.stg_billing__invoice_lines where is_proration_credit").fetchall()
        assert line_id is not None, "the tiny company has no proration credit to corrupt"
        con.execute("update staging.stg_billing__invoice_lines set amount_minor = 0, credited_invoice_id = null, "
                    "is_proration_credit = false, description = 'Temps inutilisé sur 2 × Growth' "
                    "where line_id = ?", [line_id])
    failed = run_check(check, warehouse)
    assert not failed.passed
    assert failed.severity == dg.AssetCheckSeverity.WARN
    assert failed.metadata["violations"].value == 1
    assert line_id in failed.metadata["sample"].value
