"""Call one asset check directly (no run): its duckdb resource, plus the check_thresholds resource when the
check's rule has a threshold (cs_kpis.lib.checks.sql_check with a function of the thresholds)."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from cs_kpis.lib.settings_resources import CheckThresholdsResource


def call_check(check: dg.AssetChecksDefinition, database, thresholds: CheckThresholdsResource | None = None):
    resources = {"duckdb": DuckDBResource(database=str(database))}
    if "check_thresholds" in check.required_resource_keys:
        resources["check_thresholds"] = thresholds or CheckThresholdsResource.from_settings()
    return check(**resources)
