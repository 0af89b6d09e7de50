"""marts.mrr_monthly: month-end MRR and one movement per account-month, against the hand-made table in conftest."""

from decimal import Decimal

import pytest

from cs_kpis_tests.kpis.warehouse import rows

# (account, month, mrr, prev_mrr, movement, movement_amount), read off the table in conftest.py
EXPECTED = [
    ("a_churn", "2024-01", 200, 0, "new", 200),
    ("a_churn", "2024-02", 200, 200, "unchanged", 0),
    ("a_churn", "2024-03", 0, 200, "churn", -200),
    ("a_churn", "2024-04", 0, 0, "unchanged", 0),
    ("a_churn", "2024-05", 80, 0, "reactivation", 80),
    ("a_churn", "2024-06", 80, 80, "unchanged", 0),
    ("a_contract", "2024-01", 300, 0, "new", 300),
    ("a_contract", "2024-02", 300, 300, "unchanged", 0),
    ("a_contract", "2024-03", 300, 300, "unchanged", 0),
    ("a_contract", "2024-04", 250, 300, "contraction", -50),
    ("a_contract", "2024-05", 250, 250, "unchanged", 0),
    ("a_contract", "2024-06", 250, 250, "unchanged", 0),
    ("a_late", "2024-06", 40, 0, "new", 40),
    ("a_new", "2024-02", 100, 0, "new", 100),
    ("a_new", "2024-03", 150, 100, "expansion", 50),
    ("a_new", "2024-04", 150, 150, "unchanged", 0),
    ("a_new", "2024-05", 150, 150, "unchanged", 0),
    ("a_new", "2024-06", 120, 150, "contraction", -30),
]


def test_every_account_month_with_its_movement(movements):
    got = rows(movements, "select account_id, strftime(month, '%Y-%m') as m, mrr, prev_mrr, movement, movement_amount "
                          "from marts.mrr_monthly order by account_id, month")
    assert [tuple(r.values()) for r in got] == [
        (a, m, Decimal(cur), Decimal(prev), mv, Decimal(amt)) for a, m, cur, prev, mv, amt in EXPECTED
    ]


@pytest.mark.parametrize("account", ["a_intra", "a_future"],
                         ids=["active-only-inside-a-month", "starts-after-the-read-day"])
def test_accounts_never_active_at_a_month_end_have_no_rows(movements, account):
    assert rows(movements, "select * from marts.mrr_monthly where account_id = ?", [account]) == []


def test_hierarchy_columns_come_from_accounts(make_warehouse):
    con = make_warehouse(
        [("child", "2024-01-01", 10), ("orphan", "2024-01-01", 5)],
        [("parent", None, None, "ent"), ("child", "parent", "parent", "ent")],  # orphan is not in the CRM
        data_as_of="2024-01-31",
    )
    got = rows(con, "select account_id, parent_account_id, root_account_id from marts.mrr_monthly order by 1")
    assert got == [
        {"account_id": "child", "parent_account_id": "parent", "root_account_id": "parent"},
        {"account_id": "orphan", "parent_account_id": None, "root_account_id": "orphan"},
    ]
