"""Every marts check passes on the hand-built company and fails on a corrupted copy of it."""

import shutil
from pathlib import Path

import duckdb
import pytest

from cs_kpis.defs.marts.checks import marts_checks
from cs_kpis_tests.check_call import call_check

from .billing_fixtures import build_marts
from .test_subscription_periods import AS_OF, scenarios

CHECKS = {next(iter(c.check_keys)).name: c for c in marts_checks}

CORRUPTIONS = {
    "subscription_states_unique_subscription_id_changed_at":
        "insert into marts.subscription_states select * from marts.subscription_states limit 1",
    "subscription_periods_unique_subscription_id_start_date":
        "insert into marts.subscription_periods select * from marts.subscription_periods limit 1",
    "mrr_daily_changes_unique_account_id_change_date":
        "insert into marts.mrr_daily_changes select * from marts.mrr_daily_changes limit 1",
    "accounts_unique_account_id": "insert into marts.accounts select * from marts.accounts limit 1",
    "account_states_unique_account_id_valid_from":
        "insert into marts.account_states select * from marts.account_states limit 1",
    # a state that ends before it begins (or runs into the next): two states, or none, on a day
    "account_states_do_not_overlap":
        "update marts.account_states set valid_to = valid_from where account_id = 'A_once'",
    "subscription_periods_no_negative_mrr":
        "update marts.subscription_periods set mrr = -1 where subscription_id = 'sub_annual'",
    "mrr_daily_changes_no_negative_mrr":
        "update marts.mrr_daily_changes set mrr = -5 where account_id = 'A_annual'",
    "subscription_periods_do_not_overlap":
        "update marts.subscription_periods set end_date = date '2026-04-20' "
        "where subscription_id = 'sub_disc' and start_date = date '2026-01-05'",
    "subscription_periods_have_fx_rate":
        "update marts.subscription_periods set fx_rate = null where subscription_id = 'sub_eur'",
    "mrr_daily_changes_match_subscription_periods":
        "update marts.mrr_daily_changes set mrr = mrr + 1 where account_id = 'A_seats'",
    # the invoices say the annual subscription was paid for 2 seats (200.00 a month), the ledger says 1 (100.00)
    "revenue_history_matches_paid_invoices": """
        insert into staging.stg_billing__prices (price_id, unit_amount_minor, interval, interval_count, usage_type,
            price_type) values ('price_year', 120000, 'year', 1, 'licensed', 'recurring');
        -- as marts.price_tiers would have it, rebuilt from the prices list
        insert into marts.price_tiers values ('price_year', 'graduated', 0, 0.0, null, 120000.0, 0.0, 1, true);
        insert into staging.stg_billing__invoices (invoice_id, subscription_id, status, created_at) values
            ('in_1', 'sub_annual', 'paid', timestamptz '2026-01-15 12:00:00+00'),
            ('in_2', 'sub_annual', 'paid', timestamptz '2026-04-20 12:00:00+00');
        insert into staging.stg_billing__invoice_lines (line_id, invoice_id, subscription_id, price_id, is_proration,
            quantity, period_start, period_end, amount_minor) values ('il_1', 'in_1', 'sub_annual', 'price_year',
            false, 2, timestamptz '2026-01-15 12:00:00+00', timestamptz '2027-01-15 12:00:00+00', 240000)
    """,
    # a price's unit_amount quoted as text ("12.50": a decimal where Stripe sends integer minor units) and a
    # quantity that became an object: json_transform would read 12 and NULL (1 seat) without a word
    "subscription_states_every_value_parsed": """
        update staging.stg_billing__events
        set object = cast(replace(replace(cast(object as varchar), '"quantity": 1', '"quantity": {"value": 44}'),
                                  '"unit_amount": ', '"unit_amount": "12.50", "x": ') as json)
        where event_id = (select min(event_id) from staging.stg_billing__events
                          where event_type like 'customer.subscription.%')
    """,
    # the hand-built company lists no discounts expanded: one discount found twice
    "discount_objects_unique_discount_id": """
        insert into marts.discount_objects values
            ('di_twice', 'TEN', 'forever', 10.0, null, null, timestamptz '2026-01-01 00:00:00+00', null, 'invoices'),
            ('di_twice', 'TEN', 'forever', 10.0, null, null, timestamptz '2026-01-01 00:00:00+00', null, 'invoices')
    """,
    # an event naming its discount by id (as Stripe sends every event) that no list shows expanded
    "subscription_states_event_discounts_known": """
        update staging.stg_billing__events
        set object = cast(replace(cast(object as varchar), '"discounts": []', '"discounts": ["di_nowhere"]') as json)
        where event_id = (select min(event_id) from staging.stg_billing__events
                          where event_type like 'customer.subscription.%'
                            and cast(object as varchar) like '%"discounts": []%')
    """,
    # the hand-built company has no item discounts: a stretch listed twice, and one leaving 150% of the item
    "subscription_item_discounts_unique_source_subscription_item_id_valid_from": """
        insert into marts.subscription_item_discounts values
            ('invoices', 'sub_seats', 'si_seats', timestamptz '2026-01-01 00:00:00+00', null, false, 1, 'TEN',
             0.9, 0.0),
            ('invoices', 'sub_seats', 'si_seats', timestamptz '2026-01-01 00:00:00+00', null, false, 1, 'TEN',
             0.9, 0.0)
    """,
    "subscription_item_discounts_stretches_valid": """
        insert into marts.subscription_item_discounts values
            ('invoices', 'sub_seats', 'si_seats', timestamptz '2026-01-01 00:00:00+00', null, false, 1, 'BAD',
             1.5, 0.0)
    """,
    "accounts_hierarchy_resolved":
        "update marts.accounts set parent_account_id = '001MISSINGPARENT00' where account_id = 'A_once'",
}


@pytest.fixture(scope="module")
def built_warehouse(tmp_path_factory) -> Path:
    """The hand-built company with every mart, built once for the module (about 3.5 CPU s)."""
    path = tmp_path_factory.mktemp("marts_checks") / "wh.duckdb"
    con = duckdb.connect(str(path))
    scenarios().write(con, AS_OF)
    build_marts(con)
    con.close()
    assert not path.with_name(path.name + ".wal").exists()  # checkpointed: the file alone is the database
    return path


@pytest.fixture
def warehouse(built_warehouse, tmp_path) -> str:
    """A copy of it per test, which the test may corrupt (a closed DuckDB file is copied whole)."""
    path = tmp_path / "wh.duckdb"
    shutil.copyfile(built_warehouse, path)
    return str(path)


def test_every_check_has_a_corruption_case():
    assert set(CORRUPTIONS) == set(CHECKS)


def test_all_checks_pass_on_the_clean_company(warehouse):
    failed = [name for name, chk in CHECKS.items() if not call_check(chk, warehouse).passed]
    assert failed == []


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_check_fails_on_corrupted_data(warehouse, name):
    con = duckdb.connect(warehouse)
    con.execute(CORRUPTIONS[name])
    con.close()
    result = call_check(CHECKS[name], warehouse)
    assert not result.passed
    assert result.metadata["violations"].value >= 1
    assert "sample" in result.metadata


def test_values_of_the_wrong_type_are_named_with_their_field(warehouse):
    """The quoted decimal and the object quantity of the corruption above are each named, with the value."""
    con = duckdb.connect(warehouse)
    con.execute(CORRUPTIONS["subscription_states_every_value_parsed"])
    con.close()
    result = call_check(CHECKS["subscription_states_every_value_parsed"], warehouse)
    sample = result.metadata["sample"].value
    assert "price.unit_amount" in sample and "12.50" in sample
    assert "].quantity" in sample and "OBJECT" in sample


def test_fields_of_the_object_and_of_every_item_are_named(warehouse):
    """The object's own fields are checked as its items' are (each object and each item is parsed once for all
    its fields): a status sent as a number and an end as text, and a second item's quantity quoted."""
    con = duckdb.connect(warehouse)
    con.execute("""
        update staging.stg_billing__events
        set object = json_merge_patch(object, '{"status": 7, "ended_at": "2026-01-01"}')
        where event_id = (select min(event_id) from staging.stg_billing__events
                          where event_type like 'customer.subscription.%')
    """)
    con.execute("""
        update staging.stg_billing__events
        set object = json_merge_patch(object, json_object('items', json_object('data', json_array(
            json_extract(object, '$.items.data[0]'), json_merge_patch(json_extract(object, '$.items.data[0]'),
                                                                     '{"quantity": "3"}')))))
        where event_id = (select max(event_id) from staging.stg_billing__events
                          where event_type like 'customer.subscription.%')
    """)
    con.close()
    result = call_check(CHECKS["subscription_states_every_value_parsed"], warehouse)
    sample = result.metadata["sample"].value
    assert not result.passed and result.metadata["violations"].value == 3
    assert "| status | UBIGINT | 7 |" in sample and '| ended_at | VARCHAR | "2026-01-01" |' in sample
    assert '| items[1].quantity | VARCHAR | "3" |' in sample and "items[0]" not in sample


def test_pricing_fields_of_the_wrong_type_are_named(warehouse):
    """unit_amount_decimal is a decimal as text in Stripe and divide_by an integer: a number where text is
    due, or a quoted pack size, would be cast silently by the parse; the check names both."""
    con = duckdb.connect(warehouse)
    con.execute("""
        update staging.stg_billing__events
        set object = cast(replace(cast(object as varchar), '"unit_amount": ',
                                  '"unit_amount_decimal": 2499.5, "transform_quantity": {"divide_by": "5"}, '
                                  || '"unit_amount": ') as json)
        where event_id = (select min(event_id) from staging.stg_billing__events
                          where event_type like 'customer.subscription.%')
    """)
    con.close()
    result = call_check(CHECKS["subscription_states_every_value_parsed"], warehouse)
    sample = result.metadata["sample"].value
    assert not result.passed
    assert "price.unit_amount_decimal" in sample and "2499.5" in sample
    assert "price.transform_quantity.divide_by" in sample
