"""cs_kpis: customer-success KPIs from raw source rows to alerts, orchestrated by Dagster."""

import os

# set here, before anything imports dlt, so every entry point (make run, dagster dev, dg, pytest, the
# simulator CLI) gets it; an explicit value in the environment wins.
os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
# dlt's merge copies each load's rows into ``<dataset>_staging`` tables first and, by default, leaves them there until
# the next load: the warehouse then keeps a second copy of every table's last load, which DuckDB's checkpoint
# writes and compresses too. Emptied right after each load instead (the raw tables are the same). On 187 MB of the
# large company's Stripe pages: half the warehouse file, less than half the closing checkpoint; on 733 MB, where
# DuckDB's automatic checkpoints write most copies during the load anyway, a fifth less CPU in dlt's load step
# (BENCHMARKS.md, billing, session 19).
os.environ.setdefault("LOAD__TRUNCATE_STAGING_DATASET", "true")
