"""The customer health score as pure functions: config validation, scaling, weighting, bands, explanations,
the ARR-weighted parent roll-up and the backtest statistics. pandas and numpy only (no Dagster, no SQL),
so every rule here is unit-tested with hand-computed numbers.

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

import numpy as np
import pandas as pd

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


# ---------------------------------------------------------------------------------------------- scoring


def scale(values, floor: float, target: float, better: str = "higher") -> np.ndarray:
    """Bounded-linear 0..100 scaling; NaN stays NaN (missing)."""
    x = np.asarray(values, dtype="float64")
    frac = (x - floor) / (target - floor)
    if better == "lower":
        frac = 1.0 - frac
    return np.clip(frac, 0.0, 1.0) * 100.0


def indicator_values(df: pd.DataFrame, name: str, config: HealthConfig) -> np.ndarray:
    """The numeric series an indicator is scaled from (csm_sentiment goes through the configured map)."""
    if name not in df.columns:
        return np.full(len(df), np.nan)
    col = df[name]
    if name == "csm_sentiment":
        return col.astype("object").map(config.sentiment_map).astype("float64").to_numpy()
    return pd.to_numeric(col, errors="coerce").astype("float64").to_numpy()


def component_scores(df: pd.DataFrame, config: HealthConfig) -> pd.DataFrame:
    """One column per configured component: the weighted mean of its present indicator scores (NaN if none)."""
    out = {}
    for comp in config.components:
        num = np.zeros(len(df))
        den = np.zeros(len(df))
        for ind in comp.indicators:
            s = scale(indicator_values(df, ind.name, config), ind.floor, ind.target, ind.better)
            present = ~np.isnan(s)
            num += np.where(present, s * ind.weight, 0.0)
            den += np.where(present, ind.weight, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[comp.name] = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    return pd.DataFrame(out, index=df.index)


def band_of(score, config: HealthConfig) -> np.ndarray:
    s = np.asarray(score, dtype="float64")
    return np.where(np.isnan(s), None, np.where(s >= config.green, "green", np.where(s >= config.yellow, "yellow", "red")))


def score_frame(indicators: pd.DataFrame, config: HealthConfig) -> pd.DataFrame:
    """Score every row of an indicator frame (needs ``day`` and ``account_id`` plus indicator columns).

    Returns day, account_id, score, band, <component>_score, contrib_<component> (for all five components;
    NaN when missing or not configured), components_present (comma-separated, in COMPONENTS order),
    components_present_count and config_version.
    """
    comps = component_scores(indicators, config)
    weights = {c.name: c.weight for c in config.components}
    num = np.zeros(len(indicators))
    den = np.zeros(len(indicators))
    for name, w in weights.items():
        present = ~np.isnan(comps[name].to_numpy())
        num += np.where(present, comps[name].to_numpy() * w, 0.0)
        den += np.where(present, w, 0.0)
    has = den > 0
    safe_den = np.where(has, den, 1.0)
    # rounded to 1e-6 so that floating-point noise never puts a score at 100.00000000001 or 69.9999999999
    score = np.round(np.where(has, num / safe_den, np.nan), ROUND_DIGITS)
    out = pd.DataFrame({"day": indicators["day"].to_numpy(), "account_id": indicators["account_id"].to_numpy()})
    out["score"] = score
    out["band"] = band_of(score, config)
    mask = np.zeros(len(indicators), dtype="int64")
    for bit, name in enumerate(COMPONENTS):
        if name in weights:
            vals = comps[name].to_numpy()
            out[f"{name}_score"] = np.round(vals, ROUND_DIGITS)
            out[f"contrib_{name}"] = np.round(np.where(np.isnan(vals), np.nan, vals * weights[name] / safe_den),
                                              ROUND_DIGITS)
            mask |= np.where(np.isnan(vals), 0, 1 << bit)
        else:
            out[f"{name}_score"] = np.nan
            out[f"contrib_{name}"] = np.nan
    # every subset of components as a label, looked up by bit mask (fast on millions of rows)
    labels = np.array([",".join(n for b, n in enumerate(COMPONENTS) if m >> b & 1) for m in range(1 << len(COMPONENTS))],
                      dtype=object)
    out["components_present"] = labels[mask]
    out["components_present_count"] = np.array([(m).bit_count() for m in range(1 << len(COMPONENTS))])[mask]
    out["config_version"] = config.version
    return out


# ----------------------------------------------------------------------------------------- explanations


def add_deltas(scores: pd.DataFrame, windows=(7, 30)) -> pd.DataFrame:
    """Add ``delta_<w>d`` = score(day) - score(day - w days) per account (NaN when that day was not scored)."""
    out = scores.copy()
    days = pd.to_datetime(out["day"])
    for w in windows:
        past = pd.DataFrame({"account_id": out["account_id"], "_day": days + pd.Timedelta(days=w),
                             "_past": out["score"]})
        merged = pd.DataFrame({"account_id": out["account_id"], "_day": days}).merge(
            past, on=["account_id", "_day"], how="left")
        out[f"delta_{w}d"] = out["score"].to_numpy() - merged["_past"].to_numpy()
    return out


def _signed(x: pd.Series) -> pd.Series:
    """Whole points with a sign, e.g. +12 / −8 (a real minus sign, as in the reasons)."""
    r = x.round().astype("int64")
    return pd.Series(np.where(r < 0, "−", "+"), index=x.index, dtype=object) + r.abs().astype(str).astype(object)


def _whole(x: pd.Series) -> pd.Series:
    r = x.round()
    return pd.Series(np.where(r.isna(), "n/a", r.fillna(0).astype("int64").astype(str)), index=x.index, dtype=object)


def explain_changes(scores: pd.DataFrame, config: HealthConfig, window_days: int = 30, min_delta: float = 10.0,
                    min_component_move: float = 1.0) -> pd.DataFrame:
    """For every account and day whose score moved by at least ``min_delta`` points against ``window_days``
    earlier: the score before and after, the change, what each component did to it (``<c>_delta``) and a
    reason ready to quote, naming the components that moved the score by at least ``min_component_move``
    points, largest first, with the component's own score before and after::

        health 78 → 52 (−26 in 30 d): usage −15 (82 → 40), support −8 (90 → 50)

    Attribution: with p_c the rescaled weight of component c (0 when missing) and S0 the earlier score,
    ``<c>_delta = p_c,after x (C_c,after - S0) - p_c,before x (C_c,before - S0)``. The deltas add up to the
    change exactly; with the same components present on both days this is simply p_c x (C_c,after -
    C_c,before); a component that appears is charged with how far it stands from the earlier score (CSM
    sentiment arriving as Red at 0 on an account scoring 80 explains the drop, not the components whose share
    shrank). A component whose own score did not move reads ``(100 → 100, reweighted)`` when the rescaling
    alone moved it.
    """
    weights = {c.name: c.weight for c in config.components}
    days = pd.to_datetime(scores["day"])
    cols = ["score"] + [f"{c}_score" for c in COMPONENTS]
    past = scores[["account_id"] + cols].copy()
    past["_day"] = days + pd.Timedelta(days=window_days)
    cur = scores[["day", "account_id", "band", "config_version"] + cols].copy()
    cur["_day"] = days
    m = cur.merge(past, on=["account_id", "_day"], how="inner", suffixes=("", "_before"))
    m = m[(m["score"] - m["score_before"]).abs() >= min_delta].reset_index(drop=True)
    out = pd.DataFrame({
        "day": m["day"], "account_id": m["account_id"], "window_days": window_days,
        "score_before": m["score_before"], "score": m["score"], "delta": m["score"] - m["score_before"],
        "band": m["band"],
    })

    def shares(suffix: str) -> dict[str, np.ndarray]:
        present = {c: m[f"{c}_score{suffix}"].notna().to_numpy() * weights.get(c, 0.0) for c in COMPONENTS}
        total = sum(present.values())
        return {c: np.where(total > 0, w / np.where(total > 0, total, 1.0), 0.0) for c, w in present.items()}

    p_after, p_before = shares(""), shares("_before")
    s0 = m["score_before"].to_numpy()
    parts = []
    for c in COMPONENTS:
        after_part = p_after[c] * (m[f"{c}_score"].fillna(0.0).to_numpy() - s0)
        before_part = p_before[c] * (m[f"{c}_score_before"].fillna(0.0).to_numpy() - s0)
        move = pd.Series(after_part - before_part, index=m.index)
        out[f"{c}_delta"] = move
        before, after = m[f"{c}_score_before"], m[f"{c}_score"]
        same = before.round().eq(after.round()) & before.notna()
        text = (f"{c} " + _signed(move) + " (" + _whole(before) + " → " + _whole(after)
                + pd.Series(np.where(same, ", reweighted", ""), index=m.index) + ")")
        parts.append(pd.DataFrame({"row": m.index, "size": move.abs(), "text": text})[move.abs() >= min_component_move])
    head = ("health " + _whole(m["score_before"]) + " → " + _whole(m["score"]) + " ("
            + _signed(out["delta"]) + f" in {window_days} d)")
    if len(m):
        # at most one text per component and row: rank them by size and join the ranked columns
        movers = pd.concat(parts).sort_values(["row", "size"], ascending=[True, False], kind="stable")
        movers["rank"] = movers.groupby("row").cumcount()
        wide = movers.pivot(index="row", columns="rank", values="text").reindex(m.index)
        joined = pd.Series("", index=m.index, dtype=object)
        for k in wide.columns:
            piece = wide[k]
            joined = joined + np.where(piece.isna(), "", np.where(k == 0, ": ", ", ")) + piece.fillna("")
        out["reason"] = head + joined
    else:
        out["reason"] = pd.Series(dtype="object")
    out["config_version"] = m["config_version"]
    return out


# ---------------------------------------------------------------------------------------- parent roll-up


def rollup_parent(latest: pd.DataFrame, config: HealthConfig) -> pd.DataFrame:
    """ARR-weighted score per root account over the accounts of its hierarchy (itself included).

    ``latest`` needs root_account_id, score and arr. Accounts without a score are skipped; when no scored
    account of the hierarchy has ARR > 0 the plain mean is used. Returns root_account_id, parent_score,
    parent_band, parent_arr, parent_accounts_scored.
    """
    d = latest[latest["score"].notna()].copy()
    d["arr"] = d["arr"].fillna(0.0).clip(lower=0.0)
    d["_w"] = d["score"] * d["arr"]
    g = d.groupby("root_account_id", sort=True)
    agg = pd.DataFrame({"_wsum": g["_w"].sum(), "parent_arr": g["arr"].sum(), "_mean": g["score"].mean(),
                        "parent_accounts_scored": g["score"].size()})
    agg["parent_score"] = np.where(agg["parent_arr"] > 0, agg["_wsum"] / agg["parent_arr"].where(agg["parent_arr"] > 0, 1),
                                   agg["_mean"])
    agg["parent_band"] = band_of(agg["parent_score"].to_numpy(), config)
    return agg.reset_index()[["root_account_id", "parent_score", "parent_band", "parent_arr", "parent_accounts_scored"]]


# -------------------------------------------------------------------------------------------- backtest


def auc(scores, churned) -> float:
    """Area under the ROC curve of the health score as a churn predictor: the probability that a random
    account that churned scored lower than a random one that did not (ties count half). NaN when either
    class is empty. Mann-Whitney U with average ranks, O(n log n)."""
    s = np.asarray(scores, dtype="float64")
    y = np.asarray(churned, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = pd.Series(-s).rank(method="average").to_numpy()  # low score = high risk = high rank
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def backtest_table(observations: pd.DataFrame, config: HealthConfig) -> pd.DataFrame:
    """Per as-of day (and pooled): accounts, churned, churn rate, AUC, and per band accounts, churned and
    churn rate. ``observations`` needs as_of_day, score, band and churned (bool), one row per account."""
    rows = []
    groups = [(d, g) for d, g in observations.groupby("as_of_day", sort=True)] + [(None, observations)]
    for as_of, g in groups:
        row = {"scope": "month" if as_of is not None else "pooled", "as_of_day": as_of,
               "config_version": config.version, "config_label": config.label,
               "accounts": len(g), "churned": int(g["churned"].sum()),
               "churn_rate": float(g["churned"].mean()) if len(g) else float("nan"),
               "auc": auc(g["score"], g["churned"])}
        for b in BANDS:
            gb = g[g["band"] == b]
            row[f"accounts_{b}"] = len(gb)
            row[f"churned_{b}"] = int(gb["churned"].sum())
            row[f"churn_rate_{b}"] = float(gb["churned"].mean()) if len(gb) else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)
