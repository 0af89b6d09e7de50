"""Salesforce-shaped upsert: only changed accounts are sent; a record Salesforce rejects is retried."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import duckdb
import pandas as pd
import pytest

from cs_kpis.defs.health.assets import write_frame
from cs_kpis.defs.reverse_etl import assets as retl


class FakeSalesforce:
    def __init__(self):
        self.batches, self.reject, self.auth = [], set(), []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_PATCH(self):
                assert self.path == retl.API_PATH
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.batches.append(body)
                fake.auth.append(self.headers.get("Authorization"))
                out = [{"id": r["Id"], "success": r["Id"] not in fake.reject,
                        "errors": [{"statusCode": "FIELD_INTEGRITY_EXCEPTION"}] if r["Id"] in fake.reject else []}
                       for r in body["records"]]
                data = json.dumps(out).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def sfdc():
    fake = FakeSalesforce()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def _warehouse(path):
    con = duckdb.connect(str(path))
    con.execute("create schema kpis; create schema alerts")
    write_frame(con, "kpis.health_scores", pd.DataFrame(
        [("A", 35.4, "red", 60000.0), ("B", 80.0, "green", 12000.0)], columns=["account_id", "score", "band", "arr"]))
    write_frame(con, "alerts.alert_candidates", pd.DataFrame([
        ("A", "health_red", "high", "open", "health 35 is red"),
        ("A", "renewal_risk", "critical", "new", "cancellation scheduled"),
        ("B", "usage_drop", "medium", "resolved", "usage down 40%"),
    ], columns=["account_id", "alert_type", "severity", "status", "reason"]))
    return con


def test_only_changes_are_sent_and_rejections_retried(tmp_path, sfdc):
    con = _warehouse(tmp_path / "wh.duckdb")
    sfdc.reject = {"B"}
    first = retl.sync(con, sfdc.url)
    assert (first["changed"], first["sent"], first["failed"]) == (2, 1, 1)
    a = next(r for r in sfdc.batches[0]["records"] if r["Id"] == "A")
    assert a == {"attributes": {"type": "Account"}, "Id": "A", "CS_Health_Score__c": 35, "CS_Health_Band__c": "red",
                 "CS_ARR__c": 60000.0, "CS_Open_Alerts__c": 2,
                 "CS_Top_Alert__c": "renewal_risk: cancellation scheduled"}
    assert sfdc.batches[0]["allOrNone"] is False
    sfdc.reject = set()
    second = retl.sync(con, sfdc.url)  # only B, which Salesforce rejected
    assert (second["changed"], second["sent"]) == (1, 1)
    assert [r["Id"] for r in sfdc.batches[1]["records"]] == ["B"]
    assert retl.sync(con, sfdc.url)["changed"] == 0  # nothing changed: nothing sent
    con.execute("update kpis.health_scores set score = 20 where account_id = 'A'")
    assert retl.sync(con, sfdc.url)["sent"] == 1
    assert len(sfdc.batches) == 3


def test_only_confirmed_records_are_hashed_to_compare(tmp_path, sfdc, monkeypatch):
    """A record Salesforce never confirmed is sent without hashing it (a dry run or a first sync hashes
    nothing to compare); a confirmed one is hashed and sent only when its payload changed."""
    con = _warehouse(tmp_path / "wh.duckdb")
    hashed = []
    real_hash = retl.payload_hash
    monkeypatch.setattr(retl, "payload_hash", lambda r: hashed.append(r["Id"]) or real_hash(r))
    sfdc.reject = {"B"}
    assert retl.sync(con, sfdc.url)["changed"] == 2
    assert hashed == ["A"]  # only the hash stored for A's confirmation: nothing to compare with yet
    hashed.clear()
    con.execute("update kpis.health_scores set score = 20 where account_id = 'A'")
    sfdc.reject = set()
    second = retl.sync(con, sfdc.url)  # A confirmed and changed, B never confirmed: both sent
    assert (second["changed"], second["sent"]) == (2, 2)
    assert hashed.count("A") == 2 and hashed.count("B") == 1  # A compared and stored, B only stored
    assert retl.sync(con, sfdc.url)["changed"] == 0


def test_outbox_without_url(tmp_path, monkeypatch):
    monkeypatch.setenv("CS_KPIS_OUTBOX", str(tmp_path / "outbox"))
    con = _warehouse(tmp_path / "wh.duckdb")
    assert retl.sync(con, None)["dry_run"] == 2
    [batch] = list((tmp_path / "outbox" / "salesforce").glob("*.json"))
    assert len(json.loads(batch.read_text())["records"]) == 2


def test_outbox_is_a_dry_run_and_a_later_url_sends_everything(tmp_path, monkeypatch, sfdc):
    """Issue 16: a first run without CS_KPIS_SFDC_URL marked every account synced, so nothing was sent later."""
    monkeypatch.setenv("CS_KPIS_OUTBOX", str(tmp_path / "outbox"))
    con = _warehouse(tmp_path / "wh.duckdb")
    first = retl.sync(con, None)
    assert (first["sent"], first["dry_run"]) == (0, 2)
    assert con.execute("select count(*) from alerts.salesforce_account_sync").fetchall() == [(0,)]
    second = retl.sync(con, sfdc.url)
    assert second["sent"] == 2 and [r["Id"] for r in sfdc.batches[0]["records"]] == ["A", "B"]


def test_rows_synced_by_an_old_outbox_run_are_sent(tmp_path, sfdc):
    con = _warehouse(tmp_path / "wh.duckdb")
    con.execute("create table alerts.salesforce_account_sync (account_id varchar not null, payload_hash varchar "
                "not null, payload varchar not null, synced_at timestamp with time zone not null)")
    for record in retl.desired_records(con):  # what the old outbox "sync" stored
        con.execute("insert into alerts.salesforce_account_sync values (?, ?, '{}', current_timestamp)",
                    [record["Id"], retl.payload_hash(record)])
    assert retl.sync(con, sfdc.url)["sent"] == 2


class ShortSalesforce(FakeSalesforce):
    """Answers every batch with results for only its first ``keep`` records (a truncated response)."""

    def __init__(self, keep):
        super().__init__()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_PATCH(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.batches.append(body)
                fake.auth.append(self.headers.get("Authorization"))
                out = [{"id": r["Id"], "success": True, "errors": []} for r in body["records"][:fake.keep]]
                data = json.dumps(out).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.keep = keep
        self.server.RequestHandlerClass = Handler


def test_partial_response_marks_only_the_confirmed_and_resumes(tmp_path):
    """A per-record result list that comes back short used to raise after 59 records were marked synced."""
    con = _warehouse(tmp_path / "wh.duckdb")
    ids = [f"acc{i:03d}" for i in range(100)]
    write_frame(con, "kpis.health_scores", pd.DataFrame(
        [(i, 50.0, "yellow", 1000.0) for i in ids], columns=["account_id", "score", "band", "arr"]))
    fake = ShortSalesforce(keep=59)
    try:
        first = retl.sync(con, fake.url)
        assert (first["changed"], first["sent"], first["failed"]) == (100, 59, 41)
        assert all("no per-record result" in e for e in first["errors"])
        synced = [a for (a,) in con.execute("select account_id from alerts.salesforce_account_sync "
                                            "order by 1").fetchall()]
        assert synced == ids[:59]
        fake.keep = 1000
        second = retl.sync(con, fake.url)  # resumes: only the 41 unconfirmed are sent
        assert (second["changed"], second["sent"], second["failed"]) == (41, 41, 0)
        assert [r["Id"] for r in fake.batches[1]["records"]] == ids[59:]
    finally:
        fake.server.shutdown()
        fake.server.server_close()


def test_result_for_another_id_is_not_a_confirmation(tmp_path, sfdc, monkeypatch):
    con = _warehouse(tmp_path / "wh.duckdb")
    monkeypatch.setattr(retl, "send_batch", lambda records, url, token: [
        {"id": "B", "success": True, "errors": []}, {"id": "A", "success": True, "errors": []}])
    result = retl.sync(con, sfdc.url)
    assert result["sent"] == 0 and result["failed"] == 2


def test_batch_error_names_status_path_and_code_never_body_or_token(tmp_path):
    token = "00Dxx!SECRET.token-value"

    class Handler(BaseHTTPRequestHandler):
        def do_PATCH(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            echo = json.dumps([{"errorCode": "INVALID_SESSION_ID",
                                "message": f"echo {dict(self.headers.items())}"}]).encode()
            self.send_response(401)
            self.send_header("Content-Length", str(len(echo)))
            self.end_headers()
            self.wfile.write(echo)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        con = _warehouse(tmp_path / "wh.duckdb")
        result = retl.sync(con, f"http://127.0.0.1:{server.server_port}", token)
    finally:
        server.shutdown()
        server.server_close()
    [error] = result["errors"]
    assert error == f"batch 0: PATCH {retl.API_PATH} answered 401 (INVALID_SESSION_ID)"
    assert "SECRET" not in error and "echo" not in error


def test_the_asset_takes_url_and_token_from_the_salesforce_resource(tmp_path, monkeypatch, sfdc):
    """The reverse-ETL asset reads CS_KPIS_SFDC_URL / CS_KPIS_SFDC_TOKEN through the `salesforce` resource
    (EnvVars resolved in the run), not os.environ in its body."""
    import dagster as dg

    from cs_kpis.defs.config_resources import SalesforceResource
    from cs_kpis.defs.resources import WarehouseResource

    _warehouse(tmp_path / "wh.duckdb").close()
    monkeypatch.setenv("CS_KPIS_SFDC_URL", sfdc.url)
    monkeypatch.setenv("CS_KPIS_SFDC_TOKEN", "tok-123")
    resource = SalesforceResource.from_env()
    assert isinstance(resource.token, dg.EnvVar) and resource.token == "CS_KPIS_SFDC_TOKEN"  # the name, not the value
    result = dg.materialize([retl.salesforce_account_sync], instance=dg.DagsterInstance.ephemeral(),
                            resources={"duckdb": WarehouseResource(database=str(tmp_path / "wh.duckdb")),
                                       "salesforce": resource})
    assert result.success and [r["Id"] for r in sfdc.batches[0]["records"]] == ["A", "B"]
    assert sfdc.auth == ["Bearer tok-123"]

    monkeypatch.delenv("CS_KPIS_SFDC_URL")
    monkeypatch.setenv("CS_KPIS_OUTBOX", str(tmp_path / "outbox"))
    _warehouse(tmp_path / "wh2.duckdb").close()
    dry = dg.materialize([retl.salesforce_account_sync], instance=dg.DagsterInstance.ephemeral(),
                         resources={"duckdb": WarehouseResource(database=str(tmp_path / "wh2.duckdb")),
                                    "salesforce": SalesforceResource.from_env()})
    meta = dry.asset_materializations_for_node("alerts__salesforce_account_sync")[0].metadata
    assert meta["target"].value == "outbox (dry run)" and len(sfdc.batches) == 1
