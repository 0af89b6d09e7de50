"""The project's settings (check thresholds, alerting, the nightly schedule, health windows): one table, one rule.

Each setting has a key in the company configuration file (``settings.<section>.<name>``, cs_kpis/config.py),
an environment variable that overrides it, and a default::

    value = the environment variable, if set and not empty
            else the company file's settings.<section>.<name>, if given
            else the default below

The demo profile has no file: there the variable or the default decides. Values are validated the same way
from both places (a bad value raises ``ValueError`` naming the variable, or ``ConfigError`` naming the key
and the file). The Dagster resources that carry them (cs_kpis/defs/config_resources.py:
``check_thresholds``, ``alerting``) are filled from here when the code location loads, so the UI shows the
values in force; code that runs outside Dagster (the CLIs, a unit test of one function) reads them here.

Secrets are not settings: the webhook URLs (``CS_KPIS_ALERT_WEBHOOK_URL``, ``CS_KPIS_ONCALL_WEBHOOK_URL``,
``CS_KPIS_ALERT_WEBHOOK_CHECK_URL``) and tokens come from the environment only; the file refuses them.

No Dagster imports here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from cs_kpis import config


@dataclass(frozen=True)
class Setting:
    key: str  # settings.<section>.<name> in the company file, without "settings."
    env: str
    default: Any
    meaning: str

    @property
    def section(self) -> str:
        return self.key.split(".")[0]

    @property
    def name(self) -> str:
        return self.key.split(".")[1]


SETTINGS: dict[str, Setting] = {s.key: s for s in (
    Setting("checks.nrr_low", "CS_KPIS_NRR_LOW", 0.5, "monthly/period NRR below this warns"),
    Setting("checks.nrr_high", "CS_KPIS_NRR_HIGH", 1.5, "monthly/period NRR above this warns"),
    Setting("checks.grr_low", "CS_KPIS_GRR_LOW", 0.5, "GRR below this warns"),
    Setting("checks.retention_bounds_min_accounts", "CS_KPIS_RETENTION_BOUNDS_MIN_ACCOUNTS", 10,
            "the NRR/GRR bounds judge only segments with at least this many accounts at the start"),
    Setting("checks.mrr_invoice_max_gap", "CS_KPIS_MRR_INVOICE_MAX_GAP", 0.10,
            "month-end MRR may differ from invoiced recurring revenue by this share before it warns"),
    Setting("checks.revenue_history_tolerance", "CS_KPIS_REVENUE_HISTORY_TOLERANCE", 0.01,
            "revenue history may differ from a paid invoice by this share (at least 1 USD)"),
    Setting("checks.health_band_shift_pp", "CS_KPIS_HEALTH_BAND_SHIFT_PP", 10.0,
            "a health band moving more than this many percentage points in a day warns"),
    Setting("checks.source_max_age_hours", "CS_KPIS_SOURCE_MAX_AGE_HOURS", 26.0,
            "a source whose newest extract day ended longer ago than this is stale (on-call message)"),
    Setting("alerts.rules_file", "CS_KPIS_ALERT_RULES", None,
            "the alert rules YAML (empty: cs_kpis/defs/alerts/alert_rules.yaml)"),
    Setting("alerts.outbox_dir", "CS_KPIS_OUTBOX", None, "messages without a webhook go here (empty: <state>/outbox)"),
    Setting("alerts.webhook_timeout_s", "CS_KPIS_WEBHOOK_TIMEOUT_S", 10.0, "seconds one webhook send may take"),
    Setting("schedule.nightly_cron", "CS_KPIS_NIGHTLY_CRON", "0 2 * * *", "when the nightly run starts"),
    Setting("schedule.nightly_timezone", "CS_KPIS_NIGHTLY_TIMEZONE", "UTC", "the timezone of the cron"),
    Setting("health.lookback_days", "CS_KPIS_HEALTH_LOOKBACK_DAYS", 7,
            "days a nightly health build recomputes before the last built day"),
    Setting("health.history_days", "CS_KPIS_HEALTH_HISTORY_DAYS", "all", "days of daily health kept"),
    Setting("health.config_file", "CS_KPIS_HEALTH_CONFIG", None,
            "the health score configuration (empty: config/health_score.yaml)"),
    Setting("warehouse.memory_limit", "CS_KPIS_DUCKDB_MEMORY_LIMIT", None,
            "DuckDB's memory limit in the warehouse's steps and dlt's loads, e.g. 8GB (empty: DuckDB's default, 80% of RAM)"),
    Setting("warehouse.max_temp_directory_size", "CS_KPIS_DUCKDB_MAX_TEMP_SIZE", None,
            "the most DuckDB may spill to disk past its memory limit, e.g. 20GB; beyond it the step fails with "
            "DuckDB's out-of-memory error naming max_temp_directory_size (empty: DuckDB's default, 90% of the free disk)"),
    Setting("warehouse.temp_directory", "CS_KPIS_DUCKDB_TEMP_DIR", None,
            "where DuckDB spills (empty: DuckDB's default, <warehouse file>.tmp beside the warehouse)"),
)}

_SECTIONS = {"checks": config.CheckSettings, "alerts": config.AlertSettings,
             "schedule": config.ScheduleSettings, "health": config.HealthSettings,
             "warehouse": config.WarehouseSettings}


def _from_env(setting: Setting) -> Any:
    raw = (os.environ.get(setting.env) or "").strip()
    if not raw:
        return None
    model = _SECTIONS[setting.section]
    try:
        return getattr(model.model_validate({setting.name: raw}), setting.name)
    except ValidationError as exc:
        reason = "; ".join(e["msg"] for e in exc.errors())
        raise ValueError(f"{setting.env}={raw!r}: {reason} (settings.{setting.key} in the company file)") from None


def get(key: str, cfg: config.CompanyConfig | None = None) -> Any:
    """The value in force for ``key`` (e.g. ``checks.nrr_low``): environment, then file, then default."""
    setting = SETTINGS[key]
    value = _from_env(setting)
    if value is not None:
        return value
    cfg = cfg if cfg is not None else config.load()
    value = getattr(getattr(cfg.settings, setting.section), setting.name)
    return setting.default if value is None else value


def get_path(key: str, cfg: config.CompanyConfig | None = None) -> Path | None:
    value = get(key, cfg)
    return None if value in (None, "") else Path(value)


def source(key: str, cfg: config.CompanyConfig | None = None) -> str:
    """Where ``key``'s value comes from: ``env CS_KPIS_...``, ``file <path>`` or ``default``."""
    setting = SETTINGS[key]
    if (os.environ.get(setting.env) or "").strip():
        return f"env {setting.env}"
    cfg = cfg if cfg is not None else config.load()
    if getattr(getattr(cfg.settings, setting.section), setting.name) is not None:
        return f"file {cfg.source_file}"
    return "default"


def describe(key: str) -> str:
    """For field descriptions: ``settings.checks.nrr_low in the company file, env CS_KPIS_NRR_LOW, default 0.5``."""
    s = SETTINGS[key]
    default = "none" if s.default is None else s.default
    return f"{s.meaning} (settings.{s.key} in the company file; env {s.env} overrides; default {default})"
