"""Alert digests and on-call messages: build, queue in DuckDB (alerts.notifications), deliver, retry.

Delivery: POST the JSON to a Slack-compatible incoming webhook (``text`` is what Slack shows; the other
fields are for machines) when CS_KPIS_ALERT_WEBHOOK_URL is set (on-call: CS_KPIS_ONCALL_WEBHOOK_URL), else
write ``<outbox>/<id>.json`` (CS_KPIS_OUTBOX, default <state>/outbox). A digest is queued as 'pending'
before any send; a failed send leaves it pending with attempts + 1 and the error, and the next delivery
retries it. Nothing is lost and nothing is sent twice once marked 'sent'.
No Dagster imports: jobs.py and sensors.py wrap these functions.
"""

import json
import os
import urllib.request
from pathlib import Path

from cs_kpis import settings

ENV_WEBHOOK = "CS_KPIS_ALERT_WEBHOOK_URL"
ENV_ONCALL_WEBHOOK = "CS_KPIS_ONCALL_WEBHOOK_URL"
ENV_OUTBOX = "CS_KPIS_OUTBOX"
SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "info": 3}

NOTIFICATIONS_DDL = """
create table if not exists alerts.notifications (
    notification_id varchar not null,   -- owner_id:after_seq-upto_seq: one digest per owner per batch
    owner_id varchar, owner_name varchar,
    after_seq bigint not null, upto_seq bigint not null,  -- the alert_log rows (after, upto] it covers
    alert_count integer not null,
    payload varchar not null,           -- the JSON sent
    status varchar not null,            -- pending or sent
    attempts integer not null, last_error varchar,
    created_at timestamp with time zone not null, sent_at timestamp with time zone
)
"""


def outbox_dir() -> Path:
    value = os.environ.get(ENV_OUTBOX)
    return Path(value) if value else settings.state_dir() / "outbox"


def webhook_url(env: str = ENV_WEBHOOK) -> str | None:
    return os.environ.get(env) or None


def post_json(url: str, payload: dict, timeout: float = 10.0) -> None:
    """POST ``payload``; anything but a 2xx raises."""
    req = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        if not 200 <= resp.status < 300:
            raise OSError(f"webhook answered {resp.status}")


def write_outbox(folder: Path, name: str, payload: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
    tmp, final = folder / f".{safe}.tmp", folder / f"{safe}.json"
    tmp.write_text(json.dumps(payload, indent=2, default=str))
    tmp.replace(final)
    return final


def deliver(name: str, payload: dict, url: str | None, outbox: Path) -> str:
    if url:
        post_json(url, payload)
        return "webhook"
    write_outbox(outbox, name, payload)
    return "outbox"


# ------------------------------------------------------------------------------------------------- digests

DIGEST_SQL = """
    select l.log_seq, l.dedup_key, l.account_id, a.account_name, l.alert_type, l.event, l.event_day, l.severity,
        l.reason, coalesce(l.owner_id, 'unassigned') as owner_id, coalesce(l.owner_name, 'Unassigned') as owner_name,
        l.arr
    from alerts.alert_log as l
    left join marts.accounts as a on a.account_id = l.account_id
    where l.notify and l.log_seq > ? and l.log_seq <= ?
    order by owner_id, l.log_seq
"""


def digest_payload(owner_id: str, owner_name: str, items: list[dict]) -> dict:
    items = sorted(items, key=lambda i: (SEVERITY_ORDER.get(i["severity"], 9), -(i["arr"] or 0), i["dedup_key"]))
    lines = [f"*{len(items)} customer alert{'s' if len(items) != 1 else ''} for {owner_name}*"]
    for i in items:
        arr = f"ARR {i['arr']:,.0f}" if i["arr"] is not None else "ARR unknown"
        again = " (still firing)" if i["event"] == "reminder" else ""
        lines.append(f"• [{i['severity']}] {i['account_name'] or i['account_id']} ({arr}): "
                     f"{i['alert_type']}{again}: {i['reason']}")
    return {"text": "\n".join(lines), "owner_id": owner_id, "owner_name": owner_name,
            "alerts": [{k: (str(v) if k == "event_day" else v) for k, v in i.items()} for i in items]}


def ensure_table(con) -> None:
    con.execute("create schema if not exists alerts")
    con.execute(NOTIFICATIONS_DDL)


def enqueue_digests(con, after_seq: int, upto_seq: int) -> int:
    """Queue one pending digest per owner for the notifiable log rows (after_seq, upto_seq]; idempotent."""
    ensure_table(con)
    cur = con.execute(DIGEST_SQL, [after_seq, upto_seq])
    cols = [c[0] for c in cur.description]
    rows = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
    by_owner: dict[str, list[dict]] = {}
    for r in rows:
        by_owner.setdefault(r["owner_id"], []).append(r)
    queued = 0
    for owner_id, items in by_owner.items():
        nid = f"{owner_id}:{after_seq}-{upto_seq}"
        exists = con.execute("select count(*) from alerts.notifications where notification_id = ?", [nid]).fetchall()
        if exists[0][0]:
            continue
        payload = digest_payload(owner_id, items[0]["owner_name"], items)
        con.execute("insert into alerts.notifications values (?, ?, ?, ?, ?, ?, ?, 'pending', 0, null, "
                    "current_timestamp, null)",
                    [nid, owner_id, items[0]["owner_name"], after_seq, upto_seq, len(items), json.dumps(payload)])
        queued += 1
    return queued


def deliver_pending(con, url: str | None = None, outbox: Path | None = None) -> dict:
    """Try every pending digest once; returns counts and the errors."""
    ensure_table(con)
    outbox = outbox or outbox_dir()
    pending = con.execute("select notification_id, payload from alerts.notifications where status = 'pending' "
                          "order by created_at, notification_id").fetchall()
    sent, errors = 0, {}
    for nid, payload in pending:
        try:
            channel = deliver(nid, json.loads(payload), url, outbox)
        except Exception as exc:  # noqa: BLE001 (any failure: stays pending, retried next time)
            errors[nid] = f"{type(exc).__name__}: {exc}"
            con.execute("update alerts.notifications set attempts = attempts + 1, last_error = ? "
                        "where notification_id = ?", [errors[nid][:500], nid])
            continue
        con.execute("update alerts.notifications set status = 'sent', attempts = attempts + 1, last_error = ?, "
                    "sent_at = current_timestamp where notification_id = ?", [f"via {channel}", nid])
        sent += 1
    return {"pending_before": len(pending), "sent": sent, "failed": len(errors), "errors": errors}


# ------------------------------------------------------------------------------------------------- on-call

RUNBOOK_HINTS = {
    "landing": "RUNBOOK §landing: the source hand-over is incomplete; check the landing manifest and rerun the export",
    "raw": "RUNBOOK §raw: a dlt load broke a contract; inspect the quarantine table, fix the source, rerun raw",
    "staging": "RUNBOOK §staging: a source changed shape or keys; compare the sample rows with the raw table",
    "marts": "RUNBOOK §marts: revenue no longer reconciles; check mrr_daily vs billing and the xref coverage",
    "kpis": "RUNBOOK §kpis: a KPI table is off; business alerts depending on it are HELD until it passes",
    "alerts": "RUNBOOK §alerts: the alert tables are inconsistent; CSMs may get wrong digests: pause the digest sensor",
}


def oncall_payload(asset: str, check: str, severity: str, description: str | None, metadata: dict,
                   run_id: str) -> dict:
    layer = asset.split("/")[0]
    hint = RUNBOOK_HINTS.get(layer, "RUNBOOK: see cs_kpis/defs/automation/README.md")
    text = (f":rotating_light: check *{check}* on `{asset}` failed ({severity}) in run {run_id}\n"
            f"{description or ''}\n{hint} (cs_kpis/defs/automation/README.md#runbook)")
    return {"text": text, "asset": asset, "check": check, "severity": severity, "description": description,
            "metadata": metadata, "run_id": run_id, "runbook": hint}
