"""Fixtures: small hand-written companies in a DuckDB under tmp_path, with every kpis model built on them."""

import pytest

from cs_kpis_tests.kpis.warehouse import build_all, connect, write_contract

# Six months, data as of 2024-06-15 (June is read on the 15th, not the 30th). Month-end MRR (USD):
#                 Jan   Feb   Mar   Apr   May   Jun
#   a_new (smb)     -   100   150   150   150   120   new Feb, expansion Mar, contraction Jun (14th)
#   a_churn (smb) 200   200     0     0    80    80   new Jan, churn Mar, 0 -> 0 Apr, reactivation May
#   a_contract    300   300   300   250   250   250   (enterprise) new Jan, contraction Apr
#   a_late          -     -     -     -     -    40   (enterprise) new Jun (10th, before the read day)
#   a_intra         -     -     -     -     -     -   (smb) 50 from Feb 3 to Feb 20 only: never at a month end
#   a_future        -     -     -     -     -     -   (smb) starts Jun 20, after the read day
MOVEMENT_CHANGES = [
    ("a_new", "2024-02-10", 100), ("a_new", "2024-03-05", 150), ("a_new", "2024-06-14", 120),
    ("a_churn", "2024-01-01", 200), ("a_churn", "2024-03-20", 0), ("a_churn", "2024-05-10", 80),
    ("a_contract", "2024-01-01", 300), ("a_contract", "2024-04-02", 250),
    ("a_late", "2024-06-10", 40),
    ("a_intra", "2024-02-03", 50), ("a_intra", "2024-02-20", 0),
    ("a_future", "2024-06-20", 999),
]
MOVEMENT_ACCOUNTS = [
    ("a_new", None, None, "smb"), ("a_churn", None, None, "smb"), ("a_intra", None, None, "smb"),
    ("a_future", None, None, "smb"),
    ("a_contract", None, None, "enterprise"), ("a_late", None, None, "enterprise"),
]


@pytest.fixture
def movements(tmp_path):
    """The six-month fixture above, built through every kpis model."""
    con = connect(tmp_path)
    write_contract(con, MOVEMENT_CHANGES, MOVEMENT_ACCOUNTS, data_as_of="2024-06-15")
    build_all(con)
    yield con
    con.close()


@pytest.fixture
def make_warehouse(tmp_path):
    """Build the kpis models on hand-written changes: ``make_warehouse(changes, accounts, data_as_of)``."""
    cons = []

    def _make(changes, accounts, data_as_of):
        con = connect(tmp_path)
        write_contract(con, changes, accounts, data_as_of)
        build_all(con)
        cons.append(con)
        return con

    yield _make
    for con in cons:
        con.close()
