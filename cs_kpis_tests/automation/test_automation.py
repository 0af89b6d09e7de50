"""Nightly schedule, digest sensor + job (webhook on 127.0.0.1, outbox, retries) and the on-call sensor."""

import datetime as dt
import importlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest
from dagster_duckdb import DuckDBResource

from cs_kpis import definitions as defs_module
from cs_kpis.defs.alerts import engine
from cs_kpis.defs.automation import jobs, notify, schedules, sensors
from cs_kpis.lib.settings_resources import AlertingResource
from cs_kpis_tests.alerts.fixtures import Warehouse, set_cells

# ---------------------------------------------------------------------------------------------- schedule

def test_nightly_schedule_cron_and_timezone(monkeypatch):
    for name in ("CS_KPIS_NIGHTLY_CRON", "CS_KPIS_NIGHTLY_TIMEZONE", "CS_KPIS_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    schedule = schedules.build_nightly_schedule()
    assert schedule.cron_schedule == "0 2 * * *"
    assert schedule.execution_timezone == "UTC"
    assert schedule.job_name == "nightly"
    ctx = dg.build_schedule_context(scheduled_execution_time=dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC))
    [request] = list(schedule.evaluate_tick(ctx).run_requests)
    assert request.job_name in (None, "nightly")


def alerting_resources() -> dict:
    """the alerting resource as the environment set by the test fills it"""
    return {"alerting": AlertingResource.from_settings()}


def test_schedule_cron_and_timezone_from_env(monkeypatch):
    monkeypatch.setenv("CS_KPIS_NIGHTLY_CRON", "30 4 * * 1-5")
    monkeypatch.setenv("CS_KPIS_NIGHTLY_TIMEZONE", "Europe/Berlin")
    # read when the definitions load, not when the module was imported: no reload needed
    schedule = defs_module.defs().get_repository_def().get_schedule_def("nightly_schedule")
    assert schedule.cron_schedule == "30 4 * * 1-5"
    assert schedule.execution_timezone == "Europe/Berlin"


# ------------------------------------------------------------------------------------------ webhook stub

class Hook:
    """A webhook on 127.0.0.1 that records JSON bodies and their Idempotency-Key headers.

    ``fail``: answer 500. ``delay``: record the body, then wait that long before answering (a client with a
    shorter timeout gives up although the message arrived). ``drop``: wait without recording (the message is
    lost on the way). GET /status/<key> answers 200 when a body with that key was received, else 404.
    """

    def __init__(self):
        self.received, self.keys, self.fail, self.hits, self.delay, self.drop = [], [], False, 0, 0.0, False
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.hits += 1
                if hook.fail:
                    self.send_response(500)
                elif hook.drop:
                    time.sleep(hook.delay)
                    return
                else:
                    hook.received.append(json.loads(body))
                    hook.keys.append(self.headers.get("Idempotency-Key"))
                    time.sleep(hook.delay)
                    self.send_response(200)
                self.end_headers()

            def do_GET(self):
                key = self.path.rsplit("/", 1)[-1]
                self.send_response(200 if key in hook.keys else 404)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.check_url = f"http://127.0.0.1:{self.server.server_port}/status/{{key}}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook():
    h = Hook()
    yield h
    h.close()


@pytest.fixture
def warehouse(tmp_path, monkeypatch):
    """Alerts built on the fixture warehouse: A and C (CSM Cara Smith) and B (Dev Patel) turn red on 03-31."""
    monkeypatch.setenv("CS_KPIS_OUTBOX", str(tmp_path / "outbox"))
    for name in (notify.ENV_WEBHOOK, notify.ENV_ONCALL_WEBHOOK, notify.ENV_WEBHOOK_CHECK, notify.ENV_TIMEOUT):
        monkeypatch.delenv(name, raising=False)
    wh = Warehouse()
    for acc in ("A", "B", "C"):
        set_cells(wh.scores, acc, "2025-03-31", "2025-03-31", band="red", score=30.0, delta_30d=-50.0)
    path = tmp_path / "wh.duckdb"
    con = wh.build(path)
    engine.run_engine(con, engine.load_rules(), {}, run_id="test")
    con.close()
    return path


def _tick(path, cursor, instance):
    ctx = dg.build_sensor_context(cursor=cursor, instance=instance,
                                  resources={"duckdb": DuckDBResource(database=str(path)),
                                             "alerting": AlertingResource.from_settings()})
    result = sensors.alert_digest_sensor(ctx)
    return result, ctx.cursor


def _run(request, path, instance, raise_on_error=True):
    return jobs.alert_digest_job.execute_in_process(
        run_config=request.run_config, instance=instance,
        resources={"duckdb": DuckDBResource(database=str(path)), "alerting": AlertingResource.from_settings()},
        tags={"dagster/sensor_name": "alert_digest_sensor"}, raise_on_error=raise_on_error)


def _notifications(path):
    with DuckDBResource(database=str(path)).get_connection() as con:
        return con.execute("select owner_name, alert_count, status, attempts from alerts.notifications "
                           "order by owner_name").fetchall()


def _handed(path):
    with DuckDBResource(database=str(path)).get_connection() as con:
        return con.execute("select handed_upto from alerts.digest_handover").fetchall()


def test_one_digest_per_owner_to_the_webhook_and_second_tick_sends_nothing(warehouse, hook, monkeypatch):
    monkeypatch.setenv(notify.ENV_WEBHOOK, hook.url)
    instance = dg.DagsterInstance.ephemeral()
    request, cursor = _tick(warehouse, None, instance)
    assert isinstance(request, dg.RunRequest) and request.run_key.startswith("digest-0-3-")
    assert _run(request, warehouse, instance).success
    assert _handed(warehouse) == [(3,)]
    assert sorted((p["owner_name"], len(p["alerts"])) for p in hook.received) == [("Cara Smith", 2), ("Dev Patel", 1)]
    cara = next(p for p in hook.received if p["owner_name"] == "Cara Smith")
    assert cara["text"].startswith("*2 customer alerts for Cara Smith*")
    assert "health_red: health 30 is red (was 80 30 days ago)" in cara["text"]
    # every delivery carries its idempotency key, in the header and in the body
    assert sorted(hook.keys) == sorted(p["idempotency_key"] for p in hook.received) and all(hook.keys)
    # second tick: nothing new, nothing pending -> no run, no post
    again, _ = _tick(warehouse, cursor, instance)
    assert isinstance(again, dg.SkipReason)
    assert len(hook.received) == 2
    assert _notifications(warehouse) == [("Cara Smith", 2, "sent", 1), ("Dev Patel", 1, "sent", 1)]


def test_a_digest_run_that_fails_before_queueing_is_asked_for_again(warehouse, hook, monkeypatch):
    """The fault of issue 16: the sensor moved its cursor, the run failed (the warehouse was locked) before
    anything was queued, and every later tick said "nothing new". Now the hand-over is in the warehouse."""
    monkeypatch.setenv(notify.ENV_WEBHOOK, hook.url)
    instance = dg.DagsterInstance.ephemeral()
    request, cursor = _tick(warehouse, None, instance)

    def locked(*args, **kwargs):
        raise RuntimeError("IO Error: Could not set lock on file (simulated)")

    with monkeypatch.context() as mp:
        mp.setattr(notify, "enqueue_digests", locked)
        assert not _run(request, warehouse, instance, raise_on_error=False).success
    assert _handed(warehouse) == [] and _notifications(warehouse) == []  # rolled back: nothing handed over
    retry, cursor = _tick(warehouse, cursor, instance)
    assert isinstance(retry, dg.RunRequest) and retry.run_key != request.run_key  # a new key: not deduplicated
    assert _run(retry, warehouse, instance).success
    assert sorted(p["owner_name"] for p in hook.received) == ["Cara Smith", "Dev Patel"]
    assert isinstance(_tick(warehouse, cursor, instance)[0], dg.SkipReason)


def test_failure_inside_the_transaction_rolls_back_queue_and_handover(warehouse):
    with DuckDBResource(database=str(warehouse)).get_connection() as con:
        orig = notify.digest_payload
        calls = []

        def second_owner_fails(*args):
            calls.append(1)
            if len(calls) == 2:
                raise RuntimeError("boom")
            return orig(*args)

        notify.digest_payload = second_owner_fails
        try:
            with pytest.raises(RuntimeError):
                notify.queue_new_digests(con)
        finally:
            notify.digest_payload = orig
        assert con.execute("select count(*) from alerts.notifications").fetchall() == [(0,)]
        assert notify.handed_upto(con) == 0
        assert notify.queue_new_digests(con) == (0, 3, 2)
        assert notify.queue_new_digests(con) == (3, 3, 0)


def test_no_second_run_while_one_is_queued(warehouse, monkeypatch):
    instance = dg.DagsterInstance.ephemeral()
    request, cursor = _tick(warehouse, None, instance)
    # created, never launched: NOT_STARTED counts as active
    run = instance.create_run_for_job(jobs.alert_digest_job, run_config=request.run_config)
    again, _ = _tick(warehouse, cursor, instance)
    assert isinstance(again, dg.SkipReason) and "queued or running" in again.skip_message
    instance.report_run_canceled(run)
    assert isinstance(_tick(warehouse, cursor, instance)[0], dg.RunRequest)


def test_failed_send_stays_pending_and_is_retried_next_tick(warehouse, hook, monkeypatch):
    monkeypatch.setenv(notify.ENV_WEBHOOK, hook.url)
    instance = dg.DagsterInstance.ephemeral()
    hook.fail = True
    request, cursor = _tick(warehouse, None, instance)
    assert _run(request, warehouse, instance).success  # a failed send does not fail the run: it stays queued
    assert hook.received == [] and hook.hits == 2
    assert _notifications(warehouse) == [("Cara Smith", 2, "pending", 1), ("Dev Patel", 1, "pending", 1)]
    hook.fail = False
    retry, cursor = _tick(warehouse, cursor, instance)
    assert isinstance(retry, dg.RunRequest)
    assert _run(retry, warehouse, instance).success
    assert sorted(p["owner_name"] for p in hook.received) == ["Cara Smith", "Dev Patel"]
    assert _notifications(warehouse) == [("Cara Smith", 2, "sent", 2), ("Dev Patel", 1, "sent", 2)]
    done, _ = _tick(warehouse, cursor, instance)
    assert isinstance(done, dg.SkipReason)


def test_slow_webhook_gets_each_digest_once(warehouse, hook, monkeypatch):
    """The webhook answers after 1.2 s, the client gives up after 1 s (issue 16: 12 s vs 10 s). The timed-out
    digests are in doubt; the next run checks them by idempotency key and does not post them again."""
    monkeypatch.setenv(notify.ENV_WEBHOOK, hook.url)
    monkeypatch.setenv(notify.ENV_WEBHOOK_CHECK, hook.check_url)
    monkeypatch.setenv(notify.ENV_TIMEOUT, "1")
    hook.delay = 1.2
    instance = dg.DagsterInstance.ephemeral()
    request, cursor = _tick(warehouse, None, instance)
    assert _run(request, warehouse, instance).success
    assert [s for _, _, s, _ in _notifications(warehouse)] == ["in_doubt", "in_doubt"]
    hook.delay = 0.0
    retry, cursor = _tick(warehouse, cursor, instance)
    assert isinstance(retry, dg.RunRequest)
    assert _run(retry, warehouse, instance).success
    assert hook.hits == 2 and sorted(p["owner_name"] for p in hook.received) == ["Cara Smith", "Dev Patel"]
    assert _notifications(warehouse) == [("Cara Smith", 2, "sent", 1), ("Dev Patel", 1, "sent", 1)]
    assert isinstance(_tick(warehouse, cursor, instance)[0], dg.SkipReason)


def test_lost_send_is_checked_then_resent_once(warehouse, hook, monkeypatch):
    monkeypatch.setenv(notify.ENV_WEBHOOK, hook.url)
    monkeypatch.setenv(notify.ENV_WEBHOOK_CHECK, hook.check_url)
    monkeypatch.setenv(notify.ENV_TIMEOUT, "0.5")
    hook.drop, hook.delay = True, 0.8
    instance = dg.DagsterInstance.ephemeral()
    request, cursor = _tick(warehouse, None, instance)
    _run(request, warehouse, instance)
    hook.drop, hook.delay = False, 0.0
    retry, _ = _tick(warehouse, cursor, instance)
    _run(retry, warehouse, instance)
    assert sorted(p["owner_name"] for p in hook.received) == ["Cara Smith", "Dev Patel"]
    assert _notifications(warehouse) == [("Cara Smith", 2, "sent", 2), ("Dev Patel", 1, "sent", 2)]


def test_in_doubt_without_a_check_url_is_not_resent(warehouse, hook, monkeypatch):
    monkeypatch.setenv(notify.ENV_WEBHOOK, hook.url)
    monkeypatch.setenv(notify.ENV_TIMEOUT, "0.5")
    hook.delay = 0.8
    instance = dg.DagsterInstance.ephemeral()
    request, cursor = _tick(warehouse, None, instance)
    _run(request, warehouse, instance)
    hook.delay = 0.0
    again, _ = _tick(warehouse, cursor, instance)
    assert isinstance(again, dg.SkipReason) and "in doubt" in again.skip_message
    with DuckDBResource(database=str(warehouse)).get_connection() as con:  # a direct delivery: still not resent
        notify.deliver_pending(con, hook.url)
    assert hook.hits == 2 and [s for _, _, s, _ in _notifications(warehouse)] == ["in_doubt", "in_doubt"]


def test_malformed_webhook_url_never_stored_or_logged(warehouse, monkeypatch, caplog):
    secret = "T0SECRET/B0SECRET/xoxSecretPathValue"
    monkeypatch.setenv(notify.ENV_WEBHOOK, f"hooks.example.com/services/{secret}")  # no scheme: malformed
    instance = dg.DagsterInstance.ephemeral()
    request, _ = _tick(warehouse, None, instance)
    result = _run(request, warehouse, instance)
    with DuckDBResource(database=str(warehouse)).get_connection() as con:
        errors = [e for (e,) in con.execute("select last_error from alerts.notifications").fetchall()]
    assert errors and all("malformed" in e for e in errors)
    logged = " ".join(str(ev) for ev in instance.all_logs(result.run_id)) + caplog.text + " ".join(errors)
    for part in ("T0SECRET", "B0SECRET", "xoxSecretPathValue", "hooks.example.com"):
        assert part not in logged


def test_hostile_account_name_is_escaped_for_slack(warehouse, hook, monkeypatch):
    monkeypatch.setenv(notify.ENV_WEBHOOK, hook.url)
    hostile = "Evil <!channel> <https://x.example|click> & co"
    with DuckDBResource(database=str(warehouse)).get_connection() as con:
        con.execute("update marts.accounts set account_name = ? where account_id = 'A'", [hostile])
    instance = dg.DagsterInstance.ephemeral()
    request, _ = _tick(warehouse, None, instance)
    _run(request, warehouse, instance)
    cara = next(p for p in hook.received if p["owner_name"] == "Cara Smith")
    assert "<" not in cara["text"] and ">" not in cara["text"].replace("&gt;", "")
    assert "Evil &lt;!channel&gt; &lt;https://x.example|click&gt; &amp; co" in cara["text"]
    # the machine fields keep the name as it is
    assert hostile in [a["account_name"] for a in cara["alerts"]]


def test_outbox_without_webhook(warehouse, tmp_path):
    instance = dg.DagsterInstance.ephemeral()
    request, _ = _tick(warehouse, None, instance)
    _run(request, warehouse, instance)
    files = sorted((tmp_path / "outbox").glob("*.json"))
    assert [f.name for f in files] == ["u_csm1_0-3.json", "u_csm2_0-3.json"]
    assert json.loads(files[1].read_text())["owner_name"] == "Dev Patel"


def test_outbox_send_interrupted_is_checked_by_its_file(warehouse, tmp_path):
    with DuckDBResource(database=str(warehouse)).get_connection() as con:
        notify.queue_new_digests(con)
        # a process killed mid-send: one digest 'sending' with its file written, one without
        notify.write_outbox(tmp_path / "outbox", "u_csm1:0-3", {"text": "x"})
        con.execute("update alerts.notifications set status = 'sending', attempts = 1")
        result = notify.deliver_pending(con, None, tmp_path / "outbox")
        rows = con.execute("select notification_id, status, attempts from alerts.notifications "
                           "order by 1").fetchall()
    assert result["confirmed"] == 1 and result["sent"] == 1
    assert rows == [("u_csm1:0-3", "sent", 1), ("u_csm2:0-3", "sent", 2)]
    assert json.loads((tmp_path / "outbox" / "u_csm1_0-3.json").read_text()) == {"text": "x"}  # not rewritten


def test_digest_sensor_skips_when_warehouse_is_missing(tmp_path):
    result, cursor = _tick(tmp_path / "nope" / "wh.duckdb", "5", dg.DagsterInstance.ephemeral())
    assert isinstance(result, dg.SkipReason) and cursor == "5"


# -------------------------------------------------------------------------------------- automation switch

def test_automation_starts_stopped_unless_switched_on(monkeypatch):
    from cs_kpis.defs.automation import switch

    monkeypatch.delenv(switch.ENV_AUTOMATION, raising=False)
    repo = defs_module.defs().get_repository_def()
    assert {s.name: s.default_status for s in repo.sensor_defs} and all(
        s.default_status == dg.DefaultSensorStatus.STOPPED for s in repo.sensor_defs)
    assert all(s.default_status == dg.DefaultScheduleStatus.STOPPED for s in repo.schedule_defs)
    monkeypatch.setenv(switch.ENV_AUTOMATION, "on")
    importlib.reload(sensors)
    try:
        assert sensors.alert_digest_sensor.default_status == dg.DefaultSensorStatus.RUNNING
        assert sensors.failed_check_sensor.default_status == dg.DefaultSensorStatus.RUNNING
        assert schedules.build_nightly_schedule().default_status == dg.DefaultScheduleStatus.RUNNING
    finally:
        monkeypatch.delenv(switch.ENV_AUTOMATION)
        importlib.reload(sensors)
    monkeypatch.setenv(switch.ENV_AUTOMATION, "maybe")
    with pytest.raises(ValueError, match="CS_KPIS_AUTOMATION"):
        switch.automation_enabled()


# ----------------------------------------------------------------------------------------------- on-call

def test_failed_check_sensor_posts_each_new_failure_once(tmp_path, hook, monkeypatch):
    monkeypatch.setenv(notify.ENV_ONCALL_WEBHOOK, hook.url)
    key = dg.AssetKey(["kpis", "thing"])

    @dg.asset(key=key)
    def thing():
        return dg.MaterializeResult()

    @dg.asset_check(asset=key, name="thing_rows_ok")
    def bad():
        return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.ERROR, description="3 rows break it",
                                   metadata={"violations": dg.MetadataValue.int(3)})

    @dg.asset_check(asset=key, name="thing_fine")
    def good():
        return dg.AssetCheckResult(passed=True)

    defs = dg.Definitions(assets=[thing], asset_checks=[bad, good], sensors=[sensors.failed_check_sensor])
    instance = dg.DagsterInstance.ephemeral()
    dg.materialize([thing, bad, good], instance=instance)

    ctx = dg.build_sensor_context(instance=instance, definitions=defs, cursor=None, resources=alerting_resources())
    sensors.failed_check_sensor(ctx)
    assert len(hook.received) == 1
    msg = hook.received[0]
    assert (msg["asset"], msg["check"], msg["severity"]) == ("kpis/thing", "thing_rows_ok", "ERROR")
    assert msg["metadata"] == {"violations": 3} and msg["runbook"].startswith("RUNBOOK §kpis")
    # next tick from the stored cursor: nothing new
    ctx2 = dg.build_sensor_context(instance=instance, definitions=defs, cursor=ctx.cursor, resources=alerting_resources())
    sensors.failed_check_sensor(ctx2)
    assert len(hook.received) == 1
    # a new failing evaluation is posted again
    dg.materialize([thing, bad, good], instance=instance)
    sensors.failed_check_sensor(dg.build_sensor_context(instance=instance, definitions=defs, cursor=ctx2.cursor,
                                                        resources=alerting_resources()))
    assert len(hook.received) == 2


def test_failed_check_post_is_retried(tmp_path, hook, monkeypatch):
    monkeypatch.setenv(notify.ENV_ONCALL_WEBHOOK, hook.url)

    @dg.asset(key=dg.AssetKey(["raw", "x", "y"]))
    def y():
        return dg.MaterializeResult()

    @dg.asset_check(asset=y, name="y_ok")
    def y_ok():
        return dg.AssetCheckResult(passed=False)

    defs = dg.Definitions(assets=[y], asset_checks=[y_ok], sensors=[sensors.failed_check_sensor])
    instance = dg.DagsterInstance.ephemeral()
    dg.materialize([y, y_ok], instance=instance)
    hook.fail = True
    ctx = dg.build_sensor_context(instance=instance, definitions=defs, cursor=None, resources=alerting_resources())
    sensors.failed_check_sensor(ctx)
    assert hook.received == [] and hook.hits == 1
    hook.fail = False
    sensors.failed_check_sensor(dg.build_sensor_context(instance=instance, definitions=defs, cursor=ctx.cursor,
                                                        resources=alerting_resources()))
    assert [m["check"] for m in hook.received] == ["y_ok"]
