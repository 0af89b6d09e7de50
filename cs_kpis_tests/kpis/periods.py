"""kpis.mrr_periods and kpis.revenue_periods on a hand-written contract (cs_kpis_tests.kpis.warehouse), and the
comparison of their month rows with the monthly tables (no longer a check: the monthly tables are selections of
the same models, kpis.revenue_by_grain and kpis.mrr_periods; the tests still compare them column by column).
"""

from cs_kpis_tests.kpis.warehouse import build_all, connect, write_contract

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


def make_period_warehouse(tmp_path, changes, accounts, data_as_of):
    """The contract and every kpis model (the period models included); returns the open connection."""
    con = connect(tmp_path)
    write_contract(con, changes, accounts, data_as_of)
    build_all(con)
    return con


# the columns kpis.revenue_monthly and kpis.revenue_periods share (revenue_monthly's month = period_start)
MONTHLY_SHARED = (
    "segment", "starting_mrr", "new_mrr", "expansion_mrr", "contraction_mrr", "churned_mrr", "reactivation_mrr",
    "ending_mrr", "net_new_mrr", "accounts_start", "accounts_end", "new_accounts", "reactivated_accounts",
    "expanded_accounts", "contracted_accounts", "churned_accounts", "nrr", "grr", "nrr_t12", "grr_t12",
    "t12_cohort_accounts", "t12_cohort_starting_mrr", "t12_cohort_mrr", "logo_churn_rate",
    "customer_retention_rate", "downgrade_rate", "gross_revenue_churn", "net_revenue_churn", "expansion_rate",
    "quick_ratio", "arpa",
)
RATIOS = {"nrr", "grr", "nrr_t12", "grr_t12", "logo_churn_rate", "customer_retention_rate", "downgrade_rate",
          "gross_revenue_churn", "net_revenue_churn", "expansion_rate", "quick_ratio", "arpa"}
RATIO_TOLERANCE = 1e-9


def _differs(col: str) -> str:
    if col in RATIOS:  # DOUBLE: equal up to rounding, and null exactly where the other is null
        return (f"(p.{col} is null) <> (m.{col} is null) "
                f"or abs(p.{col} - m.{col}) > {RATIO_TOLERANCE} * greatest(1, abs(m.{col}))")
    return f"p.{col} is distinct from m.{col}"


def month_rows_mismatch_sql(table: str = "kpis.revenue_periods", monthly: str = "kpis.revenue_monthly") -> str:
    """Months (and segments) where the month rows of ``table`` and ``monthly`` differ, or one side is missing."""
    differs = " or ".join(_differs(c) for c in MONTHLY_SHARED if c != "segment")
    return f"""
        with p as (select * from {table} where cadence = 'month')
        select coalesce(p.period_start, m.month) as month, coalesce(p.segment, m.segment) as segment,
               p.ending_mrr as period_ending_mrr, m.ending_mrr as monthly_ending_mrr, p.nrr as period_nrr,
               m.nrr as monthly_nrr
        from p
        full outer join {monthly} as m
            on m.month = p.period_start
            and m.segment = p.segment
        where p.period_start is null or m.month is null or {differs}
    """


def mrr_month_rows_mismatch_sql(table: str = "kpis.mrr_periods", monthly: str = "marts.mrr_monthly") -> str:
    """Account-months where the month rows of kpis.mrr_periods and marts.mrr_monthly differ (mrr_monthly's
    account-months at 0 from start to end are not in kpis.mrr_periods)."""
    cols = ("mrr", "prev_mrr", "movement", "movement_amount")
    differs = " or ".join(f"p.{c} is distinct from m.{c}" for c in cols)
    return f"""
        with p as (select * from {table} where cadence = 'month'),
        m as (select * from {monthly} where mrr <> 0 or prev_mrr <> 0)
        select coalesce(p.period_start, m.month) as month, coalesce(p.account_id, m.account_id) as account_id,
               p.mrr as period_mrr, m.mrr as monthly_mrr, p.movement as period_movement,
               m.movement as monthly_movement
        from p
        full outer join m
            on m.month = p.period_start
            and m.account_id = p.account_id
        where p.period_start is null or m.month is null or {differs}
    """

