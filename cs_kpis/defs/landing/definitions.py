"""The landing layer's Dagster objects for the active profile, built when the code location loads."""

import os

import dagster as dg

from cs_kpis import config
from cs_kpis.defs.landing.assets import CompanyConfigResource, build_landing_asset
from cs_kpis.defs.landing.checks import build_landing_check
from cs_kpis.defs.landing.keys import landing_asset_key


@dg.definitions
def landing_definitions() -> dg.Definitions:
    # evaluated when the code location loads: CS_KPIS_CONFIG set by then (or by a test) picks the profile
    cfg = config.load()
    asset = build_landing_asset(cfg)
    return dg.Definitions(
        assets=[asset],
        asset_checks=[build_landing_check(landing_asset_key(cfg))],
        resources={"company_config": CompanyConfigResource(config_file=os.environ.get(config.ENV_CONFIG, ""))},
    )
