"""The nightly schedule: every asset and check once a day, after the sources' nightly exports.

Its cron and timezone are settings (cs_kpis/tuning.py): ``settings.schedule.nightly_cron`` /
``settings.schedule.nightly_timezone`` in the company file, ``CS_KPIS_NIGHTLY_CRON`` /
``CS_KPIS_NIGHTLY_TIMEZONE`` override them. A schedule's cron is part of its definition, so they are read when
the definitions load (the code location, or a test calling ``defs()``), not when this module is imported.
"""

import dagster as dg

from cs_kpis import tuning
from cs_kpis.defs.automation import switch
from cs_kpis.defs.automation.jobs import nightly_job

# "0 2 * * *" = minute 0, hour 2, every day of every month, any weekday: 02:00 daily in the timezone below.
# The KPI tables' freshness expectations and alert_rules.yaml's max_input_age_hours (36 h) assume this cadence.
DEFAULT_CRON = tuning.SETTINGS["schedule.nightly_cron"].default
DEFAULT_TIMEZONE = tuning.SETTINGS["schedule.nightly_timezone"].default


def build_nightly_schedule() -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name="nightly_schedule",
        job=nightly_job,
        cron_schedule=tuning.get("schedule.nightly_cron"),
        execution_timezone=tuning.get("schedule.nightly_timezone"),
        default_status=switch.schedule_status(),
        description="Nightly: materialize every asset and run every check (the `nightly` job).",
    )


@dg.definitions
def nightly_schedules() -> dg.Definitions:
    return dg.Definitions(schedules=[build_nightly_schedule()])
