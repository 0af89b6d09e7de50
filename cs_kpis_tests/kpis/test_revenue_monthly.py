"""kpis.revenue_monthly: the bridge and every revenue KPI, each pinned by numbers worked out by hand."""


import pytest

from cs_kpis_tests.kpis.warehouse import rows

BRIDGE = ("starting_mrr", "new_mrr", "expansion_mrr", "contraction_mrr", "churned_mrr", "reactivation_mrr",
          "ending_mrr")


def revenue(con, segment="all", table="kpis.revenue_monthly") -> dict[str, dict]:
    got = rows(con, f"select strftime(month, '%Y-%m') as m, * from {table} where segment = ? order by month",
               [segment])
    return {r.pop("m"): r for r in got}


def test_bridge_all_segment(movements):
    # from the conftest table:            start  new  exp  contr churn react  end
    expected = {
        "2024-01": (0, 500, 0, 0, 0, 0, 500),       # a_churn 200 + a_contract 300 new
        "2024-02": (500, 100, 0, 0, 0, 0, 600),     # a_new new
        "2024-03": (600, 0, 50, 0, 200, 0, 450),    # a_new +50, a_churn -200
        "2024-04": (450, 0, 0, 50, 0, 0, 400),      # a_contract -50; a_churn 0 -> 0 is no movement
        "2024-05": (400, 0, 0, 0, 0, 80, 480),      # a_churn back at 80
        "2024-06": (480, 40, 0, 30, 0, 0, 490),     # a_late new 40, a_new -30 on the 14th (read day 15th)
    }
    got = revenue(movements)
    assert {m: tuple(int(r[c]) for c in BRIDGE) for m, r in got.items()} == expected


def test_bridge_per_segment(movements):
    smb = revenue(movements, "smb")
    enterprise = revenue(movements, "enterprise")
    # smb = a_new + a_churn; enterprise = a_contract + a_late
    assert {m: tuple(int(r[c]) for c in BRIDGE) for m, r in smb.items()} == {
        "2024-01": (0, 200, 0, 0, 0, 0, 200),
        "2024-02": (200, 100, 0, 0, 0, 0, 300),
        "2024-03": (300, 0, 50, 0, 200, 0, 150),
        "2024-04": (150, 0, 0, 0, 0, 0, 150),
        "2024-05": (150, 0, 0, 0, 0, 80, 230),
        "2024-06": (230, 0, 0, 30, 0, 0, 200),
    }
    assert {m: tuple(int(r[c]) for c in BRIDGE) for m, r in enterprise.items()} == {
        "2024-01": (0, 300, 0, 0, 0, 0, 300),
        "2024-02": (300, 0, 0, 0, 0, 0, 300),
        "2024-03": (300, 0, 0, 0, 0, 0, 300),
        "2024-04": (300, 0, 0, 50, 0, 0, 250),
        "2024-05": (250, 0, 0, 0, 0, 0, 250),
        "2024-06": (250, 40, 0, 0, 0, 0, 290),
    }


def test_all_segment_is_the_sum_of_the_segments(movements):
    additive = [c for c in rows(movements, "select * from kpis.revenue_monthly limit 1")[0]
                if c.endswith(("_mrr", "_accounts")) or c.startswith("accounts_")]
    additive = [c for c in additive if not c.startswith("t12_")]
    sums = ", ".join(f"sum({c}) as {c}" for c in additive)
    by_segments = rows(movements, f"select month, {sums} from kpis.revenue_monthly where segment <> 'all' "
                                  "group by month order by month")
    all_rows = rows(movements, f"select month, {', '.join(additive)} from kpis.revenue_monthly "
                               "where segment = 'all' order by month")
    assert len(all_rows) == 6 and by_segments == all_rows


def test_account_counts(movements):
    got = revenue(movements)
    cols = ("accounts_start", "accounts_end", "new_accounts", "reactivated_accounts", "expanded_accounts",
            "contracted_accounts", "churned_accounts")
    assert {m: tuple(r[c] for c in cols) for m, r in got.items()} == {
        "2024-01": (0, 2, 2, 0, 0, 0, 0),
        "2024-02": (2, 3, 1, 0, 0, 0, 0),
        "2024-03": (3, 2, 0, 0, 1, 0, 1),
        "2024-04": (2, 2, 0, 0, 0, 1, 0),
        "2024-05": (2, 3, 0, 1, 0, 0, 0),
        "2024-06": (3, 4, 1, 0, 0, 1, 0),
    }


def test_ratios_march(movements):
    r = revenue(movements)["2024-03"]
    # start 600, expansion 50, churn 200; 3 accounts at start, 1 churned, 2 active at end, end MRR 450
    assert r["nrr"] == pytest.approx((600 + 50 - 200) / 600)        # 0.75
    assert r["grr"] == pytest.approx((600 - 200) / 600)             # 0.6667
    assert r["gross_revenue_churn"] == pytest.approx(200 / 600)     # = 1 - grr
    assert r["net_revenue_churn"] == pytest.approx((200 - 50) / 600)  # = 1 - nrr
    assert r["expansion_rate"] == pytest.approx(50 / 600)
    assert r["logo_churn_rate"] == pytest.approx(1 / 3)
    assert r["customer_retention_rate"] == pytest.approx((2 - 0 - 0) / 3)
    assert r["downgrade_rate"] == 0
    assert r["quick_ratio"] == pytest.approx((0 + 50 + 0) / (0 + 200))  # 0.25
    assert r["arpa"] == pytest.approx(450 / 2)                        # 225
    assert r["clv"] == pytest.approx(225 / (1 / 3))                   # 675


def test_ratios_june_and_empty_denominators(movements):
    got = revenue(movements)
    june = got["2024-06"]
    # start 480 (3 accounts), new 40, contraction 30 (a_new), end 490 over 4 accounts
    assert june["nrr"] == pytest.approx(450 / 480)       # 0.9375
    assert june["grr"] == pytest.approx(450 / 480)
    assert june["downgrade_rate"] == pytest.approx(1 / 3)
    assert june["customer_retention_rate"] == pytest.approx((4 - 1 - 0) / 3)  # = 1: nobody churned
    assert june["quick_ratio"] == pytest.approx(40 / 30)
    assert june["arpa"] == pytest.approx(490 / 4)        # 122.5
    assert june["clv"] is None                           # no logo churn in June
    # May: a reactivation counts neither in the cohort nor against it
    may = got["2024-05"]
    assert (may["nrr"], may["grr"], may["customer_retention_rate"]) == (1.0, 1.0, 1.0)
    assert may["quick_ratio"] is None                    # nothing lost: 80 / 0 is empty
    # January: nothing at the start, so no retention ratio at all
    jan = got["2024-01"]
    assert all(jan[c] is None for c in ("nrr", "grr", "logo_churn_rate", "customer_retention_rate", "quick_ratio"))
    assert jan["arpa"] == 250


def test_ratio_columns_are_double(movements):
    types = dict(movements.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = 'kpis' and table_name = 'revenue_monthly'").fetchall())
    for col in ("nrr", "grr", "nrr_t12", "grr_t12", "logo_churn_rate", "customer_retention_rate", "downgrade_rate",
                "gross_revenue_churn", "net_revenue_churn", "quick_ratio", "arpa", "clv", "clv_6m"):
        assert types[col] == "DOUBLE", col


def test_worked_example_from_the_definitions(make_warehouse):
    # start 100,000 = 80,000 + 15,000 + 5,000; then +10,000 expansion, -2,000 contraction, -5,000 churn,
    # and a new 20,000 account that must not count: NRR 103,000 / 100,000, GRR 93,000 / 100,000
    con = make_warehouse(
        [("x_expand", "2024-01-01", 80_000), ("x_expand", "2024-02-01", 90_000),
         ("x_contract", "2024-01-01", 15_000), ("x_contract", "2024-02-01", 13_000),
         ("x_churn", "2024-01-01", 5_000), ("x_churn", "2024-02-01", 0),
         ("x_new", "2024-02-15", 20_000)],
        [(a, None, None, "mid") for a in ("x_expand", "x_contract", "x_churn", "x_new")],
        data_as_of="2024-02-29",
    )
    feb = revenue(con)["2024-02"]
    assert (feb["starting_mrr"], feb["expansion_mrr"], feb["contraction_mrr"], feb["churned_mrr"], feb["new_mrr"]) == (
        100_000, 10_000, 2_000, 5_000, 20_000)
    assert feb["nrr"] == pytest.approx(1.03)
    assert feb["grr"] == pytest.approx(0.93)
    assert feb["net_revenue_churn"] == pytest.approx(-0.03)
    assert feb["gross_revenue_churn"] == pytest.approx(0.07)


# 14 months, Jan 2023 - Feb 2024, month-end MRR:
#   t1: 1000 from Jan 2023; 1200 from Jan 2024; 1500 from Feb 2024
#   t2: 500 from Jan 2023; churned Jun 2023; back at 300 in Nov 2023
#   t3: 400 from Jan 2023; 200 from Mar 2023
#   t4: 900 from Jun 2023 (not in any trailing-12 cohort below)
TRAILING_CHANGES = [
    ("t1", "2023-01-01", 1000), ("t1", "2024-01-05", 1200), ("t1", "2024-02-05", 1500),
    ("t2", "2023-01-01", 500), ("t2", "2023-06-10", 0), ("t2", "2023-11-10", 300),
    ("t3", "2023-01-01", 400), ("t3", "2023-03-10", 200),
    ("t4", "2023-06-01", 900),
]


@pytest.fixture
def trailing(make_warehouse):
    return make_warehouse(TRAILING_CHANGES, [(a, None, None, "smb") for a in ("t1", "t2", "t3", "t4")],
                          data_as_of="2024-02-29")


def test_trailing_12_nrr_and_grr(trailing):
    got = revenue(trailing)
    # Jan 2024 vs Jan 2023: cohort t1, t2, t3 = 1000 + 500 + 400 = 1900;
    # at M: 1200 + 300 (t2 came back: counts at its MRR in M) + 200 = 1700; capped: 1000 + 300 + 200 = 1500
    jan = got["2024-01"]
    assert (jan["t12_cohort_accounts"], jan["t12_cohort_starting_mrr"], jan["t12_cohort_mrr"]) == (3, 1900, 1700)
    assert jan["nrr_t12"] == pytest.approx(1700 / 1900)
    assert jan["grr_t12"] == pytest.approx(1500 / 1900)
    # Feb 2024 vs Feb 2023: same cohort at 1900 (t3's contraction came in March); at M 1500 + 300 + 200
    feb = got["2024-02"]
    assert feb["nrr_t12"] == pytest.approx(2000 / 1900)
    assert feb["grr_t12"] == pytest.approx(1500 / 1900)
    # Dec 2023: M-12 = Dec 2022 precedes the data
    assert all(got["2023-12"][c] is None for c in ("nrr_t12", "grr_t12", "t12_cohort_accounts"))


def test_clv_over_six_months(trailing):
    got = revenue(trailing)
    # logo churn: Feb-May 2023 0 (3 accounts), Jun 2023 1/3 (t2 of t1, t2, t3), Jul 2023 0
    # Jun 2023: end 1000 + 200 + 900 = 2100 over 3 accounts, ARPA 700, CLV 700 / (1/3) = 2100
    assert got["2023-06"]["clv"] == pytest.approx(2100)
    # Jul 2023: the six months before are Jan-Jun, and January has no rate (nobody active in Dec 2022)
    assert got["2023-07"]["clv_6m"] is None
    # Aug 2023: Feb..Jul rates 0, 0, 0, 0, 1/3, 0 -> mean 1/18; ARPA 2100 / 3 = 700 -> CLV 700 * 18 = 12,600
    aug = got["2023-08"]
    assert aug["mean_logo_churn_6m"] == pytest.approx(1 / 18)
    assert aug["clv_6m"] == pytest.approx(12_600)
    assert aug["clv"] is None


def test_both_grains_are_selections_of_the_one_revenue_model():
    # the formulas live once (revenue_by_grain.sql); the two monthly tables only pick a grain and the month cadence
    import dagster as dg

    from cs_kpis.defs.kpis.assets import kpi_models

    models = {m.name: m for m in kpi_models()}
    body = {name: "\n".join(line for line in models[name].sql.splitlines() if not line.startswith("--"))
            for name in ("revenue_monthly", "revenue_monthly_parent", "revenue_periods")}
    assert body["revenue_monthly_parent"] == body["revenue_monthly"].replace("grain = 'account'", "grain = 'parent'")
    for name, sql in body.items():
        assert "sum(" not in sql and " / " not in sql, f"{name} computes instead of selecting"
        assert models[name].deps == [dg.AssetKey(["kpis", "revenue_by_grain"])]
    assert {k.path[-1] for k in models["revenue_by_grain"].deps} >= {"mrr_periods", "mrr_monthly_parent"}
    # the same column documentation for both grains
    assert list(models["revenue_monthly_parent"].columns) == list(models["revenue_monthly"].columns)


def test_parent_grain_equals_the_account_grain_without_a_hierarchy(movements):
    # no account has a parent here: each hierarchy is one account, so the two grains give the same table
    account = rows(movements, "select * from kpis.revenue_monthly order by month, segment")
    parent = rows(movements, "select * from kpis.revenue_monthly_parent order by month, segment")
    assert len(account) == 6 * 3 and parent == account
