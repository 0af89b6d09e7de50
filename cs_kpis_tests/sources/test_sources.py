"""The dlt sources against tiny landing folders: loads, reruns, increments, quarantine, schema changes."""

import json
import re
import shutil
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from dlt.pipeline.exceptions import PipelineStepFailed

from cs_kpis_tests.landing_builder import final_snapshot, write_landing
from cs_kpis_tests.sources.conftest import Loader, make_loader
from cs_kpis_tests.sources.landing_builder import (
    DAYS,
    account,
    customer,
    invoice,
    price,
    segment_event,
    subscription,
    ticket,
    tiny_company,
    tiny_events,
    unix,
)

ENTITY_TABLES = {
    "crm": ["crm__users", "crm__contacts", "crm__opportunities"],
    "billing": [
        "billing__customers",
        "billing__products",
        "billing__prices",
        "billing__coupons",
        "billing__subscriptions",
        "billing__subscription_items",
        "billing__invoices",
        "billing__invoice_lines",
        "billing__events",
    ],
    "support": [
        "support__organizations",
        "support__tickets",
        "support__ticket_metrics",
        "support__satisfaction_ratings",
    ],
    "nps": ["nps__survey_responses"],
}


SYSTEMS = ("crm", "billing", "support", "nps", "product")


@dataclass(frozen=True)
class Loaded:
    landing: Path
    loader: Loader


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Loaded:
    """The tiny company with ten product events a day, loaded by every source in turn (:data:`SYSTEMS`) into a
    new warehouse, once for the module. The tests reading it open it read-only; a test that loads more works on
    a copy (:func:`_copy`)."""
    root = tmp_path_factory.mktemp("loaded")
    events = {day: tiny_events(day, i * 100, 10) for i, day in enumerate(DAYS)}
    landing = write_landing(root / "landing", tiny_company(), events=events)
    loader = Loader(root, root / "warehouse.duckdb")
    with pytest.MonkeyPatch.context() as mp:  # what the autouse _no_telemetry does for each test
        mp.setenv("RUNTIME__DLTHUB_TELEMETRY", "false")
        mp.setenv("DLT_DATA_DIR", str(root / "dlt_global"))
        mp.delenv("DLT_PROJECT_DIR", raising=False)
        for system in SYSTEMS:
            loader.run(system, landing)
    # every connection closed and checkpointed: the file alone is the warehouse, so a copy of it is too
    assert not loader.warehouse.with_name(loader.warehouse.name + ".wal").exists()
    return Loaded(landing, loader)


def _copy(loaded: Loaded, tmp_path: Path) -> Loader:
    """The loaded warehouse and the pipelines' dlt folder copied into ``tmp_path``, as its own loader would have
    left them after loading the same landing."""
    loader = Loader(tmp_path, tmp_path / "warehouse.duckdb")
    shutil.copyfile(loaded.loader.warehouse, loader.warehouse)
    shutil.copytree(loaded.loader.tmp_path / "dlt", tmp_path / "dlt")
    return loader


def test_each_source_loads_the_expected_rows(loaded: Loaded) -> None:
    loader = loaded.loader
    count = {
        t: loader.query(f"select count(*) from raw.{t}")[0][0]
        for t in (
            "crm__accounts",
            "crm__users",
            "billing__subscriptions",
            "billing__subscription_items",
            "billing__invoice_lines",
            "support__tickets",
            "nps__survey_responses",
            "product__events",
            "billing__fx_rates",
        )
    }
    # accounts: 3 accounts, 2 of them with a second version
    assert count == {
        "crm__accounts": 5,
        "crm__users": 3,
        "billing__subscriptions": 2,
        "billing__subscription_items": 2,
        "billing__invoice_lines": 2,
        "support__tickets": 3,
        "nps__survey_responses": 3,
        "product__events": 30,
        "billing__fx_rates": 9,
    }
    # attributes stripped, timestamps typed, money kept in minor units, Zendesk ids BIGINT
    columns = dict(
        loader.query(
            "select table_name || '.' || column_name, data_type from information_schema.columns where table_schema = 'raw'"
        )
    )
    assert "crm__accounts.attributes__type" not in columns
    assert columns["crm__accounts.system_modstamp"] == "TIMESTAMP WITH TIME ZONE"
    assert columns["billing__subscriptions.canceled_at"] == "TIMESTAMP WITH TIME ZONE"
    assert columns["billing__invoices.created"] == "TIMESTAMP WITH TIME ZONE"
    assert columns["billing__invoices.amount_due"] == "BIGINT"
    assert columns["billing__customers.metadata__salesforce_account_id"] == "VARCHAR"
    assert columns["support__tickets.id"] == "BIGINT"
    assert columns["support__tickets.organization_id"] == "BIGINT"
    assert columns["support__tickets.created_at"] == "TIMESTAMP WITH TIME ZONE"
    assert columns["nps__survey_responses.updated_at"] == "TIMESTAMP WITH TIME ZONE"
    assert columns["product__events.context_group_id"] == "VARCHAR"
    assert columns["product__events.properties"] == "JSON"
    # the removed subscription item disappeared with the subscription's new version
    assert loader.query("select id, quantity from raw.billing__subscription_items order by id") == [
        ("si_00000000000011", 8),
        ("si_00000000000021", 5),
    ]


def test_accounts_keep_scd2_history_by_extract_day(loaded: Loaded) -> None:
    # crm__accounts is crm's alone: the loads after crm's (the other systems') do not write it
    loader = loaded.loader
    rows = loader.query(
        "select id, owner_id, segment__c, _dlt_valid_from::date::varchar, _dlt_valid_to::date::varchar "
        "from raw.crm__accounts order by id, _dlt_valid_from"
    )
    a1, a2, a3 = (f"001{n:012d}AAA" for n in (1, 2, 3))
    assert rows == [
        (a1, "005000000000001AAA", "SMB", "2026-01-01", "2026-01-02"),
        (a1, "005000000000003AAA", "SMB", "2026-01-02", None),
        (a2, "005000000000001AAA", "Mid-Market", "2026-01-01", "2026-01-03"),
        (a2, "005000000000001AAA", "Enterprise", "2026-01-03", None),
        (a3, "005000000000001AAA", "SMB", "2026-01-03", None),
    ]
    # segment as of a day
    as_of = loader.query(
        f"select segment__c from raw.crm__accounts where id = '{a2}' and _dlt_valid_from <= '2026-01-02' "
        "and (_dlt_valid_to is null or _dlt_valid_to > '2026-01-02')"
    )
    assert as_of == [("Mid-Market",)]


def test_rerun_loads_nothing_and_tables_stay_identical(loaded: Loaded, tmp_path: Path) -> None:
    tables = [t for ts in ENTITY_TABLES.values() for t in ts] + [
        "crm__accounts",
        "product__events",
        "_quarantine",
    ]
    loader = _copy(loaded, tmp_path)  # every system loaded once
    before = loader.tables(t for t in tables if t != "_quarantine")
    for system in SYSTEMS:
        totals = loader.run(system, loaded.landing)
        assert all(c.rows_read == 0 for c in totals.values()), (system, totals)
    assert loader.tables(before) == before


def _without_product_events(landing: Path) -> dict[str, object]:
    """Every file of a landing but the product events' (bytes), and its manifest without the counts: all that
    the crm, billing, support and nps sources read."""
    files: dict[str, object] = {str(p.relative_to(landing)): p.read_bytes() for p in sorted(landing.rglob("*"))
                                if p.is_file() and p.name != "_manifest.json" and p.relative_to(landing).parts[0] != "product"}
    files["_manifest.json"] = {k: v for k, v in json.loads((landing / "_manifest.json").read_text()).items()
                               if k != "counts"}
    return files


def test_snapshot_then_increments_equals_one_final_snapshot(loaded: Loaded, tmp_path: Path) -> None:
    history = tiny_company()
    # the increments: the tiny company's three extract days, loaded system by system by the module's warehouse,
    # whose landing is this one with product events besides (which these systems do not read)
    inc_landing = write_landing(tmp_path / "inc_landing", history)
    assert _without_product_events(loaded.landing) == _without_product_events(inc_landing)
    incremental = loaded.loader
    snapshot = make_loader(tmp_path, "snapshot")
    final_landing = write_landing(tmp_path / "final_landing", final_snapshot(history))
    for system in ENTITY_TABLES | {"crm": None}:
        snapshot.run(system, final_landing)
    names = [table for tables in ENTITY_TABLES.values() for table in tables]
    incremental_tables, snapshot_tables = incremental.tables(names), snapshot.tables(names)
    for table in names:
        assert incremental_tables[table] == snapshot_tables[table], table
    current = "select * exclude (_dlt_valid_from, _dlt_id, _dlt_load_id) from raw.crm__accounts where _dlt_valid_to is null"
    assert sorted(incremental.query(current)) == sorted(snapshot.query(current))


def test_bad_input_is_quarantined_and_the_accounting_holds(loader: Loader, tmp_path: Path) -> None:
    history = tiny_company()
    d1 = DAYS[0]
    no_id = customer(9, 1)
    del no_id["id"]
    history[d1][("billing", "customers")].append(no_id)
    history[d1][("billing", "invoices")].append(invoice(9, 1, 1, d1, amount_due=-500))
    history[d1][("billing", "subscriptions")].append(subscription(9, 1, d1, currency="xyz"))
    history[d1][("crm", "Account")].append(account(9, d1, CreatedDate="31/12/2025"))
    good = tiny_events(d1, 0, 5)
    no_message_id = segment_event(50, d1)
    del no_message_id["messageId"]
    events = {d1: [*good, '{"type": "track", "messageId": "ajs-broken"', no_message_id, good[0]]}
    landing = write_landing(tmp_path / "landing", history, events=events)
    totals = {}
    for system in ("crm", "billing", "product"):
        totals.update({(system, k): v for k, v in loader.run(system, landing).items()})

    rows = loader.query(
        "select source, entity, origin, position, reason, raw_text from raw._quarantine order by all"
    )
    reasons = {(s, e): (o, p, r) for s, e, o, p, r, _ in rows}
    assert reasons[("billing", "customers")] == (
        "billing/customers/2026-01-01/part-00001.json",
        2,
        "required field id is missing",
    )
    assert reasons[("billing", "invoices")][2] == "field amount_due: below the minimum 0, got -500"
    assert "unknown currency" in reasons[("billing", "subscriptions")][2]
    assert "CreatedDate" in reasons[("crm", "accounts")][2]
    product = [(o, p, r.split(":")[0]) for s, e, o, p, r, _ in rows if s == "product"]
    assert product == [
        ("product/events/2026-01-01/part-00001.jsonl", 5, "malformed JSON line"),
        ("product/events/2026-01-01/part-00001.jsonl", 6, "missing primary key messageId"),
    ]
    assert all(raw for *_, raw in rows)
    # items of the quarantined subscription are not loaded either
    assert loader.query(
        "select count(*) from raw.billing__subscription_items where subscription = 'sub_00000000000009'"
    ) == [(0,)]
    for key, counts in totals.items():
        assert counts.balanced, (key, counts)
    assert totals[("product", "events")].as_dict() == {
        "rows_read": 8,
        "rows_loaded": 5,
        "rows_quarantined": 2,
        "rows_deduplicated": 1,
    }
    assert totals[("billing", "customers")].rows_quarantined == 1
    accounting = loader.query(
        "select sum(rows_read), sum(rows_loaded + rows_quarantined + rows_deduplicated) from raw._row_accounting"
    )
    assert accounting[0][0] == accounting[0][1]


def test_a_new_field_evolves_the_schema(loader: Loader, tmp_path: Path) -> None:
    history = tiny_company()
    history[DAYS[1]][("crm", "Account")] = [account(1, DAYS[1], Upsell_Score__c=0.87)]
    history[DAYS[1]][("support", "tickets")] = [ticket(1, 1, DAYS[1], new_field="surprise")]
    landing = write_landing(tmp_path / "landing", history)
    loader.run("crm", landing)
    loader.run("support", landing)
    assert loader.query(
        "select upsell_score__c from raw.crm__accounts where upsell_score__c is not null"
    ) == [(0.87,)]
    assert loader.query("select new_field from raw.support__tickets where new_field is not null") == [
        ("surprise",)
    ]


def test_one_ticket_whose_priority_is_a_number_is_quarantined_and_the_rest_loads(loader: Loader, tmp_path: Path) -> None:
    # before issue 15 this one ticket stopped all of support ("'priority' changed type from text to number")
    history = tiny_company()
    history[DAYS[1]][("support", "tickets")] = [ticket(1, 1, DAYS[1], priority=3), ticket(2, 1, DAYS[1])]
    landing = write_landing(tmp_path / "landing", history)
    totals = loader.run("support", landing)
    assert loader.query("select entity, origin, position, field, reason from raw._quarantine") == [
        ("tickets", "support/tickets/2026-01-02/part-00001.json", 0, "priority",
         "field priority: expected text, got 3"),
    ]
    assert totals["tickets"].rows_quarantined == 1 and totals["tickets"].balanced
    # the earlier version of ticket 1 stays; ticket 2's new version loads
    assert loader.query("select id, priority, updated_at::date::varchar from raw.support__tickets order by id")[:2] == [
        (5000000001, "normal", DAYS[0]), (5000000002, "normal", DAYS[1])]


def test_a_type_change_across_most_of_a_batch_stops_naming_field_file_and_share(loader: Loader, tmp_path: Path) -> None:
    history = tiny_company()
    history[DAYS[1]][("support", "tickets")] = [ticket(n, 1, DAYS[1], priority=3) for n in range(1, 13)]
    landing = write_landing(tmp_path / "landing", history)
    with pytest.raises(PipelineStepFailed) as failure:
        loader.run("support", landing)
    message = str(failure.value)
    assert "contract change in field 'priority'" in message
    assert "support/tickets/2026-01-02/part-00001.json" in message
    assert re.search(r"12 of \d+ records \(\d+%\)", message)
    # nothing of the failed load is visible
    assert loader.query(
        "select count(*) from information_schema.tables where table_name = 'support__tickets'"
    ) == [(0,)]


def test_a_type_change_in_a_later_run_is_quarantined(loader: Loader, tmp_path: Path) -> None:
    history = tiny_company()
    history[DAYS[1]][("crm", "Account")] = [account(1, DAYS[1], Upsell_Score__c=0.87)]
    landing = write_landing(tmp_path / "landing", {d: history[d] for d in DAYS[:2]})
    loader.run("crm", landing)
    # an undeclared field that was a number turns into an object: it would move to a new
    # upsell_score__c__value column, leaving upsell_score__c NULL
    history[DAYS[2]][("crm", "Account")] = [account(1, DAYS[2], Upsell_Score__c={"value": 0.9})]
    landing = write_landing(tmp_path / "landing", history)
    totals = loader.run("crm", landing)
    assert totals["accounts"].rows_quarantined == 1
    assert loader.query("select field, reason from raw._quarantine") == [
        ("Upsell_Score__c", ("field 'Upsell_Score__c' changed type from number to object (value {'value': 0.9}) "
                            "in crm/Account/2026-01-03/part-00001.json (position 0)"))]
    columns = {c for (c,) in loader.query(
        "select column_name from information_schema.columns where table_name = 'crm__accounts'")}
    assert "upsell_score__c__value" not in columns


def test_events_are_deduplicated_within_and_across_days(loader: Loader, tmp_path: Path) -> None:
    d1, d2 = DAYS[:2]
    day1 = tiny_events(d1, 0, 6)
    day2 = tiny_events(d2, 100, 4) + [day1[3], day1[4]]
    landing = write_landing(tmp_path / "landing", {d1: {}, d2: {}}, events={d1: day1 + [day1[0]], d2: day2})
    totals = loader.run("product", landing)
    assert totals["events"].as_dict() == {
        "rows_read": 13,
        "rows_loaded": 10,
        "rows_quarantined": 0,
        "rows_deduplicated": 3,
    }
    assert loader.query("select count(*), count(distinct message_id) from raw.product__events") == [(10, 10)]
    kinds = dict(loader.query("select type, count(*) from raw.product__events group by type"))
    assert kinds == {"identify": 2, "group": 2, "track": 6}
    assert loader.query(
        "select context_group_id, json_extract_string(properties, '$.title') from raw.product__events "
        "where message_id = 'ajs-00000000000000000000000000000002'"
    ) == [("ws_00001", "Usage")]


def test_a_missing_manifest_is_an_error(loader: Loader, tmp_path: Path) -> None:
    landing = write_landing(tmp_path / "landing", tiny_company())
    (landing / "_manifest.json").unlink()
    with pytest.raises(PipelineStepFailed, match="_manifest.json"):
        loader.run("nps", landing)


def test_a_cut_off_part_salvages_its_records_and_counts_the_rest(loader: Loader, tmp_path: Path) -> None:
    history = tiny_company()
    history[DAYS[0]][("billing", "prices")] = [price(n, amount=1000 + n) for n in range(1, 11)]
    landing = write_landing(tmp_path / "landing", history)
    part = landing / "billing" / "prices" / DAYS[0] / "part-00001.json"
    text = part.read_text()
    cut = text.index('"id": "price_00000000000007"') if '"id": "price_00000000000007"' in text else text.index(
        '"id":"price_00000000000007"')
    part.write_text(text[: cut + 10])  # a page cut mid-object: records 1-6 parse, 7-10 are lost
    totals = loader.run("billing", landing)
    assert loader.query("select count(*) from raw.billing__prices") == [(6,)]
    rows = loader.query("select origin, position, records, reason from raw._quarantine where entity = 'prices'")
    assert len(rows) == 1
    origin, position, records, reason = rows[0]
    assert (origin, position) == (str(part.relative_to(landing)), None)
    assert records >= 1 and "6 records before the damage loaded" in reason
    assert totals["prices"].rows_quarantined == records
    assert totals["prices"].rows_read == 6 + records and totals["prices"].balanced


def test_support_staging_reads_a_first_day_where_every_optional_field_is_null(loader: Loader, tmp_path: Path) -> None:
    # A Zendesk account without satisfaction surveys (every ticket's satisfaction_rating is null), whose first
    # export has no solved ticket and no priority, type or via set: dlt makes no column for a field that is null
    # in every record, so the staging models failed ("satisfaction_rating__id not found") until the source
    # declared every field they read.

    from cs_kpis.defs.staging.assets import STAGING_MODELS

    history = tiny_company()
    day = DAYS[0]
    history[day][("support", "organizations")] = [{"id": 360000000001, "name": "Account 1",
                                                   "external_id": "001000000000001AAA", "created_at": f"{day}T10:00:00Z", "updated_at": f"{day}T10:00:00Z"}]
    history[day][("support", "tickets")] = [{
        "id": 5000000001, "organization_id": 360000000001, "status": "new", "priority": None, "type": None,
        "subject": None, "via": None, "tags": [], "satisfaction_rating": None,
        "created_at": f"{day}T09:00:00Z", "updated_at": f"{day}T09:00:00Z",
    }]
    history[day][("support", "ticket_metrics")] = [{
        "id": 7000000001, "ticket_id": 5000000001, "created_at": f"{day}T09:00:00Z",
        "updated_at": f"{day}T09:00:00Z", "solved_at": None,
        "reply_time_in_minutes": {"calendar": None, "business": None},
    }]
    history[day][("support", "satisfaction_ratings")] = []
    for later in DAYS[1:]:
        for key in [k for k in history[later] if k[0] == "support"]:
            del history[later][key]
    landing = write_landing(tmp_path / "landing", history)
    loader.run("support", landing)
    models = [m for m in STAGING_MODELS if m.name.startswith("stg_support__")]
    assert len(models) == 4
    rows = loader.staging_rows_of(models)
    for model in models:
        assert rows[model.name] == {"stg_support__satisfaction_ratings": 0}.get(model.name, 1), model.name


def _build_staging(loader: Loader, tmp_path: Path, system: str, days: dict[str, dict]) -> dict[str, int]:
    """Load ``days`` ({extract day: {(system, folder): records}}) as the only exports of ``system`` and build
    the system's staging models on it: {model: rows}. A model reading a column that does not exist raises."""

    from cs_kpis.defs.staging.assets import STAGING_MODELS

    history = tiny_company()
    for day in DAYS:
        for key in [k for k in history[day] if k[0] == system]:
            del history[day][key]
        history[day].update(days.get(day, {}))
    landing = write_landing(tmp_path / "landing", history)
    loader.run(system, landing)
    return loader.staging_rows_of(model for model in STAGING_MODELS if model.name.startswith(f"stg_{system}__"))


def _bare_billing_day(day: str) -> dict:
    """A new Stripe account's first export: no coupon, no invoice yet (every subscription in trial), no invoice
    item; a customer without name, email, currency or metadata; a price without nickname, lookup key or
    plan-tier metadata; a subscription never cancelled (its customer and status, an event's type and data are
    required: a record without one is quarantined)."""
    bare_price = {**price(1), "nickname": None, "lookup_key": None, "metadata": {}, "active": None,
                  "billing_scheme": None, "type": None, "unit_amount": None, "unit_amount_decimal": None,
                  "recurring": None, "product": None, "currency": None}
    sub = subscription(1, 1, day, status="trialing")
    sub.update({"currency": None, "cancel_at_period_end": None, "collection_method": None,
                "latest_invoice": None, "cancellation_details": {"reason": None}, "metadata": {}})
    for item in sub["items"]["data"]:
        item.update({"price": bare_price, "quantity": None, "discounts": None})
    return {
        ("billing", "customers"): [{"id": "cus_00000000000001", "object": "customer", "created": unix(day),
                                    "name": None, "email": None, "currency": None, "balance": None,
                                    "delinquent": None, "metadata": {}}],
        ("billing", "products"): [{"id": "prod_00000000000001", "object": "product", "name": None, "type": None,
                                   "active": None, "created": unix(day), "updated": unix(day), "metadata": {}}],
        ("billing", "prices"): [bare_price],
        ("billing", "subscriptions"): [sub],
        ("billing", "events"): [{"id": "evt_00000000000001", "object": "event", "type": "customer.created",
                                 "api_version": None, "created": unix(day),
                                 "data": {"object": {"id": "cus_00000000000001"}}}],
    }


def _bare_crm_day(day: str) -> dict:
    """A Salesforce org's first export: an account with only Id and dates (no parent, owner, CSM, segment,
    sentiment, employees), a user without name, title or role, no contact, no opportunity, no field history."""
    bare = {"Name": None, "ParentId": None, "OwnerId": None, "CSM__c": None, "Segment__c": None, "Industry": None,
            "BillingCountry": None, "Type": None, "CSM_Sentiment__c": None, "Product_Workspace_Id__c": None,
            "NumberOfEmployees": None, "IsDeleted": None}
    return {
        ("crm", "Account"): [{**account(1, day), **bare}],
        ("crm", "User"): [{"Id": "005000000000001AAA", "Name": None, "Email": None, "Title": None,
                           "UserRoleName__c": None, "IsActive": None, "CreatedDate": None, "SystemModstamp": None}],
    }


def _bare_nps_day(day: str) -> dict:
    """Responses without comment, permalink or person properties (a survey sent without the CRM link)."""
    return {("nps", "survey_responses"): [{
        "id": "100001", "person": None, "survey_type": None, "score": None, "comment": None, "permalink": None,
        "created_at": unix(day), "updated_at": unix(day), "person_properties": None}]}


def test_billing_staging_reads_a_first_day_where_every_optional_field_is_null(loader: Loader, tmp_path: Path) -> None:
    # dlt makes no column for a field null in every record and no table for an entity without records, so
    # staging failed (billing__coupons / billing__invoices do not exist; metadata__salesforce_account_id,
    # product, name, api_version, price__product not found) until the source declared them.
    rows = _build_staging(loader, tmp_path, "billing", {DAYS[0]: _bare_billing_day(DAYS[0])})
    assert rows == {
        "stg_billing__coupons": 0, "stg_billing__customers": 1, "stg_billing__events": 1,
        "stg_billing__fx_rates": 9, "stg_billing__invoice_items": 0, "stg_billing__invoice_lines": 0,
        "stg_billing__invoices": 0, "stg_billing__prices": 1, "stg_billing__products": 1,
        "stg_billing__subscription_items": 1, "stg_billing__subscriptions": 1,
    }


def test_a_first_export_without_any_stripe_event_creates_the_events_table(loader: Loader, tmp_path: Path) -> None:
    # Stripe keeps 30 days of events: an account where nothing changed in those days exports none. dlt made no
    # table, staging failed ("billing__events does not exist"), and dlt's own way to create an empty table
    # failed for the insert-only events (its normalizer hashes the empty item's missing primary key: KeyError).
    from cs_kpis.defs.staging.assets import STAGING_MODELS

    first = _bare_billing_day(DAYS[0])
    first[("billing", "events")] = []
    loader.run("billing", write_landing(tmp_path / "landing", {DAYS[0]: first}))
    models = {m.name: m for m in STAGING_MODELS}
    counts = loader.staging_rows_of(models[name] for name in ("stg_billing__events", "stg_billing__subscriptions"))
    assert counts == {"stg_billing__events": 0, "stg_billing__subscriptions": 1}
    # the next export's events land in that table as they would in one dlt made: no variant column, nothing
    # quarantined, the columns typed as before
    history = {DAYS[0]: first, DAYS[1]: {("billing", "events"): _bare_billing_day(DAYS[1])[("billing", "events")]}}
    loader.run("billing", write_landing(tmp_path / "landing", history))
    assert loader.query("select id, type, _extract_day from raw.billing__events") == [
        ("evt_00000000000001", "customer.created", date.fromisoformat(DAYS[1]))]
    assert loader.query("select count(*) from information_schema.columns where table_schema = 'raw' "
                        "and column_name like '%\\_\\_v\\_%' escape '\\'") == [(0,)]
    assert set(loader.query("select column_name, data_type from information_schema.columns "
                            "where table_schema = 'raw' and table_name = 'billing__events'")) >= {
        ("id", "VARCHAR"), ("created", "TIMESTAMP WITH TIME ZONE"), ("type", "VARCHAR"), ("data", "JSON"),
        ("_extract_day", "DATE")}
    tables = [t for (t,) in loader.query("select table_name from information_schema.tables where table_schema = 'raw'")]
    assert "_quarantine" not in tables or loader.query("select count(*) from raw._quarantine") == [(0,)]


def test_crm_staging_reads_a_first_day_where_every_optional_field_is_null(loader: Loader, tmp_path: Path) -> None:
    # failed before: "name" not found (accounts, users), crm__contacts / crm__opportunities do not exist
    rows = _build_staging(loader, tmp_path, "crm", {DAYS[0]: _bare_crm_day(DAYS[0])})
    assert rows == {"stg_crm__account_history": 0, "stg_crm__accounts": 1, "stg_crm__contacts": 0,
                    "stg_crm__opportunities": 0, "stg_crm__users": 1}


def test_nps_staging_reads_a_first_day_without_any_response(loader: Loader, tmp_path: Path) -> None:
    # No survey answered yet on the first extract day: dlt made no table, and staging failed
    # ("nps__survey_responses does not exist") until the source created it empty with its declared columns.
    rows = _build_staging(loader, tmp_path, "nps", {DAYS[0]: {("nps", "survey_responses"): []}})
    assert rows == {"stg_nps__survey_responses": 0}


def test_nps_staging_reads_a_first_day_where_every_optional_field_is_null(loader: Loader, tmp_path: Path) -> None:
    # failed before: "person" not found
    rows = _build_staging(loader, tmp_path, "nps", {DAYS[0]: _bare_nps_day(DAYS[0])})
    assert rows == {"stg_nps__survey_responses": 1}


@pytest.mark.parametrize(("system", "bare", "filled"), [
    ("billing", _bare_billing_day,
     "select count(*) from raw.billing__customers where metadata__salesforce_account_id is not null"),
    ("crm", _bare_crm_day, "select count(*) from raw.crm__accounts where csm_sentiment__c is not null"),
    ("nps", _bare_nps_day, "select count(*) from raw.nps__survey_responses where person_properties__company is not null"),
], ids=["billing", "crm", "nps"])
def test_declared_columns_take_the_values_later_days_bring(loader: Loader, tmp_path: Path, system, bare, filled) -> None:
    # The columns declared while every value was null (and the tables created empty) take the next days' values
    # as they are: nothing quarantined, no variant column (dlt's ``__v_<type>`` when a value does not fit the
    # column's type: the frozen data types would stop the load instead), and staging builds on them.
    full = tiny_company()
    later = {DAYS[1]: {k: v for k, v in full[DAYS[0]].items() if k[0] == system},
             DAYS[2]: {k: v for k, v in full[DAYS[1]].items() if k[0] == system}}
    rows = _build_staging(loader, tmp_path, system, {DAYS[0]: bare(DAYS[0]), **later})
    # the tiny company has no field history and no invoice item
    assert {name for name, n in rows.items() if n == 0} <= {"stg_crm__account_history", "stg_billing__invoice_items"}, rows
    tables = [t for (t,) in loader.query("select table_name from information_schema.tables where table_schema = 'raw'")]
    if "_quarantine" in tables:
        assert loader.query(f"select count(*) from raw._quarantine where source = '{system}'") == [(0,)]
    assert loader.query("select column_name from information_schema.columns where table_schema = 'raw' "
                        "and column_name like '%\\_\\_v\\_%' escape '\\'") == []
    assert loader.query(filled)[0][0] > 0


@pytest.mark.parametrize(("system", "bare"), [("billing", _bare_billing_day), ("crm", _bare_crm_day),
                                              ("nps", _bare_nps_day)], ids=["billing", "crm", "nps"])
def test_a_profile_s_own_field_names_are_declared_too(loader: Loader, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      system, bare) -> None:
    # Another org names its CSM, segment, sentiment and workspace fields, the contact role and the account-id
    # fields differently (the company configuration): staging reads those columns, so the source declares
    # them instead of the demo's; on a first day where they are null in every record the models still build.
    import json

    from cs_kpis_tests.renamed_profile import PROFILE

    cfg = tmp_path / "company.yaml"
    cfg.write_text(json.dumps(PROFILE | {"landing_dir": str(tmp_path / "landing")}))
    monkeypatch.setenv("CS_KPIS_CONFIG", str(cfg))
    rows = _build_staging(loader, tmp_path, system, {DAYS[0]: bare(DAYS[0])})
    from cs_kpis.defs.staging.assets import STAGING_MODELS

    # every staging model of the system bound (a missing column raises) and read the first day's records
    assert set(rows) == {m.name for m in STAGING_MODELS if m.name.startswith(f"stg_{system}__")}
    assert sum(rows.values()) > 0
    columns = {c for (c,) in loader.query("select column_name from information_schema.columns "
                                          f"where table_schema = 'raw' and table_name like '{system}%'")}
    assert columns >= {"billing": {"metadata__sfdc_account_id"},
                       "crm": {"customer_success_manager__c", "tier__c", "health_sentiment__c", "app_workspace__c",
                               "contact_role__c"},
                       "nps": {"person_properties__crm_account"}}[system]
    # in place of the demo's names, which this org's records do not have
    assert not columns & {"metadata__salesforce_account_id", "csm__c", "segment__c", "csm_sentiment__c",
                          "product_workspace_id__c", "role__c", "person_properties__salesforce_account_id"}
