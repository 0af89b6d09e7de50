"""Nightly schedule, digest sensor + job (webhook on 127.0.0.1, outbox, retries) and the on-call sensor."""

import datetime as dt
import importlib
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import dagster as dg
import pytest
from dagster_duckdb import DuckDBResource

from cs_kpis.defs.alerts import engine
from cs_kpis.defs.automation import jobs, notify, schedules, sensors
from cs_kpis_tests.alerts.fixtures import Warehouse, set_cells

# ---------------------------------------------------------------------------------------------- schedule

def test_nightly_schedule_cron_and_timezone():
    assert schedules.nightly_schedule.cron_schedule == "0 2 * * *"
    assert schedules.nightly_schedule.execution_timezone == "UTC"
    assert schedules.nightly_schedule.job_name == "nightly"
    ctx = dg.build_schedule_context(scheduled_execution_time=dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC))
    [request] = list(schedules.nightly_schedule.evaluate_tick(ctx).run_requests)
    assert request.job_name in (None, "nightly")


def test_schedule_cron_and_timezone_from_env(monkeypatch):
    monkeypatch.setenv("CS_KPIS_NIGHTLY_CRON", "30 4 * * 1-5")
    monkeypatch.setenv("CS_KPIS_NIGHTLY_TIMEZONE", "Europe/Berlin")
    try:
        reloaded = importlib.reload(schedules)
        assert reloaded.nightly_schedule.cron_schedule == "30 4 * * 1-5"
        assert reloaded.nightly_schedule.execution_timezone == "Europe/Berlin"
    finally:
        monkeypatch.delenv("CS_KPIS_NIGHTLY_CRON")
        monkeypatch.delenv("CS_KPIS_NIGHTLY_TIMEZONE")
        importlib.reload(schedules)


# ------------------------------------------------------------------------------------------ webhook stub

class Hook:
    """A webhook on 127.0.0.1 that records JSON bodies; answers 500 while ``fail`` is true."""

    def __init__(self):
        self.received, self.fail, self.hits = [], False, 0
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.hits += 1
                if hook.fail:
                    self.send_response(500)
                else:
                    hook.received.append(json.loads(body))
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
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
    monkeypatch.delenv(notify.ENV_WEBHOOK, raising=False)
    monkeypatch.delenv(notify.ENV_ONCALL_WEBHOOK, raising=False)
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
                                  resources={"duckdb": DuckDBResource(database=str(path))})
    result = sensors.alert_digest_sensor(ctx)
    return result, ctx.cursor


def _run(request, path, instance):
    return jobs.alert_digest_job.execute_in_process(
        run_config=request.run_config, instance=instance, resources={"duckdb": DuckDBResource(database=str(path))})


def _notifications(path):
    with DuckDBResource(database=str(path)).get_connection() as con:
        return con.execute("select owner_name, alert_count, status, attempts from alerts.notifications "
                           "order by owner_name").fetchall()


def test_one_digest_per_owner_to_the_webhook_and_second_tick_sends_nothing(warehouse, hook, monkeypatch):
    monkeypatch.setenv(notify.ENV_WEBHOOK, hook.url)
    instance = dg.DagsterInstance.ephemeral()
    request, cursor = _tick(warehouse, None, instance)
    assert isinstance(request, dg.RunRequest) and request.run_key == "digest-0-3" and cursor == "3"
    assert _run(request, warehouse, instance).success
    assert sorted((p["owner_name"], len(p["alerts"])) for p in hook.received) == [("Cara Smith", 2), ("Dev Patel", 1)]
    cara = next(p for p in hook.received if p["owner_name"] == "Cara Smith")
    assert cara["text"].startswith("*2 customer alerts for Cara Smith*")
    assert "health_red: health 30 is red (was 80 30 days ago)" in cara["text"]
    # second tick: same cursor, nothing new, nothing pending -> no run, no post
    again, cursor2 = _tick(warehouse, cursor, instance)
    assert isinstance(again, dg.SkipReason) and cursor2 == "3"
    assert len(hook.received) == 2
    assert _notifications(warehouse) == [("Cara Smith", 2, "sent", 1), ("Dev Patel", 1, "sent", 1)]


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
    assert isinstance(retry, dg.RunRequest) and retry.run_key == "retry-3-2"
    assert _run(retry, warehouse, instance).success
    assert sorted(p["owner_name"] for p in hook.received) == ["Cara Smith", "Dev Patel"]
    assert _notifications(warehouse) == [("Cara Smith", 2, "sent", 2), ("Dev Patel", 1, "sent", 2)]
    done, _ = _tick(warehouse, cursor, instance)
    assert isinstance(done, dg.SkipReason)


def test_outbox_without_webhook(warehouse, tmp_path):
    instance = dg.DagsterInstance.ephemeral()
    request, _ = _tick(warehouse, None, instance)
    _run(request, warehouse, instance)
    files = sorted((tmp_path / "outbox").glob("*.json"))
    assert [f.name for f in files] == ["u_csm1_0-3.json", "u_csm2_0-3.json"]
    assert json.loads(files[1].read_text())["owner_name"] == "Dev Patel"


def test_digest_sensor_skips_when_warehouse_is_missing(tmp_path):
    result, cursor = _tick(tmp_path / "nope" / "wh.duckdb", "5", dg.DagsterInstance.ephemeral())
    assert isinstance(result, dg.SkipReason) and cursor == "5"


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

    ctx = dg.build_sensor_context(instance=instance, definitions=defs, cursor=None)
    sensors.failed_check_sensor(ctx)
    assert len(hook.received) == 1
    msg = hook.received[0]
    assert (msg["asset"], msg["check"], msg["severity"]) == ("kpis/thing", "thing_rows_ok", "ERROR")
    assert msg["metadata"] == {"violations": 3} and msg["runbook"].startswith("RUNBOOK §kpis")
    # next tick from the stored cursor: nothing new
    ctx2 = dg.build_sensor_context(instance=instance, definitions=defs, cursor=ctx.cursor)
    sensors.failed_check_sensor(ctx2)
    assert len(hook.received) == 1
    # a new failing evaluation is posted again
    dg.materialize([thing, bad, good], instance=instance)
    sensors.failed_check_sensor(dg.build_sensor_context(instance=instance, definitions=defs, cursor=ctx2.cursor))
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
    ctx = dg.build_sensor_context(instance=instance, definitions=defs, cursor=None)
    sensors.failed_check_sensor(ctx)
    assert hook.received == [] and hook.hits == 1
    hook.fail = False
    sensors.failed_check_sensor(dg.build_sensor_context(instance=instance, definitions=defs, cursor=ctx.cursor))
    assert [m["check"] for m in hook.received] == ["y_ok"]
