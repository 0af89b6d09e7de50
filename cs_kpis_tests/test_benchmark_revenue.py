"""benchmarks/revenue.py builds the revenue models in its own order from its own staging: both must follow the
models' dependencies, or the benchmark fails on the large company after minutes of staging (it missed
marts.subscription_item_discounts and marts.discount_objects when they were added)."""

import re

from benchmarks.revenue import REVENUE_MODELS, STAGING_SQL
from cs_kpis.defs.kpis.assets import kpi_models
from cs_kpis.defs.marts.assets import SQL_DIR as MARTS_SQL
from cs_kpis.lib.sql import load_models

CALENDAR = {("marts", "dim_day"), ("marts", "dim_month"), ("marts", "dim_position")}  # build_calendar


def test_every_revenue_model_is_built_after_what_it_reads():
    models = {(m.schema, m.name): m for m in load_models(MARTS_SQL, "marts") + kpi_models()}
    staging = set(re.findall(r"create or replace table staging\.(\w+)", STAGING_SQL))
    built: set[tuple[str, str]] = set(CALENDAR)
    missing = []
    for key in REVENUE_MODELS:
        for dep in models[key].deps:
            schema, name = dep.path[0], dep.path[-1]
            if schema == "staging":
                ok = name in staging
            else:
                ok = (schema, name) in built
            if not ok:
                missing.append(f"{'.'.join(key)} reads {schema}.{name}")
        built.add(key)
    assert missing == []
