"""Salesforce field history (AccountHistory) as an org keeps it: 18 months before the first extract day in
the snapshot, nothing older, then each later day's own changes.

To see the cut on the tiny company (14 months of history), these tests keep 8 months instead of 18. The
fake vendor server serves the same rows through ``queryAll``, and the connector reads them with the
CreatedDate cursor.
"""

import csv
import datetime as dt
import json
from pathlib import Path

import pytest

from cs_kpis import simulator
from cs_kpis.simulator import generate, months_before
from cs_kpis.sources.crm import api as salesforce
from cs_kpis.sources.crm.helpers import prepare_record
from cs_kpis_tests.fakes import vendor_server as fake
from cs_kpis_tests.fakes.vendor_server import serve_landing

MONTHS = 8
FAST = {"backoff_base": 0.01, "max_retries": 3, "max_retry_delay": 5.0, "timeout": 10.0}


def _day(stamp: str) -> dt.date:
    return dt.date.fromisoformat(stamp[:10])


def _rows(landing: Path, day: str | None = None) -> list[dict]:
    pattern = f"{day or '*'}/part-*.json"
    return [r for p in sorted((landing / "crm/AccountHistory").glob(pattern)) for r in json.loads(p.read_text())["records"]]


@pytest.fixture(scope="module")
def company(tmp_path_factory):
    root = tmp_path_factory.mktemp("field_history")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(simulator, "FIELD_HISTORY_MONTHS", MONTHS)
        manifest = generate(root / "landing", root / "truth", size="tiny", seed=3, increments=3)
    return root, manifest


def test_snapshot_keeps_the_retention_window_and_increments_bring_their_day(company):
    root, manifest = company
    landing = root / "landing"
    days = manifest["extract_days"]
    cut = months_before(dt.date.fromisoformat(manifest["as_of"]), MONTHS)
    snapshot = _rows(landing, days[0])
    assert snapshot and min(_day(r["CreatedDate"]) for r in snapshot) >= cut
    assert max(_day(r["CreatedDate"]) for r in snapshot) <= dt.date.fromisoformat(days[0])
    for day in days[1:]:
        assert all(_day(r["CreatedDate"]) == dt.date.fromisoformat(day) for r in _rows(landing, day))
    every = _rows(landing)
    assert manifest["counts"]["crm/AccountHistory"] == len(every) == len({r["Id"] for r in every})
    # the truth holds changes older than the cut, which the export no longer has
    with (root / "truth/crm_account_fields.csv").open() as f:
        truth = list(csv.DictReader(f))
    created = {}
    for r in truth:
        created.setdefault(r["account_id"], r["from_day"])
    older = [r for r in truth if r["from_day"] > created[r["account_id"]] and dt.date.fromisoformat(r["from_day"]) < cut]
    assert older, "expected changes before the cut in the truth"
    exported = {(r["AccountId"], _day(r["CreatedDate"])) for r in every}
    assert not any((r["account_id"], dt.date.fromisoformat(r["from_day"])) in exported for r in older)
    # and every change since the cut is exported, with the value it took
    names = {"owner_id": "Owner", "csm_id": "CSM__c", "segment": "Segment__c", "csm_sentiment": "CSM_Sentiment__c"}
    by_change = {(r["AccountId"], r["Field"], _day(r["CreatedDate"])): r["NewValue"] for r in every
                 if r["DataType"] != "Text"}
    last_day = dt.date.fromisoformat(days[-1])
    recent = [r for r in truth if r["from_day"] > created[r["account_id"]]
              and cut <= dt.date.fromisoformat(r["from_day"]) <= last_day]
    assert recent
    for r in recent:
        assert by_change[(r["account_id"], names[r["field"]], dt.date.fromisoformat(r["from_day"]))] == \
            (r["value"] or None)


def test_a_lookup_change_is_two_rows_ids_then_names(company):
    root, _ = company
    rows = _rows(root / "landing")
    users = {r["Id"]: r["Name"] for p in (root / "landing/crm/User").glob("*/part-*.json")
             for r in json.loads(p.read_text())["records"]}
    lookups = [r for r in rows if r["Field"] in ("Owner", "CSM__c")]
    assert {r["Field"] for r in lookups} == {"Owner", "CSM__c"}
    ids = [r for r in lookups if r["DataType"] == "EntityId"]
    texts = {(r["AccountId"], r["Field"], r["CreatedDate"]): r for r in lookups if r["DataType"] == "Text"}
    assert len(ids) == len(texts) == len(lookups) // 2
    for r in ids:
        named = texts[(r["AccountId"], r["Field"], r["CreatedDate"])]
        assert (named["OldValue"], named["NewValue"]) == (users[r["OldValue"]], users[r["NewValue"]])
    assert {r["DataType"] for r in rows if r["Field"] not in ("Owner", "CSM__c")} == {"DynamicEnum"}


def test_fake_salesforce_serves_account_history_through_query_all(company):
    root, _ = company
    landing_rows = _rows(root / "landing")
    with serve_landing(root / "landing", page_size=50) as srv:
        config = salesforce.SalesforceApiConfig(instance_url=srv.base_url, access_token=fake.SALESFORCE_ACCESS_TOKEN,
                                                **FAST)
        served = [r.obj for r in salesforce.iter_records(config, "AccountHistory")]
        assert sorted(served, key=lambda r: r["Id"]) == sorted(landing_rows, key=lambda r: r["Id"])
        since_stamp = sorted(r["CreatedDate"] for r in served)[len(served) // 2]
        since = int(dt.datetime.strptime(since_stamp, "%Y-%m-%dT%H:%M:%S.000%z").timestamp())
        recent = [r.obj for r in salesforce.iter_records(config, "AccountHistory", since=since)]
        query = srv.requests_to(f"/services/data/{config.api_version}/queryAll")[-1].query["q"][0]
    assert "FROM AccountHistory WHERE CreatedDate >= " in query and query.endswith("ORDER BY CreatedDate")
    assert {r["Id"] for r in recent} == {r["Id"] for r in served if r["CreatedDate"] >= since_stamp}
    assert [r["CreatedDate"] for r in recent] == sorted(r["CreatedDate"] for r in recent)


def test_history_values_of_any_type_load_as_text():
    row = prepare_record({"attributes": {"type": "AccountHistory"}, "Id": "017x", "AccountId": "001x",
                          "Field": "NumberOfEmployees", "DataType": "Number", "OldValue": 40, "NewValue": 44.5,
                          "CreatedDate": "2026-10-01T10:00:00.000+0000"}, "account_history")
    assert (row["OldValue"], row["NewValue"]) == ("40", "44.5")
    row = prepare_record({"Id": "017y", "AccountId": "001x", "Field": "IsPartner", "OldValue": False,
                          "NewValue": None, "CreatedDate": "2026-10-01T10:00:00.000+0000"}, "account_history")
    assert (row["OldValue"], row["NewValue"]) == ("false", None)
