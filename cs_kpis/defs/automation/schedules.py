"""The nightly schedule: every asset and check once a day, after the sources' nightly exports.

CS_KPIS_NIGHTLY_CRON / CS_KPIS_NIGHTLY_TIMEZONE override the defaults when the code location loads.
"""

import os

import dagster as dg

from cs_kpis.defs.automation import switch
from cs_kpis.defs.automation.jobs import nightly_job

# "0 2 * * *" = minute 0, hour 2, every day of every month, any weekday: 02:00 daily in the timezone below.
# The KPI tables' freshness expectations and alert_rules.yaml's max_input_age_hours (36 h) assume this cadence.
DEFAULT_CRON = "0 2 * * *"
DEFAULT_TIMEZONE = "UTC"

nightly_schedule = dg.ScheduleDefinition(
    name="nightly_schedule",
    job=nightly_job,
    cron_schedule=os.environ.get("CS_KPIS_NIGHTLY_CRON") or DEFAULT_CRON,
    execution_timezone=os.environ.get("CS_KPIS_NIGHTLY_TIMEZONE") or DEFAULT_TIMEZONE,
    default_status=switch.schedule_status(),
    description="Nightly: materialize every asset and run every check (the `nightly` job).",
)
