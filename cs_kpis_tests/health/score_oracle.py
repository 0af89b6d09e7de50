"""The health score in pandas: a reference oracle for the one production scorer, the SQL of
cs_kpis/defs/health/scoring.py. Written independently of the SQL (numpy arrays, merges), it scores and
explains the same rows; test_score_sql.py asserts the two give identical values and reason texts, and
test_health_score.py pins the rules on it with hand-computed numbers.
"""

import numpy as np
import pandas as pd

from cs_kpis.defs.health.health_score import COMPONENTS, ROUND_DIGITS, HealthConfig


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
