"""cs_kpis: customer-success KPIs from raw source rows to alerts, orchestrated by Dagster."""

import os

# set here, before anything imports dlt, so every entry point (make run, dagster dev, dg, pytest, the
# simulator CLI) gets it; an explicit value in the environment wins.
os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
