"""The health score in SQL (health_score.score_sql / explain_sql, run set-based by assets.score_history)
against the pandas reference (score_frame, add_deltas, explain_changes): the same numbers, bands, labels,
deltas and reasons, on varied frames, on rounding ties and on the fixture warehouse in every build mode."""

import copy
import datetime as dt
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from cs_kpis.defs.health import health_score as hs
from cs_kpis.defs.health import scoring
from cs_kpis.lib import incremental
from cs_kpis_tests.health import score_oracle as oracle
from cs_kpis_tests.health.fixtures import INDICATOR_MODEL, build_window, plan
from cs_kpis_tests.health.test_health_score import FIVE, RAW

TOL = 1e-9


# ------------------------------------------------------------------------------------------------ rounding

def test_sql_rint_and_round_are_numpys_even_on_ties():
    """np.round(x, 6) is rint(x x 1e6) / 1e6 with ties to even, and DuckDB's round() rounds ties away from
    zero; sql_rint / sql_round must give numpy's result, ties included."""
    rng = np.random.default_rng(7)
    special = [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 12.3456785, 5e-7, 1.5e-6, 2.5e-6, 70.0000005, 39.9999995, 99.9999995,
               1e-20, -1e-20, 0.49999999999999994, -0.49999999999999994, 4503599627370495.5, 2.0 ** 53, 0.0, -0.0]
    x = np.concatenate([special, np.round(rng.uniform(-120, 120, 50_000), 7),  # 7 decimals: many ties at the 6th
                        np.arange(-200, 200) / 2, rng.uniform(-1, 1, 10_000)])
    con = duckdb.connect()
    con.register("v", pd.DataFrame({"x": x}))
    got = con.execute(f"select {scoring.sql_rint('x')} as r0, {scoring.sql_round('x')} as r6, round(x, 6) as duck, "
                      "round(x) as duck0 from v").df()
    np.testing.assert_array_equal(got["r0"].to_numpy(), np.rint(x))
    np.testing.assert_array_equal(got["r6"].to_numpy(), np.round(x, 6))
    np.testing.assert_array_equal(got["r0"].to_numpy(), pd.Series(x).round().to_numpy())  # what _whole uses
    scaled = x * 1e6
    ties = (np.abs(scaled) - np.floor(np.abs(scaled))) == 0.5
    assert ties.sum() > 1000, "the test needs exact ties"
    # the case the emulation exists for: DuckDB's own round() disagrees with numpy on them
    assert (got["duck"].to_numpy() != np.round(x, 6)).sum() > 500
    assert (got["duck0"].to_numpy() != np.rint(x)).sum() > 100


def test_double_literals_are_exact():
    con = duckdb.connect()
    values = [0.1, 0.35, 1 / 3, 2880.0, -50.0, 0.30000000000000004, 1e-300, 123456789.123456789]
    got = con.execute("select " + ", ".join(scoring.sql_double(v) for v in values)).fetchall()[0]
    assert list(got) == values


# ---------------------------------------------------------------------------------------------- scoring

LIVE = hs.load_config(hs.CONFIG_PATH)
ARCHIVED = [hs.load_config(p) for p in sorted(Path(hs.ARCHIVE_DIR).glob("*.yaml"))]
ODD = {  # one component of one indicator, better: lower, a sentiment map with a quote and unmapped values
    "bands": {"green": 80, "yellow": 20},
    "csm_sentiment_map": {"Green": 90, "Ye'llow": 45.5, "Red": -10, "red": 5},
    "components": {"sentiment": {"weight": 1.0, "indicators": {
        "csm_sentiment": {"floor": 0, "target": 80, "better": "lower"}}}},
}
THREE = {  # three components, odd weights, an indicator scored twice in different components
    "bands": {"green": 66.6, "yellow": 33.3},
    "components": {
        "billing": {"weight": 0.7, "indicators": {"max_days_past_due": {"floor": 0, "target": 45, "better": "lower"},
                                                   "days_to_renewal": {"floor": 30, "target": 200, "weight": 0.3}}},
        "usage": {"weight": 0.1, "indicators": {"events_30d": {"floor": 10, "target": 1000, "weight": 7},
                                                "usage_trend": {"floor": -0.5, "target": 0.25}}},
        "adoption": {"weight": 0.2, "indicators": {"is_activated": {"floor": 0, "target": 1},
                                                   "ttfv_days": {"floor": 1, "target": 30, "better": "lower"}}},
    },
}
CONFIGS = {"live": LIVE, **{f"archived-{c.label or i}": c for i, c in enumerate(ARCHIVED)},
           "two components": hs.validate_config(copy.deepcopy(RAW)), "five": hs.validate_config(copy.deepcopy(FIVE)),
           "sentiment only": hs.validate_config(copy.deepcopy(ODD)), "three": hs.validate_config(copy.deepcopy(THREE))}


def varied_frame(config: hs.HealthConfig, n: int = 4000, seed: int = 1) -> pd.DataFrame:
    """Indicator rows hitting every case: missing values (whole components and rows too), exactly the floor, the
    target and the midpoint, beyond both, random values in between, values with many decimals and
    sentiment picklist values mapped, unmapped and missing."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "day": pd.to_datetime("2025-01-01") + pd.to_timedelta(rng.integers(0, 60, n), unit="D"),
        "account_id": [f"acc_{i:05d}" for i in range(n)],
        "is_active": rng.random(n) < 0.8,
        "arr": np.round(rng.uniform(0, 50_000, n), 2),
    })
    blank = rng.random(n) < 0.05  # no data at all: no score
    for comp in config.components:
        gone = blank | (rng.random(n) < 0.15)  # the whole component missing on these rows
        for ind in comp.indicators:
            if ind.name == "csm_sentiment":
                choices = np.array([*config.sentiment_map, "Purple", None, "green"], dtype=object)
                vals = choices[rng.integers(0, len(choices), n)]
                vals[gone] = None
                df[ind.name] = vals
                continue
            span = ind.target - ind.floor
            cands = np.stack([np.full(n, ind.floor), np.full(n, ind.target), np.full(n, ind.floor + span / 2),
                              ind.floor - rng.uniform(0, 3, n) * span, ind.target + rng.uniform(0, 3, n) * span,
                              ind.floor + rng.uniform(0, 1, n) * span,
                              np.round(ind.floor + rng.uniform(0, 1, n) * span, 7), np.full(n, np.nan)])
            vals = cands[rng.integers(0, len(cands), n), np.arange(n)]
            vals[gone | (rng.random(n) < 0.1)] = np.nan
            df[ind.name] = vals
    return df


def band_edges(config: hs.HealthConfig) -> pd.DataFrame:
    """Rows whose score lands on (or rounds onto) the band thresholds: one component of one indicator
    scaled 0..100 over floor 0, target 100 by a config built for it."""
    return pd.DataFrame({"v": [config.green, config.yellow, config.green - 5e-7, config.yellow - 5e-7,
                               config.green - 1e-6, config.yellow + 4e-7, 0.0, 100.0]})


def sql_scores(frame: pd.DataFrame, config: hs.HealthConfig) -> pd.DataFrame:
    con = duckdb.connect()
    con.register("ind", frame)
    return con.execute(scoring.score_sql(config, "ind") + " order by account_id, day").df()


def reference_scores(frame: pd.DataFrame, config: hs.HealthConfig) -> pd.DataFrame:
    ref = oracle.score_frame(frame, config)
    ref.insert(2, "is_active", frame["is_active"].to_numpy())
    ref.insert(3, "arr", frame["arr"].astype("float64").to_numpy())
    return ref.sort_values(["account_id", "day"], ignore_index=True)


def assert_same(got: pd.DataFrame, ref: pd.DataFrame, tol: float = TOL) -> None:
    """Same columns in the same order and the same values: numbers within ``tol`` (missing = missing), the
    rest identical."""
    assert list(got.columns) == list(ref.columns)
    assert len(got) == len(ref)
    for col in ref.columns:
        a, b = got[col], ref[col]
        if col == "day":
            a, b = pd.to_datetime(a).dt.date, pd.to_datetime(b).dt.date
        if pd.api.types.is_float_dtype(b) or pd.api.types.is_float_dtype(a):
            x, y = a.to_numpy(dtype="float64"), b.to_numpy(dtype="float64")
            assert np.array_equal(np.isnan(x), np.isnan(y)), col
            assert np.nanmax(np.abs(x - y), initial=0.0) <= tol, col
        else:
            x = a.astype(object).where(a.notna(), None).tolist()
            y = b.astype(object).where(b.notna(), None).tolist()
            assert x == y, col


@pytest.mark.parametrize("name", list(CONFIGS))
def test_score_sql_equals_score_frame(name):
    config = CONFIGS[name]
    frame = varied_frame(config)
    got, ref = sql_scores(frame, config), reference_scores(frame, config)
    assert_same(got, ref)
    # the frame reaches every case: missing scores, each band, more than one set of components
    assert ref["score"].isna().any() and set(ref["band"].dropna()) == {"green", "yellow", "red"}
    assert ref["components_present"].nunique() > (2 if len(config.components) > 1 else 1)
    # and in fact the SQL does the very same arithmetic: not one bit differs
    for col in ref.columns:
        if pd.api.types.is_float_dtype(ref[col]):
            np.testing.assert_array_equal(got[col].to_numpy(), ref[col].to_numpy(), err_msg=col)


def test_score_sql_bands_at_the_thresholds():
    config = hs.validate_config({"bands": {"green": 70, "yellow": 40}, "components": {
        "usage": {"weight": 1.0, "indicators": {"stickiness": {"floor": 0, "target": 100}}}}})
    edges = band_edges(config)["v"].to_numpy()
    frame = pd.DataFrame({"day": pd.to_datetime(["2025-01-01"] * len(edges)),
                          "account_id": [f"a{i}" for i in range(len(edges))], "is_active": True, "arr": 0.0,
                          "stickiness": edges})
    got, ref = sql_scores(frame, config), reference_scores(frame, config)
    assert_same(got, ref, tol=0.0)
    # 69.9999995 is a tie at the 6th decimal and goes to the even 70.0: green, as in numpy
    assert got["band"].tolist() == ref["band"].tolist() == [
        "green", "yellow", "green", "yellow", "yellow", "yellow", "red", "green"]


# ------------------------------------------------------------------------------------------ explanations

def varied_pairs(config: hs.HealthConfig, n: int = 3000, seed: int = 3) -> pd.DataFrame:
    """changed_pairs-shaped rows: component scores on a half-point grid (ties when rounding the moves and
    the scores for the text), equal moves of equally weighted components, components appearing and
    disappearing, scores stored rounded to 6 decimals as in the table."""
    rng = np.random.default_rng(seed)
    configured = {c.name for c in config.components}
    grid = np.concatenate([np.arange(0, 100.5, 0.5), [np.nan] * 40, rng.uniform(0, 100, 40).round(6)])
    m = pd.DataFrame({"day": pd.to_datetime("2025-03-01") + pd.to_timedelta(rng.integers(0, 30, n), unit="D"),
                      "account_id": [f"a{i:05d}" for i in range(n)],
                      "band": rng.choice(np.array(["green", "yellow", "red"], dtype=object), n),
                      "config_version": config.version})
    m["score"] = rng.choice(grid[~np.isnan(grid)], n)
    m["score_before"] = rng.choice(grid[~np.isnan(grid)], n)
    for c in hs.COMPONENTS:
        for suffix in ("", "_before"):
            m[f"{c}_score{suffix}"] = rng.choice(grid, n) if c in configured else np.nan
    same = rng.random(n) < 0.3  # the same move for usage and billing (equal weights in FIVE and the live config)
    m.loc[same, "billing_score"] = m.loc[same, "usage_score"]
    m.loc[same, "billing_score_before"] = m.loc[same, "usage_score_before"]
    unmoved = rng.random(n) < 0.2  # a component whose own score did not move: reweighted
    m.loc[unmoved, "support_score"] = m.loc[unmoved, "support_score_before"]
    return m


def sql_explain(m: pd.DataFrame, config: hs.HealthConfig, window: int, min_move: float = 1.0) -> pd.DataFrame:
    con = duckdb.connect()
    con.register("pairs", m)
    return con.execute(scoring.explain_sql(config, "pairs", window, min_move) + " order by account_id").df()


@pytest.mark.parametrize("name", ["live", "two components", "five", "sentiment only", "three"])
@pytest.mark.parametrize("window, min_move", [(7, 1.0), (30, 0.0), (30, 2.5)])
def test_explain_sql_equals_explain_pairs(name, window, min_move):
    config = CONFIGS[name]
    m = varied_pairs(config)
    ref = oracle.explain_pairs(m, config, window, min_move).sort_values("account_id", ignore_index=True)
    got = sql_explain(m, config, window, min_move)
    assert_same(got, ref)
    assert got["reason"].tolist() == ref["reason"].tolist()
    if name == "five":
        assert ref["reason"].str.contains("reweighted").any() and ref["reason"].str.contains("n/a").any()


def test_explain_sql_on_hand_picked_ties():
    """Scores and moves of exactly x.5 points round to even (57.5 -> 58, 62.5 -> 62, +2.5 -> +2, -2.5 -> -2,
    +3.5 -> +4), a move of exactly 1 point is named, equal moves keep the components' order, a component
    whose own score did not move reads reweighted."""
    config = hs.validate_config(copy.deepcopy(FIVE))
    flat = {c: (50.0, 50.0) for c in hs.COMPONENTS}
    rows = [  # (score, score_before, {component: (after, before)})
        (62.5, 57.5, {**flat, "usage": (50.0, 12.5), "billing": (50.0, 12.5)}),
        (40.0, 50.0, {**flat, "usage": (40.0, 50.0), "billing": (np.nan, 50.0), "adoption": (60.0, 50.0),
                      "support": (np.nan, np.nan)}),
        (51.0, 50.0, {**flat, "adoption": (60.0, 50.0)}),
        (52.5, 50.0, {**flat, "adoption": (75.0, 50.0)}),
        (47.5, 50.0, {**flat, "adoption": (25.0, 50.0)}),
        (53.5, 50.0, {**flat, "adoption": (85.0, 50.0)}),
        (40.0, 50.0, {**flat, "usage": (np.nan, 50.0), "support": (80.0, 80.0)}),
    ]
    m = pd.DataFrame([{"day": pd.Timestamp("2025-03-01"), "account_id": f"a{i}", "band": "yellow",
                       "config_version": config.version, "score": score, "score_before": before,
                       **{f"{c}_score": comps[c][0] for c in hs.COMPONENTS},
                       **{f"{c}_score_before": comps[c][1] for c in hs.COMPONENTS}}
                      for i, (score, before, comps) in enumerate(rows)])
    ref = oracle.explain_pairs(m, config, 30)
    got = sql_explain(m, config, 30)
    assert_same(got, ref, tol=0.0)
    assert got["reason"].tolist() == [
        "health 58 → 62 (+5 in 30 d): usage +11 (12 → 50), billing +11 (12 → 50)",
        "health 50 → 40 (−10 in 30 d): usage −5 (50 → 40), adoption +2 (50 → 60)",
        "health 50 → 51 (+1 in 30 d): adoption +1 (50 → 60)",
        "health 50 → 52 (+2 in 30 d): adoption +2 (50 → 75)",
        "health 50 → 48 (−2 in 30 d): adoption −2 (50 → 25)",
        "health 50 → 54 (+4 in 30 d): adoption +4 (50 → 85)",
        "health 50 → 40 (−10 in 30 d): support +2 (80 → 80, reweighted)",
    ]


# ------------------------------------------------------------------------------ score_history vs pandas

def pandas_pipeline(con, config: hs.HealthConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What score_history wrote before it ran in SQL: score_frame, add_deltas and explain_changes over every
    indicator row."""
    ind = con.execute("select * from kpis.account_indicators_daily order by account_id, day").df()
    scores = oracle.score_frame(ind, config)
    scores.insert(2, "is_active", ind["is_active"].to_numpy())
    scores.insert(3, "arr", ind["arr"].astype("float64").to_numpy())
    scores = oracle.add_deltas(scores, scoring.CHANGE_WINDOWS)
    changes = pd.concat([oracle.explain_changes(scores, config, w, scoring.CHANGE_MIN_DELTA) for w in scoring.CHANGE_WINDOWS],
                        ignore_index=True)
    return (scores.sort_values(["account_id", "day"], ignore_index=True),
            changes.sort_values(["account_id", "day", "window_days"], ignore_index=True))


def stored(con) -> tuple[pd.DataFrame, pd.DataFrame]:
    return (con.execute("select * from kpis.health_scores_daily order by account_id, day").df(),
            con.execute("select * from kpis.health_score_changes order by account_id, day, window_days").df())


def full_indicators(con) -> None:
    build_window(con, INDICATOR_MODEL, plan(con, INDICATOR_MODEL, full_refresh=True))


@pytest.mark.parametrize("config_name", ["live", "two components", "three"])
@pytest.mark.parametrize("chunk_rows", [incremental.CHUNK_ROWS, 10])
def test_score_history_equals_the_pandas_pipeline_full(wh_after, config_name, chunk_rows):
    config = CONFIGS[config_name]
    wh = wh_after(full_indicators)  # built once for the six
    stats = scoring.score_history(wh, config, full_refresh=True, chunk_rows=chunk_rows)
    # the account ranges, then the next nightly's days scored as a nightly scores them (its window's pass)
    assert stats["mode"] == "full" and stats["chunks"] - stats["tail_chunks"] == (1 if chunk_rows > 1000 else 3)
    assert stats["tail_chunks"] >= 1
    ref_scores, ref_changes = pandas_pipeline(wh, config)
    got_scores, got_changes = stored(wh)
    assert_same(got_scores, ref_scores)
    assert_same(got_changes, ref_changes)
    assert len(ref_changes) and set(ref_changes["window_days"]) == set(scoring.CHANGE_WINDOWS)


@pytest.mark.parametrize("chunk_rows", [incremental.CHUNK_ROWS, 10])
@pytest.mark.parametrize("history_days", [None, 60])
def test_score_history_equals_the_pandas_pipeline_nightly(wh_after, monkeypatch, chunk_rows, history_days):
    """A nightly rescoring of the last days (deltas and explanations reading the stored scores before the
    window) leaves the tables exactly as the pandas pipeline computes them over the whole kept history."""
    monkeypatch.setenv(incremental.ENV_LOOKBACK_DAYS, "3")
    if history_days:
        monkeypatch.setenv(incremental.ENV_HISTORY_DAYS, str(history_days))
    config = LIVE
    wh = wh_after(full_indicators)  # built once for both chunk_rows
    scoring.score_history(wh, config, chunk_rows=chunk_rows)
    for table in ("kpis.account_indicators_daily", "kpis.health_scores_daily", "kpis.health_score_changes"):
        wh.execute(f"delete from {table} where day > ?", [dt.date(2025, 4, 20)])
    w = plan(wh, INDICATOR_MODEL)
    assert w.mode == "incremental"
    build_window(wh, INDICATOR_MODEL, w)
    stats = scoring.score_history(wh, config, chunk_rows=chunk_rows)
    assert stats["mode"] == "incremental" and stats["start_day"] == dt.date(2025, 4, 18)
    ref_scores, ref_changes = pandas_pipeline(wh, config)
    got_scores, got_changes = stored(wh)
    assert_same(got_scores, ref_scores)
    assert_same(got_changes, ref_changes)
    if history_days:
        assert got_scores["day"].min() == pd.Timestamp(dt.date(2025, 3, 2))
