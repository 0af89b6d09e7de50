"""The landing asset's key, which depends on the profile: ``landing/demo_company`` exists only in the demo
profile (no CS_KPIS_CONFIG); a company profile's exports are ``landing/exports``, never generated."""

import dagster as dg

from cs_kpis import config

DEMO_KEY = dg.AssetKey(["landing", "demo_company"])
EXPORTS_KEY = dg.AssetKey(["landing", "exports"])


def landing_asset_key(cfg: config.CompanyConfig | None = None) -> dg.AssetKey:
    """The key of the landing asset for ``cfg`` (default: the active profile, read now)."""
    cfg = cfg or config.load()
    return DEMO_KEY if cfg.is_demo else EXPORTS_KEY
