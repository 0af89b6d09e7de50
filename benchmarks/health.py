"""Benchmark of the daily health history at scale: a year of daily indicators and scores, then one night.

    CS_KPIS_HEALTH_HISTORY_DAYS=365 .venv/bin/python -m benchmarks.health \\
        --warehouse bench_out/large/ingest_work/warehouse.duckdb --landing bench_out/large/landing

The warehouse must hold the raw tables (``python -m benchmarks.run ingest --sizes large --keep`` leaves them
there). Each phase runs in its own process, so its peak RSS is its own:

1. ``upstream``: every staging, xref and marts asset the health models read, materialized by Dagster
   exactly as the nightly job does (not part of the health figures; timed per asset for the record).
2. ``history``: ``kpis.account_activity_daily`` (every day, it is sparse), then a full build of
   ``kpis.account_indicators_daily`` and ``kpis.health_scores_daily`` (+ ``health_score_changes``) over the
   configured history: the "year of daily scores" figure.
3. ``nightly``: the state of the previous night is recreated (``previous_night``: the last day deleted from the
   activity and the three daily outputs, the indicators' carry as that night would have kept it); then the
   nightly work runs as the assets do it: the activity table is rebuilt, the indicators are rebuilt from the last
   built day minus the lookback, reading the carry, and the scores of those days are replaced (deltas and
   explanations read the stored scores before them). ``--changed-accounts N`` first flips the priority of an old
   ticket of N accounts, as a real new day updates old tickets, so the night also rebuilds those accounts on every
   day (a change to the warehouse's staging tickets: run it on a copy, or accept that they drift).
   ``--after-full-build`` makes the night the first after a full build instead (``full_build_the_night_before``: the
   indicators and scores built in full as of the day before first), the night ``benchmarks.run full`` measures.
   Either way the night opens the warehouse anew, as a step does.
"""

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTPUTS = ("kpis.account_indicators_daily", "kpis.health_scores_daily", "kpis.health_score_changes")


def build_health_model(con, model, *, full_refresh: bool = False, chunk_rows: int | None = None) -> dict:
    """Build the health SQL model ``model`` as its asset does (cs_kpis/defs/health/assets.py): with its inputs'
    fingerprint and the carry its build keeps (the indicators' running sums, ``kpis._indicator_carry``), which
    ``build_incremental`` refuses to go without."""
    from cs_kpis.defs.health.fingerprints import CARRIES, FINGERPRINTS
    from cs_kpis.lib.sql import build_incremental

    return build_incremental(con, model, full_refresh=full_refresh, fingerprint=FINGERPRINTS.get(model.table),
                             carry=CARRIES.get(model.table), chunk_rows=chunk_rows)


def _rss() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def _upstream(warehouse: Path) -> dict:
    import dagster as dg

    from cs_kpis.definitions import defs

    d = defs()
    wanted = {dg.AssetKey(["kpis", "account_indicators_daily"]), dg.AssetKey(["kpis", "account_activity_daily"])}
    # the calendar is one multi-asset: take all of it
    sel = ((dg.AssetSelection.assets(*wanted).upstream() | dg.AssetSelection.assets(dg.AssetKey(["marts", "dim_month"])))
           - dg.AssetSelection.assets(*wanted)
           - dg.AssetSelection.key_prefixes(["raw"]) - dg.AssetSelection.key_prefixes(["landing"]))
    job = dg.define_asset_job("bench_upstream", selection=sel.without_checks())
    defs2 = dg.Definitions.merge(d, dg.Definitions(jobs=[job]))
    t = time.perf_counter()
    with dg.DagsterInstance.ephemeral() as instance:
        result = defs2.resolve_job_def("bench_upstream").execute_in_process(instance=instance)
        steps = {}
        for rec in instance.all_logs(result.run_id):
            ev = rec.dagster_event
            if ev is None or not ev.step_key:
                continue
            if ev.event_type_value == "STEP_START":
                steps[ev.step_key] = [rec.timestamp, None]
            elif ev.event_type_value == "STEP_SUCCESS" and ev.step_key in steps:
                steps[ev.step_key][1] = rec.timestamp
    per_step = {k: round(b - a, 2) for k, (a, b) in steps.items() if b is not None}
    return {"seconds": round(time.perf_counter() - t, 1), "success": result.success, "assets": len(per_step),
            "steps": dict(sorted(per_step.items(), key=lambda kv: -kv[1])), "peak_rss_mb": _rss()}


BILLING_FROM_LANDING = """
set TimeZone = 'UTC';
create schema if not exists staging;
create or replace table staging.stg_billing__customers as
with files as (
    select unnest(data) as c
    from read_json('{landing}/billing/customers/*/part-*.json', columns = {{'data': 'JSON[]'}})
)
select json_extract_string(c, '$.id') as customer_id, json_extract_string(c, '$.name') as customer_name,
       json_extract_string(c, '$.metadata.salesforce_account_id') as crm_account_id,
       upper(json_extract_string(c, '$.currency')) as currency
from files;
create or replace table staging.stg_billing__prices as
with files as (
    select unnest(data) as p
    from read_json('{landing}/billing/prices/*/part-*.json', columns = {{'data': 'JSON[]'}})
)
select json_extract_string(p, '$.id') as price_id, json_extract_string(p, '$.recurring.usage_type') as usage_type
from files;
create or replace table _bench_invoices as
with files as (
    select unnest(data) as i
    from read_json('{landing}/billing/invoices/*/part-*.json', columns = {{'data': 'JSON[]'}})
)
select json_extract_string(i, '$.id') as invoice_id, json_extract_string(i, '$.customer') as customer_id,
       json_extract_string(i, '$.status') as status,
       to_timestamp(cast(json_extract_string(i, '$.created') as bigint)) as created_at,
       to_timestamp(cast(json_extract_string(i, '$.due_date') as bigint)) as due_at,
       to_timestamp(cast(json_extract_string(i, '$.status_transitions.paid_at') as bigint)) as paid_at,
       to_timestamp(cast(json_extract_string(i, '$.status_transitions.voided_at') as bigint)) as voided_at,
       to_timestamp(cast(json_extract_string(i, '$.status_transitions.marked_uncollectible_at') as bigint))
           as marked_uncollectible_at,
       cast(json_extract_string(i, '$.amount_due') as bigint) as amount_due_minor,
       json_extract(i, '$.lines.data') as lines
from files;
create or replace table staging.stg_billing__invoices as
select * exclude (lines) from _bench_invoices;
create or replace table staging.stg_billing__invoice_lines as
with l as (select unnest(cast(lines as json[])) as l from _bench_invoices)
select json_extract_string(l, '$.id') as line_id, json_extract_string(l, '$.invoice') as invoice_id,
       json_extract_string(l, '$.parent.subscription_item_details.subscription') as subscription_id,
       json_extract_string(l, '$.pricing.price_details.price') as price_id,
       coalesce(cast(json_extract_string(l, '$.parent.subscription_item_details.proration') as boolean), false)
           as is_proration,
       to_timestamp(cast(json_extract_string(l, '$.period.start') as bigint)) as period_start,
       to_timestamp(cast(json_extract_string(l, '$.period.end') as bigint)) as period_end
from l;
drop table _bench_invoices;
"""


def _upstream_landing_billing(warehouse: Path, landing: Path, revenue_warehouse: Path) -> dict:
    """The upstream tables when billing was not loaded through dlt (hours at the large size): the Stripe
    staging tables the health models read come straight from the landing pages (invoices, lines, prices,
    customers) or from the revenue benchmark's warehouse (events, FX and the revenue marts, built there by
    the project's own SQL); CRM, product, support and NPS staging, the cross-reference and
    marts.accounts are built by the project's models from the raw tables loaded by dlt."""
    import duckdb

    from cs_kpis.defs.health.assets import product_config_rows, write_frame
    from cs_kpis.defs.landing.manifest import read_manifest
    from cs_kpis.defs.staging.assets import SQL_DIR as STAGING_SQL
    from cs_kpis.defs.xref.assets import SQL_DIR as XREF_SQL
    from cs_kpis.lib.sql import build, load_models

    steps = {}
    started = time.perf_counter()
    with duckdb.connect(str(warehouse)) as con:
        con.execute("set TimeZone = 'UTC'")
        t = time.perf_counter()
        con.execute(BILLING_FROM_LANDING.format(landing=landing.resolve()))
        steps["billing staging from landing"] = round(time.perf_counter() - t, 2)
        t = time.perf_counter()
        con.execute(f"attach '{revenue_warehouse.resolve()}' as rev (read_only)")
        con.execute("create schema if not exists marts")
        for table in ("staging.stg_billing__events", "staging.stg_billing__fx_rates", "marts.dim_day",
                      "marts.dim_month", "marts.dim_position", "marts.subscription_states",
                      "marts.subscription_periods", "marts.mrr_daily_changes"):
            con.execute(f"create or replace table {table} as select * from rev.{table}")
        con.execute("detach rev")
        steps["revenue tables copied"] = round(time.perf_counter() - t, 2)
        for model in load_models(STAGING_SQL, "staging"):
            if model.name.startswith("stg_billing__"):
                continue
            t = time.perf_counter()
            build(con, model)
            steps[model.table] = round(time.perf_counter() - t, 2)
        from cs_kpis.defs.marts.assets import SQL_DIR as MARTS_SQL

        for model in [m for m in load_models(XREF_SQL, "marts") if m.name == "account_xref"] + \
                [m for m in load_models(MARTS_SQL, "marts") if m.name == "accounts"]:
            t = time.perf_counter()
            build(con, model)
            steps[model.table] = round(time.perf_counter() - t, 2)
        manifest = read_manifest(landing) or {}
        write_frame(con, "kpis.health_product_config", product_config_rows(manifest.get("product") or {}),
                    {"value": "double"})
    return {"seconds": round(time.perf_counter() - started, 1), "steps": steps, "peak_rss_mb": _rss(),
            "billing": "from landing pages and the revenue benchmark (dlt billing load not used)"}


def _counts(con) -> dict:
    return {t: con.execute(f"select count(*) from {t}").fetchall()[0][0] for t in OUTPUTS}


ACTIVITY, INDICATORS = "kpis.account_activity_daily", "kpis.account_indicators_daily"


def full_indicators_and_scores(con) -> tuple[dict, dict, float, float]:
    """Full builds of the indicators and the scores, as of the calendar's last day: (the indicators' build stats,
    the scoring's, the seconds of each)."""
    from cs_kpis.defs.health import scoring
    from cs_kpis.defs.health.assets import models
    from cs_kpis.defs.health.health_score import load_current_config

    t = time.perf_counter()
    window = build_health_model(con, {m.table: m for m in models}[INDICATORS], full_refresh=True)
    t1 = time.perf_counter()
    stats = scoring.score_history(con, load_current_config(), full_refresh=True)
    return window, stats, round(t1 - t, 2), round(time.perf_counter() - t1, 2)


def history(warehouse: Path, memory_limit: str) -> dict:
    import duckdb

    from cs_kpis.defs.health.assets import models
    from cs_kpis.lib import incremental

    out = {"history_days": incremental.history_days()}
    by_table = {m.table: m for m in models}
    with duckdb.connect(str(warehouse), config={"memory_limit": memory_limit}) as con:
        t = time.perf_counter()
        out["activity"] = {k: str(v) for k, v in build_health_model(
            con, by_table[ACTIVITY], full_refresh=True).items()}
        out["activity_seconds"] = round(time.perf_counter() - t, 2)
        out["activity_rows"] = con.execute("select count(*) from kpis.account_activity_daily").fetchall()[0][0]
        window, stats, out["indicators_seconds"], out["scores_seconds"] = full_indicators_and_scores(con)
        out["score_chunks"] = stats["chunks"]
        out["history_start"] = str(window["history_start"])
        out["as_of"] = str(con.execute("select max(day) from marts.dim_day").fetchall()[0][0])
        out["rows"] = _counts(con)
    out["history_seconds"] = round(out["indicators_seconds"] + out["scores_seconds"], 2)
    out["history_seconds_with_activity"] = round(out["history_seconds"] + out["activity_seconds"], 2)
    out["peak_rss_mb"] = _rss()
    return out


def previous_night(con, tables: tuple[str, ...] = ("kpis.account_activity_daily", *OUTPUTS)) -> dict:
    """Recreate what the night before the as-of day left: ``tables`` without the as-of day, and the indicators'
    carry (``kpis._indicator_carry``) through the first day this night's window reads, as that night's build
    would have kept it (incremental.carry_keep). The history (or the last night) kept it for the night after the
    as-of day, one day later; without this the night sums the running sums from every activity row, which no
    real nightly does (session 31 measured its nightly that way: ``carry_read`` None). Returns the as-of day and
    the carry's day."""
    from cs_kpis.defs.health.assets import models
    from cs_kpis.defs.health.fingerprints import CARRIES
    from cs_kpis.lib import incremental

    as_of = con.execute("select max(day) from marts.dim_day").fetchall()[0][0]
    for table in tables:
        con.execute(f"delete from {table} where day >= ?", [as_of])
    carry = CARRIES[INDICATORS]
    spec = {m.table: m for m in models}[INDICATORS].incremental_spec(None, carry)
    last = incremental.current(con, INDICATORS)
    through = incremental.next_carry_day(con, spec, as_of - dt.timedelta(days=1))  # what the night before kept
    if last is None or through is None:
        return {"as_of": as_of, "carry_day": None}
    carry.ddl(con)
    incremental.carry_replace(con, spec, carry.totals(carry.source, incremental.sql_date(through)), through,
                              last["build_seq"])
    return {"as_of": as_of, "carry_day": through}


def reprioritise_old_tickets(con, n: int, days_old: int = 60, at_most: int = 300) -> dict:
    """Flip the priority of ``n`` tickets created ``days_old`` to ``at_most`` days before the as-of day (inside
    a 365-day history, before the nightly's window), one per account (urgent/high -> low, else -> urgent), as
    the new day's export updates old tickets: their open urgent/high days change. Returns the tickets and
    accounts touched."""
    got = con.execute(
        "select ticket_id, account_id from (select t.ticket_id, x.crm_account_id as account_id, row_number() over "
        "(partition by x.crm_account_id order by t.ticket_id) as k from staging.stg_support__tickets as t "
        "inner join marts.account_xref as x on x.source_system = 'support' "
        "and x.source_id = cast(t.organization_id as varchar) and x.crm_account_id is not null "
        "where cast(t.created_at as date) between (select max(day) from marts.dim_day) - ? "
        "and (select max(day) from marts.dim_day) - ?) where k = 1 "
        "order by hash(account_id) limit ?", [at_most, days_old, n]).fetchall()
    con.execute("update staging.stg_support__tickets set priority = case when priority in ('urgent', 'high') "
                "then 'low' else 'urgent' end where ticket_id in (select unnest(cast(? as bigint[])))",
                [[t for t, _ in got]])
    return {"tickets": len(got), "accounts": sorted({a for _, a in got})}


def full_build_the_night_before(con) -> dict:
    """Recreate what a full build left the night before the as-of day: the activity without the as-of day, and the
    indicators and scores built in full as of the day before (the as-of day's row of ``marts.dim_day``, which decides
    a build's as-of day, left out while they build, then put back). The night after it is the first nightly after a
    full build, the one ``benchmarks.run full`` measures: a full build writes each account range's next window at the
    range's end, where the first nightly deletes it, while every later nightly finds the window it deletes at the
    table's end, where the night before appended it (scoring.by_month). Returns the as-of day and the builds'
    seconds (not part of the night's figures)."""
    as_of = con.execute("select max(day) from marts.dim_day").fetchall()[0][0]
    con.execute(f"delete from {ACTIVITY} where day >= ?", [as_of])
    con.execute("create or replace temp table _benchmark_as_of_days as select * from marts.dim_day where day >= ?",
                [as_of])
    con.execute("delete from marts.dim_day where day >= ?", [as_of])
    try:
        _, _, indicators_seconds, scores_seconds = full_indicators_and_scores(con)
    finally:
        con.execute("insert into marts.dim_day select * from _benchmark_as_of_days")
        con.execute("drop table _benchmark_as_of_days")
    return {"as_of": as_of, "full_build_as_of": as_of - dt.timedelta(days=1),
            "indicators_seconds": indicators_seconds, "scores_seconds": scores_seconds}


def nightly(warehouse: Path, memory_limit: str, changed_accounts: int = 0, after_full_build: bool = False) -> dict:
    """The night (see the module's docstring), after ``previous_night``, or with ``after_full_build`` after
    ``full_build_the_night_before``. The state is prepared on one connection, which is then closed: the night opens
    the warehouse again, as each of the nightly's steps does, with none of its data in DuckDB's memory."""
    import duckdb

    from cs_kpis.defs.health import scoring
    from cs_kpis.defs.health.assets import models
    from cs_kpis.defs.health.health_score import load_current_config

    config = load_current_config()
    by_table = {m.table: m for m in models}
    out = {"lookback_days": by_table[INDICATORS].incremental_spec().lookback()}
    with duckdb.connect(str(warehouse), config={"memory_limit": memory_limit}) as con:
        before = full_build_the_night_before(con) if after_full_build else previous_night(con)
        out["full_build_the_night_before" if after_full_build else "previous_night"] = {
            k: str(v) for k, v in before.items()}
        if changed_accounts:  # the new day's export updates old tickets: these accounts are rebuilt on every day
            out["reprioritised"] = reprioritise_old_tickets(con, changed_accounts)
        con.execute("checkpoint")
    with duckdb.connect(str(warehouse), config={"memory_limit": memory_limit}) as con:
        t = time.perf_counter()
        out["activity"] = {k: str(v) for k, v in build_health_model(
            con, by_table[ACTIVITY]).items()}
        out["activity_seconds"] = round(time.perf_counter() - t, 2)
        t = time.perf_counter()
        stats = build_health_model(con, by_table[INDICATORS])
        out["indicators_seconds"] = round(time.perf_counter() - t, 2)
        out["indicators"] = {k: str(v) for k, v in stats.items()}
        t = time.perf_counter()
        scored = scoring.score_history(con, config)
        out["scores_seconds"] = round(time.perf_counter() - t, 2)
        out["scores"] = {k: str(v) for k, v in scored.items()}
        out["rows"] = _counts(con)
    out["nightly_seconds"] = round(out["indicators_seconds"] + out["scores_seconds"], 2)
    out["nightly_seconds_with_activity"] = round(out["nightly_seconds"] + out["activity_seconds"], 2)
    out["peak_rss_mb"] = _rss()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.health")
    p.add_argument("--warehouse", type=Path, required=True)
    p.add_argument("--landing", type=Path, required=True, help="the landing folder (product configuration)")
    p.add_argument("--memory-limit", default="12GB", help="DuckDB memory_limit for the health phases")
    p.add_argument("--phase", choices=["all", "upstream", "history", "nightly"], default="all")
    p.add_argument("--skip-upstream", action="store_true", help="the staging and marts tables are already built")
    p.add_argument("--billing-from", type=Path, default=None,
                   help="the revenue benchmark's warehouse: take billing from there and the landing pages "
                        "instead of raw billing tables (for a company whose billing was not loaded by dlt)")
    p.add_argument("--changed-accounts", type=int, default=0,
                   help="nightly: flip the priority of one old ticket of N accounts first, as a new day's export "
                        "updates old tickets (the large company's nightly rebuilt 7 to 9 accounts on every day); "
                        "this changes the warehouse's staging tickets")
    p.add_argument("--after-full-build", action="store_true",
                   help="nightly: first build the indicators and scores in full as of the day before, so that the "
                        "night is the first after a full build, as in benchmarks.run full (about a history's time "
                        "more; not in the night's figures)")
    args = p.parse_args(argv)
    os.environ["CS_KPIS_WAREHOUSE"] = str(args.warehouse.resolve())
    os.environ["CS_KPIS_LANDING_DIR"] = str(args.landing.resolve())
    if args.phase != "all":
        fn = {"upstream": lambda: (_upstream_landing_billing(args.warehouse, args.landing, args.billing_from)
                                   if args.billing_from else _upstream(args.warehouse)),
              "history": lambda: history(args.warehouse, args.memory_limit),
              "nightly": lambda: nightly(args.warehouse, args.memory_limit, args.changed_accounts,
                                   args.after_full_build)}[args.phase]
        print(json.dumps(fn()))
        return 0
    out = {"history_days": os.environ.get("CS_KPIS_HEALTH_HISTORY_DAYS", "all"), "load_average": os.getloadavg()}
    phases = ["history", "nightly"] if args.skip_upstream else ["upstream", "history", "nightly"]
    for phase in phases:
        extra = ["--billing-from", str(args.billing_from)] if args.billing_from else []
        if phase == "nightly" and args.changed_accounts:
            extra += ["--changed-accounts", str(args.changed_accounts)]
        if phase == "nightly" and args.after_full_build:
            extra += ["--after-full-build"]
        res = subprocess.run([sys.executable, "-m", "benchmarks.health", "--warehouse", str(args.warehouse),
                              "--landing", str(args.landing), "--memory-limit", args.memory_limit, "--phase", phase,
                              *extra],
                             check=False, capture_output=True, text=True, cwd=ROOT)
        if res.returncode:
            raise SystemExit(f"{phase} failed:\n{res.stderr[-4000:]}")
        out[phase] = json.loads(res.stdout.strip().splitlines()[-1])
        print(phase, json.dumps(out[phase]), flush=True)
    h, n = out["history"], out["nightly"]
    out["nightly_share"] = round(n["nightly_seconds"] / h["history_seconds"], 3)
    out["nightly_share_with_activity"] = round(n["nightly_seconds_with_activity"] / h["history_seconds_with_activity"], 3)
    out["load_average_after"] = os.getloadavg()
    (args.warehouse.parent / "health_bench.json").write_text(json.dumps(out, indent=1, default=str))
    print(json.dumps({k: out[k] for k in ("nightly_share", "nightly_share_with_activity")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
