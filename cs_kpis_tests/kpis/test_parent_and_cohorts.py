"""kpis.mrr_monthly_parent / revenue_monthly_parent (children rolled up) and kpis.cohort_retention."""

import pytest

from cs_kpis_tests.kpis.test_revenue_monthly import BRIDGE, revenue
from cs_kpis_tests.kpis.warehouse import rows

# parent p (enterprise, no MRR of its own) has children c1 and c2 (mid-market); s stands alone (smb)
#           Jan  Feb  Mar  Apr
#   c1      100    0    0   30     account grain: churn Feb, reactivation Apr
#   c2      100  180  250  250     account grain: expansion Feb, Mar
#   p       200  180  250  280     parent grain: new Jan, contraction Feb, expansion Mar, expansion Apr
#   s        50   50   50   50
HIERARCHY_CHANGES = [
    ("c1", "2024-01-01", 100), ("c1", "2024-02-10", 0), ("c1", "2024-04-03", 30),
    ("c2", "2024-01-01", 100), ("c2", "2024-02-10", 180), ("c2", "2024-03-03", 250),
    ("s", "2024-01-01", 50),
]
HIERARCHY_ACCOUNTS = [
    ("p", None, None, "enterprise"), ("c1", "p", "p", "mid"), ("c2", "p", "p", "mid"), ("s", None, None, "smb"),
]


@pytest.fixture
def hierarchy(make_warehouse):
    return make_warehouse(HIERARCHY_CHANGES, HIERARCHY_ACCOUNTS, data_as_of="2024-04-30")


def test_parent_rows_roll_children_up(hierarchy):
    got = rows(hierarchy, "select account_id, strftime(month, '%Y-%m') as m, mrr, prev_mrr, movement, "
                          "movement_amount, active_child_accounts from kpis.mrr_monthly_parent order by 1, 2")
    assert [tuple(r.values()) for r in got] == [
        ("p", "2024-01", 200, 0, "new", 200, 2),
        ("p", "2024-02", 180, 200, "contraction", -20, 1),   # c1 churned while c2 expanded: not a churn
        ("p", "2024-03", 250, 180, "expansion", 70, 1),
        ("p", "2024-04", 280, 250, "expansion", 30, 2),      # c1's reactivation is the parent's expansion
        ("s", "2024-01", 50, 0, "new", 50, 1),
        ("s", "2024-02", 50, 50, "unchanged", 0, 1),
        ("s", "2024-03", 50, 50, "unchanged", 0, 1),
        ("s", "2024-04", 50, 50, "unchanged", 0, 1),
    ]


# every account-month rolled up and classified again: kpis.mrr_monthly_parent before a hierarchy of one account
# became its account's marts.mrr_monthly rows (the reference those rows must equal)
ROLLED_UP_REFERENCE = """
    with rolled_up as (
        select month, year(month) * 12 + month(month) as month_index, root_account_id as account_id,
            count(*) as child_accounts, sum(case when mrr > 0 then 1 else 0 end) as active_child_accounts,
            sum(mrr) as mrr, sum(prev_mrr) as prev_mrr
        from marts.mrr_monthly group by month, root_account_id
    ),
    with_history as (
        select *, coalesce(max(case when mrr > 0 then 1 else 0 end) over (partition by account_id
            order by month_index rows between unbounded preceding and 1 preceding), 0) = 1 as was_active_before
        from rolled_up
    )
    select month, account_id, child_accounts, active_child_accounts, mrr, prev_mrr,
        case
            when prev_mrr = 0 and mrr > 0 and not was_active_before then 'new'
            when prev_mrr = 0 and mrr > 0 then 'reactivation'
            when prev_mrr > 0 and mrr = 0 then 'churn'
            when mrr > prev_mrr then 'expansion'
            when mrr < prev_mrr then 'contraction'
            else 'unchanged'
        end as movement,
        mrr - prev_mrr as movement_amount, mrr > 0 as is_active
    from with_history
"""


def test_a_hierarchy_of_one_account_is_its_accounts_rows(make_warehouse):
    """k is the only account with MRR under root q (q has none): q's rows are k's marts.mrr_monthly rows, new,
    churn, 0 -> 0 and reactivation included; s is its own root; p's two children are rolled up. The whole
    table equals every account-month rolled up and classified again."""
    con = make_warehouse(HIERARCHY_CHANGES + [("k", "2024-01-01", 40), ("k", "2024-02-10", 0), ("k", "2024-04-03", 60)],
                         HIERARCHY_ACCOUNTS + [("q", None, None, "smb"), ("k", "q", "q", "smb")],
                         data_as_of="2024-04-30")
    got = rows(con, "select strftime(month, '%Y-%m') as m, child_accounts, active_child_accounts, mrr, prev_mrr, "
                    "movement, movement_amount, is_active from kpis.mrr_monthly_parent where account_id = 'q' "
                    "order by 1")
    assert [tuple(r.values()) for r in got] == [
        ("2024-01", 1, 1, 40, 0, "new", 40, True),
        ("2024-02", 1, 0, 0, 40, "churn", -40, False),
        ("2024-03", 1, 0, 0, 0, "unchanged", 0, False),
        ("2024-04", 1, 1, 60, 0, "reactivation", 60, True),
    ]
    table = "select * from kpis.mrr_monthly_parent"
    for a, b in ((table, ROLLED_UP_REFERENCE), (ROLLED_UP_REFERENCE, table)):
        assert con.execute(f"select count(*) from (({a}) except all ({b})) as x").fetchall()[0][0] == 0
    assert con.execute("select count(*) from kpis.mrr_monthly_parent").fetchall()[0][0] == 12  # p, s, q x 4 months
    assert {r["column_type"] for r in rows(con, "describe kpis.mrr_monthly_parent")
            if r["column_name"] in ("child_accounts", "active_child_accounts")} == {"BIGINT"}


def test_parent_grain_kpis_differ_from_account_grain(hierarchy):
    account = revenue(hierarchy)["2024-02"]
    parent = revenue(hierarchy, table="kpis.revenue_monthly_parent")["2024-02"]
    # account grain: start 250, c1 churn 100, c2 expansion 80, 1 of 3 accounts churned
    assert tuple(int(account[c]) for c in BRIDGE) == (250, 0, 80, 0, 100, 0, 230)
    assert account["logo_churn_rate"] == pytest.approx(1 / 3)
    # parent grain: start 250, p contraction 20, nobody churned, 1 of 2 parents downgraded
    assert tuple(int(parent[c]) for c in BRIDGE) == (250, 0, 0, 20, 0, 0, 230)
    assert parent["logo_churn_rate"] == 0
    assert parent["downgrade_rate"] == pytest.approx(1 / 2)
    assert parent["nrr"] == pytest.approx(230 / 250) == account["nrr"]
    assert parent["grr"] == pytest.approx(230 / 250)
    assert account["grr"] == pytest.approx(150 / 250)


def test_parent_grain_segments_follow_the_root(hierarchy):
    segments = {r["segment"] for r in rows(hierarchy, "select distinct segment from kpis.revenue_monthly_parent")}
    assert segments == {"all", "enterprise", "smb"}
    april = revenue(hierarchy, "enterprise", table="kpis.revenue_monthly_parent")["2024-04"]
    assert (april["starting_mrr"], april["expansion_mrr"], april["ending_mrr"]) == (250, 30, 280)


def test_without_hierarchies_both_grains_agree(movements):
    cols = ", ".join(("segment", "month") + BRIDGE + ("nrr", "grr", "logo_churn_rate", "arpa"))
    account = rows(movements, f"select {cols} from kpis.revenue_monthly order by segment, month")
    parent = rows(movements, f"select {cols} from kpis.revenue_monthly_parent order by segment, month")
    assert account == parent


def test_cohort_retention(movements):
    got = rows(movements, "select strftime(cohort_month, '%Y-%m') as c, months_since_start as k, cohort_accounts, "
                          "cohort_starting_mrr, active_accounts, cohort_mrr, cohort_capped_mrr, logo_retention, "
                          "net_mrr_retention, gross_mrr_retention from kpis.cohort_retention order by 1, 2")
    got = {(r.pop("c"), r.pop("k")): tuple(r.values()) for r in got}
    # Jan cohort: a_churn 200 + a_contract 300 = 500. Feb cohort: a_new 100. Jun cohort: a_late 40.
    #                     accts start active  mrr  capped  logo  net     gross
    expected = {
        ("2024-01", 0): (2, 500, 2, 500, 500, 1.0, 1.0, 1.0),
        ("2024-01", 1): (2, 500, 2, 500, 500, 1.0, 1.0, 1.0),
        ("2024-01", 2): (2, 500, 1, 300, 300, 0.5, 0.6, 0.6),      # a_churn gone
        ("2024-01", 3): (2, 500, 1, 250, 250, 0.5, 0.5, 0.5),      # a_contract 300 -> 250
        ("2024-01", 4): (2, 500, 2, 330, 330, 1.0, 0.66, 0.66),    # a_churn back at 80: counts again
        ("2024-01", 5): (2, 500, 2, 330, 330, 1.0, 0.66, 0.66),
        ("2024-02", 0): (1, 100, 1, 100, 100, 1.0, 1.0, 1.0),
        ("2024-02", 1): (1, 100, 1, 150, 100, 1.0, 1.5, 1.0),      # expansion: net above 1, gross capped
        ("2024-02", 2): (1, 100, 1, 150, 100, 1.0, 1.5, 1.0),
        ("2024-02", 3): (1, 100, 1, 150, 100, 1.0, 1.5, 1.0),
        ("2024-02", 4): (1, 100, 1, 120, 100, 1.0, 1.2, 1.0),
        ("2024-06", 0): (1, 40, 1, 40, 40, 1.0, 1.0, 1.0),
    }
    assert got.keys() == expected.keys()
    for key, (accts, start, active, mrr, capped, logo, net, gross) in expected.items():
        r = got[key]
        assert r[:5] == (accts, start, active, mrr, capped), key
        assert r[5:] == pytest.approx((logo, net, gross)), key
