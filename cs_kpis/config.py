"""One configuration file per company: its path is ``CS_KPIS_CONFIG``; without it, the built-in demo profile.

The file (YAML, template and every key documented in ``examples/company.yaml``) says:

- ``profile``: the company's name (any identifier but ``demo``, which is the built-in profile);
- ``reporting_currency`` and ``fx`` (where the FX rates come from: the landing's reference file or a CSV);
- ``landing_dir``: the landing folder of files mode (docs/LANDING.md), relative to the file's folder;
- ``automation``: whether the schedule and sensors start running (CS_KPIS_AUTOMATION overrides);
- ``systems``: per system (crm, billing, product, support, nps) its ``mode`` (files, api or off; crm and
  billing cannot be off) and its join keys and custom field names (Segment: the workspace id's event fields);
- ``product``: the product configuration the health indicators need.
- ``engine``: where the SQL models run, ``duckdb`` (default) or ``spark``, and where dlt lands the raw layer,
  ``raw_destination: duckdb`` (default) or ``filesystem`` (docs/SCALE_OUT.md).

It is validated with pydantic: an unknown key, a missing one or a bad value raises :class:`ConfigError`
naming the key and the file. Every name that reaches SQL (a field that becomes a raw column) is checked
against an identifier pattern and turned into its raw column with dlt's naming convention, never spliced
in raw. Credentials never go in the file: a key that looks like one (token, password, secret, api_key)
is refused; they belong in ``.dlt/secrets.toml`` or environment variables.

No Dagster imports here: settings, the simulator guard and ``python -m cs_kpis.check`` use this module.
The file is read at call time, so a test's ``monkeypatch.setenv("CS_KPIS_CONFIG", ...)`` applies at once.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

ENV_CONFIG = "CS_KPIS_CONFIG"
DEMO_PROFILE = "demo"
SYSTEMS = ("crm", "billing", "product", "support", "nps")
Mode = Literal["files", "api", "off"]

# a Salesforce API name, a JSON key: letters, digits, underscores, not starting with a digit
_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# a raw warehouse column after dlt's naming convention
_COLUMN = re.compile(r"^[a-z_][a-z0-9_]*$")
_PROFILE = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
_SECRET_KEY = re.compile(r"(token|password|passwd|secret|api_?key|client_secret|credential)", re.IGNORECASE)
# a webhook URL carries its own credential (Slack's is the secret): environment only
_WEBHOOK_KEY = re.compile(r"webhook(_check)?_?url", re.IGNORECASE)


class ConfigError(ValueError):
    """The company configuration file is missing, unreadable or invalid; the message names key and file."""


def _check_field(value: str) -> str:
    if not _FIELD.match(value or ""):
        raise ValueError(f"{value!r} is not a field name (letters, digits and _ only, not starting with a digit)")
    return value


def _check_path(value: str) -> str:
    """A dotted path to a (nested) field, e.g. ``metadata.salesforce_account_id``."""
    for part in str(value).split("."):
        _check_field(part)
    return value


def raw_column(path: str) -> str:
    """The raw table column dlt writes for a (dotted) field path: ``CSM__c`` -> ``csm__c``,
    ``metadata.salesforce_account_id`` -> ``metadata__salesforce_account_id``. Validated as an identifier."""
    from dlt.common.schema import Schema

    naming = Schema("cs_kpis").naming
    column = naming.make_path(*(naming.normalize_path(_check_field(part)) for part in _check_path(path).split(".")))
    if not _COLUMN.match(column):  # pragma: no cover - dlt's snake_case never yields anything else
        raise ValueError(f"{path!r} normalizes to {column!r}, not a plain identifier")
    return column


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CrmFields(_Strict):
    """Salesforce API names of the custom fields the pipeline reads (the demo's names by default)."""

    csm: str = Field("CSM__c", description="Account lookup to the User who is the account's CSM")
    segment: str = Field("Segment__c", description="Account picklist: SMB, Mid-Market or Enterprise")
    csm_sentiment: str = Field("CSM_Sentiment__c", description="Account picklist: Green, Yellow, Red or empty")
    product_workspace_id: str = Field(
        "Product_Workspace_Id__c", description="Account text field holding the product workspace id (Segment groupId)"
    )
    contact_role: str = Field("Role__c", description="Contact picklist: Champion, Admin, User or empty")

    @field_validator("*")
    @classmethod
    def _names(cls, value: str) -> str:
        return _check_field(value)


class _System(_Strict):
    mode: Mode = Field("files", description="files (the landing folder), api (the vendor's API) or off")

    @field_validator("mode", mode="before")
    @classmethod
    def _yaml_off(cls, value: Any) -> Any:
        # YAML 1.1 reads an unquoted `off` as false: that is what the user wrote
        return "off" if value is False else value


class _RequiredSystem(_System):
    """A system every KPI starts from (accounts, MRR): files or api, never off."""

    @field_validator("mode")
    @classmethod
    def _not_off(cls, value: str) -> str:
        if value == "off":
            raise ValueError("cannot be off: every KPI starts from the CRM's accounts and the billing's MRR "
                             "(only product, support and nps can be turned off)")
        return value


class CrmConfig(_RequiredSystem):
    fields: CrmFields = CrmFields()


class _KeyedSystem(_System):
    """A system whose records name their CRM account in one configurable field (a dotted path)."""

    account_id_field: str

    @field_validator("account_id_field")
    @classmethod
    def _path(cls, value: str) -> str:
        return _check_path(value)


class BillingConfig(_KeyedSystem, _RequiredSystem):
    account_id_field: str = Field(
        "metadata.salesforce_account_id", description="Stripe customer field holding the Salesforce Account Id"
    )


_EVENT_COLUMNS = {"groupId": "group_id", "context.groupId": "context_group_id"}
"""Segment event fields the raw table keeps as columns (cs_kpis/sources/product/settings.py)"""
_EVENT_JSON = ("properties", "traits")
"""Segment event objects the raw table keeps as JSON: a field inside them is read with json_extract_string"""


def _check_event_field(value: str) -> str:
    if value in _EVENT_COLUMNS:
        return value
    root, _, rest = str(value).partition(".")
    if root in _EVENT_JSON and rest:
        _check_path(rest)
        return value
    raise ValueError(f"{value!r}: the workspace id is read from groupId, context.groupId, properties.<key> or "
                     "traits.<key> (keys: letters, digits and _, dotted for nested objects)")


def event_field_sql(field: str) -> str:
    """The SQL expression over ``raw.product__events`` of a validated event field: a column, or
    ``json_extract_string(properties|traits, '$.<dotted key>')`` (keys are identifiers: no quote can enter)."""
    field = _check_event_field(field)
    if field in _EVENT_COLUMNS:
        return _EVENT_COLUMNS[field]
    root, _, rest = field.partition(".")
    return f"json_extract_string({root}, '$.{rest}')"


class ProductSystemConfig(_System):
    """Segment: which event field carries the workspace (account) id, matched to the CRM field
    ``systems.crm.fields.product_workspace_id``. The demo: track calls carry it in ``context.groupId``, group
    calls in ``groupId``; the first field with a value wins."""

    workspace_id_fields: list[str] = Field(
        default_factory=lambda: ["context.groupId", "groupId"], min_length=1,
        description="event fields holding the workspace id, first non-null wins: groupId, context.groupId, "
                    "properties.<key> or traits.<key>")

    @field_validator("workspace_id_fields")
    @classmethod
    def _fields(cls, value: list[str]) -> list[str]:
        return [_check_event_field(v) for v in value]

    def workspace_id_sql(self) -> str:
        parts = [event_field_sql(f) for f in self.workspace_id_fields]
        return parts[0] if len(parts) == 1 else f"coalesce({', '.join(parts)})"


class SupportConfig(_KeyedSystem):
    account_id_field: str = Field(
        "external_id", description="Zendesk organization field holding the Salesforce Account Id "
        "(e.g. organization_fields.salesforce_id for a custom organization field)"
    )


class NpsConfig(_KeyedSystem):
    account_id_field: str = Field(
        "person_properties.salesforce_account_id", description="Delighted response field holding the Account Id"
    )


class Systems(_Strict):
    crm: CrmConfig = CrmConfig()
    billing: BillingConfig = BillingConfig()
    product: ProductSystemConfig = ProductSystemConfig()
    support: SupportConfig = SupportConfig()
    nps: NpsConfig = NpsConfig()

    def off(self) -> list[str]:
        """The systems turned off (none of them crm or billing)."""
        return [name for name in SYSTEMS if getattr(self, name).mode == "off"]

    def modes(self) -> dict[str, str]:
        return {name: getattr(self, name).mode for name in SYSTEMS}


FX_LANDING_FILE = "reference/fx_rates.csv"


class FxConfig(_Strict):
    """Where the daily FX rates come from: a CSV ``date,currency,rate`` (1 unit of currency = rate units of
    the reporting currency), read at every load and reloaded when it changes."""

    source: Literal["landing", "csv"] = Field(
        "landing", description=f"landing: <landing_dir>/{FX_LANDING_FILE}; csv: the file at fx.path")
    path: Path | None = Field(None, description="with source: csv, the CSV file (relative to the configuration file)")

    @field_validator("source", mode="before")
    @classmethod
    def _files_is_landing(cls, value: Any) -> Any:
        return "landing" if value == "files" else value  # the first template's spelling

    @field_validator("path")
    @classmethod
    def _csv(cls, value: Path | None) -> Path | None:
        if value is not None and Path(value).suffix.lower() != ".csv":
            raise ValueError(f"{str(value)!r} is not a .csv file")
        return value

    @model_validator(mode="after")
    def _path_with_csv(self) -> FxConfig:
        if self.source == "csv" and self.path is None:
            raise ValueError("source csv needs path: the CSV file of rates")
        if self.source == "landing" and self.path is not None:
            raise ValueError(f"path is only read with source: csv (the landing source is <landing_dir>/{FX_LANDING_FILE})")
        return self

    def rates_file(self, landing: Path) -> Path:
        """The CSV the rates are read from."""
        return Path(self.path) if self.source == "csv" else Path(landing) / FX_LANDING_FILE


class ProductSettings(_Strict):
    """What the health indicators need to know about the product (values are data, never SQL)."""

    key_features: list[str] = Field(min_length=1, description="track-event names of the key features")
    plan_features: dict[str, int] = Field(min_length=1, description="plan tier -> key features on the plan")
    onboarding_milestones: list[str] = Field(min_length=1, description="track-event names of onboarding steps")
    value_event: str = Field(min_length=1, description="the track event that means a user got value")
    top_plan: str = Field(min_length=1, description="the highest plan tier (a key of plan_features)")

    @model_validator(mode="after")
    def _top_plan_is_a_plan(self) -> ProductSettings:
        if self.top_plan not in self.plan_features:
            raise ValueError(f"top_plan {self.top_plan!r} is not a key of plan_features")
        bad = {p: n for p, n in self.plan_features.items() if n < 0}
        if bad:
            raise ValueError(f"plan_features must be >= 0, not {bad}")
        return self

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump()


DEMO_PRODUCT = ProductSettings(
    # the simulator's catalog (cs_kpis/simulator/catalog.py); a test keeps the two equal
    key_features=["Report Created", "Dashboard Shared", "Alert Configured", "Integration Connected",
                  "Workflow Automated", "API Key Created"],
    plan_features={"starter": 3, "growth": 5, "enterprise": 6},
    onboarding_milestones=["Data Source Connected", "Teammate Invited", "Report Created", "Dashboard Shared"],
    value_event="Report Created",
    top_plan="enterprise",
)


_SPARK_REMOTE = re.compile(r"^(local(\[(\d+|\*)\])?|sc://[A-Za-z0-9.\-]+(:\d+)?(/[^\s;]*)?(;[^\s]*)?)$")


def check_spark_remote(value: str, credentials_allowed: bool = False) -> str:
    """``local``, ``local[N]``, ``local[*]`` or ``sc://host[:port]`` (a Spark Connect URL). In the file a token
    in the URL is refused: it is a credential (the environment's CS_KPIS_SPARK_REMOTE may carry one)."""
    if not _SPARK_REMOTE.match(value or ""):
        raise ValueError(f"{value!r} is not a Spark Connect URL (local[2] or sc://host:15002)")
    if not credentials_allowed and _SECRET_KEY.search(value):
        raise ValueError("the Spark Connect URL carries a credential; keep it out of the file (environment only)")
    return value


class EngineConfig(_Strict):
    """Where the SQL models run (docs/SCALE_OUT.md); CS_KPIS_ENGINE / CS_KPIS_SPARK_REMOTE override it."""

    kind: Literal["duckdb", "spark"] = Field("duckdb", description="duckdb (default) or spark")
    spark_remote: str = Field("local[2]", description="Spark Connect URL: local[2] or sc://host:15002")
    lake_dir: Path | None = Field(None, description="Spark's Parquet tables, relative to the file; "
                                                    "default <state>/lake")
    raw_destination: Literal["duckdb", "filesystem"] = Field(
        "duckdb", description="where dlt loads the raw layer: duckdb (the warehouse) or filesystem (Parquet under "
                              "<lake_dir>/dlt/raw/); CS_KPIS_RAW_DESTINATION overrides it")

    @field_validator("spark_remote")
    @classmethod
    def _remote(cls, value: str) -> str:
        return check_spark_remote(value)


_PositiveFloat = Annotated[float, Field(gt=0)]
_Days = Annotated[int, Field(ge=1)]


class CheckSettings(_Strict):
    """Thresholds of the warning and blocking checks (cs_kpis/tuning.py lists each one's variable)."""

    nrr_low: _PositiveFloat | None = Field(None, description="monthly NRR below this is implausible (0.5)")
    nrr_high: _PositiveFloat | None = Field(None, description="monthly NRR above this is implausible (1.5)")
    grr_low: Annotated[float, Field(ge=0, le=1)] | None = Field(None, description="GRR below this is implausible (0.5)")
    retention_bounds_min_accounts: _Days | None = Field(
        None, description="the NRR/GRR bounds judge segments with at least this many accounts (10)")
    mrr_invoice_max_gap: _PositiveFloat | None = Field(
        None, description="month-end MRR within this share of invoiced recurring revenue (0.10)")
    revenue_history_tolerance: Annotated[float, Field(ge=0)] | None = Field(
        None, description="revenue history vs paid invoices, share of the invoiced amount (0.01)")
    health_band_shift_pp: _PositiveFloat | None = Field(
        None, description="a health band moving more than this many percentage points in a day warns (10)")
    source_max_age_hours: _PositiveFloat | None = Field(
        None, description="a source whose newest extract day is older than this is stale (26)")


class AlertSettings(_Strict):
    """Alert rules and where messages go. Webhook URLs are secrets: environment only, never this file."""

    rules_file: Path | None = Field(None, description="the alert rules YAML, relative to this file "
                                                      "(default cs_kpis/defs/alerts/alert_rules.yaml)")
    outbox_dir: Path | None = Field(None, description="where messages go without a webhook, relative to this "
                                                      "file (default <state>/outbox)")
    webhook_timeout_s: _PositiveFloat | None = Field(None, description="seconds a webhook send may take (10)")


class ScheduleSettings(_Strict):
    nightly_cron: str | None = Field(None, description="the nightly run's cron (0 2 * * *)")
    nightly_timezone: str | None = Field(None, description="the cron's timezone (UTC)")

    @field_validator("nightly_cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None and len(value.split()) != 5:
            raise ValueError(f"{value!r} is not a cron expression of five fields (minute hour day month weekday)")
        return value

    @field_validator("nightly_timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        if value is not None:
            from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"{value!r} is not an IANA timezone such as Europe/Berlin") from None
        return value


class HealthSettings(_Strict):
    lookback_days: _Days | None = Field(None, description="days a nightly health build recomputes (7)")
    history_days: _Days | Literal["all"] | None = Field(None, description="days of daily health kept (all)")
    config_file: Path | None = Field(None, description="the health score configuration, relative to this file "
                                                       "(default config/health_score.yaml)")


class WarehouseSettings(_Strict):
    memory_limit: str | None = Field(
        None, description="DuckDB's memory limit for the warehouse's steps, e.g. 8GB (DuckDB's default: 80% of RAM); "
                          "past it DuckDB spills to disk beside the warehouse file")

    max_temp_directory_size: str | None = Field(
        None, description="the most DuckDB may spill to disk past memory_limit, e.g. 20GB (DuckDB's default: 90% of "
                          "the free disk); beyond it the step fails with an out-of-memory error instead of filling the disk")
    temp_directory: Path | None = Field(
        None, description="where DuckDB spills, relative to this file (DuckDB's default: beside the warehouse file)")

    @field_validator("memory_limit", "max_temp_directory_size")
    @classmethod
    def _memory(cls, value: str | None) -> str | None:
        import re

        if value is not None and not re.fullmatch(r"\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)", value.strip()):
            raise ValueError(f"{value!r} is not a memory size such as 8GB or 512MB")
        return value if value is None else value.strip()


class Settings(_Strict):
    """``settings:`` in the company file: check thresholds, alerting, the schedule, health windows. Every key
    is optional (default in cs_kpis/tuning.py) and its environment variable overrides it."""

    checks: CheckSettings = CheckSettings()
    alerts: AlertSettings = AlertSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    health: HealthSettings = HealthSettings()
    warehouse: WarehouseSettings = WarehouseSettings()


class CompanyConfig(_Strict):
    profile: str = Field(description="the company's name; 'demo' is reserved for the built-in profile")
    reporting_currency: str = Field("USD", description="ISO 4217 code every amount is converted to")
    fx: FxConfig = FxConfig()
    landing_dir: Path | None = Field(None, description="landing folder for files mode, relative to the file")
    automation: bool = Field(
        False, description="on: the schedule and sensors start running (CS_KPIS_AUTOMATION overrides); off: stopped")
    systems: Systems = Systems()
    product: ProductSettings
    engine: EngineConfig = EngineConfig()
    settings: Settings = Settings()
    source_file: Path | None = Field(None, exclude=True, description="set by load(), not by the file")

    @field_validator("profile")
    @classmethod
    def _profile(cls, value: str) -> str:
        if not _PROFILE.match(value):
            raise ValueError(f"{value!r} is not a profile name (lower-case letters, digits, - and _)")
        return value

    @field_validator("automation", mode="before")
    @classmethod
    def _on_off(cls, value: Any) -> Any:
        # YAML 1.1 reads unquoted on/off as true/false already; quoted, they arrive as text
        if isinstance(value, str) and value.strip().lower() in ("on", "off"):
            return value.strip().lower() == "on"
        return value

    @field_validator("reporting_currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Z]{3}", value or ""):
            raise ValueError(f"{value!r} is not an ISO 4217 code such as USD")
        return value

    @property
    def is_demo(self) -> bool:
        return self.profile == DEMO_PROFILE

    def mode(self, system: str) -> str:
        return getattr(self.systems, system).mode

    def enabled(self, mode: str | None = None) -> list[str]:
        """The systems not turned off (or only those in ``mode``), in data-flow order."""
        return [s for s, m in self.systems.modes().items() if m != "off" and (mode is None or m == mode)]

    def crm_field_renames(self) -> dict[str, str]:
        """The demo's Salesforce custom field name -> this org's (for the API mode's SOQL field list)."""
        f = self.systems.crm.fields
        return {"CSM__c": f.csm, "Segment__c": f.segment, "CSM_Sentiment__c": f.csm_sentiment,
                "Product_Workspace_Id__c": f.product_workspace_id, "Role__c": f.contact_role}

    def declared_fields(self, system: str) -> dict[str, dict[str, tuple[str, ...]]]:
        """The fields of ``system`` that staging reads under this profile's names (the CRM's custom fields,
        the account-id field of billing, support and NPS), as a source declares them (``DECLARED_FIELDS``):
        ``{entity: {"text": (paths, ...)}}``. A source declares these next to its own, so a configured field
        that is null in every record of a first export still has its column."""
        if system == "crm":
            renames = self.crm_field_renames()
            return {"accounts": {"text": tuple(v for k, v in renames.items() if k != "Role__c")},
                    "contacts": {"text": (renames["Role__c"],)}}
        entities = {"billing": ("customers", "subscriptions"), "support": ("organizations",),
                    "nps": ("survey_responses",)}.get(system, ())
        return {entity: {"text": (getattr(self.systems, system).account_id_field,)} for entity in entities}

    def sql_names(self) -> dict[str, str]:
        """Raw column names for the SQL placeholders ``{{ name }}`` of the staging models (validated); the
        ``*_history_field`` ones are the custom fields' API names as quoted SQL literals (AccountHistory.Field)."""
        f = self.systems.crm.fields
        return {
            "crm_csm": raw_column(f.csm),
            "crm_segment": raw_column(f.segment),
            "crm_csm_sentiment": raw_column(f.csm_sentiment),
            "crm_product_workspace_id": raw_column(f.product_workspace_id),
            "crm_contact_role": raw_column(f.contact_role),
            "billing_account_id": raw_column(self.systems.billing.account_id_field),
            "support_account_id": raw_column(self.systems.support.account_id_field),
            "nps_account_id": raw_column(self.systems.nps.account_id_field),
            # AccountHistory.Field holds the API name of the field changed: these are SQL string literals
            # of the (validated, letters/digits/_ only) names
            "crm_csm_history_field": f"'{_check_field(f.csm)}'",
            "crm_segment_history_field": f"'{_check_field(f.segment)}'",
            "crm_csm_sentiment_history_field": f"'{_check_field(f.csm_sentiment)}'",
            # an expression, built only from validated identifiers (event_field_sql)
            "product_workspace_id": self.systems.product.workspace_id_sql(),
        }


DEMO = CompanyConfig(profile=DEMO_PROFILE, product=DEMO_PRODUCT)
"""the built-in demo profile: the simulator's company, the demo's field names, every system in files mode"""


_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")


def render_sql(sql: str, cfg: CompanyConfig | None = None, where: str = "SQL") -> str:
    """Replace ``{{ name }}`` placeholders with the profile's raw column names (:meth:`CompanyConfig.sql_names`),
    each validated as a plain identifier (``product_workspace_id``: an expression built from validated
    identifiers only); an unknown placeholder raises naming it and ``where``."""
    if "{{" not in sql:
        return sql
    names = (cfg or load()).sql_names()

    def column(match: re.Match) -> str:
        key = match.group(1)
        if key not in names:
            raise ConfigError(f"{where}: unknown placeholder {{{{ {key} }}}}; known: {', '.join(sorted(names))}")
        return names[key]

    return _PLACEHOLDER.sub(column, sql)


def config_path() -> Path | None:
    value = os.environ.get(ENV_CONFIG)
    return Path(value).expanduser().resolve() if value else None


def _secret_keys(node: Any, prefix: str = "") -> list[str]:
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            where = f"{prefix}{key}"
            if _SECRET_KEY.search(str(key)) or _WEBHOOK_KEY.search(str(key)):
                found.append(where)
            found += _secret_keys(value, where + ".")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _secret_keys(value, f"{prefix}{i}.")
    return found


def _loc(loc: tuple) -> str:
    return ".".join(str(p) for p in loc) or "<top level>"


def load_file(path: Path | str) -> CompanyConfig:
    """Read and validate one configuration file; :class:`ConfigError` names the key and the file."""
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise ConfigError(f"{path}: the configuration file does not exist ({ENV_CONFIG} points at it)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8-sig"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys (profile, systems, product, ...)")
    secrets = _secret_keys(data)
    if secrets:
        raise ConfigError(
            f"{path}: {', '.join(secrets)}: credentials never go in this file; put them in .dlt/secrets.toml "
            "or environment variables (see README, 'Connect your own company')"
        )
    if data.get("profile") == DEMO_PROFILE:
        raise ConfigError(f"{path}: profile: 'demo' is the built-in profile (no {ENV_CONFIG}); name your company")
    if "source_file" in data:
        raise ConfigError(f"{path}: source_file: not a configuration key")
    try:
        cfg = CompanyConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{_loc(e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{path}: {problems}") from None
    landing = cfg.landing_dir
    if landing is not None and not landing.is_absolute():
        landing = (path.parent / landing).resolve()
    if landing is None and cfg.enabled("files"):
        raise ConfigError(f"{path}: landing_dir: required while a system is in files mode "
                          f"({', '.join(cfg.enabled('files'))})")
    try:
        cfg.sql_names()
    except ValueError as exc:  # pragma: no cover - the field validators catch it first
        raise ConfigError(f"{path}: systems: {exc}") from None
    fx = cfg.fx
    if fx.path is not None and not fx.path.is_absolute():
        fx = fx.model_copy(update={"path": (path.parent / fx.path).resolve()})
    st = cfg.settings

    def near(value: Path | None) -> Path | None:
        return value if value is None or value.is_absolute() else (path.parent / value).resolve()

    st = st.model_copy(update={
        "alerts": st.alerts.model_copy(update={"rules_file": near(st.alerts.rules_file),
                                               "outbox_dir": near(st.alerts.outbox_dir)}),
        "health": st.health.model_copy(update={"config_file": near(st.health.config_file)}),
        "warehouse": st.warehouse.model_copy(update={"temp_directory": near(st.warehouse.temp_directory)})})
    return cfg.model_copy(update={"landing_dir": landing, "source_file": path, "fx": fx, "settings": st})


def load() -> CompanyConfig:
    """The active profile: the file at ``CS_KPIS_CONFIG``, or the built-in demo profile."""
    path = config_path()
    return DEMO if path is None else load_file(path)


def describe(cfg: CompanyConfig) -> str:
    where = f" from {cfg.source_file}" if cfg.source_file else " (built in; set CS_KPIS_CONFIG for your company)"
    return f"profile {cfg.profile}{where}"
