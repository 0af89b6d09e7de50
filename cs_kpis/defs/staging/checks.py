"""Checks on staging: every model's grain is unique and never null (blocking: marts join on these keys)."""

import dagster as dg

from cs_kpis.defs.staging.assets import STAGING_MODELS
from cs_kpis.lib import incremental_loads
from cs_kpis.lib.checks import not_null_check, unique_key_check, unique_key_check_by_load


def build_grain_checks(models) -> list[dg.AssetChecksDefinition]:
    """A blocking unique-key and not-null check on the grain of every model that declares one."""
    checks = []
    for model in models:
        if not model.grain:
            continue
        if model.by_load:  # appended by raw load: a nightly check looks up the new loads' keys only
            raw = incremental_loads.raw_table(model.sql, model.table)
            checks.append(unique_key_check_by_load(model.key, model.table, model.grain, raw, blocking=True))
        else:
            checks.append(unique_key_check(model.key, model.table, model.grain, blocking=True))
        checks.append(not_null_check(model.key, model.table, model.grain, blocking=True))
    return checks


staging_checks = build_grain_checks(STAGING_MODELS)
