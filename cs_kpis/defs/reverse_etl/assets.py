"""reverse_etl/: push each account's health and open alerts to Salesforce Account fields (upsert by Id).

Desired state per CRM account (its Id is the Salesforce Account Id): CS_Health_Score__c, CS_Health_Band__c,
CS_ARR__c, CS_Open_Alerts__c (firing alerts, held ones excluded) and CS_Top_Alert__c (type and reason of the
most severe firing alert). Only records whose payload differs from the last one *Salesforce confirmed* are
sent, in batches of 200 (the sObject Collections limit) as ``PATCH {CS_KPIS_SFDC_URL}/services/data/v60.0/
composite/sobjects`` with ``allOrNone: false``.

A record counts as synced only on Salesforce's own per-record result: an entry with ``success: true`` and the
record's ``id``, matched by position (Salesforce answers in request order) and checked by id. A record with
no such entry (a rejected one, a short result list, a failed batch) keeps its old hash and is sent again next
run; the confirmations already received are committed batch by batch, so a run resumes where the last one
stopped. Without CS_KPIS_SFDC_URL the batches are written to ``<outbox>/salesforce/`` as a dry run and
nothing is marked synced: when the URL is set later, every record is sent.
Errors name the batch, the HTTP status, the endpoint path and Salesforce's ``errorCode`` s, never a response
body or the token. Auth: the bearer token in CS_KPIS_SFDC_TOKEN, if set.
"""

import hashlib
import json
import urllib.error
import urllib.request

import dagster as dg
from dagster_duckdb import DuckDBResource

from cs_kpis.defs.alerts.assets import CANDIDATES
from cs_kpis.defs.alerts.engine import severity_rank_sql
from cs_kpis.defs.automation import notify
from cs_kpis.defs.automation.jobs import closed_on_error
from cs_kpis.defs.config_resources import SalesforceResource
from cs_kpis.defs.health.assets import SCORES
from cs_kpis.lib.sql import WAREHOUSE_POOL, table_metadata

SYNC = dg.AssetKey(["alerts", "salesforce_account_sync"])
BATCH = 200
API_PATH = "/services/data/v60.0/composite/sobjects"

DESIRED_SQL = f"""
    with firing as (
        select account_id, count(*) as open_alerts,
            arg_min(alert_type || ': ' || reason,
                    {severity_rank_sql("severity")})
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
    synced_at timestamp with time zone not null,
    confirmed_by varchar              -- 'salesforce': its per-record result said success for this Id
)
"""
# a table from before confirmed_by may hold rows the outbox "synced": they have confirmed_by null and are sent
MIGRATE_SQL = "alter table alerts.salesforce_account_sync add column if not exists confirmed_by varchar"

COLUMNS = {
    "account_id": "Salesforce Account Id (the CRM account id)",
    "payload_hash": "sha1 of the last payload Salesforce confirmed for the account",
    "payload": "that payload, as JSON (Id and the CS_* fields)",
    "synced_at": "when Salesforce's per-record result confirmed it",
    "confirmed_by": "'salesforce': the record's own result said success (rows from before it: null, resent)",
}


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


class SyncBatchError(Exception):
    """A batch Salesforce did not answer with per-record results; the message holds no body and no token."""


def _error_codes(raw: bytes) -> str:
    """Salesforce's errorCode values from an error body ([{"errorCode", "message"}]), nothing else."""
    try:
        body = json.loads(raw)
    except ValueError:
        return "unreadable body"
    items = body if isinstance(body, list) else [body]
    codes = sorted({str(i.get("errorCode")) for i in items if isinstance(i, dict) and i.get("errorCode")})
    return ", ".join(codes) or "no errorCode"


def send_batch(records: list[dict], url: str, token: str | None) -> list:
    """Salesforce's per-record results: [{"id", "success", "errors"}] in request order."""
    body = {"allOrNone": False, "records": records}
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        req = urllib.request.Request(url.rstrip("/") + API_PATH, data=json.dumps(body).encode(), method="PATCH",
                                     headers=headers)
        with urllib.request.urlopen(req, timeout=30) as resp:
            results = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        raise SyncBatchError(f"PATCH {API_PATH} answered {exc.code} ({_error_codes(exc.read())})") from None
    except urllib.error.URLError as exc:
        raise SyncBatchError(f"PATCH {API_PATH} failed: {type(exc.reason).__name__}") from None
    except ValueError:  # a malformed CS_KPIS_SFDC_URL, or a body that is not JSON: neither is quoted
        raise SyncBatchError(f"PATCH {API_PATH}: malformed URL or unreadable answer") from None
    except OSError as exc:
        raise SyncBatchError(f"PATCH {API_PATH} failed: {type(exc).__name__}") from None
    if not isinstance(results, list):
        raise SyncBatchError(f"PATCH {API_PATH} answered without a per-record result list")
    return results


def confirmed(record: dict, result) -> bool:
    """Salesforce's own result for this record says success, for this Id."""
    return isinstance(result, dict) and result.get("success") is True and result.get("id") == record["Id"]


def _record_error(record: dict, result) -> str:
    if not isinstance(result, dict):
        return f"{record['Id']}: no per-record result from Salesforce"
    codes = sorted({str(e.get("statusCode")) for e in result.get("errors") or [] if isinstance(e, dict)})
    if result.get("success") is True:
        return f"{record['Id']}: result for another id ({result.get('id')!r})"
    return f"{record['Id']}: rejected ({', '.join(codes) or 'no statusCode'})"


def sync(con, url: str | None = None, token: str | None = None) -> dict:
    con.execute("create schema if not exists alerts")
    con.execute(SYNC_DDL)
    con.execute(MIGRATE_SQL)
    last = dict(con.execute("select account_id, payload_hash from alerts.salesforce_account_sync "
                            "where confirmed_by = 'salesforce'").fetchall())
    # a record Salesforce never confirmed is sent without hashing it (every record of a dry run or a first
    # sync: 100,000 hashes, 0.6 CPU s on the large company, BENCHMARKS.md "Small steps of the nightly")
    changed = [r for r in desired_records(con) if (h := last.get(r["Id"])) is None or h != payload_hash(r)]
    batches = [changed[start:start + BATCH] for start in range(0, len(changed), BATCH)]
    if not url:  # dry run: the batches for a person to look at; nothing counts as synced
        for n, batch in enumerate(batches):
            notify.write_outbox(notify.outbox_dir() / "salesforce", f"batch-{n:04d}",
                                {"allOrNone": False, "records": batch})
        return {"changed": len(changed), "sent": 0, "failed": 0, "dry_run": len(changed), "errors": []}
    sent, failed, errors = 0, 0, []
    for n, batch in enumerate(batches):
        try:
            results = send_batch(batch, url, token)
        except SyncBatchError as exc:  # the whole batch stays unsynced: retried next run
            failed += len(batch)
            errors.append(f"batch {n}: {exc}")
            continue
        padded = results[:len(batch)] + [None] * (len(batch) - len(results))  # a short list: the rest unconfirmed
        ok = []
        for record, result in zip(batch, padded, strict=True):
            if confirmed(record, result):
                ok.append(record)
            else:
                failed += 1
                errors.append(_record_error(record, result))
        con.execute("begin transaction")  # this batch's confirmations, together
        try:
            for record in ok:
                con.execute("delete from alerts.salesforce_account_sync where account_id = ?", [record["Id"]])
                con.execute("insert into alerts.salesforce_account_sync values (?, ?, ?, current_timestamp, "
                            "'salesforce')", [record["Id"], payload_hash(record), json.dumps(record)])
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
        sent += len(ok)
    return {"changed": len(changed), "sent": sent, "failed": failed, "dry_run": 0, "errors": errors}


@dg.asset(
    key=SYNC, deps=[CANDIDATES, SCORES],
    group_name="reverse_etl", kinds={"python", "duckdb", "salesforce"}, owners=["team:data-eng"], pool=WAREHOUSE_POOL,
    metadata={"grain": "account_id", "dagster/table_name": "alerts.salesforce_account_sync",
              "dagster/column_schema": dg.TableSchema(columns=[
                  dg.TableColumn(name, "TIMESTAMP WITH TIME ZONE" if name == "synced_at" else "VARCHAR",
                                 description=text) for name, text in COLUMNS.items()])},
    description=("Salesforce Account fields (health score, band, ARR, open alerts, top alert) upserted by Id; "
                 "the table holds the last payload Salesforce accepted per account, so only changes are sent "
                 "and failed records are retried next run."),
)
def salesforce_account_sync(context: dg.AssetExecutionContext, duckdb: DuckDBResource,
                            salesforce: SalesforceResource) -> dg.MaterializeResult:
    url = salesforce.url or None
    with closed_on_error(duckdb) as con:
        result = sync(con, url, salesforce.token or None)
        table_meta = table_metadata(con, "alerts", "salesforce_account_sync", COLUMNS)
    for err in result["errors"][:20]:
        context.log.warning(f"salesforce: not synced, retried next run: {err}")
    if not url:
        context.log.info(f"CS_KPIS_SFDC_URL not set: {result['dry_run']} record(s) written to the outbox as a "
                         "dry run, none marked synced")
    return dg.MaterializeResult(metadata={
        "changed": result["changed"], "sent": result["sent"], "failed": result["failed"],
        "dry_run": result["dry_run"], "target": "salesforce" if url else "outbox (dry run)", **table_meta})
