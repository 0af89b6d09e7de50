"""The health history on synthetic copies of a company: more accounts without a bigger simulation.

    # a demo warehouse: python -m benchmarks.run full --size demo --work <dir>/demo --keep
    .venv/bin/python -m benchmarks.health_copies copies \\
        --from <dir>/demo/state/warehouse/cs_kpis.duckdb --to <dir>/h16.duckdb --copies 16
    CS_KPIS_HEALTH_HISTORY_DAYS=365 .venv/bin/python -m benchmarks.health_copies history \\
        --warehouse <dir>/h16.duckdb --out <dir>/run.duckdb --memory-limit 8GB --max-temp-size 4GB

``copies`` writes a new DuckDB file with the tables the indicators and scores read, each account (and every
id that leads to one: subscriptions, customers, invoices, lines, tickets, organizations) repeated
``--copies`` times under new ids (copy 0 keeps the original ids). The calendar, prices and the product
configuration are shared. ``history`` copies that file to ``--out`` and times a full build of
``kpis.account_indicators_daily`` then ``kpis.health_scores_daily`` and ``kpis.health_score_changes`` over
the configured history, as ``benchmarks.health``'s history phase does (without the activity table, which
the copies already hold), and prints one JSON line. Compare two ``--out`` files with ``compare``.

    .venv/bin/python -m benchmarks.health_copies nightly --warehouse <dir>/run.duckdb --out <dir>/night.duckdb
    .venv/bin/python -m benchmarks.health_copies compare <dir>/run.duckdb <dir>/night.duckdb

``nightly`` copies a ``history`` output, deletes its as-of day from the three outputs (the state of the night
before) and times the nightly build of the indicators and the scores as the assets run it (the lookback's
days rebuilt, in the planner's account ranges); ``compare`` against the ``history`` output it started from
is then the incremental-vs-full equality check. ``nightly --change-every 500`` first adds an event to the first
activity day of one account in 500 (0.2%: an old input changed, as a restated ticket does): the nightly then
rebuilds those accounts on every day; ``history --warehouse <night> --out <full>`` then ``compare <night>
<full>`` checks it against a full build of the same inputs.

    .venv/bin/python -m benchmarks.health_copies rebuild --warehouse <run>/state/warehouse/cs_kpis.duckdb \
        --out <dir>/night.duckdb --reprioritise 2
    .venv/bin/python -m benchmarks.health_copies rebuild --warehouse <dir>/night.duckdb --out <dir>/full.duckdb \
        --full-refresh
    .venv/bin/python -m benchmarks.health_copies compare <dir>/night.duckdb <dir>/full.duckdb --with-activity

``rebuild`` copies a run's warehouse (all three health tables built), flips the priority of N tickets created
60 to 300 days before the as-of day (one per account, as a new day's export updates old tickets), then builds
the activity, the indicators and the scores as the assets do and prints each build's mode, reason, accounts
rebuilt and seconds; rebuilt again from it with ``--full-refresh`` and compared, it is the check that rebuilding
only the changed accounts equals a full build.
"""

import argparse
import json
import os
import resource
import shutil
import sys
import time
from pathlib import Path

from benchmarks.health import build_health_model, previous_night, reprioritise_old_tickets

TABLES = ("kpis.account_activity_daily", "marts.subscription_periods", "marts.mrr_daily_changes",
          "marts.account_states", "marts.accounts", "marts.account_xref", "staging.stg_support__tickets",
          "staging.stg_support__ticket_metrics", "staging.stg_billing__invoices",
          "staging.stg_billing__invoice_lines", "staging.stg_billing__prices", "marts.subscription_states",
          "marts.dim_day", "kpis.health_product_config")
SHARED = {"staging.stg_billing__prices", "marts.dim_day", "kpis.health_product_config"}
TEXT_IDS = {"account_id", "parent_account_id", "root_account_id", "subscription_id", "customer_id", "invoice_id",
            "line_id", "event_id", "subscription_item_id", "crm_account_id", "source_account_key"}
NUMBER_IDS = {"ticket_id", "organization_id", "ticket_metric_id"}
NUMBER_STEP = 1_000_000_000_000
OUTPUTS = ("kpis.account_indicators_daily", "kpis.health_scores_daily", "kpis.health_score_changes")


def _copy_expr(table: str, column: str) -> str:
    if column in TEXT_IDS:
        return f"case when k = 0 or {column} is null then {column} else {column} || '-c' || cast(k as varchar) end"
    if column in NUMBER_IDS:
        return f"{column} + k * {NUMBER_STEP}"
    if table == "marts.account_xref" and column == "source_id":  # support's is the organization id as text
        return ("case when k = 0 or source_id is null then source_id when source_system = 'support' "
                f"then cast(cast(source_id as bigint) + k * {NUMBER_STEP} as varchar) "
                "else source_id || '-c' || cast(k as varchar) end")
    return column


def refuse_existing(target: Path) -> None:
    """Every command writes a new file: one that exists (a warehouse of the user's) is never replaced."""
    if target.exists():
        raise SystemExit(f"{target} exists: choose a new file")


def copy_to_new(source: Path, target: Path) -> None:
    refuse_existing(target)
    shutil.copy(source, target)


def copies(source: Path, target: Path, n: int) -> dict:
    import duckdb

    refuse_existing(target)
    out = {}
    with duckdb.connect(str(target)) as con:
        con.execute(f"attach '{source}' as src (read_only)")
        for table in TABLES:
            con.execute(f"create schema if not exists {table.split('.')[0]}")
            cols = [c for c, _ in columns_of(con, "src", table)]
            if table in SHARED:
                con.execute(f"create table {table} as select * from src.{table}")
            else:
                select = ", ".join(f"{_copy_expr(table, c)} as {c}" for c in cols)
                con.execute(f"create table {table} as select {select} from src.{table} "
                            f"cross join range({n}) as r(k) order by all")
            out[table] = con.execute(f"select count(*) from {table}").fetchall()[0][0]
        con.execute("detach src")
    return out


def history(warehouse: Path, out: Path, memory_limit: str, max_temp: str, chunk_rows: int | None) -> dict:
    import duckdb

    from cs_kpis.defs.health import scoring
    from cs_kpis.defs.health.assets import models
    from cs_kpis.defs.health.health_score import load_current_config

    copy_to_new(warehouse, out)
    indicators = {m.table: m for m in models}[OUTPUTS[0]]
    res = {"load_average_before": os.getloadavg(), "memory_limit": memory_limit, "max_temp_size": max_temp}
    config = {"memory_limit": memory_limit, "max_temp_directory_size": max_temp, "temp_directory": f"{out}.tmp"}
    with duckdb.connect(str(out), config=config) as con:
        t = time.perf_counter()
        stats = build_health_model(con, indicators, full_refresh=True, chunk_rows=chunk_rows)
        res["indicators_seconds"] = round(time.perf_counter() - t, 2)
        res["account_ranges"], res["rows_per_range"] = stats["account_ranges"], stats["rows_per_range"]
        t = time.perf_counter()
        scoring.score_history(con, load_current_config(), full_refresh=True)
        res["scores_seconds"] = round(time.perf_counter() - t, 2)
        res["rows"] = {table: con.execute(f"select count(*) from {table}").fetchall()[0][0] for table in OUTPUTS}
    res["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    res["load_average_after"] = os.getloadavg()
    return res


def change_old_activity(con, every: int) -> list[str]:
    """An old input changed for one account in ``every`` (every ``every``-th account id with activity): 1 more
    event on the account's first activity day, as a late event or a restated ticket changes an old day of
    kpis.account_activity_daily. Returns the accounts."""
    accounts = [r[0] for r in con.execute(
        "select account_id from (select account_id, row_number() over (order by account_id) as n "
        "from (select distinct account_id from kpis.account_activity_daily)) where n % ? = 0 order by 1",
        [every]).fetchall()]
    con.execute("update kpis.account_activity_daily as a set events = events + 1 "
                "from (select account_id, min(day) as day from kpis.account_activity_daily group by account_id) as f "
                "where f.account_id = a.account_id and f.day = a.day and a.account_id in "
                "(select unnest(cast(? as varchar[])))", [accounts])
    return accounts


def nightly(warehouse: Path, out: Path, memory_limit: str, max_temp: str, change_every: int | None = None) -> dict:
    import duckdb

    from cs_kpis.defs.health import scoring
    from cs_kpis.defs.health.assets import models
    from cs_kpis.defs.health.health_score import load_current_config

    copy_to_new(warehouse, out)
    indicators = {m.table: m for m in models}[OUTPUTS[0]]
    res = {"load_average_before": os.getloadavg(), "memory_limit": memory_limit, "max_temp_size": max_temp}
    config = {"memory_limit": memory_limit, "max_temp_directory_size": max_temp, "temp_directory": f"{out}.tmp"}
    with duckdb.connect(str(out), config=config) as con:
        res["previous_night"] = {k: str(v) for k, v in previous_night(con, OUTPUTS).items()}
        if change_every:  # the nightly rebuilds these accounts on every day (their older inputs changed)
            res["accounts_changed"] = len(change_old_activity(con, change_every))
        con.execute("checkpoint")
        t = time.perf_counter()
        stats = build_health_model(con, indicators)
        res["indicators_seconds"] = round(time.perf_counter() - t, 2)
        res["indicators"] = {k: str(v) for k, v in stats.items()}
        t = time.perf_counter()
        scored = scoring.score_history(con, load_current_config())
        res["scores_seconds"] = round(time.perf_counter() - t, 2)
        res["scores"] = {k: str(v) for k, v in scored.items()}
    res["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    res["load_average_after"] = os.getloadavg()
    return res


HEALTH_TABLES = ("kpis.account_activity_daily", *OUTPUTS)


def rebuild(warehouse: Path, out: Path, memory_limit: str, max_temp: str, full_refresh: bool,
            reprioritise: int) -> dict:
    """Copy ``warehouse`` (a run's, with the three health tables built) to ``out``, optionally flip the
    priority of ``reprioritise`` old tickets, and build the activity, the indicators and the scores as the
    assets do (planned, or ``full_refresh``), timed, with each build's reason."""
    import duckdb

    from cs_kpis.defs.health import scoring
    from cs_kpis.defs.health.assets import models
    from cs_kpis.defs.health.health_score import load_current_config

    copy_to_new(warehouse, out)
    by_table = {m.table: m for m in models}
    res = {"load_average_before": os.getloadavg(), "memory_limit": memory_limit}
    config = {"memory_limit": memory_limit, "max_temp_directory_size": max_temp, "temp_directory": f"{out}.tmp"}
    with duckdb.connect(str(out), config=config) as con:
        if reprioritise:
            res["reprioritised"] = reprioritise_old_tickets(con, reprioritise)
        con.execute("checkpoint")
        for table in HEALTH_TABLES[:2]:
            t = time.perf_counter()
            stats = build_health_model(con, by_table[table], full_refresh=full_refresh)
            res[table] = {"seconds": round(time.perf_counter() - t, 2), "mode": stats["mode"],
                          "reason": stats["reason"], "accounts_rebuilt": stats["accounts_rebuilt"],
                          "rows_of_rebuilt_accounts": stats["rows_of_rebuilt_accounts"],
                          "account_ranges": stats["account_ranges"]}
        t = time.perf_counter()
        scored = scoring.score_history(con, load_current_config(), full_refresh=full_refresh)
        res[scoring.SCORES_TABLE] = {"seconds": round(time.perf_counter() - t, 2), "mode": scored["mode"],
                                     "reason": scored["reason"], "accounts_rebuilt": scored["accounts_rebuilt"]}
    res["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    res["load_average_after"] = os.getloadavg()
    return res


def compare(a: Path, b: Path, tables: tuple[str, ...] = OUTPUTS,
            left_out: dict[str, tuple[str, ...]] | None = None) -> dict:
    """Rows of each table in ``a`` not in ``b`` and the reverse (``except all``, so duplicates count), on every
    column but the table's ``left_out`` ones (columns a run stamps)."""
    import duckdb

    out = {}
    with duckdb.connect() as con:
        con.execute(f"attach '{a}' as a (read_only)")
        con.execute(f"attach '{b}' as b (read_only)")
        for t in tables:
            skip = (left_out or {}).get(t, ())
            sel = ", ".join(c for c, _ in columns_of(con, "a", t) if c not in skip)
            out[t] = {"rows": [con.execute(f"select count(*) from {x}.{t}").fetchall()[0][0] for x in "ab"],
                      "a_not_b": con.execute(f"select count(*) from (select {sel} from a.{t} except all "
                                             f"select {sel} from b.{t})").fetchall()[0][0],
                      "b_not_a": con.execute(f"select count(*) from (select {sel} from b.{t} except all "
                                             f"select {sel} from a.{t})").fetchall()[0][0]}
    return out


def columns_of(con, catalog: str, table: str) -> list[tuple[str, str]]:
    """(name, type) of each column of ``table`` (schema.name) in the attached ``catalog``, in order."""
    schema, name = table.split(".")
    return con.execute("select column_name, data_type from information_schema.columns where table_catalog = ? and "
                       "table_schema = ? and table_name = ? order by ordinal_position", [catalog, schema, name]).fetchall()


def copies_cli(prog: str, help: str, copies: int):
    """A benchmark CLI's parser, its subcommands and the ``copies`` command (--from, --to, --copies), the same in
    every benchmark of synthetic copies."""
    p = argparse.ArgumentParser(prog=prog)
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("copies", help=help)
    c.add_argument("--from", dest="source", type=Path, required=True)
    c.add_argument("--to", dest="target", type=Path, required=True)
    c.add_argument("--copies", type=int, default=copies)
    return p, sub


def main(argv: list[str] | None = None) -> int:
    p, sub = copies_cli("python -m benchmarks.health_copies", "a warehouse of N copies of every account", 16)
    h = sub.add_parser("history", help="time a full build of the indicators and scores on a copy of it")
    h.add_argument("--warehouse", type=Path, required=True)
    h.add_argument("--out", type=Path, required=True)
    h.add_argument("--memory-limit", default="8GB")
    h.add_argument("--max-temp-size", default="4GB")
    h.add_argument("--chunk-rows", type=int, default=None, help="account-days per range (default: the model's)")
    n = sub.add_parser("nightly", help="time the nightly build on a copy of a history output")
    n.add_argument("--warehouse", type=Path, required=True, help="a history output")
    n.add_argument("--out", type=Path, required=True)
    n.add_argument("--memory-limit", default="8GB")
    n.add_argument("--max-temp-size", default="4GB")
    n.add_argument("--change-every", type=int, default=None,
                   help="change an old activity day of one account in N first (e.g. 500: 0.2%% of the accounts)")
    r = sub.add_parser("rebuild", help="time the activity, indicators and scores on a copy of a run's warehouse")
    r.add_argument("--warehouse", type=Path, required=True, help="a run's warehouse (benchmarks.run full --keep)")
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--memory-limit", default="8GB")
    r.add_argument("--max-temp-size", default="4GB")
    r.add_argument("--full-refresh", action="store_true")
    r.add_argument("--reprioritise", type=int, default=0, help="flip the priority of N old tickets first")
    k = sub.add_parser("compare", help="except all both ways between two history outputs")
    k.add_argument("a", type=Path)
    k.add_argument("b", type=Path)
    k.add_argument("--with-activity", action="store_true", help="kpis.account_activity_daily too")
    args = p.parse_args(argv)
    if args.cmd == "copies":
        out = copies(args.source.resolve(), args.target.resolve(), args.copies)
    elif args.cmd == "history":
        out = history(args.warehouse, args.out, args.memory_limit, args.max_temp_size, args.chunk_rows)
    elif args.cmd == "nightly":
        out = nightly(args.warehouse, args.out, args.memory_limit, args.max_temp_size, args.change_every)
    elif args.cmd == "rebuild":
        out = rebuild(args.warehouse, args.out, args.memory_limit, args.max_temp_size, args.full_refresh,
                      args.reprioritise)
    else:
        out = compare(args.a.resolve(), args.b.resolve(), HEALTH_TABLES if args.with_activity else OUTPUTS)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
