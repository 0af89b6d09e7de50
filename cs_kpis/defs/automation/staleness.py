"""Staleness pages on-call: assets past their freshness policy, and sources whose newest extract is late.

`stale_data_sensor` (every 5 minutes) looks at two things:

- **assets**: every asset with a time-window freshness policy (the raw loads, the KPI, health and alert tables:
  fail after 26 h). An asset whose last materialization is older than its ``fail_window`` is stale. Assets
  never materialized are not paged (nothing has run yet: that is not staleness).
- **sources**: the newest extract day each source system handed over and the pipeline loaded
  (``raw._row_accounting``, see cs_kpis/lib/extracts.py). Day D's export is expected once D is over, so the
  source is late when ``now - (D + 1 day)`` exceeds the ``check_thresholds`` resource's
  ``source_max_age_hours`` (``settings.checks.source_max_age_hours`` in the company file,
  ``CS_KPIS_SOURCE_MAX_AGE_HOURS`` overrides; default 26 h: the nightly run at 02:00 should have loaded
  yesterday's export).

Each thing that goes stale gets **one** message through the on-call path (CS_KPIS_ONCALL_WEBHOOK_URL, or the
outbox's ``oncall/`` folder): what it is, when it was last materialized (or which day was last loaded) and the
expected window. Nothing more is sent about it while it stays stale; once it is fresh again it is forgotten,
so going stale again pages again. The sensor's cursor holds what is stale and already paged. A post that
fails is not remembered, so the next tick tries again. The clock is a parameter (``now``) for tests.
"""

import datetime as dt
import json

import dagster as dg
import duckdb as duckdb_lib
from dagster_duckdb import DuckDBResource

from cs_kpis import tuning
from cs_kpis.defs.automation import notify, switch
from cs_kpis.lib.extracts import newest_extract_days
from cs_kpis.lib.settings_resources import AlertingResource, CheckThresholdsResource

ENV_SOURCE_MAX_AGE = tuning.SETTINGS["checks.source_max_age_hours"].env
DEFAULT_SOURCE_MAX_AGE = dt.timedelta(hours=tuning.SETTINGS["checks.source_max_age_hours"].default)
RUNBOOK = "RUNBOOK §stale: cs_kpis/defs/automation/README.md#runbook"


def source_max_age() -> dt.timedelta:
    """settings.checks.source_max_age_hours (CS_KPIS_SOURCE_MAX_AGE_HOURS overrides, default 26 h)."""
    return dt.timedelta(hours=tuning.get("checks.source_max_age_hours"))


def _iso(ts: dt.datetime) -> str:
    return ts.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _hours(delta: dt.timedelta) -> str:
    return f"{delta.total_seconds() / 3600:g} h"


def stale_assets(last_materialized: dict[str, tuple[dt.datetime | None, dt.timedelta]],
                 now: dt.datetime) -> dict[str, dict]:
    """{asset: payload} for each asset whose last materialization is older than its fail window."""
    out = {}
    for asset, (last, window) in sorted(last_materialized.items()):
        if last is None or now - last <= window:
            continue
        out[f"asset:{asset}"] = {
            "kind": "stale_asset", "asset": asset, "last_materialization": _iso(last),
            "episode": f"{last.timestamp():.6f}",
            "expected_window": _hours(window), "age": _hours(now - last),
            "text": (f":hourglass: `{notify.slack_escape(asset)}` is stale: last materialized {_iso(last)}, "
                     f"{_hours(now - last)} ago; its freshness policy expects a materialization within "
                     f"{_hours(window)}. Look for a failed or missing nightly run. {RUNBOOK}"),
        }
    return out


def stale_sources(newest: dict[str, dt.date], now: dt.datetime, max_age: dt.timedelta) -> dict[str, dict]:
    """{source: payload} for each source system whose newest loaded extract day is late."""
    out = {}
    for system, day in sorted(newest.items()):
        due = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
        if now - due <= max_age:
            continue
        out[f"source:{system}"] = {
            "kind": "stale_source", "source": system, "newest_extract_day": str(day), "episode": str(day),
            "expected_window": f"the next day's export within {_hours(max_age)} after the day ends",
            "age": _hours(now - due),
            "text": (f":hourglass: source *{system}*: the newest extract loaded is {day}; the export of "
                     f"{day + dt.timedelta(days=1)} was expected by {_iso(due + max_age)} "
                     f"({ENV_SOURCE_MAX_AGE} = {_hours(max_age)}). Check the export into the landing folder "
                     f"(or the API credentials), then the raw load. {RUNBOOK}"),
        }
    return out


def page_stale(current: dict[str, dict], paged: list[str], post) -> tuple[list[str], list[str], list[str]]:
    """Post each newly stale item once. Returns (still paged, posted now, failed to post)."""
    posted, failed = [], []
    keep = [k for k in paged if k in current]  # fresh again: forgotten, so a new staleness pages again
    for key in sorted(current):
        if key in keep:
            continue
        try:
            post(key, current[key])
        except Exception:  # noqa: BLE001 (any failure: not remembered, next tick tries again)
            failed.append(key)
            continue
        posted.append(key)
    return sorted(keep + posted), posted, failed


def _post(key: str, payload: dict, alerting: AlertingResource | None = None) -> None:
    # one name (and idempotency key) per staleness episode: the item and what it was last seen with
    name = "stale-" + key.replace(":", "-").replace("/", "_") + "-" + payload["episode"]
    if alerting is None:  # outside a sensor: the environment and the company file
        notify.deliver(name, payload, notify.webhook_url(notify.ENV_ONCALL_WEBHOOK), notify.outbox_dir() / "oncall")
    else:
        notify.deliver(name, payload, alerting.oncall_webhook_url, alerting.outbox / "oncall",
                       alerting.webhook_timeout_s)


def last_materializations(instance: dg.DagsterInstance, graph) -> dict[str, tuple[dt.datetime | None, dt.timedelta]]:
    out = {}
    for key in graph.materializable_asset_keys:
        policy = graph.get(key).freshness_policy_or_from_metadata
        window = getattr(policy, "fail_window", None)
        if window is None:
            continue
        event = instance.get_latest_materialization_event(key)
        last = dt.datetime.fromtimestamp(event.timestamp, tz=dt.UTC) if event else None
        out[key.to_user_string()] = (last, window.to_timedelta() if hasattr(window, "to_timedelta") else window)
    return out


def evaluate(context: dg.SensorEvaluationContext, database: str, now: dt.datetime | None = None,
             max_age: dt.timedelta | None = None, alerting: AlertingResource | None = None) -> dg.SkipReason:
    now = now or dt.datetime.now(dt.UTC)
    max_age = max_age or source_max_age()
    paged = json.loads(context.cursor)["paged"] if context.cursor else []
    current = stale_assets(last_materializations(context.instance, context.repository_def.asset_graph), now)
    note = ""
    try:
        with duckdb_lib.connect(database, read_only=True) as con:
            current |= stale_sources(newest_extract_days(con), now, max_age)
    except duckdb_lib.Error as exc:  # missing file, or a run holds the write lock: sources next tick
        note = f"; sources not checked ({type(exc).__name__}), next tick"
        paged_sources = [k for k in paged if k.startswith("source:")]
        current |= {k: {} for k in paged_sources}  # unknown now: keep them as paged
    still, posted, failed = page_stale(current, paged, lambda key, payload: _post(key, payload, alerting))
    context.update_cursor(json.dumps({"paged": still}))
    for key in failed:
        context.log.warning(f"on-call post about {key} failed, next tick tries again")
    return dg.SkipReason(f"{len(current)} stale, {len(posted)} paged now, {len(failed)} to retry{note}")


@dg.sensor(minimum_interval_seconds=300, default_status=switch.sensor_status(),
           description=("Pages on-call once when an asset goes past its freshness policy, or a source system's "
                        "newest loaded extract is late; silent until it is fresh again."))
def stale_data_sensor(context: dg.SensorEvaluationContext, duckdb: DuckDBResource,
                      check_thresholds: CheckThresholdsResource, alerting: AlertingResource):
    return evaluate(context, duckdb.database, max_age=dt.timedelta(hours=check_thresholds.source_max_age_hours),
                    alerting=alerting)
