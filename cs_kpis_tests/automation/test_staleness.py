"""Staleness pages on-call once, with a controlled clock: an asset past its freshness policy's fail window,
a source whose newest loaded extract is late; nothing again until fresh; stale again -> paged again."""

import datetime as dt
import json

import dagster as dg
import duckdb
import pytest

from cs_kpis.defs.automation import notify, staleness
from cs_kpis.lib.extracts import newest_extract_day, newest_extract_days

T0 = dt.datetime(2026, 12, 1, 3, 0, tzinfo=dt.UTC)
WINDOW = dt.timedelta(hours=26)


def _accounting(path, rows):
    con = duckdb.connect(str(path))
    con.execute("create schema if not exists raw")
    con.execute("create table if not exists raw._row_accounting (source varchar, entity varchar, extract_days json)")
    for system, days in rows:
        con.execute("insert into raw._row_accounting values (?, 'x', ?)", [system, json.dumps(days)])
    con.close()


@pytest.fixture
def outbox(tmp_path, monkeypatch):
    monkeypatch.setenv("CS_KPIS_OUTBOX", str(tmp_path / "outbox"))
    monkeypatch.delenv(notify.ENV_ONCALL_WEBHOOK, raising=False)
    monkeypatch.delenv(staleness.ENV_SOURCE_MAX_AGE, raising=False)
    return tmp_path / "outbox" / "oncall"


def _messages(outbox):
    return sorted(json.loads(p.read_text())["text"] for p in outbox.glob("*.json")) if outbox.exists() else []


def test_asset_past_its_fail_window_pages_once_until_fresh(tmp_path, outbox):
    key = dg.AssetKey(["kpis", "thing"])

    @dg.asset(key=key, freshness_policy=dg.FreshnessPolicy.time_window(fail_window=WINDOW))
    def thing():
        return dg.MaterializeResult()

    @dg.asset(key=dg.AssetKey(["kpis", "never_run"]), freshness_policy=dg.FreshnessPolicy.time_window(fail_window=WINDOW))
    def never_run():
        return dg.MaterializeResult()

    defs = dg.Definitions(assets=[thing, never_run], sensors=[staleness.stale_data_sensor])
    instance = dg.DagsterInstance.ephemeral()
    dg.materialize([thing], instance=instance)
    last = dt.datetime.fromtimestamp(instance.get_latest_materialization_event(key).timestamp, tz=dt.UTC)
    db = str(tmp_path / "wh.duckdb")
    _accounting(db, [])

    def tick(now, cursor):
        ctx = dg.build_sensor_context(instance=instance, definitions=defs, cursor=cursor)
        staleness.evaluate(ctx, db, now=now)
        return ctx.cursor

    cursor = tick(last + dt.timedelta(hours=25), None)  # inside the window: nothing
    assert _messages(outbox) == []
    cursor = tick(last + dt.timedelta(hours=27), cursor)  # stale: one message
    [msg] = _messages(outbox)
    assert "`kpis/thing` is stale" in msg and "within 26 h" in msg and "last materialized" in msg
    assert "never_run" not in msg
    for hours in (28, 40, 100):  # still stale: nothing more
        cursor = tick(last + dt.timedelta(hours=hours), cursor)
    assert len(list(outbox.glob("*.json"))) == 1
    dg.materialize([thing], instance=instance)  # fresh again ...
    last2 = dt.datetime.fromtimestamp(instance.get_latest_materialization_event(key).timestamp, tz=dt.UTC)
    cursor = tick(last2 + dt.timedelta(hours=1), cursor)
    assert json.loads(cursor)["paged"] == []
    cursor = tick(last2 + dt.timedelta(hours=30), cursor)  # ... and stale again: paged again
    assert len(list(outbox.glob("*.json"))) == 2


def test_late_source_is_paged_once(tmp_path, outbox):
    db = tmp_path / "wh.duckdb"
    _accounting(db, [("billing", ["2026-11-29", "2026-11-30"]), ("crm", ["2026-11-30"]), ("nps", None)])
    with duckdb.connect(str(db), read_only=True) as con:
        assert newest_extract_days(con) == {"billing": dt.date(2026, 11, 30), "crm": dt.date(2026, 11, 30)}
    now = dt.datetime(2026, 12, 2, 1, 0, tzinfo=dt.UTC)  # 11-30 ended 25 h ago: on time
    assert staleness.stale_sources({"billing": dt.date(2026, 11, 30)}, now, staleness.DEFAULT_SOURCE_MAX_AGE) == {}
    later = dt.datetime(2026, 12, 2, 3, 0, tzinfo=dt.UTC)  # 27 h: late
    stale = staleness.stale_sources({"billing": dt.date(2026, 11, 30), "crm": dt.date(2026, 12, 1)}, later,
                                    staleness.DEFAULT_SOURCE_MAX_AGE)
    assert list(stale) == ["source:billing"]
    assert "newest extract loaded is 2026-11-30" in stale["source:billing"]["text"]

    instance = dg.DagsterInstance.ephemeral()
    defs = dg.Definitions(sensors=[staleness.stale_data_sensor])
    cursor = None
    for now in (later, later + dt.timedelta(hours=5)):
        ctx = dg.build_sensor_context(instance=instance, definitions=defs, cursor=cursor)
        staleness.evaluate(ctx, str(db), now=now)
        cursor = ctx.cursor
    msgs = _messages(outbox)
    assert len(msgs) == 2 and all("source *" in m for m in msgs)  # billing and crm, once each


def test_failed_post_is_retried_not_forgotten():
    calls = []

    def post(key, payload):
        calls.append(key)
        if len(calls) == 1:
            raise OSError("down")

    current = {"asset:a": {}}
    paged, posted, failed = staleness.page_stale(current, [], post)
    assert (paged, posted, failed) == ([], [], ["asset:a"])
    paged, posted, failed = staleness.page_stale(current, paged, post)
    assert (paged, posted, failed) == (["asset:a"], ["asset:a"], [])
    assert staleness.page_stale(current, paged, post)[1] == []


def test_as_of_day_is_the_newest_extract_across_systems(tmp_path):
    """A quiet Stripe day (no events in its extract) no longer holds the as-of day back."""
    from cs_kpis.defs.marts.assets import build_calendar

    db = tmp_path / "wh.duckdb"
    _accounting(db, [("billing", ["2026-11-29", "2026-11-30"]), ("crm", ["2026-11-30"])])
    con = duckdb.connect(str(db))
    con.execute("create schema staging")
    con.execute("create table staging.stg_billing__events as select * from (values "
                "(timestamptz '2026-11-01 10:00:00+00', date '2026-11-01'), "
                "(timestamptz '2026-11-29 10:00:00+00', date '2026-11-29')) as t(created_at, extract_day)")
    # the subscriptions list (the calendar starts at the first subscription): extracted on the quiet day too
    con.execute("create table staging.stg_billing__subscriptions as select * from (values "
                "(timestamptz '2026-11-01 09:00:00+00', timestamptz '2026-11-01 09:00:00+00', date '2026-11-29')) "
                "as t(started_at, created_at, extract_day)")
    meta = build_calendar(con)
    assert meta["dim_day"]["as_of"] == "2026-11-30"
    assert con.execute("select max(day) from marts.dim_day").fetchall() == [(dt.date(2026, 11, 30),)]
    assert newest_extract_day(con) == dt.date(2026, 11, 30)
    con.close()
