"""Staging tells a proration credit from a charge by what Stripe marks it with, not by the sign of the amount.

Stripe's prorations (API 2025-03-31.basil, classic billing mode) are net of the subscription's discounts, so a
coupon that covers the whole price leaves a credit of 0, and a 0 says nothing. A credit line names the line it
credits (``parent.subscription_item_details.proration_details.credited_items``); an invoice item has no
``proration_details`` in that API version, and Stripe's descriptions say which is which: "Unused time on ..."
for a credit, "Remaining time on ..." for a charge. Hand-written raw rows, the two staging models built on them.
"""

import duckdb
import pytest

from cs_kpis.defs.staging.assets import STAGING_MODELS
from cs_kpis.lib.sql import build

MODELS = {m.name: m for m in STAGING_MODELS}

UNUSED = "Unused time on 2 × Growth (month) after 16 Mar 2026"
REMAINING = "Remaining time on 4 × Growth (month) after 16 Mar 2026"

# (id, proration, credited invoice, amount, description): is it a credit?
LINES = [
    ("il_credit_named_at_zero", True, "in_0", 0, UNUSED, True),
    # only credited_items tells this one: 0, and a description (localized) the English rule does not know
    ("il_credit_named_only_at_zero", True, "in_0", 0, "Temps inutilisé sur 2 × Growth", True),
    ("il_charge_at_zero", True, None, 0, REMAINING, False),
    ("il_credit_negative", True, None, -500, UNUSED, True),
    ("il_credit_unnamed_at_zero", True, None, 0, UNUSED, True),
    ("il_period_line", False, None, 5000, "Growth (month)", False),
    ("il_period_line_at_zero", False, None, 0, None, False),
]
ITEMS = [
    ("ii_credit_at_zero", True, 0, UNUSED, True),
    ("ii_charge_at_zero", True, 0, REMAINING, False),
    ("ii_credit_negative", True, -100, UNUSED, True),
    ("ii_one_off_credit", False, -100, "Goodwill credit", False),
]


@pytest.fixture
def con():
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    con.execute("create schema raw")
    con.execute("""create table raw.billing__invoice_lines (id varchar, invoice varchar,
        parent__subscription_item_details__subscription varchar,
        parent__subscription_item_details__subscription_item varchar, pricing__price_details__price varchar,
        pricing__price_details__product varchar, parent__type varchar, description varchar,
        parent__subscription_item_details__proration boolean,
        parent__subscription_item_details__proration_details__credited_items__invoice varchar, quantity bigint,
        period__start timestamptz, period__end timestamptz, currency varchar, amount bigint, subtotal bigint,
        discount_amounts json, discounts json, _extract_day date, _dlt_load_id varchar)""")
    for lid, proration, credited, amount, description, _ in LINES:
        con.execute("insert into raw.billing__invoice_lines values (?, 'in_1', 'sub_1', 'si_1', 'price_1', "
                    "'prod_1', 'subscription_item_details', ?, ?, ?, 2, timestamptz '2026-03-16 12:00:00+00', "
                    "timestamptz '2026-04-01 00:00:00+00', 'usd', ?, ?, '[]', '[]', date '2026-03-16', '0001.load')",
                    [lid, description, proration, credited, amount, amount])
    con.execute("""create table raw.billing__invoice_items (id varchar, invoice varchar, customer varchar,
        parent__subscription_details__subscription varchar, parent__subscription_details__subscription_item varchar,
        pricing__price_details__price varchar, proration boolean, quantity bigint, date timestamptz,
        period__start timestamptz, period__end timestamptz, currency varchar, amount bigint, description varchar,
        _extract_day date, _dlt_load_id varchar)""")
    for iid, proration, amount, description, _ in ITEMS:
        con.execute("insert into raw.billing__invoice_items values (?, null, 'cus_1', 'sub_1', 'si_1', 'price_1', ?, "
                    "2, timestamptz '2026-03-16 12:00:00+00', timestamptz '2026-03-16 12:00:00+00', "
                    "timestamptz '2027-03-16 12:00:00+00', 'usd', ?, ?, date '2026-03-16', '0001.load')",
                    [iid, proration, amount, description])
    yield con
    con.close()


def test_a_credit_is_what_stripe_marks_as_one_even_at_zero(con):
    build(con, MODELS["stg_billing__invoice_lines"])
    got = dict(con.execute("select line_id, is_proration_credit from staging.stg_billing__invoice_lines").fetchall())
    assert got == {lid: credit for lid, *_, credit in LINES}
    assert con.execute("select credited_invoice_id from staging.stg_billing__invoice_lines "
                       "where line_id = 'il_credit_named_at_zero'").fetchall() == [("in_0",)]


def test_a_pending_credit_at_zero_is_told_by_its_description(con):
    build(con, MODELS["stg_billing__invoice_items"])
    got = dict(con.execute("select invoice_item_id, is_proration_credit from staging.stg_billing__invoice_items"
                           ).fetchall())
    assert got == {iid: credit for iid, *_, credit in ITEMS}


def test_the_check_names_a_zero_proration_told_by_no_mark(con):
    """zero_amount_prorations_are_recognised: a 0 with neither a credited line nor an English description
    (the rule takes it for a charge) is named, in the lines and in the pending items; the rows above pass."""
    from cs_kpis.defs.staging.checks import ZERO_PRORATIONS_SQL
    from cs_kpis.lib.checks import run_rule

    build(con, MODELS["stg_billing__invoice_lines"])
    build(con, MODELS["stg_billing__invoice_items"])
    assert run_rule(con, ZERO_PRORATIONS_SQL) == (0, "")
    # a new version of the line, delivered by a later load (the nightly build merges it in)
    con.execute("update raw.billing__invoice_lines "
                "set parent__subscription_item_details__proration_details__credited_items__invoice = null, "
                "_dlt_load_id = '0002.load' where id = 'il_credit_named_only_at_zero'")
    con.execute("update raw.billing__invoice_items set description = 'Temps inutilisé sur 2 × Growth', "
                "_dlt_load_id = '0002.load' where id = 'ii_credit_at_zero'")
    build(con, MODELS["stg_billing__invoice_lines"])
    build(con, MODELS["stg_billing__invoice_items"])
    count, sample = run_rule(con, ZERO_PRORATIONS_SQL)
    assert count == 2 and "il_credit_named_only_at_zero" in sample and "ii_credit_at_zero" in sample
