"""Every check passes on clean data and fails on data corrupted the way it is meant to catch."""

import datetime as dt

import pytest

from cs_kpis.defs.kpis import checks
from cs_kpis.lib.checks import run_rule
from cs_kpis.lib.settings_resources import CheckThresholdsResource

REV = "kpis.revenue_monthly"


def unique_sql(table, cols):
    return f"select {cols}, count(*) from {table} group by {cols} having count(*) > 1"


# (id, rule, corruption that must make it fail)
RULES_ON_MOVEMENTS = [
    ("bridge-tampered", checks.bridge_violations_sql(REV),
     f"update {REV} set new_mrr = new_mrr + 1 where month = '2024-03-01' and segment = 'all'"),
    # ending and a movement changed together: the month adds up, the chain to April breaks
    ("bridge-chain-broken", checks.bridge_violations_sql(REV),
     (f"update {REV} set ending_mrr = ending_mrr + 1, expansion_mrr = expansion_mrr + 1 "
     "where month = '2024-03-01' and segment = 'all'")),
    ("parent-bridge-tampered", checks.bridge_violations_sql("kpis.revenue_monthly_parent"),
     "update kpis.revenue_monthly_parent set churned_mrr = 0 where month = '2024-03-01' and segment = 'smb'"),
    ("all-segment", checks.all_segment_violations_sql(REV),
     f"update {REV} set contracted_accounts = 5 where month = '2024-04-01' and segment = 'enterprise'"),
    ("grr-above-one", checks.grr_above_one_sql(REV), f"update {REV} set grr = 1.0001 where month = '2024-05-01'"),
    ("no-negative-mrr", checks.NEGATIVE_MRR_SQL,
     "update marts.mrr_monthly set mrr = -5 where account_id = 'a_late'"),
    ("no-missing-account-months", checks.MISSING_ACCOUNT_MONTHS_SQL,
     "delete from marts.mrr_monthly where account_id = 'a_churn' and month = '2024-04-01'"),
    ("mrr-monthly-unique", unique_sql("marts.mrr_monthly", "month, account_id"),
     "insert into marts.mrr_monthly select * from marts.mrr_monthly where account_id = 'a_late'"),
    ("mrr-monthly-parent-unique", unique_sql("kpis.mrr_monthly_parent", "month, account_id"),
     "insert into kpis.mrr_monthly_parent select * from kpis.mrr_monthly_parent where account_id = 'a_late'"),
    ("revenue-monthly-unique", unique_sql(REV, "month, segment"),
     f"insert into {REV} select * from {REV} where segment = 'all' and month = '2024-01-01'"),
    ("cohort-retention-unique", unique_sql("kpis.cohort_retention", "cohort_month, months_since_start"),
     "insert into kpis.cohort_retention select * from kpis.cohort_retention where months_since_start = 0"),
    # bounds with every segment judged (min 1 account): the clean fixture's 'all' months stay within
    # NRR [0.5, 1.5] / GRR >= 0.5 (lowest: March NRR 0.75, GRR 0.667)
    ("nrr-grr-bounds", checks.retention_bounds_sql(REV, 0.5, 1.5, 0.5, 1).replace("where", "where segment = 'all' and"),
     f"update {REV} set nrr = 1.6 where month = '2024-02-01' and segment = 'all'"),
]


@pytest.mark.parametrize(("rule", "corruption"), [r[1:] for r in RULES_ON_MOVEMENTS],
                         ids=[r[0] for r in RULES_ON_MOVEMENTS])
def test_rule_passes_on_clean_data_and_fails_on_corrupted(movements, rule, corruption):
    assert run_rule(movements, rule) == (0, "")
    movements.execute(corruption)
    count, sample = run_rule(movements, rule)
    assert count >= 1 and sample.startswith("|")


def test_an_account_with_only_negative_mrr_is_kept_and_flagged(make_warehouse):
    con = make_warehouse([("ok", "2024-01-01", 10), ("credit", "2024-01-05", -3)], [], data_as_of="2024-01-31")
    assert run_rule(con, checks.NEGATIVE_MRR_SQL)[0] == 1


def test_small_segments_are_not_judged_by_the_bounds(movements):
    # smb in March: start 300 over 2 accounts, NRR 0.5, GRR 0.33: implausible for a big segment, normal for 2
    judged_all = checks.retention_bounds_sql(REV, 0.5, 1.5, 0.5, min_accounts=1)
    assert run_rule(movements, judged_all)[0] >= 1
    assert run_rule(movements, checks.retention_bounds_sql(REV, 0.5, 1.5, 0.5, min_accounts=3))[0] == 0


# billing for one month (Jan 2024, read on the 31st); month-end MRR a 150 + b 110 + c 200 + d 90 + e 40 = 590 USD
#   inv_a (USD, paid): a 100.00 monthly line, a 50.00 metered line (excluded) and, for the upgrade to 150.00
#                      on Jan 15, the proration pair: credit of the unused 100.00 (-54.84), charge of 150.00
#                      (+82.26). Each proration is worth its price x quantity: 100 - 100 + 150 = 150
#   inv_b (EUR, open): 1,200.00 EUR yearly from 2023-12-15; EUR rate of 2023-12-14 (latest before) 1.10
#                      -> 1200 * 1.10 / 12 = 110 USD a month
#   inv_c (USD, paid): 200.00 monthly with a 20.00 `once` coupon: a once coupon never reduces MRR -> 200
#   inv_d (USD, paid): 100.00 monthly, 10% `forever` -> 90
#   inv_e (USD, paid): 2 seats at 40.00 monthly, a 25% `repeating` coupon that ended Jan 20 -> 80 on Jan 31;
#                      a seat removed on Jan 25 is a pending proration item (credit of one seat) -> 40;
#                      plus a trial line of 0.00 for sub_t (free trial: 0)
#   inv_x (USD, void): 999.00 monthly, ignored; cus_z (not matched to the CRM, unmatched revenue has its own
#                      check) 500.00 monthly, ignored; sub_ended (ended Jan 20) 70.00 monthly, ignored
BILLING = """
insert into staging.stg_billing__prices (price_id, usage_type, "interval", interval_count, unit_amount_minor) values
    ('p_100', 'licensed', 'month', 1, 10000), ('p_150', 'licensed', 'month', 1, 15000),
    ('p_year', 'licensed', 'year', 1, 120000), ('p_meter', 'metered', 'month', 1, null),
    ('p_200', 'licensed', 'month', 1, 20000), ('p_seat', 'licensed', 'month', 1, 4000),
    ('p_70', 'licensed', 'month', 1, 7000), ('p_500', 'licensed', 'month', 1, 50000);
insert into staging.stg_billing__fx_rates values
    ('2023-12-14', 'EUR', 1.10), ('2023-12-16', 'EUR', 1.30), ('2024-01-01', 'USD', 1.0);
insert into staging.stg_billing__subscriptions values
    ('sub_a', 'cus_a', null), ('sub_b', 'cus_b', null), ('sub_c', 'cus_c', null), ('sub_d', 'cus_d', null),
    ('sub_e', 'cus_e', null), ('sub_t', 'cus_e', null), ('sub_ended', 'cus_e', '2024-01-20 10:00:00'),
    ('sub_z', 'cus_z', null);
insert into staging.stg_billing__invoices (invoice_id, customer_id, subscription_id, status, created_at,
                                           discount_duration, discount_end_at) values
    ('inv_a', 'cus_a', 'sub_a', 'paid', '2024-01-01', null, null),
    ('inv_b', 'cus_b', 'sub_b', 'open', '2023-12-15', null, null),
    ('inv_c', 'cus_c', 'sub_c', 'paid', '2024-01-10', 'once', null),
    ('inv_d', 'cus_d', 'sub_d', 'paid', '2024-01-05', 'forever', null),
    ('inv_e', 'cus_e', 'sub_e', 'paid', '2024-01-01', 'repeating', '2024-01-20 00:00:00'),
    ('inv_t', 'cus_e', 'sub_t', 'paid', '2024-01-28', null, null),
    ('inv_ended', 'cus_e', 'sub_ended', 'paid', '2024-01-01', null, null),
    ('inv_x', 'cus_c', 'sub_c', 'void', '2024-01-10', null, null),
    ('inv_z', 'cus_z', 'sub_z', 'paid', '2024-01-01', null, null);
insert into staging.stg_billing__invoice_lines (line_id, invoice_id, subscription_id, amount_minor, currency,
    period_start, period_end, is_proration, price_id, quantity, discount_amount_minor) values
    ('l_a1', 'inv_a', 'sub_a', 10000, 'usd', '2024-01-01', '2024-02-01', false, 'p_100', 1, 0),
    ('l_a2', 'inv_a', 'sub_a', 5000, 'usd', '2023-12-01', '2024-01-01', false, 'p_meter', null, 0),
    ('l_a3', 'inv_a', 'sub_a', -5484, 'usd', '2024-01-15', '2024-02-01', true, 'p_100', 1, 0),
    ('l_a4', 'inv_a', 'sub_a', 8226, 'usd', '2024-01-15', '2024-02-01', true, 'p_150', 1, 0),
    ('l_b1', 'inv_b', 'sub_b', 120000, 'eur', '2023-12-15', '2024-12-15', false, 'p_year', 1, 0),
    ('l_c1', 'inv_c', 'sub_c', 20000, 'usd', '2024-01-10', '2024-02-10', false, 'p_200', 1, 2000),
    ('l_d1', 'inv_d', 'sub_d', 10000, 'usd', '2024-01-05', '2024-02-05', false, 'p_100', 1, 1000),
    ('l_e1', 'inv_e', 'sub_e', 8000, 'usd', '2024-01-01', '2024-02-01', false, 'p_seat', 2, 2000),
    ('l_t1', 'inv_t', 'sub_t', 0, 'usd', '2024-01-28', '2024-02-11', false, 'p_100', 1, 0),
    ('l_ended', 'inv_ended', 'sub_ended', 7000, 'usd', '2024-01-01', '2024-02-01', false, 'p_70', 1, 0),
    ('l_x1', 'inv_x', 'sub_c', 99900, 'usd', '2024-01-10', '2024-02-10', false, 'p_200', 1, 0),
    ('l_z1', 'inv_z', 'sub_z', 50000, 'usd', '2024-01-01', '2024-02-01', false, 'p_500', 1, 0);
insert into staging.stg_billing__invoice_items (invoice_item_id, invoice_id, is_pending, customer_id,
    subscription_id, price_id, is_proration, quantity, period_start, period_end, currency, amount_minor) values
    ('ii_e1', null, true, 'cus_e', 'sub_e', 'p_seat', true, 1, '2024-01-25', '2024-02-01', 'usd', -903);
insert into marts.account_xref values
    ('billing', 'cus_a', 'a', true), ('billing', 'cus_b', 'b', true), ('billing', 'cus_c', 'c', true),
    ('billing', 'cus_d', 'd', true), ('billing', 'cus_e', 'e', true), ('billing', 'cus_z', null, false);
"""
MONTH_END = {"a": 150, "b": 110, "c": 200, "d": 90, "e": 40}


@pytest.fixture
def billed(make_warehouse):
    con = make_warehouse([("a", "2024-01-01", 100), ("a", "2024-01-15", 150), ("b", "2024-01-01", 110),
                          ("c", "2024-01-10", 200), ("d", "2024-01-05", 90), ("e", "2024-01-01", 60),
                          ("e", "2024-01-20", 80), ("e", "2024-01-25", 40)],
                         [(a, None, None, "smb") for a in "abcde"], data_as_of="2024-01-31")
    con.execute(BILLING)
    return con


def test_invoiced_recurring_revenue_counts_what_mrr_counts(billed):
    got = dict(billed.execute(f"select customer_id, invoiced_mrr from ({checks.invoiced_recurring_sql()}) "
                              "where month = '2024-01-01'").fetchall())
    assert got == pytest.approx({f"cus_{a}": v for a, v in MONTH_END.items()})


def test_a_proration_credit_of_zero_still_takes_the_old_price_off(billed):
    """Stripe's prorations are net of the subscription's discounts: a coupon covering the old price leaves a
    credit of 0, which Stripe still marks a credit (staging's is_proration_credit). a's upgrade from 100.00 to
    150.00 on Jan 15 is worth 150 either way (its sign made it a charge: 100 + 100 + 150 = 350)"""
    billed.execute("""
        alter table staging.stg_billing__invoice_lines drop column is_proration_credit;
        alter table staging.stg_billing__invoice_lines add column is_proration_credit boolean;
        update staging.stg_billing__invoice_lines set amount_minor = 0 where line_id = 'l_a3';
        update staging.stg_billing__invoice_lines
        set is_proration_credit = is_proration and (amount_minor < 0 or line_id = 'l_a3')""")
    got = dict(billed.execute(f"select customer_id, invoiced_mrr from ({checks.invoiced_recurring_sql()}) "
                              "where month = '2024-01-01'").fetchall())
    assert got == pytest.approx({f"cus_{a}": v for a, v in MONTH_END.items()})


def test_correct_mrr_passes_even_at_one_percent(billed):
    # the month-end MRR of the fixture is right by the definitions: it matches the invoices within any tolerance
    assert run_rule(billed, checks.invoice_gap_sql(0.01)) == (0, "")


@pytest.mark.parametrize(("wrong", "gap"), [
    # the history lost b (an annual plan with no event in the ledger): MRR 480 vs invoiced 590, 23% of MRR
    ("update marts.mrr_monthly set mrr = 0 where account_id = 'b'", "0.229"),
    # the once coupon applied to MRR (180 instead of 200): 570 vs 590, 3.5% apart
    ("update marts.mrr_monthly set mrr = 180 where account_id = 'c'", "0.03"),
    # every account at 0 (the 30-day-events run without invoice history): invoiced 590, MRR 0
    ("update marts.mrr_monthly set mrr = 0", "590.0"),
    # the repeating coupon kept after its end (30 instead of 40): 580 vs 590, 1.7% apart
    ("update marts.mrr_monthly set mrr = 30 where account_id = 'e'", "0.01"),
])
def test_wrong_mrr_fails(billed, wrong, gap):
    billed.execute(wrong)
    count, sample = run_rule(billed, checks.invoice_gap_sql(0.01))
    assert count == 1 and gap in sample


def test_mrr_matches_invoices(billed):
    rule = checks.invoice_gap_sql(0.10)
    assert run_rule(billed, rule)[0] == 0
    # MRR 590 vs invoiced 480 once b's invoice is gone: 19% apart
    billed.execute("delete from staging.stg_billing__invoice_lines where line_id = 'l_b1'")
    count, sample = run_rule(billed, rule)
    assert count == 1 and "0.186" in sample


def test_check_names_and_severities():
    defs = {(s.key.asset_key, s.key.name): s for d in checks.build_kpi_checks() for s in d.check_specs}
    blocking = {name for (_, name), spec in defs.items() if spec.blocking}
    warning = {name for (_, name), spec in defs.items() if not spec.blocking}
    assert {checks.MRR_BRIDGE_RECONCILES, checks.GRR_NEVER_ABOVE_ONE, checks.MRR_MONTHLY_NO_NEGATIVE_MRR,
            checks.MRR_MONTHLY_NO_MISSING_ACCOUNT_MONTHS, "mrr_monthly_unique_month_account_id",
            "revenue_monthly_unique_month_segment", "cohort_retention_unique_cohort_month_months_since_start",
            checks.ALL_SEGMENT_EQUALS_SUM_OF_SEGMENTS} <= blocking
    # unmatched revenue is checked once, on the xref table that lists the unmatched customers
    # (unmatched_mrr_share_below_threshold, cs_kpis/defs/xref/checks.py), not again here
    assert warning == {checks.NRR_GRR_WITHIN_PLAUSIBLE_BOUNDS, checks.MRR_MATCHES_INVOICED_RECURRING_REVENUE}
    assert (checks.MRR_MONTHLY, checks.MRR_MONTHLY_NO_NEGATIVE_MRR) in defs
    assert (checks.REVENUE_MONTHLY_PARENT, checks.MRR_BRIDGE_RECONCILES) in defs


def test_thresholds_come_from_the_check_thresholds_resource_at_run_time(monkeypatch):
    """The check reads its threshold from the resource when it runs (nothing is fixed when the code loads):
    the variable fills the resource, and the description names the key and the variable."""
    monkeypatch.setenv(checks.ENV_MAX_INVOICE_GAP, "0.25")
    [check] = [d for d in checks.build_kpi_checks()
               if any(s.name == checks.MRR_MATCHES_INVOICED_RECURRING_REVENUE for s in d.check_specs)]
    [spec] = check.check_specs
    assert checks.ENV_MAX_INVOICE_GAP in spec.description and "mrr_invoice_max_gap" in spec.description
    assert "check_thresholds" in check.required_resource_keys
    assert CheckThresholdsResource.from_settings().mrr_invoice_max_gap == 0.25


# The check looks each line's FX rate up once per (currency, start day) (BENCHMARKS.md "Marts on the nightly");
# this is the range join every line-month used to make, kept here as the reference it must equal
_RATE_LOOKUP = """            left join line_rates as r
                on r.currency = l.currency
                and r.period_start = l.period_start
"""
_RANGE_JOIN = """            left join rates as r
                on r.currency = l.currency
                and r.rate_date <= l.period_start
                and (r.next_rate_date is null or r.next_rate_date > l.period_start)
"""
# lines starting on a rate day, between two, after the last and before the first one (no rate: no value),
# in two currencies (the fixture's one month, January 2024, read on the 31st)
_MORE_FX = """
insert into staging.stg_billing__fx_rates values ('2024-01-20', 'EUR', 1.20), ('2023-12-20', 'GBP', 1.25),
    ('2024-01-05', 'GBP', 1.27);
insert into staging.stg_billing__invoices (invoice_id, customer_id, subscription_id, status, created_at) values
    ('inv_fx', 'cus_b', 'sub_b', 'paid', '2023-12-01');
insert into staging.stg_billing__invoice_lines (line_id, invoice_id, subscription_id, amount_minor, currency,
    period_start, period_end, is_proration, price_id, quantity, discount_amount_minor) values
    ('l_fx1', 'inv_fx', 'sub_b', 1000, 'eur', '2023-12-16', '2024-03-16', false, 'p_100', 1, 0),
    ('l_fx2', 'inv_fx', 'sub_b', 1000, 'eur', '2024-01-19', '2024-03-19', false, 'p_100', 1, 0),
    ('l_fx3', 'inv_fx', 'sub_b', 1000, 'eur', '2024-01-25', '2024-03-25', false, 'p_100', 1, 0),
    ('l_fx4', 'inv_fx', 'sub_b', 1000, 'gbp', '2023-12-10', '2024-03-10', false, 'p_100', 1, 0),
    ('l_fx5', 'inv_fx', 'sub_b', 1000, 'gbp', '2023-12-31', '2024-03-31', false, 'p_100', 1, 0),
    ('l_fx6', 'inv_fx', 'sub_b', 1000, 'gbp', '2024-01-05', '2024-03-05', false, 'p_100', 1, 0);
"""


def _differs(con, a: str, b: str) -> tuple[int, int]:
    """Rows of ``a`` not in ``b`` and the reverse (except all), sums rounded to 1e-9."""
    sel = "select month, customer_id, round(invoiced_mrr, 9) as invoiced_mrr from"
    return tuple(con.execute(f"select count(*) from ({sel} ({x}) as x except all {sel} ({y}) as y)").fetchall()[0][0]
                 for x, y in ((a, b), (b, a)))


def test_invoiced_revenue_rate_lookup_equals_the_range_join(billed):
    billed.execute(_MORE_FX)
    sql = checks.invoiced_recurring_sql()
    assert sql.count(_RATE_LOOKUP) == 1
    reference = sql.replace(_RATE_LOOKUP, _RANGE_JOIN)
    assert billed.execute(f"select count(*) from ({sql}) as x").fetchall()[0][0] == 5  # a..e in January
    assert _differs(billed, sql, reference) == (0, 0)
    # b's month: 110 (inv_b) + the EUR lines at 1.30 (Dec 16), 1.30 (Jan 19, the latest before), 1.20 (Jan 25)
    # and the GBP lines without a rate (Dec 10: none yet, no value), at 1.25 (Dec 31) and 1.27 (Jan 5)
    got = billed.execute(f"select invoiced_mrr from ({sql}) as x where month = '2024-01-01' and customer_id = 'cus_b'")
    assert got.fetchall()[0][0] == pytest.approx(110 + 10.00 * (1.30 + 1.30 + 1.20 + 1.25 + 1.27))  # 10.00 a month each
    # a lookup of the exact day only (what a careless rewrite would do) loses the days between rates
    broken = sql.replace("and r.rate_date <= k.period_start", "and r.rate_date = k.period_start")
    assert broken != sql and _differs(billed, broken, reference) != (0, 0)


def test_the_checks_monthly_total_is_the_sum_of_the_customers(billed):
    """invoice_gap_sql reads the months' totals straight from the line-months (by_customer=False) instead of
    summing the per-customer rows: the same figures, with the ended subscription, the void invoice and the
    unmatched customer left out as there."""
    billed.execute(_MORE_FX)
    per_customer = checks.invoiced_recurring_sql()
    by_month = checks.invoiced_recurring_sql(by_customer=False)
    assert by_month in checks.invoice_gap_sql(0.1) and per_customer not in checks.invoice_gap_sql(0.1)
    got = dict(billed.execute(f"select month, invoiced_mrr from ({by_month}) as x").fetchall())
    want = dict(billed.execute(f"select month, sum(invoiced_mrr) from ({per_customer}) as x group by month").fetchall())
    assert list(got) == [dt.date(2024, 1, 1)] and got == pytest.approx(want, rel=1e-12)
    assert got[dt.date(2024, 1, 1)] == pytest.approx(sum(MONTH_END.values()) + 10.00 * (1.30 + 1.30 + 1.20 + 1.25 + 1.27))
