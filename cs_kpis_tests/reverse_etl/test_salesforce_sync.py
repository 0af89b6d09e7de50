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
        self.batches, self.reject = [], set()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_PATCH(self):
                assert self.path == retl.API_PATH
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.batches.append(body)
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


def test_outbox_without_url(tmp_path, monkeypatch):
    monkeypatch.setenv("CS_KPIS_OUTBOX", str(tmp_path / "outbox"))
    con = _warehouse(tmp_path / "wh.duckdb")
    assert retl.sync(con, None)["sent"] == 2
    [batch] = list((tmp_path / "outbox" / "salesforce").glob("*.json"))
    assert len(json.loads(batch.read_text())["records"]) == 2
