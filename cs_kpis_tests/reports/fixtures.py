"""A tiny hand-written warehouse with just the columns the KPI report reads (3 months, 2 segments, 4 accounts),
and kpis.revenue_periods / kpis.mrr_periods rows for its weeks and quarters (the month rows copy
kpis.revenue_monthly, as the real tables must). The figures are made up; the SQL that computes them is tested
in cs_kpis_tests/kpis/."""

import duckdb

from cs_kpis.defs.reports import assets
from cs_kpis.lib.sql import build, load_models

SQL = """
create schema kpis; create schema marts; create schema staging; create schema alerts;

create table kpis.revenue_monthly as select * from (values
  (date '2026-08-01', 'all', 1000.0, 100.0, 50.0, 0.0, 20.0, 30.0, 1100.0, 1.00, 0.95, null, null, 0.10, 3.0, 275.0),
  (date '2026-09-01', 'all', 1100.0, 0.0, 200.0, 0.0, 0.0, 100.0, 1200.0, 1.0909, 0.9091, null, null, 0.25, 2.0, 400.0),
  (date '2026-10-01', 'all', 1200.0, 300.0, 100.0, 50.0, 50.0, 0.0, 1600.0, 1.0417, 0.9583, 1.10, 0.90, 0.0, 9.0, 400.0),
  (date '2026-08-01', 'SMB', 400.0, 100.0, 0.0, 0.0, 0.0, 0.0, 500.0, 1.0, 1.0, null, null, 0.0, null, 250.0),
  (date '2026-09-01', 'SMB', 500.0, 0.0, 0.0, 0.0, 0.0, 100.0, 400.0, 0.8, 0.8, null, null, 0.5, 0.0, 400.0),
  (date '2026-10-01', 'SMB', 400.0, 300.0, 0.0, 0.0, 0.0, 0.0, 700.0, 1.0, 1.0, null, null, 0.0, null, 350.0)
) as t(month, segment, starting_mrr, new_mrr, expansion_mrr, reactivation_mrr, contraction_mrr, churned_mrr,
       ending_mrr, nrr, grr, nrr_t12, grr_t12, logo_churn_rate, quick_ratio, arpa);

create table kpis.cohort_retention as select * from (values
  (date '2026-08-01', 0, 1.0), (date '2026-08-01', 1, 0.9), (date '2026-08-01', 2, 1.1),
  (date '2026-09-01', 0, 1.0), (date '2026-09-01', 1, 0.8), (date '2026-10-01', 0, 1.0)
) as t(cohort_month, months_since_start, net_mrr_retention);

create table kpis.health_scores_daily as select * from (values
  (date '2026-09-30', 'a1', true, 'green'), (date '2026-09-30', 'a2', true, 'green'),
  (date '2026-09-30', 'a3', true, 'yellow'), (date '2026-09-30', 'a4', true, 'yellow'),
  (date '2026-10-01', 'a1', true, 'green'), (date '2026-10-01', 'a2', true, 'yellow'),
  (date '2026-10-01', 'a3', true, 'red'), (date '2026-10-01', 'a4', true, 'yellow'),
  (date '2026-10-31', 'a1', true, 'green'), (date '2026-10-31', 'a2', true, 'yellow'),
  (date '2026-10-31', 'a3', true, 'red'), (date '2026-10-31', 'a4', false, 'red')
) as t(day, account_id, is_active, band);

create table kpis.health_scores as select * from (values
  (date '2026-10-31', 'a1', true, 6000.0, 88.0, 'green', 1.0, 5.0, 90.0, 80.0, 90.0, 100.0, 100.0),
  (date '2026-10-31', 'a2', true, 4800.0, 55.0, 'yellow', -3.0, -20.0, 40.0, 60.0, 70.0, 30.0, 100.0),
  (date '2026-10-31', 'a3', true, 8400.0, 20.0, 'red', -1.0, -4.0, 10.0, 20.0, 45.0, null, 50.0),
  (date '2026-10-31', 'a4', false, 0.0, 30.0, 'red', 0.0, 0.0, 0.0, 0.0, 50.0, null, 0.0)
) as t(day, account_id, is_active, arr, score, band, delta_7d, delta_30d, usage_score, adoption_score,
       support_score, sentiment_score, billing_score);

create table kpis.health_backtest as select * from (values
  ('month', date '2026-08-01', true, 10, 0, 5, 1, 2, 1),
  ('month', date '2026-09-01', true, 10, 1, 5, 1, 3, 2),
  ('month', date '2026-09-01', false, 99, 99, 99, 99, 99, 99)
) as t(scope, as_of_day, is_current, accounts_green, churned_green, accounts_yellow, churned_yellow,
       accounts_red, churned_red);

create table marts.accounts as select * from (values
  ('a1', 'Acme Corp', 'Enterprise', 'u1'), ('a2', 'Globex', 'SMB', 'u1'),
  ('a3', 'Initech', 'SMB', 'u2'), ('a4', 'Umbrella', 'SMB', 'u2')
) as t(account_id, account_name, segment, csm_id);

create table staging.stg_crm__users as select * from (values
  ('u1', 'Ada Lovelace'), ('u2', 'Grace Hopper')
) as t(user_id, user_name);

create table marts.mrr_monthly as select * from (values
  (date '2026-10-01', 'a1', 400.0, 500.0, 'expansion', 100.0),
  (date '2026-10-01', 'a2', 0.0, 400.0, 'new', 400.0),
  (date '2026-10-01', 'a3', 750.0, 700.0, 'contraction', -50.0),
  (date '2026-10-01', 'a4', 0.0, 0.0, 'unchanged', 0.0)
) as t(month, account_id, prev_mrr, mrr, movement, movement_amount);

create table staging.stg_nps__survey_responses as select * from (values
  (10, timestamptz '2026-10-03 10:00:00+00'), (9, timestamptz '2026-10-04 10:00:00+00'),
  (3, timestamptz '2026-10-05 10:00:00+00'), (8, timestamptz '2026-10-06 10:00:00+00'),
  (2, timestamptz '2026-09-05 10:00:00+00'), (10, timestamptz '2026-09-06 10:00:00+00')
) as t(score, responded_at);

create table kpis.account_indicators_daily as select * from (values
  ('a1', date '2026-10-31', 76), ('a2', date '2026-10-31', null), ('a3', date '2026-10-31', 20),
  ('a4', date '2026-10-31', null), ('a3', date '2026-10-30', 21)
) as t(account_id, day, days_to_renewal);
"""

ALERTS_SQL = """
create table alerts.alert_candidates as select * from (values
  ('a2:renewal_risk', 'a2', 'renewal_risk', 'medium', 'open', 'renewal in 20 days, score 55', 'Ada Lovelace',
   'Globex', 4800.0, date '2026-10-20'),
  ('a3:health_drop', 'a3', 'health_drop', 'high', 'new', 'score fell 25 points in 30 days', 'Grace Hopper',
   'Initech', 8400.0, date '2026-10-30'),
  ('a1:health_red', 'a1', 'health_red', 'critical', 'resolved', 'score back to 88', 'Ada Lovelace',
   'Acme Corp', 6000.0, date '2026-09-01'),
  ('a1:expansion_opportunity', 'a1', 'expansion_opportunity', 'info', 'open', 'seats 95% used',
   'Ada Lovelace', 'Acme Corp', 6000.0, date '2026-10-25')
) as t(dedup_key, account_id, alert_type, severity, status, reason, owner_name, account_name, arr, first_seen);
"""


# Weeks of October 2026 (data as of Saturday Oct 31: W44 is not over) and quarters of 2026 (Q4 not over).
#   week  2026-W42 (Oct 12): start 1150, +40 new, -10 churn -> 1180   NRR 1140 / 1150 = 0.9913
#   week  2026-W43 (Oct 19): start 1180, +30 expansion, -20 contraction, -60 churn -> 1130
#                            NRR (1180 + 30 - 20 - 60) / 1180 = 0.9576, GRR 1100 / 1180 = 0.9322,
#                            logo churn 1 / 4 = 0.25, quick ratio 30 / 80 = 0.375
#   week  2026-W44 (Oct 26, read Oct 31): start 1130, +470 new -> 1600
#   quarter 2026-Q2 (Apr 1): start 700, +300 new, -0 -> 1000
#   quarter 2026-Q3 (Jul 1): start 1000, +200 new, +150 expansion, -50 contraction, -100 churn -> 1200
#                            NRR 1000 / 1000 = 1.0, GRR 850 / 1000 = 0.85, logo churn 1 / 4, QR 350 / 150
#   quarter 2026-Q4 (Oct 1, read Oct 31): the October month's bridge
PERIODS_SQL = """
create table kpis.revenue_periods as
select 'month' as cadence, month as period_start, last_day(month) as period_end, last_day(month) as read_day,
       true as is_complete, segment,
       starting_mrr::decimal(18, 2) as starting_mrr, new_mrr::decimal(18, 2) as new_mrr,
       expansion_mrr::decimal(18, 2) as expansion_mrr, reactivation_mrr::decimal(18, 2) as reactivation_mrr,
       contraction_mrr::decimal(18, 2) as contraction_mrr, churned_mrr::decimal(18, 2) as churned_mrr,
       ending_mrr::decimal(18, 2) as ending_mrr, nrr::double as nrr, grr::double as grr,
       nrr_t12::double as nrr_t12, grr_t12::double as grr_t12, logo_churn_rate::double as logo_churn_rate,
       quick_ratio::double as quick_ratio, arpa::double as arpa,
       case when nrr_t12 is not null then 40 end as t12_cohort_accounts
from kpis.revenue_monthly;

insert into kpis.revenue_periods select * from (values
  ('week', date '2026-10-12', date '2026-10-18', date '2026-10-18', true, 'all',
   1150.0, 40.0, 0.0, 0.0, 0.0, 10.0, 1180.0, 0.9913, 0.9913, 1.05, 0.91, 0.25, 4.0, 295.0, 40),
  ('week', date '2026-10-19', date '2026-10-25', date '2026-10-25', true, 'all',
   1180.0, 0.0, 30.0, 0.0, 20.0, 60.0, 1130.0, 0.9576, 0.9322, 1.02, 0.89, 0.25, 0.375, 376.67, 40),
  ('week', date '2026-10-26', date '2026-11-01', date '2026-10-31', false, 'all',
   1130.0, 470.0, 0.0, 0.0, 0.0, 0.0, 1600.0, 1.0, 1.0, 1.10, 0.90, 0.0, null, 400.0, 40),
  ('week', date '2026-10-19', date '2026-10-25', date '2026-10-25', true, 'SMB',
   480.0, 0.0, 0.0, 0.0, 20.0, 60.0, 400.0, 0.8333, 0.8333, null, null, 0.5, 0.0, 400.0, 40),
  ('quarter', date '2026-04-01', date '2026-06-30', date '2026-06-30', true, 'all',
   700.0, 300.0, 0.0, 0.0, 0.0, 0.0, 1000.0, 1.0, 1.0, null, null, 0.0, null, 333.33, 40),
  ('quarter', date '2026-07-01', date '2026-09-30', date '2026-09-30', true, 'all',
   1000.0, 200.0, 150.0, 0.0, 50.0, 100.0, 1200.0, 1.0, 0.85, 1.12, 0.93, 0.25, 2.3333, 400.0, 40),
  ('quarter', date '2026-10-01', date '2026-12-31', date '2026-10-31', false, 'all',
   1200.0, 300.0, 100.0, 50.0, 50.0, 0.0, 1600.0, 1.0417, 0.9583, 1.10, 0.90, 0.0, 9.0, 400.0, 40),
  ('quarter', date '2026-07-01', date '2026-09-30', date '2026-09-30', true, 'SMB',
   500.0, 0.0, 0.0, 0.0, 0.0, 100.0, 400.0, 0.8, 0.8, null, null, 0.5, 0.0, 400.0, 40)
);

create table kpis.mrr_periods as
select 'month' as cadence, month as period_start, account_id, prev_mrr::decimal(18, 2) as prev_mrr,
       mrr::decimal(18, 2) as mrr, movement, movement_amount::decimal(18, 2) as movement_amount
from marts.mrr_monthly;

insert into kpis.mrr_periods select * from (values
  ('week', date '2026-10-19', 'a4', 60.0, 0.0, 'churn', -60.0),
  ('week', date '2026-10-19', 'a1', 470.0, 500.0, 'expansion', 30.0),
  ('week', date '2026-10-19', 'a3', 720.0, 700.0, 'contraction', -20.0),
  ('quarter', date '2026-07-01', 'a4', 100.0, 0.0, 'churn', -100.0),
  ('quarter', date '2026-07-01', 'a2', 0.0, 200.0, 'new', 200.0)
);
"""


def build_worklist(con) -> None:
    """reports.account_worklist from the hand-written tables, with the model's own SQL."""
    model = next(m for m in load_models(assets.SQL_DIR, assets.SCHEMA) if m.name == "account_worklist")
    build(con, model)


def build_warehouse(path) -> str:
    """Every table the report reads: hand-written inputs, and reports.account_worklist built by its SQL."""
    con = duckdb.connect(str(path))
    try:
        con.execute(SQL)
        con.execute(PERIODS_SQL)
        con.execute(ALERTS_SQL)
        build_worklist(con)
    finally:
        con.close()
    return str(path)


def add_missing_report_inputs(con, tmp_path) -> None:
    """Empty stand-ins (same columns as the fixture's) for the report tables ``con`` lacks: for tests whose
    warehouse holds only the revenue models."""
    fixture = build_warehouse(tmp_path / "report_inputs.duckdb")
    con.execute(f"attach '{fixture}' as fx (read_only)")
    try:
        have = {f"{s}.{t}" for s, t in con.execute(
            "select table_schema, table_name from information_schema.tables where table_catalog <> 'fx'").fetchall()}
        for table in assets.REPORT_TABLES:
            if table not in have:
                con.execute(f"create schema if not exists {table.split('.')[0]}")
                con.execute(f"create table {table} as select * from fx.{table} where false")
    finally:
        con.execute("detach fx")
