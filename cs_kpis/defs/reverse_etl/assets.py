"""reverse_etl/: push each account's health and open alerts to Salesforce Account fields (upsert by Id).

Desired state per CRM account (its Id is the Salesforce Account Id): CS_Health_Score__c, CS_Health_Band__c,
CS_ARR__c, CS_Open_Alerts__c (firing alerts, held ones excluded) and CS_Top_Alert__c (type and reason of the
most severe firing alert). Only records whose payload changed since the last *successful* sync are sent, in
batches of 200 (the sObject Collections limit) as ``PATCH {CS_KPIS_SFDC_URL}/services/data/v60.0/composite/
sobjects`` with ``allOrNone: false``; each record's result decides whether its new hash is stored in
``alerts.salesforce_account_sync``. A failed record (or a failed batch) keeps its old hash and is sent again on
the next run. Without CS_KPIS_SFDC_URL the batches are written to ``<outbox>/salesforce/`` and count as sent.
Auth: the bearer token in CS_KPIS_SFDC_TOKEN, if set.
"""

import hashlib
import json
import os
import urllib.request

import dagster as dg
from dagster_duckdb import DuckDBResource

from cs_kpis.defs.automation import notify
from cs_kpis.lib.sql import WAREHOUSE_POOL

SYNC = dg.AssetKey(["alerts", "salesforce_account_sync"])
BATCH = 200
API_PATH = "/services/data/v60.0/composite/sobjects"

DESIRED_SQL = """
    with firing as (
        select account_id, count(*) as open_alerts,
            arg_min(alert_type || ': ' || reason,
                    case severity when 'critical' then 0 when 'high' then 1 when 'medium' then 2 else 3 end)
                as top_alert
        from alerts.alert_candidates
        where status in ('new', 'open')
        group by account_id
    )
    select h.account_id, round(h.score) as score, h.band, round(h.arr) as arr,
        coalesce(f.open_alerts, 0) as open_alerts, f.top_alert
    from kpis.health_scores as h
    left join firing as f on f.account_id = h.account_id
    order by h.account_id
"""

SYNC_DDL = """
create table if not exists alerts.salesforce_account_sync (
    account_id varchar not null,      -- Salesforce Account Id
    payload_hash varchar not null,    -- of the last payload Salesforce accepted
    payload varchar not null,
    synced_at timestamp with time zone not null
)
"""


def desired_records(con) -> list[dict]:
    cur = con.execute(DESIRED_SQL)
    cols = [c[0] for c in cur.description]
    out = []
    for row in cur.fetchall():
        r = dict(zip(cols, row, strict=True))
        out.append({"attributes": {"type": "Account"}, "Id": r["account_id"],
                    "CS_Health_Score__c": None if r["score"] is None else int(r["score"]),
                    "CS_Health_Band__c": r["band"], "CS_ARR__c": None if r["arr"] is None else float(r["arr"]),
                    "CS_Open_Alerts__c": int(r["open_alerts"]),
                    "CS_Top_Alert__c": (r["top_alert"] or "")[:255] or None})
    return out


def payload_hash(record: dict) -> str:
    return hashlib.sha1(json.dumps(record, sort_keys=True).encode()).hexdigest()


def send_batch(records: list[dict], url: str | None, token: str | None, n: int) -> list[dict]:
    """Salesforce's per-record results: [{"id", "success", "errors"}] in request order."""
    body = {"allOrNone": False, "records": records}
    if not url:
        notify.write_outbox(notify.outbox_dir() / "salesforce", f"batch-{n:04d}", body)
        return [{"id": r["Id"], "success": True, "errors": []} for r in records]
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url.rstrip("/") + API_PATH, data=json.dumps(body).encode(), method="PATCH",
                                 headers=headers)
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def sync(con, url: str | None = None, token: str | None = None) -> dict:
    con.execute("create schema if not exists alerts")
    con.execute(SYNC_DDL)
    last = dict(con.execute("select account_id, payload_hash from alerts.salesforce_account_sync").fetchall())
    changed = [r for r in desired_records(con) if last.get(r["Id"]) != payload_hash(r)]
    sent, failed, errors = 0, 0, []
    for n, start in enumerate(range(0, len(changed), BATCH)):
        batch = changed[start:start + BATCH]
        try:
            results = send_batch(batch, url, token, n)
        except Exception as exc:  # noqa: BLE001 (the whole batch stays unsynced: retried next run)
            failed += len(batch)
            errors.append(f"batch {n}: {type(exc).__name__}: {exc}")
            continue
        for record, result in zip(batch, results, strict=True):
            if not result.get("success"):
                failed += 1
                errors.append(f"{record['Id']}: {result.get('errors')}")
                continue
            con.execute("delete from alerts.salesforce_account_sync where account_id = ?", [record["Id"]])
            con.execute("insert into alerts.salesforce_account_sync values (?, ?, ?, current_timestamp)",
                        [record["Id"], payload_hash(record), json.dumps(record)])
            sent += 1
    return {"changed": len(changed), "sent": sent, "failed": failed, "errors": errors}


@dg.asset(
    key=SYNC, deps=[dg.AssetKey(["alerts", "alert_candidates"]), dg.AssetKey(["kpis", "health_scores"])],
    group_name="reverse_etl", kinds={"python", "duckdb", "salesforce"}, owners=["team:data-eng"], pool=WAREHOUSE_POOL,
    metadata={"grain": "account_id"},
    description=("Salesforce Account fields (health score, band, ARR, open alerts, top alert) upserted by Id; "
                 "the table holds the last payload Salesforce accepted per account, so only changes are sent "
                 "and failed records are retried next run."),
)
def salesforce_account_sync(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> dg.MaterializeResult:
    with duckdb.get_connection() as con:
        result = sync(con, os.environ.get("CS_KPIS_SFDC_URL") or None, os.environ.get("CS_KPIS_SFDC_TOKEN") or None)
    for err in result["errors"][:20]:
        context.log.warning(f"salesforce: not synced, retried next run: {err}")
    return dg.MaterializeResult(metadata={
        "changed": result["changed"], "sent": result["sent"], "failed": result["failed"],
        "target": "salesforce" if os.environ.get("CS_KPIS_SFDC_URL") else "outbox"})
