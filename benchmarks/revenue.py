"""Benchmark of the revenue models: every marts and kpis model MRR and retention need, timed one by one.

    .venv/bin/python -m benchmarks.revenue --landing bench_out/large/landing

Phase 1 (its own process) builds the staging tables the revenue models read (events, customers, FX,
accounts, and for the history before the event ledger subscriptions with items, prices, coupons,
invoices and invoice lines), with DuckDB straight
from the landing files: loading the large company's billing history through dlt's row path takes hours
(see BENCHMARKS.md), and that cost belongs to ingestion, not to these models. Phase 2 (a fresh process,
so its peak RSS is the models' own) builds the calendar and every revenue model in dependency order with
the project's own SQL files and records each model's seconds and rows. Each phase runs under a DuckDB
memory_limit (--staging-memory-limit, --memory-limit); the result goes to revenue.json beside the warehouse
(--warehouse; the landing folder is only read). cs_kpis_tests/test_benchmark_revenue.py fails when a revenue
model reads a model or staging table this file does not build before it.
"""

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

REVENUE_MODELS = [
    ("marts", "accounts"), ("marts", "price_tiers"), ("marts", "coupon_amounts"), ("marts", "subscription_item_discounts"),
    ("marts", "subscription_history_states"), ("marts", "discount_objects"), ("marts", "subscription_states"), ("marts", "subscription_periods"),
    ("marts", "mrr_daily_changes"), ("marts", "mrr_daily"),
    # marts.mrr_monthly and kpis.mrr_periods are rows of marts.mrr_period_ends; the three revenue tables are
    # selections of kpis.revenue_by_grain (one formula per KPI)
    ("marts", "dim_period"), ("marts", "mrr_period_ends"), ("kpis", "mrr_periods"), ("marts", "mrr_monthly"),
    ("kpis", "mrr_monthly_parent"), ("kpis", "revenue_by_grain"), ("kpis", "revenue_monthly"),
    ("kpis", "revenue_monthly_parent"), ("kpis", "revenue_periods"), ("kpis", "cohort_retention"),
]

STAGING_SQL = """
set TimeZone = 'UTC';
create schema if not exists staging;
create or replace table staging.stg_billing__events as
with files as (
    select filename, unnest(data) as e
    from read_json('{landing}/billing/events/*/part-*.json', columns = {{'data': 'JSON[]'}}, filename = true)
)
select
    json_extract_string(e, '$.id') as event_id,
    json_extract_string(e, '$.type') as event_type,
    to_timestamp(cast(json_extract_string(e, '$.created') as bigint)) as created_at,
    json_extract_string(e, '$.data.object.object') as object_type,
    json_extract_string(e, '$.data.object.id') as object_id,
    json_extract_string(e, '$.data.object.customer') as customer_id,
    json_extract(e, '$.data.object') as object,
    json_extract(e, '$.data.previous_attributes') as previous_attributes,
    cast(regexp_extract(filename, '(\\d{{4}}-\\d{{2}}-\\d{{2}})/part-', 1) as date) as extract_day
from files
qualify row_number() over (partition by json_extract_string(e, '$.id') order by filename) = 1;
create or replace table staging.stg_billing__customers as
with files as (
    select filename, unnest(data) as c
    from read_json('{landing}/billing/customers/*/part-*.json', columns = {{'data': 'JSON[]'}}, filename = true)
), latest as (
    select c, row_number() over (partition by json_extract_string(c, '$.id') order by filename desc) as rn
    from files
)
select json_extract_string(c, '$.id') as customer_id,
       json_extract_string(c, '$.metadata.salesforce_account_id') as crm_account_id,
       upper(json_extract_string(c, '$.currency')) as currency
from latest where rn = 1;
create or replace table staging.stg_billing__fx_rates as
select cast(date as date) as rate_date, upper(currency) as currency, cast(rate as decimal(18, 6)) as rate
from read_csv('{landing}/reference/fx_rates.csv');
create or replace table staging.stg_billing__subscriptions as
with files as (
    select filename, unnest(data) as s
    from read_json('{landing}/billing/subscriptions/*/part-*.json', columns = {{'data': 'JSON[]'}}, filename = true)
), latest as (
    select s, row_number() over (partition by json_extract_string(s, '$.id') order by filename desc) as rn,
           cast(regexp_extract(filename, '(\\d{{4}}-\\d{{2}}-\\d{{2}})/part-', 1) as date) as extract_day
    from files
)
select
    json_extract_string(s, '$.id') as subscription_id, json_extract_string(s, '$.customer') as customer_id,
    json_extract_string(s, '$.status') as status, upper(json_extract_string(s, '$.currency')) as currency,
    to_timestamp(cast(json_extract_string(s, '$.created') as bigint)) as created_at,
    to_timestamp(cast(json_extract_string(s, '$.start_date') as bigint)) as started_at,
    to_timestamp(cast(json_extract_string(s, '$.trial_start') as bigint)) as trial_start_at,
    to_timestamp(cast(json_extract_string(s, '$.trial_end') as bigint)) as trial_end_at,
    to_timestamp(cast(json_extract_string(s, '$.ended_at') as bigint)) as ended_at,
    to_timestamp(cast(json_extract_string(s, '$.current_period_start') as bigint)) as current_period_start,
    to_timestamp(cast(json_extract_string(s, '$.current_period_end') as bigint)) as current_period_end,
    cast(json_extract_string(s, '$.cancel_at_period_end') as boolean) as cancel_at_period_end,
    to_timestamp(cast(json_extract_string(s, '$.cancel_at') as bigint)) as cancel_at,
    to_timestamp(cast(json_extract_string(s, '$.canceled_at') as bigint)) as canceled_at,
    json_extract_string(s, '$.discounts[0].id') as discount_id,
    json_extract_string(s, '$.discounts[0].coupon.id') as discount_coupon_id,
    cast(json_extract_string(s, '$.discounts[0].coupon.percent_off') as double) as discount_percent_off,
    cast(json_extract_string(s, '$.discounts[0].coupon.amount_off') as bigint) as discount_amount_off_minor,
    to_timestamp(cast(json_extract_string(s, '$.discounts[0].start') as bigint)) as discount_start_at,
    to_timestamp(cast(json_extract_string(s, '$.discounts[0].end') as bigint)) as discount_end_at,
    json_extract(s, '$.discounts') as discounts,
    json_extract(s, '$.items.data') as items, extract_day
from latest where rn = 1;
create or replace table staging.stg_billing__subscription_items as
select
    json_extract_string(it, '$.id') as subscription_item_id, subscription_id,
    json_extract_string(it, '$.price.id') as price_id,
    json_extract_string(it, '$.price.metadata.plan_tier') as plan_tier,
    json_extract_string(it, '$.price.nickname') as price_name,
    cast(json_extract_string(it, '$.price.unit_amount') as bigint) as unit_amount_minor,
    cast(json_extract_string(it, '$.quantity') as bigint) as quantity,
    json_extract_string(it, '$.price.recurring.interval') as "interval",
    cast(json_extract_string(it, '$.price.recurring.interval_count') as integer) as interval_count,
    json_extract_string(it, '$.price.recurring.usage_type') as usage_type,
    json_extract_string(it, '$.price.billing_scheme') as billing_scheme,
    to_timestamp(cast(json_extract_string(it, '$.created') as bigint)) as created_at,
    json_extract(it, '$.discounts') as discounts
from (select subscription_id, unnest(cast(items as JSON[])) as it from staging.stg_billing__subscriptions);
create or replace table staging.stg_billing__prices as
with files as (
    select unnest(data) as p
    from read_json('{landing}/billing/prices/*/part-*.json', columns = {{'data': 'JSON[]'}})
)
select distinct
    json_extract_string(p, '$.id') as price_id, json_extract_string(p, '$.metadata.plan_tier') as plan_tier,
    json_extract_string(p, '$.nickname') as price_name,
    cast(json_extract_string(p, '$.unit_amount') as bigint) as unit_amount_minor,
    json_extract_string(p, '$.recurring.interval') as "interval",
    cast(json_extract_string(p, '$.recurring.interval_count') as integer) as interval_count,
    json_extract_string(p, '$.recurring.usage_type') as usage_type, json_extract_string(p, '$.type') as price_type,
    json_extract_string(p, '$.billing_scheme') as billing_scheme,
    cast(json_extract_string(p, '$.unit_amount_decimal') as double) as unit_amount_decimal,
    json_extract_string(p, '$.tiers_mode') as tiers_mode, json_extract(p, '$.tiers') as tiers,
    cast(json_extract_string(p, '$.transform_quantity.divide_by') as bigint) as transform_divide_by,
    json_extract_string(p, '$.transform_quantity.round') as transform_round
from files;
create or replace table staging.stg_billing__coupons as
with files as (
    select unnest(data) as c
    from read_json('{landing}/billing/coupons/*/part-*.json', columns = {{'data': 'JSON[]'}})
)
select distinct json_extract_string(c, '$.id') as coupon_id, json_extract_string(c, '$.duration') as duration,
       upper(json_extract_string(c, '$.currency')) as currency,
       cast(json_extract_string(c, '$.amount_off') as bigint) as amount_off_minor,
       json_extract(c, '$.currency_options') as currency_options
from files;
create or replace table staging.stg_billing__invoices as
with files as (
    select filename, unnest(data) as i
    from read_json('{landing}/billing/invoices/*/part-*.json', columns = {{'data': 'JSON[]'}}, filename = true)
), latest as (
    select i, row_number() over (partition by json_extract_string(i, '$.id') order by filename desc) as rn
    from files
)
select
    json_extract_string(i, '$.id') as invoice_id, json_extract_string(i, '$.customer') as customer_id,
    json_extract_string(i, '$.parent.subscription_details.subscription') as subscription_id,
    json_extract_string(i, '$.status') as status,
    cast(json_extract_string(i, '$.attempt_count') as bigint) as attempt_count,
    to_timestamp(cast(json_extract_string(i, '$.created') as bigint)) as created_at,
    to_timestamp(cast(json_extract_string(i, '$.status_transitions.finalized_at') as bigint)) as finalized_at,
    to_timestamp(cast(json_extract_string(i, '$.status_transitions.paid_at') as bigint)) as paid_at,
    to_timestamp(cast(json_extract_string(i, '$.status_transitions.voided_at') as bigint)) as voided_at,
    to_timestamp(cast(json_extract_string(i, '$.status_transitions.marked_uncollectible_at') as bigint))
        as marked_uncollectible_at,
    cast(json_extract_string(i, '$.amount_due') as bigint) as amount_due_minor,
    json_extract_string(i, '$.discounts[0].id') as discount_id,
    json_extract_string(i, '$.discounts[0].coupon.id') as discount_coupon_id,
    json_extract_string(i, '$.discounts[0].coupon.duration') as discount_duration,
    cast(json_extract_string(i, '$.discounts[0].coupon.percent_off') as double) as discount_percent_off,
    cast(json_extract_string(i, '$.discounts[0].coupon.amount_off') as bigint) as discount_amount_off_minor,
    to_timestamp(cast(json_extract_string(i, '$.discounts[0].start') as bigint)) as discount_start_at,
    to_timestamp(cast(json_extract_string(i, '$.discounts[0].end') as bigint)) as discount_end_at,
    json_extract(i, '$.discounts') as discounts,
    json_extract(i, '$.lines.data') as lines
from latest where rn = 1;
create or replace table staging.stg_billing__invoice_lines as
select
    json_extract_string(l, '$.id') as line_id, invoice_id,
    json_extract_string(l, '$.parent.subscription_item_details.subscription') as subscription_id,
    json_extract_string(l, '$.parent.subscription_item_details.subscription_item') as subscription_item_id,
    json_extract_string(l, '$.pricing.price_details.price') as price_id,
    coalesce(cast(json_extract_string(l, '$.parent.subscription_item_details.proration') as boolean), false)
        as is_proration,
    cast(json_extract_string(l, '$.quantity') as bigint) as quantity,
    to_timestamp(cast(json_extract_string(l, '$.period.start') as bigint)) as period_start,
    to_timestamp(cast(json_extract_string(l, '$.period.end') as bigint)) as period_end,
    cast(json_extract_string(l, '$.amount') as bigint) as amount_minor,
    coalesce(list_sum(cast(json_extract(l, '$.discount_amounts[*].amount') as bigint[])), 0) as discount_amount_minor,
    json_extract(l, '$.discount_amounts') as discount_amounts, json_extract(l, '$.discounts') as discounts
from (select invoice_id, unnest(cast(lines as JSON[])) as l from staging.stg_billing__invoices);
create or replace table staging.stg_billing__invoice_items as
with files as (
    select filename, unnest(data) as ii
    from read_json('{landing}/billing/invoiceitems/*/part-*.json', columns = {{'data': 'JSON[]'}}, filename = true)
), latest as (
    select ii, row_number() over (partition by json_extract_string(ii, '$.id') order by filename desc) as rn
    from files
)
select
    json_extract_string(ii, '$.id') as invoice_item_id, json_extract_string(ii, '$.invoice') as invoice_id,
    json_extract_string(ii, '$.invoice') is null as is_pending, json_extract_string(ii, '$.customer') as customer_id,
    json_extract_string(ii, '$.parent.subscription_details.subscription') as subscription_id,
    json_extract_string(ii, '$.parent.subscription_details.subscription_item') as subscription_item_id,
    json_extract_string(ii, '$.pricing.price_details.price') as price_id,
    coalesce(cast(json_extract_string(ii, '$.proration') as boolean), false) as is_proration,
    cast(json_extract_string(ii, '$.quantity') as bigint) as quantity,
    to_timestamp(cast(json_extract_string(ii, '$.period.start') as bigint)) as period_start,
    to_timestamp(cast(json_extract_string(ii, '$.period.end') as bigint)) as period_end,
    cast(json_extract_string(ii, '$.amount') as bigint) as amount_minor
from latest where rn = 1;
create or replace table staging.stg_crm__accounts as
with files as (
    select filename, unnest(records) as a
    from read_json('{landing}/crm/Account/*/part-*.json', columns = {{'records': 'JSON[]'}}, filename = true)
), latest as (
    select a, row_number() over (partition by json_extract_string(a, '$.Id') order by filename desc) as rn
    from files
)
select json_extract_string(a, '$.Id') as account_id, json_extract_string(a, '$.Name') as account_name,
       json_extract_string(a, '$.ParentId') as parent_account_id, json_extract_string(a, '$.OwnerId') as owner_id,
       json_extract_string(a, '$.CSM__c') as csm_id, json_extract_string(a, '$.Segment__c') as segment,
       json_extract_string(a, '$.Industry') as industry, json_extract_string(a, '$.BillingCountry') as country,
       json_extract_string(a, '$.CSM_Sentiment__c') as csm_sentiment,
       json_extract_string(a, '$.Product_Workspace_Id__c') as workspace_id,
       cast(null as timestamptz) as created_at, false as is_deleted, cast(null as timestamptz) as valid_from,
       cast(null as timestamptz) as valid_to, true as is_current
from latest where rn = 1;
"""


def _staging(landing: Path, warehouse: Path, memory_limit: str) -> dict:
    import duckdb

    t = time.perf_counter()
    with duckdb.connect(str(warehouse), config={"memory_limit": memory_limit}) as con:
        con.execute(STAGING_SQL.format(landing=landing))
        rows = {t: con.execute(f"select count(*) from staging.{t}").fetchall()[0][0]
                for t in ("stg_billing__events", "stg_billing__customers", "stg_billing__fx_rates", "stg_crm__accounts",
                          "stg_billing__subscriptions", "stg_billing__subscription_items", "stg_billing__invoices",
                          "stg_billing__invoice_lines", "stg_billing__invoice_items", "stg_billing__prices",
                          "stg_billing__coupons")}
    return {"seconds": round(time.perf_counter() - t, 2), "rows": rows,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def _models(warehouse: Path, memory_limit: str) -> dict:
    import duckdb

    from cs_kpis.defs.kpis.assets import kpi_models
    from cs_kpis.defs.marts.assets import SQL_DIR as MARTS_SQL
    from cs_kpis.defs.marts.assets import build_calendar
    from cs_kpis.lib.sql import build, load_models

    models = {(m.schema, m.name): m for m in load_models(MARTS_SQL, "marts") + kpi_models()}
    timings = []
    with duckdb.connect(str(warehouse), config={"memory_limit": memory_limit}) as con:
        started = time.perf_counter()
        t = time.perf_counter()
        build_calendar(con)
        timings.append({"model": "marts.calendar", "seconds": round(time.perf_counter() - t, 3)})
        for key in REVENUE_MODELS:
            t = time.perf_counter()
            meta = build(con, models[key])
            timings.append({"model": ".".join(key), "seconds": round(time.perf_counter() - t, 3),
                            "rows": meta["dagster/row_count"].value})
        total = time.perf_counter() - started
    return {"total_seconds": round(total, 2), "models": timings,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.revenue")
    p.add_argument("--landing", type=Path, required=True)
    p.add_argument("--warehouse", type=Path, default=None,
                   help="DuckDB file to (re)create; default revenue_bench.duckdb next to the landing folder")
    p.add_argument("--memory-limit", default="3GB", help="DuckDB memory_limit for the models")
    p.add_argument("--staging-memory-limit", default="6GB", help="DuckDB memory_limit for phase 1 (staging)")
    p.add_argument("--phase", choices=["all", "staging", "models"], default="all")
    args = p.parse_args(argv)
    warehouse = args.warehouse or args.landing.parent / "revenue_bench.duckdb"
    if args.phase == "staging":
        print(json.dumps(_staging(args.landing.resolve(), warehouse, args.staging_memory_limit)))
        return 0
    if args.phase == "models":
        print(json.dumps(_models(warehouse, args.memory_limit)))
        return 0
    warehouse.unlink(missing_ok=True)
    out = {}
    for phase in ("staging", "models"):
        res = subprocess.run([sys.executable, "-m", "benchmarks.revenue", "--landing", str(args.landing),
                              "--warehouse", str(warehouse), "--memory-limit", args.memory_limit,
                              "--staging-memory-limit", args.staging_memory_limit, "--phase", phase],
                             check=False, capture_output=True, text=True, cwd=ROOT)
        if res.returncode:
            raise SystemExit(f"{phase} failed:\n{res.stderr[-3000:]}")
        out[phase] = json.loads(res.stdout.strip().splitlines()[-1])
        print(phase, json.dumps(out[phase]), flush=True)
    # next to the warehouse: the landing's folder may be read-only (and is not this benchmark's to write)
    (warehouse.parent / "revenue.json").write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
