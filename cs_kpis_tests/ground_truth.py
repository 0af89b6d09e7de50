"""Comparison with the simulator's ground truth, shared by the files-mode (test_ground_truth.py) and API-mode
(sources_api/test_api_mode_run.py) end-to-end tests.

The simulator writes each account's true month-end MRR and its churn and reactivation months to a folder the
pipeline never reads (``mrr_month_end.csv``, ``churn_events.csv``). These helpers read that folder and a built
warehouse and return what differs.
"""

import csv
from decimal import Decimal
from pathlib import Path

import duckdb

MONTH_END_FROM_PERIODS = """
    select cast(m.month as varchar), p.account_id, cast(sum(p.mrr) as varchar)
    from marts.dim_month as m
    join marts.subscription_periods as p
      on p.start_date <= m.read_day and (p.end_date is null or p.end_date > m.read_day)
    where p.account_id is not null
    group by m.month, p.account_id
"""

MONTH_END_FROM_DAILY_CHANGES = """
    select cast(m.month as varchar), c.account_id, cast(c.mrr as varchar)
    from marts.dim_month as m
    join marts.mrr_daily_changes as c
      on c.change_date <= m.read_day and (c.next_change_date is null or c.next_change_date > m.read_day)
"""

CHURN_AND_REACTIVATION_FROM_DAILY_CHANGES = """
    with me as (
        select m.month, c.account_id, c.mrr
        from marts.dim_month as m
        join marts.mrr_daily_changes as c
          on c.change_date <= m.read_day and (c.next_change_date is null or c.next_change_date > m.read_day)
    ), series as (
        select month, account_id, mrr,
               lag(mrr) over (partition by account_id order by month) as prev,
               max(mrr) over (partition by account_id order by month
                              rows between unbounded preceding and 1 preceding) as max_before
        from me
    )
    select account_id, cast(month as varchar),
           case when prev > 0 and mrr = 0 then 'churn' else 'reactivation' end
    from series
    where (prev > 0 and mrr = 0) or (coalesce(prev, 0) = 0 and mrr > 0 and max_before > 0)
"""

MOVEMENTS_FROM_MRR_MONTHLY = """
    select account_id, cast(month as varchar), movement from marts.mrr_monthly
    where movement in ('churn', 'reactivation')
"""

# the columns of kpis.revenue_monthly (segment 'all') recomputed from the ground truth
BRIDGE_MONEY = ("starting_mrr", "new_mrr", "expansion_mrr", "contraction_mrr", "churned_mrr", "reactivation_mrr",
                "ending_mrr")
BRIDGE_COUNTS = ("accounts_start", "accounts_end", "new_accounts", "reactivated_accounts", "expanded_accounts",
                 "contracted_accounts", "churned_accounts")
BRIDGE_RATIOS = ("nrr", "grr", "logo_churn_rate")


def truth_month_end(truth_dir: Path) -> dict[tuple[str, str], str]:
    """{(month 'YYYY-MM-DD', account_id): MRR as text} from the simulator's mrr_month_end.csv."""
    with (Path(truth_dir) / "mrr_month_end.csv").open() as f:
        return {(r["month"], r["account_id"]): r["mrr"] for r in csv.DictReader(f)}


def truth_churn_events(truth_dir: Path) -> set[tuple[str, str, str]]:
    """{(account_id, month, 'churn' | 'reactivation')} from the simulator's churn_events.csv."""
    with (Path(truth_dir) / "churn_events.csv").open() as f:
        return {(r["account_id"], r["month"], r["event"]) for r in csv.DictReader(f)}


def warehouse_rows(warehouse: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


def month_end(warehouse: Path, sql: str = MONTH_END_FROM_PERIODS) -> dict[tuple[str, str], str]:
    """{(month, account_id): MRR as text} from a built warehouse (``sql`` returns month, account, mrr)."""
    return {(m, a): v for m, a, v in warehouse_rows(warehouse, sql)}


def differences(truth: dict, ours: dict) -> list:
    """Account-months whose MRR differs (a missing key is 0): [((month, account), truth, ours)]."""
    return sorted((k, truth.get(k, "0.00"), ours.get(k, "0.00")) for k in set(truth) | set(ours)
                  if float(truth.get(k, 0)) != float(ours.get(k, 0)))


def bridge_from_truth(truth: dict[tuple[str, str], str]) -> dict[str, dict]:
    """The monthly bridge of segment 'all' worked out from the true month-end MRR alone, by the definitions
    of docs/KPI_DEFINITIONS.md (a month absent for an account is 0): {month: {column: value}}."""
    months = sorted({m for m, _ in truth})
    accounts = sorted({a for _, a in truth})
    mrr = {k: Decimal(v) for k, v in truth.items()}
    out: dict[str, dict] = {}
    ever_active: set[str] = set()
    for i, month in enumerate(months):
        row = dict.fromkeys(BRIDGE_MONEY, Decimal(0)) | dict.fromkeys(BRIDGE_COUNTS, 0)
        active_now = set()
        for account in accounts:
            prev = mrr.get((months[i - 1], account), Decimal(0)) if i else Decimal(0)
            cur = mrr.get((month, account), Decimal(0))
            row["starting_mrr"] += prev
            row["ending_mrr"] += cur
            row["accounts_start"] += prev > 0
            row["accounts_end"] += cur > 0
            if prev == 0 and cur > 0:
                kind = "reactivation" if account in ever_active else "new"
                row[f"{kind}_mrr"] += cur
                row["reactivated_accounts" if kind == "reactivation" else "new_accounts"] += 1
            elif prev > 0 and cur == 0:
                row["churned_mrr"] += prev
                row["churned_accounts"] += 1
            elif cur > prev:
                row["expansion_mrr"] += cur - prev
                row["expanded_accounts"] += 1
            elif cur < prev:
                row["contraction_mrr"] += prev - cur
                row["contracted_accounts"] += 1
            if cur > 0:
                active_now.add(account)
        ever_active |= active_now
        start = row["starting_mrr"]
        row["nrr"] = (float((start + row["expansion_mrr"] - row["contraction_mrr"] - row["churned_mrr"]) / start)
                      if start else None)
        row["grr"] = float((start - row["contraction_mrr"] - row["churned_mrr"]) / start) if start else None
        row["logo_churn_rate"] = (row["churned_accounts"] / row["accounts_start"]) if row["accounts_start"] else None
        if row["starting_mrr"] or row["ending_mrr"] or out:  # from the first month with MRR on
            out[month] = row
    return out


def revenue_monthly_differences(warehouse: Path, truth: dict[tuple[str, str], str]) -> list:
    """Where kpis.revenue_monthly (segment 'all') differs from the bridge worked out from the ground truth:
    [(month, column, truth, ours)]; money and counts exactly, ratios to 1e-9."""
    expected = bridge_from_truth(truth)
    cols = (*BRIDGE_MONEY, *BRIDGE_COUNTS, *BRIDGE_RATIOS)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        got = {str(r[0]): dict(zip(cols, r[1:], strict=True)) for r in con.execute(
            f"select cast(month as varchar), {', '.join(cols)} from kpis.revenue_monthly where segment = 'all'"
        ).fetchall()}
    out = [(m, "row", "present" if m in expected else "absent", "present" if m in got else "absent")
           for m in sorted(set(expected) ^ set(got))]
    for month in sorted(set(expected) & set(got)):
        for col in cols:
            want, have = expected[month][col], got[month][col]
            if col in BRIDGE_RATIOS:
                same = (want is None) == (have is None) and (want is None or abs(want - have) <= 1e-9)
            else:
                same = Decimal(str(have)) == Decimal(str(want))
            if not same:
                out.append((month, col, want, have))
    return out
