"""Pure helpers: parsing, flattening, type tracking, fx rates, event SQL."""

from datetime import UTC, date, datetime

import pytest

from cs_kpis.sources.billing.helpers import parse_fx_rates, prepare_children, prepare_object
from cs_kpis.sources.common.helpers import (
    Reject,
    check_field_types,
    flatten,
    parse_iso,
    parse_salesforce_datetime,
    parse_unix,
)
from cs_kpis.sources.common.landing import pending_days
from cs_kpis.sources.crm.helpers import prepare_record
from cs_kpis.sources.product import helpers as sql
from cs_kpis_tests.sources.landing_builder import account, subscription


@pytest.mark.parametrize(
    ("parse", "value", "expected"),
    [
        (
            parse_salesforce_datetime,
            "2025-12-16T13:05:30.000+0000",
            datetime(2025, 12, 16, 13, 5, 30, tzinfo=UTC),
        ),
        (
            parse_salesforce_datetime,
            "2025-12-16T15:05:30.000+0200",
            datetime(2025, 12, 16, 13, 5, 30, tzinfo=UTC),
        ),
        (parse_unix, 1234567890, datetime(2009, 2, 13, 23, 31, 30, tzinfo=UTC)),
        (parse_iso, "2012-09-06T20:15:09Z", datetime(2012, 9, 6, 20, 15, 9, tzinfo=UTC)),
        (parse_iso, None, None),
    ],
    ids=["salesforce", "salesforce-offset", "stripe-unix", "zendesk-iso", "null"],
)
def test_timestamps_parse_to_utc(parse, value, expected) -> None:
    assert parse(value) == expected


@pytest.mark.parametrize(
    ("parse", "value"),
    [
        (parse_salesforce_datetime, "31/12/2025"),
        (parse_unix, "1234567890"),
        (parse_iso, "2012-09-06T20:15:09"),
    ],
    ids=["salesforce-day-first", "unix-as-string", "iso-without-zone"],
)
def test_bad_timestamps_are_rejected(parse, value) -> None:
    with pytest.raises(Reject):
        parse(value)


def test_salesforce_attributes_are_stripped_and_fields_flattened() -> None:
    row = prepare_record(account(1, "2026-01-01"), "accounts")
    assert "attributes" not in row and not any(k.startswith("attributes") for k in row)
    assert row["SystemModstamp"] == datetime(2026, 1, 1, 12, 5, 30, tzinfo=UTC)


def test_flatten_keeps_lists_and_json_paths_whole() -> None:
    obj = {"a": {"b": 1, "c": {"d": 2}}, "items": {"data": [1]}, "tags": ["x"], "empty": {}}
    assert flatten(obj, frozenset({"items"})) == {
        "a__b": 1,
        "a__c__d": 2,
        "items": {"data": [1]},
        "tags": ["x"],
        "empty": {},
    }


def test_field_types_allow_new_fields_and_ints_as_floats_but_not_changes() -> None:
    known: dict[str, str] = {}
    check_field_types({"priority": "high", "amount": 1}, known, where="f")
    check_field_types({"priority": None, "amount": 1.5, "new": True}, known, where="f")
    with pytest.raises(
        Reject, match=r"'priority' changed type from text to number .* in part-2.json"
    ) as rejected:
        check_field_types({"priority": 3}, known, where="part-2.json")
    assert rejected.value.field == "priority"
    # a number turning into an object is a change too (flattening would move it to amount__value)
    with pytest.raises(Reject, match="'amount' changed type from number to object"):
        check_field_types({"amount": {"value": 3}}, known, where="part-3.json")
    # a rejected record teaches nothing: its new fields are not recorded
    with pytest.raises(Reject):
        check_field_types({"brand_new": 1, "priority": 4}, known, where="part-4.json")
    assert "brand_new" not in known


def test_stripe_money_stays_in_minor_units_and_negative_or_unknown_is_rejected() -> None:
    sub = subscription(1, 1, "2026-01-01")
    row = prepare_object(sub, "subscriptions", {"usd"})
    assert row["created"].tzinfo is UTC and isinstance(row["items"], dict)
    items = prepare_children(sub, "subscription_items", {"usd"})
    assert items[0]["price__unit_amount"] == 2000 and items[0]["subscription"] == sub["id"]
    with pytest.raises(Reject, match="unknown currency"):
        prepare_object({**sub, "currency": "xyz"}, "subscriptions", {"usd"})
    assert prepare_children({**sub, "currency": "xyz"}, "subscription_items", {"usd"}) == []
    with pytest.raises(Reject, match="negative amount in amount_due"):
        prepare_object({"id": "in_1", "amount_due": -1}, "invoices")


def test_fx_rates_parse_and_report_bad_lines() -> None:
    rows, bad = parse_fx_rates("date,currency,rate\n2026-01-01,eur,1.1\n2026-01-01,GBP,oops\n")
    assert rows == [{"date": date(2026, 1, 1), "currency": "EUR", "rate": 1.1}]
    assert bad == [(2, "2026-01-01,GBP,oops", "bad fx rate: could not convert string to float: 'oops'")]


def test_pending_days() -> None:
    days = ["2026-01-01", "2026-01-02", "2026-01-03"]
    assert pending_days(days, None, 1) == ["2026-01-01"]
    assert pending_days(days, "2026-01-01") == ["2026-01-02", "2026-01-03"]
    assert pending_days(days, "2026-01-03") == []


def test_event_sql_quotes_paths() -> None:
    assert sql.file_list(["/a/it's.jsonl"]) == "['/a/it''s.jsonl']"
    assert "missing primary key messageId" in sql.bad_reason_sql()


def test_api_readers_load_lazily_and_a_missing_one_names_its_module():
    from cs_kpis.sources.billing.api import iter_records
    from cs_kpis.sources.common.entity import lazy_api_reader

    assert lazy_api_reader("cs_kpis.sources.billing.api")() is iter_records
    with pytest.raises(NotImplementedError, match="cs_kpis.sources.product.api.iter_records"):
        lazy_api_reader("cs_kpis.sources.product.api")()


def test_billing_contract_quarantines_bad_discount_values_on_items_and_invoices():
    """The stacked discounts the MRR models read (an item's own, an invoice's list) are typed: a quoted
    percent, an amount_off in an unknown currency or a negative amount_off is rejected, naming the field."""
    from cs_kpis.sources.billing.helpers import contracts

    checks = contracts({"usd", "eur"}, None)

    def sub(item_discounts, discounts=()):
        return {"id": "sub_1", "customer": "cus_1", "status": "active", "currency": "usd", "discounts": list(discounts),
                "items": {"data": [{"id": "si_1", "quantity": 2, "discounts": item_discounts,
                                    "price": {"id": "price_1", "unit_amount": 100, "currency": "usd"}}]}}

    good = {"id": "di_1", "coupon": {"id": "C", "duration": "forever", "percent_off": 10.0}, "start": 1, "end": None}
    off = {"id": "di_2", "coupon": {"id": "D", "duration": "forever", "amount_off": 500, "currency": "eur"}, "start": 1}
    checks["subscriptions"](sub([good], [off]))  # both fine
    bad_percent = good | {"coupon": good["coupon"] | {"percent_off": "10"}}
    with pytest.raises(Reject, match=r"items\.data\[0\]\.discounts\[0\]\.coupon\.percent_off"):
        checks["subscriptions"](sub([bad_percent]))
    with pytest.raises(Reject, match="unknown currency"):
        checks["subscriptions"](sub([], [off | {"coupon": off["coupon"] | {"currency": "xyz"}}]))
    invoice = {"id": "in_1", "customer": "cus_1", "currency": "usd",
               "discounts": [off | {"coupon": off["coupon"] | {"amount_off": -5}}]}
    with pytest.raises(Reject, match=r"discounts\[0\]\.coupon\.amount_off"):
        checks["invoices"](invoice)


def test_billing_contract_types_tiered_and_decimal_prices():
    """Tiers, unit_amount_decimal (a decimal as text) and transform_quantity are read for MRR: a number where
    Stripe sends text, a round other than up/down, a divide_by of 0 or a negative tier amount is rejected."""
    from cs_kpis.sources.billing.helpers import contracts

    check = contracts({"usd"}, None)["prices"]
    base = {"id": "price_1", "currency": "usd", "billing_scheme": "per_unit", "unit_amount": None}
    check(base | {"unit_amount_decimal": "2499.5"})
    check(base | {"unit_amount": 12000, "transform_quantity": {"divide_by": 5, "round": "up"}})
    tiered = base | {"billing_scheme": "tiered", "tiers_mode": "volume", "tiers": [
        {"up_to": 20, "unit_amount": 2600, "unit_amount_decimal": "2600", "flat_amount": 0},
        {"up_to": None, "unit_amount": 2200, "flat_amount": 5000, "flat_amount_decimal": "5000"}]}
    check(tiered)
    with pytest.raises(Reject, match="unit_amount_decimal"):
        check(base | {"unit_amount_decimal": 2499.5})
    with pytest.raises(Reject, match="unit_amount_decimal"):
        check(base | {"unit_amount_decimal": "-1"})
    with pytest.raises(Reject, match=r"transform_quantity\.round"):
        check(base | {"transform_quantity": {"divide_by": 5, "round": "nearest"}})
    with pytest.raises(Reject, match=r"transform_quantity\.divide_by"):
        check(base | {"transform_quantity": {"divide_by": 0, "round": "up"}})
    with pytest.raises(Reject, match=r"tiers\[1\]\.flat_amount"):
        check(tiered | {"tiers": [tiered["tiers"][0], tiered["tiers"][1] | {"flat_amount": -1}]})
    with pytest.raises(Reject, match="tiers_mode"):
        check(tiered | {"tiers_mode": "stairstep"})


def test_flatten_turns_dots_in_vendor_keys_into_the_separator_and_keeps_json_paths_whole():
    obj = {"a.b": 1, "m": {"x.y": 2, "n": {}, "o": {"p": None}}, "j": {"k": 1}, "q.r": {"s": 3}}
    assert flatten(obj, frozenset({"j", "q.r.s"})) == {
        "a__b": 1, "m__x__y": 2, "m__n": {}, "m__o__p": None, "j": {"k": 1}, "q__r__s": 3}
    assert list(flatten(obj)) == ["a__b", "m__x__y", "m__n", "m__o__p", "j__k", "q__r__s"]
    assert flatten({"s": {"t": 1}}, prefix="p.") == {"p.s.t": 1}
