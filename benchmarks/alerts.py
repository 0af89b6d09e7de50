"""The alert engine on synthetic copies of a company: the large company's volume without the large warehouse.

    # a demo warehouse with a 365-day health history: python -m benchmarks.run full --size demo --work <dir>/demo --keep
    .venv/bin/python -m benchmarks.alerts copies \\
        --from <dir>/demo/state/warehouse/cs_kpis.duckdb --to <dir>/a32.duckdb --copies 32
    /usr/bin/time -v .venv/bin/python -m benchmarks.alerts run --warehouse <dir>/a32.duckdb \\
        --out <dir>/full.duckdb --memory-limit 8GB
    /usr/bin/time -v .venv/bin/python -m benchmarks.alerts run --warehouse <dir>/a32.duckdb \\
        --out <dir>/nightly.duckdb --memory-limit 8GB --nightly
    .venv/bin/python -m benchmarks.alerts run --warehouse <dir>/a32.duckdb \\
        --out <dir>/nightly_full.duckdb --memory-limit 8GB --nightly --full-refresh
    .venv/bin/python -m benchmarks.alerts compare <dir>/full.duckdb <dir>/other.duckdb
    .venv/bin/python -m benchmarks.alerts compare --log-seq --state <dir>/nightly.duckdb <dir>/nightly_full.duckdb

``copies`` writes a new DuckDB file with every table the alert rules read (cs_kpis/defs/alerts/sql), each
account (and its contacts, their product users and events, NPS responses) repeated ``--copies`` times under
new ids (copy 0 keeps the original ids). Only the product events of Champion/Admin contacts are copied (the
only events an alert reads), with the columns it reads. The CSMs and the product configuration are shared.

``run`` copies that file to ``--out`` and times ``engine.run_engine`` on it (an empty alerts schema: the
first run). With ``--nightly`` it first runs the engine on the warehouse without its last day (the previous
night, not timed), puts the day back, and times the run that follows: one new day, as the nightly sees it.
Around it it records in kpis._build_window what the health layer records (a full build of its tables before
the previous night, a nightly rebuild of their last lookback days before the timed run), so the timed run is
the alerts' nightly window (engine.plan); ``--full-refresh`` times a full build at that point instead.
``--rebuilt-accounts N`` (with ``--nightly``): before the timed run, N accounts' older days are restated (their
health band on 11 days about 200 days back, their open urgent/high tickets on 41 days about 100 days back) and
the health nightly's records list them as rebuilt on every day, as the health layer does when their older
inputs changed (the large company's nightly of session 12: 8 accounts).
It prints one JSON line (seconds, peak RSS of the process, rows). ``compare`` counts the rows of the alert
tables of two outputs that the other lacks (``except all`` both ways), leaving out the columns a run stamps
(``logged_at``, ``run_id``). Run it from the code to measure (PYTHONPATH=<an export of another commit>
measures that commit's engine).
"""

import json
import os
import resource
import sys
import time
from pathlib import Path

from benchmarks.health_copies import columns_of, copies_cli, copy_to_new, refuse_existing
from benchmarks.health_copies import compare as compare_tables

TABLES = ("kpis.account_indicators_daily", "kpis.health_scores_daily", "kpis.health_score_changes",
          "kpis.account_activity_daily", "staging.stg_crm__contacts", "staging.stg_product__events",
          "staging.stg_nps__survey_responses", "marts.accounts", "marts.account_states")
SHARED = ("kpis.health_product_config", "staging.stg_crm__users")
TEXT_IDS = {"account_id", "crm_account_id", "parent_account_id", "root_account_id", "contact_id", "product_user_id",
            "response_id", "person_id", "message_id", "workspace_id", "anonymous_id"}
EVENT_COLUMNS = ("message_id", "user_id", "occurred_at")
"""the product events' columns an alert reads (the others, JSON properties among them, are left out)"""
DAILY = ("kpis.account_indicators_daily", "kpis.health_scores_daily", "kpis.health_score_changes",
         "kpis.account_activity_daily")
ROLES = ("Champion", "Admin")


def _copy_expr(table: str, column: str, kind: str) -> str:
    ids = TEXT_IDS | ({"user_id"} if table == "staging.stg_product__events" else set())
    if column in ids and kind == "VARCHAR":
        return f"case when k = 0 or {column} is null then {column} else {column} || '-c' || cast(k as varchar) end"
    return column


def copies(source: Path, target: Path, n: int) -> dict:
    import duckdb

    refuse_existing(target)
    out = {}
    roles = ", ".join(f"'{r}'" for r in ROLES)
    with duckdb.connect(str(target)) as con:
        con.execute(f"attach '{source}' as src (read_only)")
        for table in TABLES + SHARED:
            con.execute(f"create schema if not exists {table.split('.')[0]}")
            cols = columns_of(con, "src", table)
            if table in SHARED:
                con.execute(f"create table {table} as select * from src.{table}")
                continue
            source_rows = f"src.{table}"
            if table == "staging.stg_product__events":  # only the events an alert reads: champions' and admins'
                source_rows = (f"(select * from src.{table} where user_id in (select product_user_id from "
                               f"src.staging.stg_crm__contacts where role in ({roles})))")
                cols = [(c, t) for c, t in cols if c in EVENT_COLUMNS]
            select = ", ".join(f"{_copy_expr(table, c, t)} as {c}" for c, t in cols)
            con.execute(f"create table {table} as select {select} from {source_rows} "
                        f"cross join range({n}) as r(k) order by all")
            out[table] = con.execute(f"select count(*) from {table}").fetchall()[0][0]
        con.execute("detach src")
    return out


def record_upstream(con, mode: str, start, as_of, accounts: tuple[str, ...] = ()) -> None:
    """What the health layer's builds record in kpis._build_window (a full build, or a nightly from ``start``,
    with ``accounts`` rebuilt on every day): the alerts' planner reads it (cs_kpis/defs/alerts/engine.py
    ``plan``)."""
    from cs_kpis.defs.alerts import engine
    from cs_kpis.lib import incremental

    for t in engine.UPSTREAM:
        incremental.record(con, incremental.Incremental(t, "benchmark"),
                           incremental.BuildWindow(mode, start, None, as_of, "benchmark", "benchmarks.alerts",
                                                   accounts))


def restate_accounts(con, n: int, last) -> tuple[str, ...]:
    """``n`` accounts (a fixed pick: by md5 of the id) get other older days: health red on days 200..190 before
    ``last``, two more open urgent/high tickets on days 100..60 before it. Returns them, sorted."""
    import datetime as dt

    picked = [r[0] for r in con.execute(
        "select account_id from (select distinct account_id from kpis.account_indicators_daily) "
        "order by md5(account_id) limit ?", [n]).fetchall()]
    days = {"red": (last - dt.timedelta(days=200), last - dt.timedelta(days=190)),
            "tickets": (last - dt.timedelta(days=100), last - dt.timedelta(days=60))}
    con.execute("update kpis.health_scores_daily set band = 'red', score = least(score, 30) "
                "where account_id in (select unnest(cast(? as varchar[]))) and day between ? and ?",
                [picked, *days["red"]])
    con.execute("update kpis.account_indicators_daily set open_urgent_high = open_urgent_high + 2 "
                "where account_id in (select unnest(cast(? as varchar[]))) and day between ? and ?",
                [picked, *days["tickets"]])
    return tuple(sorted(picked))


def run(warehouse: Path, out: Path, memory_limit: str, nightly: bool, full_refresh: bool = False,
        stage: str = "both", rebuilt_accounts: int = 0) -> dict:
    import datetime as dt

    import duckdb

    from cs_kpis.defs.alerts import engine

    if stage != "timed":
        copy_to_new(warehouse, out)
    else:
        # the timed stage writes to --out in place: only a copy a "previous" stage made (its benchmark build
        # records), never a warehouse of real work
        with duckdb.connect(str(out), read_only=True) as con:
            marked = con.execute("select count(*) from kpis._build_window where sql_version = 'benchmark'"
                                 ).fetchall()[0][0] if con.execute(
                "select count(*) from information_schema.tables where table_schema = 'kpis' and "
                "table_name = '_build_window'").fetchall()[0][0] else 0
        if not marked:
            raise SystemExit(f"{out}: not a copy made by `--stage previous` (no benchmark build records); "
                             "the timed stage writes to it in place")
    res = {"load_average_before": os.getloadavg(), "memory_limit": memory_limit, "nightly": nightly, "stage": stage}
    rules = engine.load_rules()
    with duckdb.connect(str(out), config={"memory_limit": memory_limit, "temp_directory": f"{out}.tmp"}) as con:
        if nightly and stage != "timed":
            last = con.execute("select max(day) from kpis.account_indicators_daily").fetchall()[0][0]
            for t in DAILY:
                con.execute(f"create table {t}_held as select * from {t} where day = ?", [last])
                con.execute(f"delete from {t} where day = ?", [last])
            record_upstream(con, "full", None, last - dt.timedelta(days=1))
            t0 = time.perf_counter()
            engine.run_engine(con, rules, {}, run_id="previous night")
            res["previous_night_seconds"] = round(time.perf_counter() - t0, 2)
            for t in DAILY:
                con.execute(f"insert into {t} select * from {t}_held")
                con.execute(f"drop table {t}_held")
            # the health nightly rebuilds its last days (the lookback): the first day it rewrote; and every day
            # of the accounts whose older inputs changed
            accounts = restate_accounts(con, rebuilt_accounts, last) if rebuilt_accounts else ()
            record_upstream(con, "incremental", last - dt.timedelta(days=engine._lookback() - 1), last, accounts)
            res["rebuilt_accounts"] = len(accounts)
        if stage == "previous":  # the timed run follows in another process (its own peak RSS): --stage timed
            res["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
            return res
        t0 = time.perf_counter()
        result = engine.run_engine(con, rules, {}, run_id="timed", full_refresh=full_refresh)
        res["seconds"] = round(time.perf_counter() - t0, 2)
        res["build"] = {k: str(v) for k, v in result["build"].items()}
        res["as_of"] = str(result["as_of"])
        res["appended"] = result["appended"]
        res["rows"] = {t: con.execute(f"select count(*) from {t}").fetchall()[0][0]
                       for t in ("alerts.alert_candidates", "alerts.alert_log")}
    res["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    res["load_average_after"] = os.getloadavg()
    return res


STAMPED = {"alerts.alert_log": ("logged_at", "run_id", "log_seq")}


def compare(a: Path, b: Path, log_seq: bool = False, state: bool = False) -> dict:
    """Rows of each alert table in ``a`` not in ``b`` and the reverse (``except all``: duplicates count);
    ``log_seq``: the log's sequence numbers compared too (two runs of the same nights); ``state``: the walk
    state and condition tail the next night starts from compared too."""
    tables = ("alerts.alert_candidates", "alerts.alert_log")
    if state:
        tables += ("alerts._walk_state", "alerts._conditions_tail")
    stamped = {"alerts.alert_log": ("logged_at", "run_id")} if log_seq else STAMPED
    return compare_tables(a, b, tables, stamped)


def main(argv: list[str] | None = None) -> int:
    p, sub = copies_cli("python -m benchmarks.alerts",
                        "a warehouse of N copies of every account, with what the alerts read", 32)
    r = sub.add_parser("run", help="time the alert engine on a copy of it")
    r.add_argument("--warehouse", type=Path, required=True)
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--memory-limit", default="8GB")
    r.add_argument("--nightly", action="store_true", help="time the run after the previous night's (one new day)")
    r.add_argument("--stage", choices=("both", "previous", "timed"), default="both",
                   help="previous: only copy and run the previous night into --out; timed: only the timed run, on "
                        "--out as it is (so its peak RSS is its own)")
    r.add_argument("--rebuilt-accounts", type=int, default=0, metavar="N",
                   help="with --nightly: restate N accounts' older days and list them as rebuilt by the health nightly")
    r.add_argument("--full-refresh", action="store_true",
                   help="time a full build (not the nightly window) after the previous night's")
    k = sub.add_parser("compare", help="except all both ways between two outputs' alert tables")
    k.add_argument("a", type=Path)
    k.add_argument("b", type=Path)
    k.add_argument("--log-seq", action="store_true", help="compare the log's log_seq too")
    k.add_argument("--state", action="store_true", help="compare the walk state and condition tail too")
    args = p.parse_args(argv)
    if args.cmd == "copies":
        out = copies(args.source.resolve(), args.target.resolve(), args.copies)
    elif args.cmd == "run":
        out = run(args.warehouse, args.out, args.memory_limit, args.nightly, args.full_refresh, args.stage,
                  args.rebuilt_accounts)
    else:
        out = compare(args.a.resolve(), args.b.resolve(), args.log_seq, args.state)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
