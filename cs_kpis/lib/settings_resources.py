"""Dagster resources carrying the project's settings (cs_kpis/tuning.py): what the UI shows and tests set.

- ``check_thresholds`` (:class:`CheckThresholdsResource`): the thresholds of the checks that take one (NRR/GRR
  bounds, MRR vs invoices, revenue history tolerance, health band shift) and the sources' maximum age. The
  checks read them when they run, not when the code loads: the value shown on the resource is the one used.
- ``alerting`` (:class:`AlertingResource`): the webhook URLs (``dg.EnvVar``: the UI shows the variable's name,
  never the URL), the outbox folder, the send timeout and the alert rules file.

Registered by cs_kpis/defs/config_resources.py, filled with :meth:`from_settings` when the code location loads
(environment, then the company file's ``settings:``, then the defaults). A test sets one place: the resource.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
from pydantic import Field

from cs_kpis import settings, tuning

ENV_WEBHOOK = "CS_KPIS_ALERT_WEBHOOK_URL"
ENV_WEBHOOK_CHECK = "CS_KPIS_ALERT_WEBHOOK_CHECK_URL"
ENV_ONCALL_WEBHOOK = "CS_KPIS_ONCALL_WEBHOOK_URL"


class CheckThresholdsResource(dg.ConfigurableResource):
    """The thresholds the checks compare with; each field names its key in the company file and its variable."""

    nrr_low: float = Field(description=tuning.describe("checks.nrr_low"))
    nrr_high: float = Field(description=tuning.describe("checks.nrr_high"))
    grr_low: float = Field(description=tuning.describe("checks.grr_low"))
    retention_bounds_min_accounts: int = Field(description=tuning.describe("checks.retention_bounds_min_accounts"))
    mrr_invoice_max_gap: float = Field(description=tuning.describe("checks.mrr_invoice_max_gap"))
    revenue_history_tolerance: float = Field(description=tuning.describe("checks.revenue_history_tolerance"))
    health_band_shift_pp: float = Field(description=tuning.describe("checks.health_band_shift_pp"))
    source_max_age_hours: float = Field(description=tuning.describe("checks.source_max_age_hours"))

    @classmethod
    def from_settings(cls, **overrides) -> CheckThresholdsResource:
        values = {name: tuning.get(f"checks.{name}") for name in cls.model_fields}
        return cls(**(values | overrides))

    def as_metadata(self, *names: str) -> dict[str, float]:
        """The thresholds a check used, for its result's metadata."""
        return {f"threshold_{n}": getattr(self, n) for n in names}


def _env_var(name: str):
    # an EnvVar is resolved in the run; one not set at all would fail the run, so it is only used when the
    # variable exists (unset: no webhook, messages go to the outbox)
    return dg.EnvVar(name) if os.environ.get(name) else None


class AlertingResource(dg.ConfigurableResource):
    """Where digests and on-call messages go, and the alert rules. The URLs are secrets: environment only."""

    webhook_url: str | None = Field(default=None, description=f"CSM digests' webhook ({ENV_WEBHOOK}, a secret: "
                                                              "environment only); unset: the outbox")
    oncall_webhook_url: str | None = Field(default=None, description=f"on-call webhook ({ENV_ONCALL_WEBHOOK}, a "
                                                                     "secret); unset: <outbox>/oncall")
    webhook_check_url: str | None = Field(default=None, description=f"receipt lookup for digests in doubt "
                                                                    f"({ENV_WEBHOOK_CHECK}, a secret)")
    outbox_dir: str = Field(description=tuning.describe("alerts.outbox_dir"))
    webhook_timeout_s: float = Field(description=tuning.describe("alerts.webhook_timeout_s"))
    rules_file: str = Field(default="", description=tuning.describe("alerts.rules_file"))

    @classmethod
    def from_settings(cls, **overrides) -> AlertingResource:
        outbox = tuning.get_path("alerts.outbox_dir") or settings.state_dir() / "outbox"
        rules = tuning.get_path("alerts.rules_file")
        values = {"webhook_url": _env_var(ENV_WEBHOOK), "oncall_webhook_url": _env_var(ENV_ONCALL_WEBHOOK),
                  "webhook_check_url": _env_var(ENV_WEBHOOK_CHECK), "outbox_dir": str(outbox),
                  "webhook_timeout_s": tuning.get("alerts.webhook_timeout_s"), "rules_file": str(rules or "")}
        return cls(**(values | overrides))

    @property
    def outbox(self) -> Path:
        return Path(self.outbox_dir)

    @property
    def rules_path(self) -> Path | None:
        return Path(self.rules_file) if self.rules_file else None
