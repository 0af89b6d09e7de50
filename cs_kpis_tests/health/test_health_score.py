"""The score's rules pinned with hand-computed numbers: the config (health_score.py), the pandas oracle
(score_oracle.py, which test_score_sql.py keeps equal to the SQL scorer), the SQL roll-up and the backtest
statistics."""

import copy
import math
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from cs_kpis.defs.health import backtest, scoring
from cs_kpis.defs.health import health_score as hs
from cs_kpis.defs.health.assets import ARCHIVE_DIR, CONFIG_PATH
from cs_kpis_tests.health import score_oracle as oracle

# Two components, easy numbers: usage 0.6 (two indicators, weights 1 and 3), support 0.4.
RAW = {
    "label": "test",
    "bands": {"green": 70, "yellow": 40},
    "csm_sentiment_map": {"Green": 100, "Yellow": 50, "Red": 0},
    "components": {
        "usage": {"weight": 0.6, "indicators": {
            "active_users_30d": {"floor": 0, "target": 10},
            "stickiness": {"floor": 0.1, "target": 0.3, "weight": 3},
        }},
        "support": {"weight": 0.4, "indicators": {
            "tickets_30d": {"floor": 0, "target": 4, "better": "lower"},
        }},
    },
}


def cfg(raw=None) -> hs.HealthConfig:
    return hs.validate_config(copy.deepcopy(raw or RAW))


def frame(**cols) -> pd.DataFrame:
    n = len(next(iter(cols.values())))
    base = {"day": pd.to_datetime(["2025-03-01"] * n), "account_id": [f"a{i}" for i in range(n)]}
    return pd.DataFrame({**base, **cols})


# ------------------------------------------------------------------------------------------------ scaling

def test_bounded_linear_scaling_higher_is_better():
    got = oracle.scale([-1, 0, 2.5, 5, 10, 99, np.nan], floor=0, target=10)
    assert got[:6].tolist() == [0, 0, 25, 50, 100, 100]
    assert np.isnan(got[6])  # missing stays missing


def test_bounded_linear_scaling_lower_is_better():
    # tickets: 0 or fewer -> 100, 4 or more -> 0, 1 -> 75
    assert oracle.scale([0, 1, 2, 4, 9], floor=0, target=4, better="lower").tolist() == [100, 75, 50, 0, 0]


def test_each_shipped_indicator_scales_as_configured():
    """The live config's bounds, pinned: floor scores 0 (or 100 when better: lower), target the opposite,
    the midpoint 50."""
    config = hs.load_config(CONFIG_PATH)
    for comp in config.components:
        for ind in comp.indicators:
            mid = (ind.floor + ind.target) / 2
            got = oracle.scale([ind.floor, mid, ind.target], ind.floor, ind.target, ind.better).tolist()
            assert got == pytest.approx([0, 50, 100] if ind.better == "higher" else [100, 50, 0]), ind.name


FIVE = {
    "bands": {"green": 70, "yellow": 40},
    "csm_sentiment_map": {"Green": 100, "Yellow": 60, "Red": 0},
    "components": {
        "usage": {"weight": 0.3, "indicators": {
            "stickiness": {"floor": 0.1, "target": 0.35, "weight": 2},
            "events_per_active_user_30d": {"floor": 5, "target": 25, "weight": 3}}},
        "adoption": {"weight": 0.1, "indicators": {
            "feature_adoption": {"floor": 0.2, "target": 0.9, "weight": 2},
            "seat_utilisation": {"floor": 0.2, "target": 0.8}}},
        "support": {"weight": 0.15, "indicators": {
            "tickets_30d": {"floor": 0, "target": 4, "better": "lower"},
            "median_first_reply_minutes": {"floor": 60, "target": 240, "better": "lower"}}},
        "sentiment": {"weight": 0.15, "indicators": {
            "nps_90d": {"floor": -50, "target": 50, "weight": 3},
            "csat_90d": {"floor": 0.5, "target": 1.0, "weight": 0.5},
            "csm_sentiment": {"floor": 0, "target": 100}}},
        "billing": {"weight": 0.3, "indicators": {
            "cancellation_scheduled": {"floor": 0, "target": 1, "better": "lower"},
            "failed_payments_90d": {"floor": 0, "target": 2, "better": "lower"}}},
    },
}


def test_every_component_by_hand():
    df = frame(stickiness=[0.2], events_per_active_user_30d=[15], feature_adoption=[0.55], seat_utilisation=[1.5],
               tickets_30d=[1], median_first_reply_minutes=[150], nps_90d=[25], csat_90d=[0.75],
               csm_sentiment=["Yellow"], cancellation_scheduled=[0], failed_payments_90d=[1])
    r = oracle.score_frame(df, hs.validate_config(copy.deepcopy(FIVE))).iloc[0]
    # usage: stickiness (0.2 - 0.1) / 0.25 = 40 (w2), events/user (15 - 5) / 20 = 50 (w3): (80 + 150) / 5 = 46
    assert r["usage_score"] == pytest.approx(46)
    # adoption: (0.55 - 0.2) / 0.7 = 50 (w2), seats 1.5 capped at 100 (w1): (100 + 100) / 3 = 66.67
    assert r["adoption_score"] == pytest.approx(200 / 3)
    # support: 1 ticket -> 75, first reply 150 min -> (240 - 150) / 180 = 50: mean 62.5
    assert r["support_score"] == pytest.approx(62.5)
    # sentiment: NPS 25 -> 75 (w3), CSAT 0.75 -> 50 (w0.5), Yellow -> 60 (w1): (225 + 25 + 60) / 4.5
    assert r["sentiment_score"] == pytest.approx(310 / 4.5)
    # billing: no cancellation -> 100, one failed payment -> 50: 75
    assert r["billing_score"] == pytest.approx(75)
    expected = 0.3 * 46 + 0.1 * 200 / 3 + 0.15 * 62.5 + 0.15 * 310 / 4.5 + 0.3 * 75
    assert r["score"] == pytest.approx(expected)  # 62.1 -> yellow
    assert r["band"] == "yellow"
    assert r["components_present"] == "usage,adoption,support,sentiment,billing"


def test_csm_sentiment_goes_through_the_map():
    raw = copy.deepcopy(RAW)
    raw["components"]["sentiment"] = {"weight": 0.2, "indicators": {"csm_sentiment": {"floor": 0, "target": 100}}}
    raw["components"]["usage"]["weight"] = 0.4
    df = frame(csm_sentiment=["Green", "Yellow", "Red", None], active_users_30d=[np.nan] * 4,
               stickiness=[np.nan] * 4, tickets_30d=[np.nan] * 4)
    got = oracle.component_scores(df, cfg(raw))["sentiment"].tolist()
    assert got[:3] == [100, 50, 0] and math.isnan(got[3])


# ------------------------------------------------------------------------------------ weights and missing

def test_component_is_weighted_mean_of_present_indicators_and_score_of_components():
    # usage: active 5 -> 50 (w1), stickiness 0.25 -> 75 (w3): (50 + 225) / 4 = 68.75
    # support: 1 ticket -> 75. score = 0.6 * 68.75 + 0.4 * 75 = 41.25 + 30 = 71.25 -> green
    out = oracle.score_frame(frame(active_users_30d=[5], stickiness=[0.25], tickets_30d=[1]), cfg())
    r = out.iloc[0]
    assert r["usage_score"] == pytest.approx(68.75)
    assert r["support_score"] == pytest.approx(75)
    assert r["score"] == pytest.approx(71.25)
    assert r["band"] == "green"
    assert r["contrib_usage"] == pytest.approx(41.25) and r["contrib_support"] == pytest.approx(30)
    assert r["components_present"] == "usage,support" and r["components_present_count"] == 2
    assert math.isnan(r["billing_score"]) and math.isnan(r["contrib_billing"])  # not configured
    assert r["config_version"] == cfg().version


def test_missing_indicator_is_left_out_of_its_component():
    # stickiness missing: usage = active 5 -> 50 alone
    out = oracle.score_frame(frame(active_users_30d=[5], stickiness=[np.nan], tickets_30d=[1]), cfg())
    assert out.iloc[0]["usage_score"] == pytest.approx(50)
    assert out.iloc[0]["score"] == pytest.approx(0.6 * 50 + 0.4 * 75)  # 60


def test_missing_component_is_left_out_and_weights_rescaled():
    # support missing: the score is usage alone (weight 0.6 rescaled to 1)
    out = oracle.score_frame(frame(active_users_30d=[5], stickiness=[0.25], tickets_30d=[np.nan]), cfg())
    r = out.iloc[0]
    assert r["score"] == pytest.approx(68.75)
    assert r["contrib_usage"] == pytest.approx(68.75) and math.isnan(r["contrib_support"])
    assert r["components_present"] == "usage" and r["components_present_count"] == 1
    # nothing at all: no score, no band
    none = oracle.score_frame(frame(active_users_30d=[np.nan], stickiness=[np.nan], tickets_30d=[np.nan]), cfg())
    assert math.isnan(none.iloc[0]["score"]) and none.iloc[0]["band"] is None
    assert none.iloc[0]["components_present"] == "" and none.iloc[0]["components_present_count"] == 0


def test_bands_at_the_thresholds():
    config = cfg()
    assert oracle.band_of([100, 70, 69.99, 40, 39.99, 0], config).tolist() == [
        "green", "green", "yellow", "yellow", "red", "red"]


def test_scores_never_leave_0_100_even_from_extreme_indicators():
    out = oracle.score_frame(frame(active_users_30d=[1e9, -5], stickiness=[7, -1], tickets_30d=[-3, 1e6]), cfg())
    assert out["score"].tolist() == [100, 0]


# -------------------------------------------------------------------------------------------- explanations

def scores_over_time() -> pd.DataFrame:
    """Account a: day 1 active 10, stickiness 0.3, 0 tickets -> 100; day 31 active 5, stickiness 0.1,
    2 tickets -> usage (50 + 0) / 4 = 12.5, support 50 -> 0.6 * 12.5 + 0.4 * 50 = 27.5."""
    df = pd.DataFrame({
        "day": pd.to_datetime(["2025-01-01", "2025-01-24", "2025-01-31"]),
        "account_id": ["a", "a", "a"],
        "active_users_30d": [10, 10, 5], "stickiness": [0.3, 0.3, 0.1], "tickets_30d": [0, 0, 2],
    })
    return oracle.add_deltas(oracle.score_frame(df, cfg()))


def test_deltas_over_7_and_30_days():
    s = scores_over_time()
    assert s["score"].tolist() == pytest.approx([100, 100, 27.5])
    assert s["delta_30d"].iloc[2] == pytest.approx(-72.5)   # 01-31 vs 01-01
    assert s["delta_7d"].iloc[2] == pytest.approx(-72.5)    # 01-31 vs 01-24
    assert math.isnan(s["delta_7d"].iloc[1])                # 01-17 was not scored


def test_explain_changes_names_components_and_adds_up():
    ch = oracle.explain_changes(scores_over_time(), cfg(), window_days=30, min_delta=10)
    assert len(ch) == 1
    r = ch.iloc[0]
    # usage contribution 60 -> 7.5 (-52.5), support 40 -> 20 (-20): together -72.5
    assert r["usage_delta"] == pytest.approx(-52.5) and r["support_delta"] == pytest.approx(-20)
    assert r["usage_delta"] + r["support_delta"] == pytest.approx(r["delta"])
    assert r["reason"] == "health 100 → 28 (−72 in 30 d): usage −52 (100 → 12), support −20 (100 → 50)"
    # a smaller threshold than the move keeps it, a larger one drops it
    assert oracle.explain_changes(scores_over_time(), cfg(), 30, min_delta=80).empty


def test_explain_changes_when_a_component_appears():
    # day 1: support missing -> usage alone, 100. day 31: usage 0 (weight 0.6), support appears at 100 (0.4):
    # score 40. usage: 0.6 x (0 - 100) - 1.0 x (100 - 100) = -60; support: 0.4 x (100 - 100) - 0 = 0
    df = pd.DataFrame({"day": pd.to_datetime(["2025-01-01", "2025-01-31"]), "account_id": ["a", "a"],
                       "active_users_30d": [10, 0], "stickiness": [0.3, 0.1], "tickets_30d": [np.nan, 0]})
    r = oracle.explain_changes(oracle.score_frame(df, cfg()), cfg(), 30, min_delta=0).iloc[0]
    assert r["delta"] == pytest.approx(-60)
    assert r["usage_delta"] == pytest.approx(-60) and r["support_delta"] == pytest.approx(0)
    assert r["reason"] == "health 100 → 40 (−60 in 30 d): usage −60 (100 → 0)"


def test_a_component_arriving_low_is_charged_with_the_drop():
    # day 1: usage 100 alone. day 31: usage still 100, support appears at 0 (4 tickets): 0.6 x 100 = 60.
    # usage: 0.6 x (100 - 100) - 1 x 0 = 0 (its share shrank, but it stands where the score stood);
    # support: 0.4 x (0 - 100) = -40
    df = pd.DataFrame({"day": pd.to_datetime(["2025-01-01", "2025-01-31"]), "account_id": ["a", "a"],
                       "active_users_30d": [10, 10], "stickiness": [0.3, 0.3], "tickets_30d": [np.nan, 4]})
    r = oracle.explain_changes(oracle.score_frame(df, cfg()), cfg(), 30, min_delta=0).iloc[0]
    assert r["delta"] == pytest.approx(-40)
    assert r["usage_delta"] == pytest.approx(0) and r["support_delta"] == pytest.approx(-40)
    assert r["reason"] == "health 100 → 60 (−40 in 30 d): support −40 (n/a → 0)"


# ------------------------------------------------------------------------------------------ parent roll-up

def test_parent_rollup_weighted_by_arr():
    latest = pd.DataFrame({
        "account_id": ["p", "c1", "c2", "solo", "free1", "free2"],
        "root_account_id": ["p", "p", "p", "solo", "free", "free"],
        "score": [80.0, 20.0, np.nan, 55.0, 30.0, 50.0],
        "arr": [12_000.0, 36_000.0, 99_000.0, 0.0, 0.0, 0.0],
    })
    con = duckdb.connect()
    con.register("latest", latest)
    got = (con.execute(scoring.parent_rollup_sql(cfg(), "latest")).df()
           .drop_duplicates("root_account_id").set_index("root_account_id"))
    # p: (80 x 12,000 + 20 x 36,000) / 48,000 = 35 -> red; c2 has no score and is skipped
    assert got.loc["p", "parent_score"] == pytest.approx(35.0)
    assert got.loc["p", "parent_band"] == "red"
    assert got.loc["p", "parent_arr"] == pytest.approx(48_000)
    assert got.loc["p", "parent_accounts_scored"] == 2
    # no ARR anywhere in the hierarchy: plain mean
    assert got.loc["free", "parent_score"] == pytest.approx(40.0)
    assert got.loc["solo", "parent_score"] == pytest.approx(55.0)



def test_parent_rollup_is_rounded_as_the_scores_so_the_order_of_a_sum_cannot_change_it():
    # a sum of doubles depends on the order it is added in (DuckDB's threads): the roll-up is stored rounded to
    # ROUND_DIGITS, as the scores are, so two builds of the same rows give the same value
    latest = pd.DataFrame({"account_id": ["p", "c1", "c2"], "root_account_id": ["p", "p", "p"],
                           "score": [10.0, 20.0, 20.0], "arr": [0.1, 0.2, 0.3]})
    con = duckdb.connect()
    con.register("latest", latest)
    got = con.execute(scoring.parent_rollup_sql(cfg(), "latest")).df().iloc[0]
    # (10 x 0.1 + 20 x 0.2 + 20 x 0.3) / 0.6 = 18.333...; 0.1 + 0.2 + 0.3 is 0.6000000000000001 in doubles
    assert got["parent_score"] == 18.333333
    assert got["parent_arr"] == 0.6
    # the order of the rows does not change a bit of it
    con.register("reversed", pd.DataFrame({c: list(reversed(latest[c].tolist())) for c in latest.columns}))
    again = con.execute(scoring.parent_rollup_sql(cfg(), "reversed")).df().iloc[0]
    assert (again["parent_score"], again["parent_arr"]) == (got["parent_score"], got["parent_arr"])

# ------------------------------------------------------------------------------------------------ backtest

def test_auc_by_hand():
    # churners scored 10 and 50, stayers 40, 60, 90: pairs (churner lower) = 10<40,10<60,10<90,50<60,50<90
    # = 5 of 6 -> 0.8333; a tie counts half
    assert backtest.auc([10, 50, 40, 60, 90], [1, 1, 0, 0, 0]) == pytest.approx(5 / 6)
    assert backtest.auc([50, 50], [1, 0]) == pytest.approx(0.5)
    assert math.isnan(backtest.auc([1, 2], [0, 0]))


def test_backtest_table_rates_by_band():
    obs = pd.DataFrame({
        "as_of_day": pd.to_datetime(["2025-01-01"] * 4 + ["2025-02-01"] * 2),
        "score": [90, 80, 50, 10, 75, 20], "band": ["green", "green", "yellow", "red", "green", "red"],
        "churned": [False, False, True, True, False, False],
    })
    t = backtest.backtest_table(obs, cfg())
    pooled = t[t["scope"] == "pooled"].iloc[0]
    assert pooled["accounts"] == 6 and pooled["churned"] == 2
    assert pooled["churn_rate_green"] == 0 and pooled["churn_rate_red"] == pytest.approx(0.5)
    jan = t[t["as_of_day"] == pd.Timestamp("2025-01-01")].iloc[0]
    assert jan["auc"] == pytest.approx(1.0)
    assert math.isnan(t[t["as_of_day"] == pd.Timestamp("2025-02-01")].iloc[0]["auc"])  # nobody churned


# ------------------------------------------------------------------------------------------------- config

@pytest.mark.parametrize("mutate, key", [
    (lambda r: r.update(colour="red"), "colour: unknown key"),
    (lambda r: r["components"].update(happiness={"weight": 0.1, "indicators": {}}), "components.happiness: unknown key"),
    (lambda r: r["components"]["usage"]["indicators"].update(vibes={"floor": 0, "target": 1}),
     "components.usage.indicators.vibes: unknown key"),
    (lambda r: r["components"]["usage"]["indicators"]["stickiness"].update(celing=1),
     "components.usage.indicators.stickiness.celing: unknown key"),
    (lambda r: r["components"]["usage"].update(weight=0.5), "components.*.weight: weights must sum to 1"),
    (lambda r: r["components"]["usage"]["indicators"]["stickiness"].update(floor=0.5),
     "components.usage.indicators.stickiness.floor: 0.5 is not below its target 0.3"),
    (lambda r: r["components"]["support"]["indicators"]["tickets_30d"].update(better="less"),
     "components.support.indicators.tickets_30d.better"),
    (lambda r: r["components"]["usage"]["indicators"]["stickiness"].pop("target"),
     "components.usage.indicators.stickiness.target: missing"),
    (lambda r: r["bands"].update(yellow=80), "bands.yellow"),
    (lambda r: r.pop("bands"), "bands: missing"),
    (lambda r: r["components"]["usage"]["indicators"]["stickiness"].update(floor="low"),
     "components.usage.indicators.stickiness.floor: must be a finite number"),
])
def test_bad_config_fails_naming_the_key(mutate, key):
    raw = copy.deepcopy(RAW)
    mutate(raw)
    with pytest.raises(hs.ConfigError) as err:
        hs.validate_config(raw)
    assert key in str(err.value)


def test_bad_config_file_error_names_file_and_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("bands: {green: 70, yellow: 40}\ncomponents:\n  usage:\n    weight: 0.9\n"
                    "    indicators: {stickiness: {floor: 0.1, target: 0.3}}\n")
    with pytest.raises(hs.ConfigError, match=r"bad\.yaml: components\.\*\.weight: weights must sum to 1"):
        hs.load_config(path)


def test_config_version_is_a_content_hash():
    a, b = cfg(), cfg()
    assert a.version == b.version and len(a.version) == 12
    raw = copy.deepcopy(RAW)
    raw["components"]["usage"]["indicators"]["stickiness"]["target"] = 0.31
    assert cfg(raw).version != a.version
    # key order does not matter, values do
    reordered = {k: RAW[k] for k in reversed(list(RAW))}
    assert cfg(reordered).version == a.version


def test_shipped_configs_are_valid_and_distinct():
    live = hs.load_config(CONFIG_PATH)
    archived = [hs.load_config(p) for p in sorted(Path(ARCHIVE_DIR).glob("*.yaml"))]
    assert archived, "superseded versions stay in config/archive for the backtest"
    assert live.version not in {c.version for c in archived}
    assert (live.green, live.yellow) == (70, 40)
