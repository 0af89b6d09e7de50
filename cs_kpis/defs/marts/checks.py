"""Checks on the marts. Blocking: a broken mart must not reach the KPIs or anyone's inbox."""

import dagster as dg

from cs_kpis.lib.checks import accepted_range_check, sql_check, unique_key_check

PERIODS = dg.AssetKey(["marts", "subscription_periods"])
CHANGES = dg.AssetKey(["marts", "mrr_daily_changes"])
ACCOUNTS = dg.AssetKey(["marts", "accounts"])
STATES = dg.AssetKey(["marts", "subscription_states"])

PERIODS_DO_NOT_OVERLAP = "subscription_periods_do_not_overlap"
PERIODS_HAVE_FX_RATE = "subscription_periods_have_fx_rate"
CHANGES_MATCH_PERIODS = "mrr_daily_changes_match_subscription_periods"
HIERARCHY_RESOLVED = "accounts_hierarchy_resolved"

marts_checks = [
    unique_key_check(STATES, "marts.subscription_states", ["subscription_id", "changed_at"]),
    unique_key_check(PERIODS, "marts.subscription_periods", ["subscription_id", "start_date"]),
    unique_key_check(CHANGES, "marts.mrr_daily_changes", ["account_id", "change_date"]),
    unique_key_check(ACCOUNTS, "marts.accounts", ["account_id"]),
    accepted_range_check(PERIODS, "marts.subscription_periods", "mrr", low=0, name="subscription_periods_no_negative_mrr"),
    accepted_range_check(CHANGES, "marts.mrr_daily_changes", "mrr", low=0, name="mrr_daily_changes_no_negative_mrr"),
    sql_check(
        PERIODS, PERIODS_DO_NOT_OVERLAP,
        "a subscription is in at most one period on any day: each period ends where the next begins",
        """
        select subscription_id, start_date, end_date, next_start
        from (select subscription_id, start_date, end_date,
                     lead(start_date) over (partition by subscription_id order by start_date) as next_start
              from marts.subscription_periods) as p
        where end_date <= start_date or (next_start is not null and (end_date is null or end_date > next_start))
        """,
    ),
    sql_check(
        PERIODS, PERIODS_HAVE_FX_RATE,
        "every period with revenue found an exchange rate for its currency on the day its MRR took effect "
        "(a missing rate would silently turn revenue into nulls): add the rate to reference/fx_rates.csv",
        "select subscription_id, start_date, currency from marts.subscription_periods "
        "where fx_rate is null",
    ),
    sql_check(
        CHANGES, CHANGES_MATCH_PERIODS,
        "on every change day, an account's MRR equals the sum of its subscription periods in force that day",
        """
        select c.account_id, c.change_date, c.mrr, coalesce(sum(p.mrr), 0) as periods_mrr
        from marts.mrr_daily_changes as c
        left join marts.subscription_periods as p
            on p.account_id = c.account_id and p.start_date <= c.change_date
            and (p.end_date is null or p.end_date > c.change_date)
        group by c.account_id, c.change_date, c.mrr
        having c.mrr <> coalesce(sum(p.mrr), 0)
        """,
        additional_deps=[PERIODS],
    ),
    sql_check(
        ACCOUNTS, HIERARCHY_RESOLVED,
        "every account's root was found (hierarchies deeper than five levels are not walked) and every "
        "parent exists in the CRM",
        """
        select a.account_id, a.parent_account_id, a.root_account_id
        from marts.accounts as a
        left join marts.accounts as r on r.account_id = a.root_account_id
        left join marts.accounts as p on p.account_id = a.parent_account_id
        where r.parent_account_id is not null or (a.parent_account_id is not null and p.account_id is null)
        """,
    ),
]
