"""Build kpis.mrr_periods and kpis.revenue_periods on a hand-written contract (cs_kpis_tests.kpis.warehouse).

The period models read the day spine marts.dim_day, which the monthly contract does not write: it is added
here as the marts layer builds it, one row per day of marts.dim_month up to the data's as-of day.
"""

from cs_kpis.lib.sql import build
from cs_kpis_tests.kpis.warehouse import build_all, connect, kpi_models, write_contract

PERIOD_MODELS = ("dim_period", "mrr_periods", "revenue_periods")

# Weeks: January 2024 (Jan 1 is a Monday), data as of Wednesday 2024-01-31. MRR at each week end (Sunday):
#                   W1 Jan 7  W2 Jan 14  W3 Jan 21  W4 Jan 28  W5 (Jan 29 - Feb 4, read Jan 31)
#   w_a (smb)          100       150        150        240        240   expansion W2 (10th), W4 (25th)
#   w_b (smb)          200       200          0          0         50   churn W3 (16th), reactivation W5 (30th)
#   w_c (enterprise)   300       300        300        240        240   contraction W4 (24th)
#   w_d (enterprise)     -        80         80         80         80   new W2 (12th)
#   w_e (smb)            -         -          -          -          -   40 from Wed 17th to Fri 19th only
#   total              600       730        530        560        610
WEEK_CHANGES = [
    ("w_a", "2024-01-01", 100), ("w_a", "2024-01-10", 150), ("w_a", "2024-01-25", 240),
    ("w_b", "2024-01-01", 200), ("w_b", "2024-01-16", 0), ("w_b", "2024-01-30", 50),
    ("w_c", "2024-01-01", 300), ("w_c", "2024-01-24", 240),
    ("w_d", "2024-01-12", 80),
    ("w_e", "2024-01-17", 40), ("w_e", "2024-01-19", 0),
]
WEEK_ACCOUNTS = [("w_a", None, None, "smb"), ("w_b", None, None, "smb"), ("w_e", None, None, "smb"),
                 ("w_c", None, None, "enterprise"), ("w_d", None, None, "enterprise")]

# Quarters: January 2023 to 2024-04-15 (the as-of day). MRR at each quarter end:
#                   Q1-23  Q2-23  Q3-23  Q4-23  Q1-24  Q2-24 (read Apr 15)
#   q_a (smb)         100    130    130    130    100    100   churned Apr 20 and back at 130 on Jun 10 (inside Q2:
#                                                              one expansion for the quarter); contraction Q1-24
#   q_b (smb)         200    200      0      0    250    250   churn Q3-23, reactivation Q1-24
#   q_c (enterprise)  400    400    400    300    300    500   contraction Q4-23, expansion Q2-24 (Apr 5)
#   q_d (enterprise)    -      -      -     50     50     50   new Q4-23
#   total             700    730    530    480    700    900
QUARTER_CHANGES = [
    ("q_a", "2023-01-01", 100), ("q_a", "2023-04-20", 0), ("q_a", "2023-06-10", 130), ("q_a", "2024-03-01", 100),
    ("q_b", "2023-01-15", 200), ("q_b", "2023-08-01", 0), ("q_b", "2024-02-01", 250),
    ("q_c", "2023-02-01", 400), ("q_c", "2023-11-15", 300), ("q_c", "2024-04-05", 500),
    ("q_d", "2023-10-01", 50),
]
QUARTER_ACCOUNTS = [("q_a", None, None, "smb"), ("q_b", None, None, "smb"),
                    ("q_c", None, None, "enterprise"), ("q_d", None, None, "enterprise")]


def write_dim_day(con) -> None:
    con.execute("""
        create or replace table marts.dim_day as
        select cast(unnest(generate_series(min(month), max(read_day), interval 1 day)) as date) as day
        from marts.dim_month
    """)


def build_periods(con) -> None:
    write_dim_day(con)
    models = kpi_models()
    for name in PERIOD_MODELS:
        build(con, models[name])


def make_period_warehouse(tmp_path, changes, accounts, data_as_of):
    """The contract, every monthly kpis model, then the period models; returns the open connection."""
    con = connect(tmp_path)
    write_contract(con, changes, accounts, data_as_of)
    build_all(con)
    build_periods(con)
    return con
