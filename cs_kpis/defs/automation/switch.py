"""Whether the schedule and sensors start running: off unless switched on.

Looking around (``make ui``) must have no side effects: with automation on, the digest sensor sends digests
within a minute and the schedule runs the whole pipeline at 02:00. So every schedule and sensor of the
project takes its default status from :func:`automation_enabled`, which is the one place that decides.
``CS_KPIS_AUTOMATION`` (``on``/``off``, also ``true``/``1``/``yes``) decides when set; otherwise the company
configuration's ``automation: on|off`` (cs_kpis/config.py); the demo profile's default is off. Started or stopped by hand in the UI, a sensor keeps that state (Dagster
stores it in the instance); the default only applies until then.
"""

import os

import dagster as dg

ENV_AUTOMATION = "CS_KPIS_AUTOMATION"
_ON = {"on", "true", "1", "yes"}
_OFF = {"off", "false", "0", "no", ""}


def automation_enabled() -> bool:
    """True when CS_KPIS_AUTOMATION says on; unset: the company configuration's ``automation`` (demo: off)."""
    raw = os.environ.get(ENV_AUTOMATION)
    if raw is None or not raw.strip():
        from cs_kpis import config

        return config.load().automation
    value = raw.strip().lower()
    if value in _ON:
        return True
    if value in _OFF:
        return False
    raise ValueError(f"{ENV_AUTOMATION}={value!r}: use 'on' or 'off'")


def sensor_status() -> dg.DefaultSensorStatus:
    return dg.DefaultSensorStatus.RUNNING if automation_enabled() else dg.DefaultSensorStatus.STOPPED


def schedule_status() -> dg.DefaultScheduleStatus:
    return dg.DefaultScheduleStatus.RUNNING if automation_enabled() else dg.DefaultScheduleStatus.STOPPED
