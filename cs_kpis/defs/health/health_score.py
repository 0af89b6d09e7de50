"""The customer health score as pure functions: config validation, scaling, weighting, bands, explanations,
the ARR-weighted parent roll-up and the backtest statistics. pandas and numpy only (no Dagster, no database),
so every rule here is unit-tested with hand-computed numbers. The same scoring and explanations are also
generated as DuckDB SQL from the config (score_sql, explain_sql: "the same in SQL" below), which is how the
history is scored in the warehouse; cs_kpis_tests/health/test_score_sql.py pins SQL and pandas together.

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


def changed_pairs(scores: pd.DataFrame, window_days: int, min_delta: float) -> pd.DataFrame:
    """The account-days whose score moved by at least ``min_delta`` points against ``window_days`` earlier,
    each joined with that earlier day: day, account_id, band, config_version, score, <c>_score, and
    score_before, <c>_score_before (all five components; NaN when missing)."""
    days = pd.to_datetime(scores["day"])
    cols = ["score"] + [f"{c}_score" for c in COMPONENTS]
    past = scores[["account_id"] + cols].copy()
    past["_day"] = days + pd.Timedelta(days=window_days)
    cur = scores[["day", "account_id", "band", "config_version"] + cols].copy()
    cur["_day"] = days
    m = cur.merge(past, on=["account_id", "_day"], how="inner", suffixes=("", "_before"))
    return m[(m["score"] - m["score_before"]).abs() >= min_delta].reset_index(drop=True)


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
    return explain_pairs(changed_pairs(scores, window_days, min_delta), config, window_days, min_component_move)


def explain_pairs(m: pd.DataFrame, config: HealthConfig, window_days: int,
                  min_component_move: float = 1.0) -> pd.DataFrame:
    """The rows of health_score_changes for the pairs of ``changed_pairs`` (see explain_changes)."""
    weights = {c.name: c.weight for c in config.components}
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


# ----------------------------------------------------------------------------------------- the same in SQL
#
# score_sql and explain_sql are score_frame and explain_pairs as DuckDB SQL, generated from the validated
# config, so the history is scored set-based inside the warehouse (assets.score_history). They are written
# to give the very same numbers, not merely close ones: every value goes through the same IEEE double
# operations in the same order (x - floor, / (target - floor), clip, x 100, the weighted sums left to right,
# one division), constants are exact DOUBLE literals (a bare 0.1 would be a DECIMAL in DuckDB), and the
# rounding is numpy's. np.round(x, 6) is rint(x x 1e6) / 1e6 with rint rounding half to even, and
# pandas' Series.round() is rint; DuckDB's round() rounds half away from zero, so sql_rint writes rint out
# with floor, which is exact on doubles. test_score_sql.py pins the parity on ties and varied frames.


def sql_double(x: float) -> str:
    """An exact DOUBLE literal (repr round-trips; DuckDB parses it correctly rounded)."""
    return f"'{float(x)!r}'::DOUBLE"


def sql_text(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def sql_rint(x: str) -> str:
    """numpy's rint (round half to even) of a DOUBLE column ``x`` (named more than once: pass a column).

    For a = |x|: floor(a) and a - floor(a) are exact in double arithmetic, so the tie test is exact; a tie
    goes to the even neighbour; rint is odd-symmetric, so rint(x) = sign(x) x rint(|x|)."""
    a = f"abs({x})"
    fl = f"floor({a})"
    return (f"(sign({x}) * (case when {a} - {fl} > 0.5::DOUBLE then {fl} + 1 when {a} - {fl} < 0.5::DOUBLE "
            f"then {fl} else {fl} + ({fl} - 2 * floor({fl} / 2)) end))")


def sql_round(x: str, digits: int = ROUND_DIGITS) -> str:
    """np.round(x, digits) of a DOUBLE column: rint(x x 10^digits) / 10^digits, as numpy computes it."""
    f = sql_double(10.0 ** digits)
    return f"({sql_rint(f'({x} * {f})')} / {f})"


def _value_sql(name: str, config: HealthConfig) -> str:
    """indicator_values in SQL: csm_sentiment through the map (unmapped values are missing), others as
    DOUBLE (NaN is missing, as in numpy)."""
    if name == "csm_sentiment":
        whens = " ".join(f"when {sql_text(k)} then {sql_double(v)}" for k, v in config.sentiment_map.items())
        return f"(case cast(csm_sentiment as varchar) {whens} end)"
    return f"nullif(try_cast({name} as double), 'NaN'::DOUBLE)"


def _weighted_mean_sql(terms: list[tuple[str, float]]) -> tuple[str, str]:
    """(numerator, denominator) of the weighted mean of the non-null columns, added left to right as
    component_scores and score_frame add them (a missing term adds 0.0, which changes nothing)."""
    num = " + ".join(f"coalesce({x} * {sql_double(w)}, 0.0::DOUBLE)" for x, w in terms)
    den = " + ".join(f"(case when {x} is null then 0.0::DOUBLE else {sql_double(w)} end)" for x, w in terms)
    return num, den


def score_core_sql(config: HealthConfig, source: str) -> str:
    """The numeric core of score_sql: account_id, day, is_active, arr (DOUBLE), score (rounded) and, for
    each configured component c, its unrounded score _c_<c> and contribution _k_<c>. ``source`` is a table
    or a parenthesised subquery with account_id, day, is_active, arr and the config's indicator columns."""
    inds = [(c, i, f"_i{n}") for n, (c, i) in enumerate((c, i) for c in config.components for i in c.indicators)]
    fracs = []
    for _, ind, col in inds:
        frac = f"({_value_sql(ind.name, config)} - {sql_double(ind.floor)}) / {sql_double(ind.target - ind.floor)}"
        if ind.better == "lower":
            frac = f"1.0::DOUBLE - ({frac})"
        fracs.append(f"{frac} as {col}")
    # np.clip(frac, 0, 1) x 100; a null (missing) stays null
    scaled = [f"(case when {col} < 0 then 0.0::DOUBLE when {col} > 1 then 1.0::DOUBLE else {col} end) * 100.0::DOUBLE "
              f"as {col}" for _, _, col in inds]
    comps = []
    for comp in config.components:
        num, den = _weighted_mean_sql([(col, ind.weight) for c, ind, col in inds if c is comp])
        comps.append(f"case when ({den}) > 0 then ({num}) / ({den}) end as _c_{comp.name}")
    num, den = _weighted_mean_sql([(f"_c_{c.name}", c.weight) for c in config.components])
    raw = ["case when _den > 0 then _num / _den end as _raw"]
    raw += [f"(_c_{c.name} * {sql_double(c.weight)}) / _den as _k_{c.name}" for c in config.components]
    keep = "cast(account_id as varchar) as account_id, cast(day as date) as day, cast(is_active as boolean) as is_active, " \
           "cast(arr as double) as arr"
    cols = "account_id, day, is_active, arr"
    own = ", ".join(f"_c_{c.name}, _k_{c.name}" for c in config.components)
    return f"""
with _hs_frac as (select {keep}, {', '.join(fracs)} from {source}),
_hs_scaled as (select {cols}, {', '.join(scaled)} from _hs_frac),
_hs_comp as (select {cols}, {', '.join(comps)} from _hs_scaled),
_hs_sum as (select *, {num} as _num, {den} as _den from _hs_comp),
_hs_raw as (select *, {', '.join(raw)} from _hs_sum)
select {cols}, {sql_round('_raw')} as score, {own} from _hs_raw"""


def score_finish_sql(config: HealthConfig, core: str, extra: tuple[str, ...] = ()) -> str:
    """The columns of score_sql from the rows of ``core`` (score_core_sql's columns, as a table or a
    parenthesised subquery), followed by its ``extra`` columns: band, the rounded component scores and
    contributions (null for components not configured), the label of the components present and the
    config version."""
    configured = [c.name for c in config.components]
    outs = []
    for c in COMPONENTS:
        if c in configured:
            outs += [f"{sql_round(f'_c_{c}')} as {c}_score", f"{sql_round(f'_k_{c}')} as contrib_{c}"]
        else:
            outs += [f"null::DOUBLE as {c}_score", f"null::DOUBLE as contrib_{c}"]
    # the label by bit mask, as score_frame does it (a list lookup: cheaper than building the string)
    mask = " + ".join(f"(case when _c_{c} is null then 0 else {1 << b} end)" for b, c in enumerate(COMPONENTS)
                      if c in configured)
    labels = [",".join(n for b, n in enumerate(COMPONENTS) if m >> b & 1) for m in range(1 << len(COMPONENTS))]
    counts = [m.bit_count() for m in range(1 << len(COMPONENTS))]
    extras = "".join(f", {e}" for e in extra)
    return f"""
select
    day, account_id, is_active, arr, score,
    case when score >= {sql_double(config.green)} then 'green' when score >= {sql_double(config.yellow)} then 'yellow'
         when score is not null then 'red' end as band,
    {', '.join(outs)},
    [{', '.join(sql_text(x) for x in labels)}][_mask + 1] as components_present,
    cast([{', '.join(map(str, counts))}][_mask + 1] as integer) as components_present_count,
    {sql_text(config.version)} as config_version{extras}
from (select *, {mask} as _mask from {core})"""


def score_sql(config: HealthConfig, source: str) -> str:
    """A SELECT scoring every row of ``source`` (a table or a parenthesised subquery with account_id, day,
    is_active, arr and the config's indicator columns) exactly as score_frame does, plus is_active and arr:
    day, account_id, is_active, arr, score, band, <c>_score and contrib_<c> for the five components,
    components_present, components_present_count, config_version (the columns of health_scores_daily
    without the deltas)."""
    return score_finish_sql(config, f"({score_core_sql(config, source)})")


def explain_sql(config: HealthConfig, pairs: str, window_days: int | None, min_component_move: float = 1.0) -> str:
    """explain_pairs as a SELECT over ``pairs`` (a table or parenthesised subquery with the columns of
    changed_pairs: day, account_id, band, config_version, score, <c>_score, score_before and
    <c>_score_before for the five components): the rows of health_score_changes, values and reason text
    identical to explain_pairs'. ``window_days`` None: each pair's own, from a window_days column."""
    weights = {c.name: c.weight for c in config.components}

    def whole(col: str, r: str) -> str:
        return f"case when {col} is null then 'n/a' else cast(cast({r} as bigint) as varchar) end"

    def signed(r: str) -> str:
        return f"case when {r} < 0 then '−' else '+' end, cast(abs(cast({r} as bigint)) as varchar)"

    pres = []
    for suffix in ("", "_before"):
        for c in COMPONENTS:
            w = sql_double(weights.get(c, 0.0))
            pres.append(f"case when {c}_score{suffix} is null then 0.0::DOUBLE else {w} end as _p_{c}{suffix}")
    totals = [f"{' + '.join(f'_p_{c}{suffix}' for c in COMPONENTS)} as _tot{suffix}" for suffix in ("", "_before")]
    shares = [f"case when _tot{suffix} > 0 then _p_{c}{suffix} / _tot{suffix} else 0.0::DOUBLE end as _sh_{c}{suffix}"
              for suffix in ("", "_before") for c in COMPONENTS]
    moves = [f"(_sh_{c} * (coalesce({c}_score, 0.0::DOUBLE) - score_before)) - "
             f"(_sh_{c}_before * (coalesce({c}_score_before, 0.0::DOUBLE) - score_before)) as {c}_delta"
             for c in COMPONENTS]
    rints = [f"{sql_rint(col)} as _r_{col}" for col in
             ["score_before", "score", "delta", *[f"{c}_delta" for c in COMPONENTS],
              *[f"{c}_score" for c in COMPONENTS], *[f"{c}_score_before" for c in COMPONENTS]]]
    keep = [f"abs({c}_delta) >= {sql_double(min_component_move)} as _keep_{c}" for c in COMPONENTS]
    texts, ranks = [], []
    for n, c in enumerate(COMPONENTS):
        same = f"coalesce(_r_{c}_score_before = _r_{c}_score, false)"
        texts.append(f"case when _keep_{c} then concat('{c} ', {signed(f'_r_{c}_delta')}, ' (', "
                     f"{whole(f'{c}_score_before', f'_r_{c}_score_before')}, ' → ', "
                     f"{whole(f'{c}_score', f'_r_{c}_score')}, "
                     f"case when {same} then ', reweighted)' else ')' end) end as _text_{c}")
        # the place of c among the movers, largest move first, ties in COMPONENTS order (a stable sort)
        ahead = [f"cast(_keep_{d} and (abs({d}_delta) > abs({c}_delta)"
                 + (f" or abs({d}_delta) = abs({c}_delta))" if m < n else ")") + " as integer)"
                 for m, d in enumerate(COMPONENTS) if d != c]
        ranks.append(f"{' + '.join(ahead)} as _rank_{c}")
    places = [f"case {' '.join(f'when _keep_{c} and _rank_{c} = {k} then _text_{c}' for c in COMPONENTS)} end"
              for k in range(len(COMPONENTS))]
    any_mover = " or ".join(f"_keep_{c}" for c in COMPONENTS)
    window = "window_days" if window_days is None else str(int(window_days))
    head = (f"'health ', {whole('score_before', '_r_score_before')}, ' → ', {whole('score', '_r_score')}, ' (', "
            f"{signed('_r_delta')}, ' in ', cast({window} as integer), ' d)'")
    return f"""
with _hx_p as (
    select day, account_id, {window} as window_days, band, config_version, score, score_before,
        score - score_before as delta,
        {', '.join(f'{c}_score, {c}_score_before' for c in COMPONENTS)}, {', '.join(pres)}
    from {pairs}
),
_hx_t as (select *, {', '.join(totals)} from _hx_p),
_hx_s as (select *, {', '.join(shares)} from _hx_t),
_hx_m as (select *, {', '.join(moves)} from _hx_s),
_hx_r as (select *, {', '.join(rints)}, {', '.join(keep)} from _hx_m),
_hx_x as (select *, {', '.join(texts)}, {', '.join(ranks)} from _hx_r)
select
    cast(day as date) as day,
    cast(account_id as varchar) as account_id,
    cast(window_days as integer) as window_days,
    score_before, score, delta, cast(band as varchar) as band,
    {', '.join(f'{c}_delta' for c in COMPONENTS)},
    concat({head}, case when {any_mover} then ': ' end, concat_ws(', ', {', '.join(places)})) as reason,
    cast(config_version as varchar) as config_version
from _hx_x"""


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
