"""Alert digests and on-call messages: build, queue in DuckDB (alerts.notifications), deliver, retry.

Delivery: POST the JSON to a Slack-compatible incoming webhook (``text`` is what Slack shows; the other
fields are for machines) when CS_KPIS_ALERT_WEBHOOK_URL is set (on-call: CS_KPIS_ONCALL_WEBHOOK_URL), else
write ``<outbox>/<id>.json`` (``settings.alerts.outbox_dir`` in the company file, CS_KPIS_OUTBOX overrides,
default <state>/outbox). Inside Dagster the ``alerting`` resource (cs_kpis/lib/settings_resources.py) passes
URLs, outbox and timeout in; the functions below fall back to cs_kpis/tuning.py when called without them.

The guarantee (stated in the runbook, cs_kpis/defs/automation/README.md):

- **At least once into the queue.** ``queue_new_digests`` queues the digests of every notifiable alert_log row
  beyond ``alerts.digest_handover.handed_upto`` and advances ``handed_upto`` in the *same* DuckDB transaction.
  A run that fails before the commit leaves both untouched, and the next run queues the same rows again.
- **At most once out of the queue.** Every digest has an idempotency key (``Idempotency-Key`` header and
  ``idempotency_key`` field). Before a POST its row is marked ``sending`` (committed); a 2xx marks it ``sent``,
  an answer that says "not delivered" (4xx/5xx, connection refused, malformed URL) puts it back to
  ``pending``, and an ambiguous end (timeout, connection dropped, process killed) leaves it ``sending``:
  in doubt. A digest in doubt is never re-POSTed blindly: it is first checked, in the outbox by its file
  (written atomically), at a webhook by GET ``CS_KPIS_ALERT_WEBHOOK_CHECK_URL`` (``{key}`` replaced by the
  idempotency key; 200 = received, 404 = not received). Without a check URL it stays ``in_doubt`` for a person
  to decide (runbook: "Digests in doubt").
- Error texts stored in ``last_error`` and logged carry the exception type and the HTTP status, never the URL
  (a webhook URL's path is a secret) nor a response body.
No Dagster imports: jobs.py and sensors.py wrap these functions.
"""

import hashlib
import http.client
import json
import os
import socket
import urllib.error
import urllib.request
from pathlib import Path

from cs_kpis import settings, tuning
from cs_kpis.defs.alerts.engine import SEVERITY_RANK
from cs_kpis.lib.settings_resources import ENV_ONCALL_WEBHOOK, ENV_WEBHOOK, ENV_WEBHOOK_CHECK

__all__ = ["ENV_ONCALL_WEBHOOK", "ENV_WEBHOOK", "ENV_WEBHOOK_CHECK"]
ENV_OUTBOX = tuning.SETTINGS["alerts.outbox_dir"].env
ENV_TIMEOUT = tuning.SETTINGS["alerts.webhook_timeout_s"].env
DEFAULT_TIMEOUT_S = tuning.SETTINGS["alerts.webhook_timeout_s"].default

NOTIFICATIONS_DDL = """
create table if not exists alerts.notifications (
    notification_id varchar not null,   -- owner_id:after_seq-upto_seq: one digest per owner per batch
    owner_id varchar, owner_name varchar,
    after_seq bigint not null, upto_seq bigint not null,  -- the alert_log rows (after, upto] it covers
    alert_count integer not null,
    payload varchar not null,           -- the JSON sent
    status varchar not null,            -- pending, sending (a POST under way or ended in doubt), in_doubt, sent
    attempts integer not null, last_error varchar,
    created_at timestamp with time zone not null, sent_at timestamp with time zone
)
"""

HANDOVER_DDL = """
create table if not exists alerts.digest_handover (
    handed_upto bigint not null,        -- every alert_log row with log_seq <= this is queued in notifications
    updated_at timestamp with time zone not null
)
"""


class DeliveryError(Exception):
    """A send that did not deliver. ``in_doubt``: it may have been received (timeout, dropped connection)."""

    def __init__(self, message: str, *, in_doubt: bool):
        super().__init__(message)
        self.in_doubt = in_doubt


def outbox_dir() -> Path:
    return tuning.get_path("alerts.outbox_dir") or settings.state_dir() / "outbox"


def webhook_url(env: str = ENV_WEBHOOK) -> str | None:
    return os.environ.get(env) or None


def webhook_timeout() -> float:
    return tuning.get("alerts.webhook_timeout_s")


def idempotency_key(name: str) -> str:
    """A stable key per delivery (the same digest always has the same key), safe in a URL."""
    return hashlib.sha256(name.encode()).hexdigest()[:32]


def describe_error(exc: BaseException) -> str:
    """Type and status of a send failure; never the URL, the request or a response body."""
    if isinstance(exc, DeliveryError):
        return str(exc)
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTPError: webhook answered {exc.code}"
    if isinstance(exc, urllib.error.URLError):
        return f"URLError: {type(exc.reason).__name__}"
    return type(exc).__name__


def post_json(url: str, payload: dict, timeout: float | None = None, key: str | None = None) -> None:
    """POST ``payload``; raises :class:`DeliveryError` (messages without the URL) unless a 2xx answers."""
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Idempotency-Key"] = key
    try:
        req = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST", headers=headers)
    except ValueError:  # malformed URL: the message would quote it, secret path included
        raise DeliveryError("ValueError: the webhook URL is malformed (not shown: it holds a secret)",
                            in_doubt=False) from None
    try:
        with urllib.request.urlopen(req, timeout=timeout or webhook_timeout()) as resp:
            status = resp.status
    except urllib.error.HTTPError as exc:  # the receiver answered: it says it did not take it
        raise DeliveryError(describe_error(exc), in_doubt=False) from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        # refused / unknown host: nothing was sent. A timeout may strike after the body went out.
        doubt = isinstance(reason, (TimeoutError, socket.timeout, ConnectionResetError))
        raise DeliveryError(describe_error(exc), in_doubt=doubt) from None
    except (TimeoutError, ConnectionError, http.client.HTTPException) as exc:
        raise DeliveryError(f"{type(exc).__name__}: no answer, may have been received", in_doubt=True) from None
    except ValueError:
        raise DeliveryError("ValueError: the webhook URL is malformed (not shown: it holds a secret)",
                            in_doubt=False) from None
    if not 200 <= status < 300:
        raise DeliveryError(f"webhook answered {status}", in_doubt=False)


def check_received(check_url: str, key: str, timeout: float | None = None) -> bool | None:
    """Ask the receiver whether the delivery ``key`` arrived: True (200), False (404), None (cannot tell)."""
    try:
        req = urllib.request.Request(check_url.replace("{key}", key), method="GET")
        with urllib.request.urlopen(req, timeout=timeout or webhook_timeout()) as resp:
            return True if resp.status == 200 else None
    except urllib.error.HTTPError as exc:
        return False if exc.code == 404 else None
    except (OSError, ValueError, http.client.HTTPException):
        return None


def write_outbox(folder: Path, name: str, payload: dict) -> Path:
    final = outbox_path(folder, name)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{final.stem}.tmp"
    tmp.write_text(json.dumps(payload, indent=2, default=str))
    tmp.replace(final)  # atomic: the file exists complete or not at all
    return final


def outbox_path(folder: Path, name: str) -> Path:
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
    return folder / f"{safe}.json"


def deliver(name: str, payload: dict, url: str | None, outbox: Path, timeout: float | None = None) -> str:
    key = idempotency_key(name)
    payload = {**payload, "idempotency_key": key}
    if url:
        post_json(url, payload, timeout=timeout, key=key)
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


def slack_escape(value) -> str:
    """Text from data, escaped for Slack mrkdwn: ``&``, ``<`` and ``>`` (so no link, mention or ping)."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def digest_payload(owner_id: str, owner_name: str, items: list[dict]) -> dict:
    items = sorted(items, key=lambda i: (SEVERITY_RANK.get(i["severity"], len(SEVERITY_RANK)), -(i["arr"] or 0), i["dedup_key"]))
    esc = slack_escape
    lines = [f"*{len(items)} customer alert{'s' if len(items) != 1 else ''} for {esc(owner_name)}*"]
    for i in items:
        arr = f"ARR {i['arr']:,.0f}" if i["arr"] is not None else "ARR unknown"
        again = " (still firing)" if i["event"] == "reminder" else ""
        lines.append(f"• [{esc(i['severity'])}] {esc(i['account_name'] or i['account_id'])} ({arr}): "
                     f"{esc(i['alert_type'])}{again}: {esc(i['reason'])}")
    return {"text": "\n".join(lines), "owner_id": owner_id, "owner_name": owner_name,
            "alerts": [{k: (str(v) if k == "event_day" else v) for k, v in i.items()} for i in items]}


def ensure_table(con) -> None:
    con.execute("create schema if not exists alerts")
    con.execute(NOTIFICATIONS_DDL)
    con.execute(HANDOVER_DDL)


def handed_upto(con) -> int:
    """The highest alert_log row already queued. A warehouse from before the handover table: the highest
    batch end in alerts.notifications (so rows a lost run never queued are queued now)."""
    row = con.execute("select max(handed_upto) from alerts.digest_handover").fetchall()[0][0]
    if row is not None:
        return int(row)
    return int(con.execute("select coalesce(max(upto_seq), 0) from alerts.notifications").fetchall()[0][0])


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


def queue_new_digests(con, upto_seq: int | None = None) -> tuple[int, int, int]:
    """In one transaction: queue the digests of the rows after ``handed_upto`` (up to ``upto_seq``, default
    the newest row) and advance ``handed_upto``. Returns (after, upto, digests queued)."""
    ensure_table(con)
    con.execute("begin transaction")
    try:
        after = handed_upto(con)
        newest = int(con.execute("select coalesce(max(log_seq), 0) from alerts.alert_log").fetchall()[0][0])
        upto = newest if upto_seq is None else min(upto_seq, newest)
        queued = 0
        if upto > after:
            queued = enqueue_digests(con, after, upto)
            con.execute("delete from alerts.digest_handover")
            con.execute("insert into alerts.digest_handover values (?, current_timestamp)", [upto])
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return after, max(upto, after), queued


def _set(con, nid: str, status: str, error: str | None, *, attempt: bool = False, sent: bool = False) -> None:
    con.execute(f"update alerts.notifications set status = ?, last_error = ?"
                f"{', attempts = attempts + 1' if attempt else ''}"
                f"{', sent_at = current_timestamp' if sent else ''} where notification_id = ?",
                [status, error, nid])


def deliver_pending(con, url: str | None = None, outbox: Path | None = None, check_url: str | None = None,
                    timeout: float | None = None) -> dict:
    """Check every digest in doubt, then send every pending one once; returns counts and the errors."""
    ensure_table(con)
    outbox = outbox or outbox_dir()
    check_url = check_url if check_url is not None else webhook_url(ENV_WEBHOOK_CHECK)
    confirmed, in_doubt = 0, 0
    for nid, in con.execute("select notification_id from alerts.notifications "
                            "where status in ('sending', 'in_doubt') order by created_at, notification_id").fetchall():
        if not url:
            received = outbox_path(outbox, nid).exists()
        else:
            received = check_received(check_url, idempotency_key(nid), timeout) if check_url else None
        if received:
            _set(con, nid, "sent", "confirmed received after an ambiguous send", sent=True)
            confirmed += 1
        elif received is False:
            _set(con, nid, "pending", "checked: not received, sent again")
        else:
            _set(con, nid, "in_doubt", "may have been received; not resent (runbook: Digests in doubt)")
            in_doubt += 1
    pending = con.execute("select notification_id, payload from alerts.notifications where status = 'pending' "
                          "order by created_at, notification_id").fetchall()
    sent, errors = 0, {}
    for nid, payload in pending:
        _set(con, nid, "sending", None, attempt=True)  # committed before the send: a crash leaves it in doubt
        try:
            channel = deliver(nid, json.loads(payload), url, outbox, timeout)
        except Exception as exc:  # noqa: BLE001 (any failure: pending again, or in doubt)
            errors[nid] = describe_error(exc)
            if isinstance(exc, DeliveryError) and exc.in_doubt:
                _set(con, nid, "in_doubt", errors[nid][:500])
                in_doubt += 1
            else:
                _set(con, nid, "pending", errors[nid][:500])
            continue
        _set(con, nid, "sent", f"via {channel}", sent=True)
        sent += 1
    return {"pending_before": len(pending), "sent": sent, "failed": len(errors), "errors": errors,
            "confirmed": confirmed, "in_doubt": in_doubt}


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
    esc = slack_escape  # a check's description may quote data (account names, sample values)
    text = (f":rotating_light: check *{esc(check)}* on `{esc(asset)}` failed ({esc(severity)}) in run {run_id}\n"
            f"{esc(description or '')}\n{hint} (cs_kpis/defs/automation/README.md#runbook)")
    return {"text": text, "asset": asset, "check": check, "severity": severity, "description": description,
            "metadata": metadata, "run_id": run_id, "runbook": hint}
