"""What a system turned off (``systems.<name>.mode: off`` in the company configuration) means downstream.

Its raw tables exist empty (cs_kpis/defs/raw/off.py), so every model builds. But "no rows" would read as
"nothing wrong": no tickets looks like perfect support, no events like an abandoned product. So:

- **health**: the indicators that system feeds are set to null in ``kpis.account_indicators_daily``
  (:data:`OFF_INDICATORS`). The score already leaves a missing indicator out of its component and a missing
  component out of the score, rescaling the remaining weights to sum to 1 (cs_kpis/defs/health/README.md,
  "Systems turned off"). NPS off: the sentiment component is CSAT and CSM sentiment; support off: the
  support component is gone and the sentiment component loses CSAT; product off: usage and adoption are gone.
- **alerts**: the alert types that read that system (:data:`OFF_ALERT_TYPES`) are not evaluated; the alerts
  asset lists them as skipped with the reason.
- **report**: the system's tiles say "not connected" (:func:`not_connected`).
- **staging reads nothing from it**, even when its raw tables still hold rows from an earlier configuration
  (the system was in files or api mode before): every ``staging.stg_<system>__*`` model of a system that is
  off builds empty, with its usual columns (:func:`read_nothing_when_off`). The raw rows are left as they are
  (nothing the project did not create is deleted, and turning the system on again uses them). So "off" means
  the same downstream whether or not the warehouse has old rows: no rows of it, and "not connected".

No Dagster imports: the health, alerts and report layers use this.
"""

import re

from cs_kpis import config

_STAGING_MODEL = re.compile(r"^staging\.stg_([a-z]+)__")

OFF_INDICATORS: dict[str, tuple[str, ...]] = {
    "product": ("events_30d", "events_prior_30d", "active_users_7d", "active_users_30d", "stickiness",
                "events_per_active_user_30d", "usage_trend", "key_features_30d", "feature_adoption",
                "seat_utilisation", "is_activated", "first_value_at", "ttfv_days", "onboarding_completion"),
    "support": ("tickets_30d", "open_urgent_high", "median_first_reply_minutes", "median_resolution_minutes",
                "first_contact_resolution", "csat_responses_90d", "csat_90d"),
    "nps": ("nps_responses_90d", "nps_90d"),
}
"""columns of kpis.account_indicators_daily that are null while the system is off"""

OFF_ALERT_TYPES: dict[str, tuple[str, ...]] = {
    "product": ("usage_drop", "champion_inactive", "expansion_opportunity"),
    "support": ("ticket_spike",),
    "nps": ("low_nps_high_value",),
}
"""alert types that read the system and are skipped while it is off"""

LABELS = {"product": "Product analytics", "support": "Support", "nps": "NPS"}


def off_systems(cfg: config.CompanyConfig | None = None) -> list[str]:
    """The systems turned off in the active profile (the demo profile: none)."""
    return (cfg or config.load()).systems.off()


def null_indicators(off: list[str]) -> list[str]:
    return [col for system in off for col in OFF_INDICATORS.get(system, ())]


def skipped_alert_types(off: list[str]) -> dict[str, str]:
    """{alert type: why it is skipped} for the systems turned off."""
    return {t: f"{LABELS[s]} not connected (systems.{s}.mode: off)" for s in off for t in OFF_ALERT_TYPES.get(s, ())}


def not_connected(off: list[str]) -> list[str]:
    """The report's line per system turned off, e.g. 'NPS not connected'."""
    return [f"{LABELS[s]} not connected" for s in off if s in LABELS]


def read_nothing_when_off(table: str, sql: str, off: list[str] | None = None) -> str:
    """A staging model of a system turned off selects no row (same columns): its raw tables may still hold rows
    loaded before it was turned off, and those must not flow downstream. Other models are returned unchanged.
    Portable SQL (a subquery with a false predicate), the same on DuckDB and Spark."""
    if not turned_off(table, off):
        return sql
    return f"select * from (\n{sql}\n) as system_turned_off where 1 = 0"


def turned_off(table: str, off: list[str] | None = None) -> bool:
    """``table`` is a staging model of a system turned off (it selects no row: read_nothing_when_off)."""
    match = _STAGING_MODEL.match(table)
    return match is not None and match.group(1) in (off_systems() if off is None else off)
