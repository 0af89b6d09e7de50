"""Configuration as Dagster resources: what the UI shows (Deployment -> Resources) and tests set in one place.

Values come from the company configuration file (``CS_KPIS_CONFIG``, cs_kpis/config.py) and the environment,
resolved when the code location loads; secrets are ``dg.EnvVar``s, so the UI shows the variable's name,
never its value, and the run process reads it.

- ``landing`` (:class:`LandingResource`): the landing folder of files mode, the FX rates file and the
  simulator's ground-truth folder. Read by the landing assets and check and by ``new_extract_day_sensor``
  (before: ``settings.landing_dir()`` inside each asset body).
- ``salesforce`` (:class:`SalesforceResource`): the reverse-ETL target, ``CS_KPIS_SFDC_URL`` and the token
  ``CS_KPIS_SFDC_TOKEN`` (before: ``os.environ`` inside the reverse-ETL asset).

- ``check_thresholds`` and ``alerting`` (cs_kpis/lib/settings_resources.py): the checks' thresholds, the
  sources' maximum age, webhook URLs (``dg.EnvVar``), outbox, send timeout and alert rules, from the company
  file's ``settings:`` with each ``CS_KPIS_*`` variable as an override (cs_kpis/tuning.py has the table).

What stays in the environment only, and why, is listed in README, "Configuration".
"""

import os
from pathlib import Path

import dagster as dg
from pydantic import Field

from cs_kpis import config, settings
from cs_kpis.lib.settings_resources import AlertingResource, CheckThresholdsResource

ENV_SFDC_URL = "CS_KPIS_SFDC_URL"
ENV_SFDC_TOKEN = "CS_KPIS_SFDC_TOKEN"


class LandingResource(dg.ConfigurableResource):
    """The landing folder the source systems hand over (docs/LANDING.md) and the files read beside it."""

    path: str = Field(description="the landing folder: the company configuration's landing_dir; demo profile: "
                                  "CS_KPIS_LANDING_DIR, default data/landing")
    fx_rates_file: str = Field(description="the CSV of daily FX rates: the configuration's fx source, default "
                                           "<landing>/reference/fx_rates.csv")
    ground_truth_dir: str = Field(description="demo profile only: where the simulator writes its answers "
                                              "(CS_KPIS_GROUND_TRUTH_DIR); never read by the pipeline")

    @classmethod
    def from_settings(cls) -> "LandingResource":
        return cls(path=str(settings.landing_dir()), fx_rates_file=str(settings.fx_rates_path()),
                   ground_truth_dir=str(settings.ground_truth_dir()))

    @property
    def landing(self) -> Path:
        return Path(self.path)

    @property
    def fx_rates(self) -> Path:
        return Path(self.fx_rates_file)


class SalesforceResource(dg.ConfigurableResource):
    """Where the reverse ETL writes the Account fields. Without a URL the sync is a dry run into the outbox."""

    url: str | None = Field(default=None, description=f"Salesforce instance URL ({ENV_SFDC_URL}); unset: dry run")
    token: str | None = Field(default=None, description=f"OAuth access token ({ENV_SFDC_TOKEN}, a secret)")

    @classmethod
    def from_env(cls) -> "SalesforceResource":
        # an EnvVar is resolved in the run; one that is not set at all would fail the run, so it is only used
        # when the variable exists
        def env(name: str):
            return dg.EnvVar(name) if os.environ.get(name) else None

        return cls(url=env(ENV_SFDC_URL), token=env(ENV_SFDC_TOKEN))


@dg.definitions
def config_resources() -> dg.Definitions:
    # evaluated when the code location loads: CS_KPIS_CONFIG and the variables set by then decide
    config.load()  # a broken configuration file names its key here, before any resource is built
    return dg.Definitions(resources={"landing": LandingResource.from_settings(),
                                     "salesforce": SalesforceResource.from_env(),
                                     "check_thresholds": CheckThresholdsResource.from_settings(),
                                     "alerting": AlertingResource.from_settings()})
