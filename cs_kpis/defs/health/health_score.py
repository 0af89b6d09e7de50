"""The customer health score's definition: its versioned config (validated on load) and the names every
other module uses (components, indicators, bands). The score itself is computed in SQL by scoring.py.

Scoring, per account and day (KPI_DEFINITIONS.md "Customer health score"):

1. Each configured indicator is scaled to 0..100 by a bounded-linear ramp between ``floor`` and ``target``
   (``floor < target``). ``better: higher`` scores 0 at or below the floor and 100 at or above the target;
   ``better: lower`` the other way round (100 at or below the floor, 0 at or above the target).
   ``csm_sentiment`` (a picklist value) is first mapped to a number by ``csm_sentiment_map``.
2. A component (usage, adoption, support, sentiment, billing) is the weighted mean of its indicators that
   have a value; with none it is missing.
3. The score is the weighted mean of the present components: missing components are left out and the
   remaining weights rescaled to sum to 1. ``contrib_<component>`` is a component's share of the score
   (rescaled weight x component score), so the contributions add up to the score exactly.
4. Band: green when score >= bands.green, yellow when >= bands.yellow, else red.
"""

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cs_kpis import tuning

COMPONENTS = ("usage", "adoption", "support", "sentiment", "billing")

INDICATORS = (
    # usage
    "active_users_7d", "active_users_30d", "stickiness", "events_30d", "usage_trend", "events_per_active_user_30d",
    # adoption
    "feature_adoption", "seat_utilisation", "onboarding_completion", "is_activated", "ttfv_days",
    # support
    "tickets_30d", "open_urgent_high", "median_first_reply_minutes", "median_resolution_minutes",
    "first_contact_resolution",
    # sentiment
    "csat_90d", "nps_90d", "csm_sentiment",
    # billing
    "max_days_past_due", "failed_payments_90d", "days_to_renewal", "cancellation_scheduled",
)
"""the columns of kpis.account_indicators_daily a config may score"""

TOP_LEVEL_KEYS = {"label", "description", "bands", "csm_sentiment_map", "components"}
REQUIRED_KEYS = {"bands", "components"}
COMPONENT_KEYS = {"weight", "indicators"}
INDICATOR_KEYS = {"floor", "target", "better", "weight"}
BAND_KEYS = {"green", "yellow"}
BANDS = ("green", "yellow", "red")
WEIGHT_TOLERANCE = 1e-6
ROUND_DIGITS = 6
DEFAULT_SENTIMENT_MAP = {"Green": 100.0, "Yellow": 50.0, "Red": 0.0}


class ConfigError(ValueError):
    """A health-score config that cannot be used; the message names the offending key."""


@dataclass(frozen=True)
class Indicator:
    name: str
    floor: float
    target: float
    better: str = "higher"
    weight: float = 1.0


@dataclass(frozen=True)
class Component:
    name: str
    weight: float
    indicators: tuple[Indicator, ...]


@dataclass(frozen=True)
class HealthConfig:
    components: tuple[Component, ...]
    green: float
    yellow: float
    sentiment_map: dict[str, float]
    version: str
    label: str = ""

    def component(self, name: str) -> Component:
        return next(c for c in self.components if c.name == name)


def config_version(raw: dict[str, Any]) -> str:
    """The content hash of a config: 12 hex digits of sha256 over its canonical JSON (key order and
    formatting of the file do not matter, every value does)."""
    canonical = json.dumps(raw, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def _number(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{key}: must be a finite number, got {value!r}")
    return float(value)


def _unknown(keys, allowed, where: str) -> None:
    unknown = sorted(set(keys) - set(allowed))
    if unknown:
        raise ConfigError(f"{where}{unknown[0]}: unknown key (allowed: {', '.join(sorted(allowed))})")


def validate_config(raw: dict[str, Any]) -> HealthConfig:
    """Check a parsed config and build a HealthConfig; raise ConfigError naming the first bad key."""
    if not isinstance(raw, dict):
        raise ConfigError("<config>: must be a mapping")
    _unknown(raw, TOP_LEVEL_KEYS, "")
    for key in sorted(REQUIRED_KEYS - set(raw)):
        raise ConfigError(f"{key}: missing")

    bands = raw["bands"]
    if not isinstance(bands, dict):
        raise ConfigError("bands: must be a mapping with green and yellow")
    _unknown(bands, BAND_KEYS, "bands.")
    for key in sorted(BAND_KEYS - set(bands)):
        raise ConfigError(f"bands.{key}: missing")
    green, yellow = _number(bands["green"], "bands.green"), _number(bands["yellow"], "bands.yellow")
    if not 0 <= yellow < green <= 100:
        raise ConfigError(f"bands.yellow: must satisfy 0 <= yellow < green <= 100 (yellow {yellow}, green {green})")

    sentiment = raw.get("csm_sentiment_map", DEFAULT_SENTIMENT_MAP)
    if not isinstance(sentiment, dict) or not sentiment:
        raise ConfigError("csm_sentiment_map: must be a non-empty mapping of picklist value to number")
    sentiment_map = {str(k): _number(v, f"csm_sentiment_map.{k}") for k, v in sentiment.items()}

    comps = raw["components"]
    if not isinstance(comps, dict) or not comps:
        raise ConfigError("components: must be a non-empty mapping")
    _unknown(comps, COMPONENTS, "components.")
    components = []
    for cname, spec in comps.items():
        where = f"components.{cname}"
        if not isinstance(spec, dict):
            raise ConfigError(f"{where}: must be a mapping with weight and indicators")
        _unknown(spec, COMPONENT_KEYS, f"{where}.")
        for key in sorted(COMPONENT_KEYS - set(spec)):
            raise ConfigError(f"{where}.{key}: missing")
        weight = _number(spec["weight"], f"{where}.weight")
        if weight <= 0:
            raise ConfigError(f"{where}.weight: must be > 0 (leave the component out instead), got {weight}")
        inds = spec["indicators"]
        if not isinstance(inds, dict) or not inds:
            raise ConfigError(f"{where}.indicators: must be a non-empty mapping")
        _unknown(inds, INDICATORS, f"{where}.indicators.")
        indicators = []
        for iname, ispec in inds.items():
            iwhere = f"{where}.indicators.{iname}"
            if not isinstance(ispec, dict):
                raise ConfigError(f"{iwhere}: must be a mapping with floor and target")
            _unknown(ispec, INDICATOR_KEYS, f"{iwhere}.")
            for key in ("floor", "target"):
                if key not in ispec:
                    raise ConfigError(f"{iwhere}.{key}: missing")
            floor, target = _number(ispec["floor"], f"{iwhere}.floor"), _number(ispec["target"], f"{iwhere}.target")
            if floor >= target:
                raise ConfigError(f"{iwhere}.floor: {floor} is not below its target {target} "
                                  "(floor < target always; use better: lower to reverse the scale)")
            better = ispec.get("better", "higher")
            if better not in ("higher", "lower"):
                raise ConfigError(f"{iwhere}.better: must be higher or lower, got {better!r}")
            iweight = _number(ispec.get("weight", 1.0), f"{iwhere}.weight")
            if iweight <= 0:
                raise ConfigError(f"{iwhere}.weight: must be > 0, got {iweight}")
            indicators.append(Indicator(iname, floor, target, better, iweight))
        components.append(Component(cname, weight, tuple(indicators)))
    total = sum(c.weight for c in components)
    if abs(total - 1.0) > WEIGHT_TOLERANCE:
        raise ConfigError(f"components.*.weight: weights must sum to 1, they sum to {total:.6g} "
                          f"({', '.join(f'{c.name}={c.weight:g}' for c in components)})")
    return HealthConfig(tuple(components), green, yellow, sentiment_map, config_version(raw),
                        str(raw.get("label", "")))


def load_config(path: Path | str) -> HealthConfig:
    """Read a YAML (or JSON) config file and validate it; errors name the file and the key."""
    import yaml  # pyyaml ships with dagster; imported here so the module stays importable without it

    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    try:
        return validate_config(raw)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


HERE = Path(__file__).parent
CONFIG_PATH = HERE / "config" / "health_score.yaml"
ARCHIVE_DIR = HERE / "config" / "archive"
ENV_CONFIG = tuning.SETTINGS["health.config_file"].env


def config_path() -> Path:
    """The live config: settings.health.config_file in the company file (CS_KPIS_HEALTH_CONFIG overrides),
    or config/health_score.yaml."""
    return tuning.get_path("health.config_file") or CONFIG_PATH


def load_current_config() -> HealthConfig:
    return load_config(config_path())


def load_all_configs() -> list[tuple[HealthConfig, bool]]:
    """The live config and every archived one, (config, is_current), live first, versions unique."""
    current = load_current_config()
    out, seen = [(current, True)], {current.version}
    for path in sorted(ARCHIVE_DIR.glob("*.y*ml")):
        cfg = load_config(path)
        if cfg.version not in seen:
            out.append((cfg, False))
            seen.add(cfg.version)
    return out
