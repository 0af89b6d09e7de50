"""The marts and revenue KPIs on synthetic copies of a company: each model's seconds at a larger volume.

    # a demo warehouse: python -m benchmarks.run full --size demo --work <dir>/demo --keep
    .venv/bin/python -m benchmarks.marts_copies copies \\
        --from <dir>/demo/state/warehouse/cs_kpis.duckdb --to <dir>/m100.duckdb --copies 100
    .venv/bin/python -m benchmarks.marts_copies build --warehouse <dir>/m100.duckdb --out <dir>/a.duckdb \\
        --memory-limit 8GB
    .venv/bin/python -m benchmarks.marts_copies compare <dir>/a.duckdb <dir>/b.duckdb

``copies`` writes a new DuckDB file with the inputs of the marts: the billing staging tables, the CRM accounts
and their history, and marts.account_xref, each repeated ``--copies`` times under new ids (copy 0 keeps the
original ids). An id is suffixed wherever it appears, in id columns and inside the JSON texts (Stripe
objects, discount lists), so a copy's events, invoices and lists point at its own subscriptions and
customers. Prices, products, coupons, FX rates and the calendar are shared. ``build`` copies that file to
``--out``, builds every marts and revenue KPI model in dependency order (the way the assets run them, DuckDB
engine) and the heaviest checks' queries, and prints one JSON line with each one's seconds and CPU seconds.
``check-fx`` times the invoice check's query on a copy of a ``build`` output with 60 months of FX rates per
currency (``--reference``: another checkout's query too, alternating) and compares their per-customer
figures. ``compare`` is ``except all`` both ways on every table ``build`` writes, doubles rounded to 12
significant digits (run two builds, e.g. before and after a change, from a checkout of each code).

    .venv/bin/python -m benchmarks.marts_copies check-fx --warehouse <dir>/a.duckdb --out <dir>/fx.duckdb \
        --reference <a checkout of the code before>

``ab`` times one model's SQL, this checkout's against ``--reference``'s (another checkout, e.g. a git archive of
the code before), alternating in one connection on a copy of a ``build`` output, and compares the two tables
(``except all`` both ways, exact, and their column types).

    .venv/bin/python -m benchmarks.marts_copies ab --warehouse <dir>/a.duckdb --out <dir>/ab.duckdb \
        --model subscription_history_states --reference <a checkout of the code before> --rounds 4
"""

import json
import os
import resource
import time
from pathlib import Path

from benchmarks.health_copies import columns_of, copies_cli, copy_to_new, refuse_existing

COPIED = ("staging.stg_billing__customers", "staging.stg_billing__events", "staging.stg_billing__invoice_items",
          "staging.stg_billing__invoice_lines", "staging.stg_billing__invoices", "staging.stg_billing__subscription_items",
          "staging.stg_billing__subscriptions", "staging.stg_crm__accounts", "staging.stg_crm__account_history",
          "marts.account_xref")
SHARED = ("staging.stg_billing__prices", "staging.stg_billing__products", "staging.stg_billing__coupons",
          "staging.stg_billing__fx_rates", "marts.dim_day", "marts.dim_month", "marts.dim_position",
          "raw._row_accounting")
# Stripe ids of the objects that belong to one customer (not prices, products or coupons), workspace ids, and
# Salesforce account ids (18 characters from 001): suffixed wherever they appear, JSON text included
ID_PATTERN = r"\b((?:cus|sub|si|in|il|ii|di|evt|ws)_[A-Za-z0-9]+|001[A-Za-z0-9]{15})\b"
SCHEMAS = ("marts", "kpis")


def _copy_expr(column: str, data_type: str) -> str:
    if data_type not in ("VARCHAR", "JSON"):
        return column
    suffixed = f"regexp_replace(cast({column} as varchar), '{ID_PATTERN}', '\\1-c' || cast(k as varchar), 'g')"
    if data_type == "JSON":
        suffixed = f"cast({suffixed} as json)"
    return f"case when k = 0 or {column} is null then {column} else {suffixed} end"


def copies(source: Path, target: Path, n: int) -> dict:
    import duckdb

    refuse_existing(target)
    out = {}
    with duckdb.connect(str(target)) as con:
        con.execute(f"attach '{source}' as src (read_only)")
        for table in SHARED + COPIED:
            con.execute(f"create schema if not exists {table.split('.')[0]}")
            cols = columns_of(con, "src", table)
            if table in SHARED:
                con.execute(f"create table {table} as select * from src.{table}")
            else:
                select = ", ".join(f"{_copy_expr(c, t)} as {c}" for c, t in cols)
                con.execute(f"create table {table} as select {select} from src.{table} "
                            f"cross join range({n}) as r(k)")
            out[table] = con.execute(f"select count(*) from {table}").fetchall()[0][0]
        con.execute("detach src")
    return out


def _steps():
    """(name, kind, thing) in dependency order: the marts and kpis SQL models, then the heavy checks' queries."""
    from graphlib import TopologicalSorter

    from cs_kpis.defs.kpis import checks as kpi_checks
    from cs_kpis.defs.kpis.assets import kpi_models
    from cs_kpis.defs.marts import checks as mart_checks
    from cs_kpis.defs.marts.assets import models as mart_models

    models = {m.table: m for m in [*mart_models, *kpi_models()]}
    graph = {t: {".".join(d.path) for d in m.deps if ".".join(d.path) in models} for t, m in models.items()}
    steps = [(t, "model", models[t]) for t in TopologicalSorter(graph).static_order()]
    steps.append(("check:" + kpi_checks.MRR_MATCHES_INVOICED_RECURRING_REVENUE, "check",
                  kpi_checks.invoice_gap_sql(0.1)))
    steps.append(("check:" + mart_checks.HISTORY_MATCHES_INVOICES, "check", mart_checks.history_check_sql(0.01)))
    return steps


def build(warehouse: Path, out: Path, memory_limit: str, threads: int | None, only: list[str] | None) -> dict:
    import duckdb

    from cs_kpis.lib.sql import build as build_model

    copy_to_new(warehouse, out)
    import cs_kpis

    res = {"code": str(Path(cs_kpis.__file__).parent), "load_average_before": os.getloadavg(),
           "memory_limit": memory_limit, "seconds": {}, "cpu_seconds": {}}
    config = {"memory_limit": memory_limit, "temp_directory": f"{out}.tmp"}
    if threads:
        config["threads"] = threads
    with duckdb.connect(str(out), config=config) as con:
        con.execute("set TimeZone = 'UTC'")
        for name, kind, thing in _steps():
            if only and name not in only and not (kind == "model" and thing.name in only):
                continue
            t, cpu = time.perf_counter(), time.process_time()
            if kind == "model":
                build_model(con, thing)
            else:
                res.setdefault("check_rows", {})[name] = con.execute(
                    f"select count(*) from ({thing}) as v").fetchall()[0][0]
            res["seconds"][name] = round(time.perf_counter() - t, 2)
            res["cpu_seconds"][name] = round(time.process_time() - cpu, 2)
        res["total_seconds"] = round(sum(res["seconds"].values()), 2)
        res["total_cpu_seconds"] = round(sum(res["cpu_seconds"].values()), 2)
    res["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    res["load_average_after"] = os.getloadavg()
    return res


def built_tables(path: Path) -> tuple[str, ...]:
    import duckdb

    with duckdb.connect(str(path), read_only=True) as con:
        return tuple(f"{s}.{t}" for s, t in con.execute(
            "select table_schema, table_name from information_schema.tables where table_schema in ('marts', 'kpis') "
            "and table_type = 'BASE TABLE' order by all").fetchall() if f"{s}.{t}" not in SHARED + COPIED)


def check_fx(warehouse: Path, out: Path, rate_days: int, reference: Path | None, rounds: int) -> dict:
    """Time ``mrr_matches_invoiced_recurring_revenue``'s query on a copy of a ``build`` output whose FX rates are
    extended to ``rate_days`` per currency (earlier days at each currency's first rate, as 60 months of history
    hold), this checkout's against ``reference``'s (another checkout's ``cs_kpis/defs/kpis/checks.py``),
    alternating, in one process; and compare their per-customer invoiced MRR."""
    import importlib.util

    import duckdb

    from cs_kpis.defs.kpis import checks

    versions = {"this": checks}
    if reference is not None:
        spec = importlib.util.spec_from_file_location("reference_checks", reference / "cs_kpis/defs/kpis/checks.py")
        versions["reference"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(versions["reference"])
    copy_to_new(warehouse, out)
    res = {"load_average_before": os.getloadavg(), "rounds": []}
    with duckdb.connect(str(out)) as con:
        con.execute("set TimeZone = 'UTC'")
        con.execute(f"""insert into staging.stg_billing__fx_rates
            select cast(f.rate_date - (r.k * interval 1 day) as date), f.currency, f.rate
            from (select currency, min(rate_date) as rate_date, arg_min(rate, rate_date) as rate, count(*) as n
                  from staging.stg_billing__fx_rates group by currency) as f
            inner join range(1, {rate_days}) as r(k) on r.k <= {rate_days} - f.n""")
        res["rates_per_currency"] = dict(con.execute(
            "select currency, count(*) from staging.stg_billing__fx_rates group by all order by all").fetchall())
        for _ in range(rounds):
            row = {}
            for name, module in reversed(versions.items()):
                t, cpu = time.perf_counter(), time.process_time()
                violations = con.execute(f"select count(*) from ({module.invoice_gap_sql(0.1)}) as v").fetchall()[0][0]
                row[name] = {"seconds": round(time.perf_counter() - t, 2), "cpu_seconds": round(time.process_time() - cpu, 2),
                             "violations": violations}
            res["rounds"].append(row)
        if reference is not None:
            a, b = (versions[v].invoiced_recurring_sql() for v in ("reference", "this"))
            res["invoiced_mrr_compared"] = dict(zip(
                ("rows", "missing_either_side", "not_bit_equal", "beyond_1e-9_relative", "max_abs_diff"),
                con.execute(f"""select count(*), count(*) filter (where x.month is null or y.month is null),
                    count(*) filter (where x.invoiced_mrr is distinct from y.invoiced_mrr),
                    count(*) filter (where abs(x.invoiced_mrr - y.invoiced_mrr)
                                     > 1e-9 * greatest(1, abs(x.invoiced_mrr))),
                    max(abs(x.invoiced_mrr - y.invoiced_mrr))
                    from ({a}) as x full outer join ({b}) as y
                        on x.month = y.month and x.customer_id = y.customer_id""").fetchall()[0]))
    res["load_average_after"] = os.getloadavg()
    return res


def ab(warehouse: Path, out: Path, model: str, reference: Path, rounds: int, memory_limit: str) -> dict:
    """One model's SQL from this checkout and from ``reference``, built alternately on a copy of a build output
    (wall and CPU seconds per round), then both tables compared exactly (``except all`` both ways)."""
    import duckdb

    from cs_kpis.config import render_sql
    from cs_kpis.defs.kpis.assets import kpi_models
    from cs_kpis.defs.marts.assets import models as mart_models
    from cs_kpis.lib.sql import with_sql_parts

    this = next(m for m in [*mart_models, *kpi_models()] if m.name == model)
    sql_dir = Path("cs_kpis/defs") / this.schema / "sql"
    other = with_sql_parts((reference / sql_dir / f"{model}.sql").read_text(), reference / sql_dir)
    versions = {"this": render_sql(this.sql, where=this.table), "reference": render_sql(other, where=this.table)}
    copy_to_new(warehouse, out)
    res = {"model": this.table, "load_average_before": os.getloadavg(), "rounds": []}
    with duckdb.connect(str(out), config={"memory_limit": memory_limit, "temp_directory": f"{out}.tmp"}) as con:
        con.execute("set TimeZone = 'UTC'")
        for r in range(rounds):
            row = {}
            for name in (("reference", "this") if r % 2 == 0 else ("this", "reference")):
                t, cpu = time.perf_counter(), time.process_time()
                con.execute(f"create or replace table _ab_{name} as {versions[name]}")
                row[name] = {"seconds": round(time.perf_counter() - t, 2), "cpu_seconds": round(time.process_time() - cpu, 2)}
            res["rounds"].append(row)
        count = lambda sql: con.execute(f"select count(*) from ({sql})").fetchall()[0][0]
        res["rows"] = count("select * from _ab_this")
        res["this_not_reference"] = count("select * from _ab_this except all select * from _ab_reference")
        res["reference_not_this"] = count("select * from _ab_reference except all select * from _ab_this")
        res["same_column_types"] = con.execute("describe _ab_this").fetchall() == con.execute(
            "describe _ab_reference").fetchall()
    res["load_average_after"] = os.getloadavg()
    return res


def compare_tables(a: Path, b: Path, tables: tuple[str, ...], digits: int = 12) -> dict:
    """Rows of each table in ``a`` not in ``b`` and the reverse (``except all``), every column compared as it
    is except doubles, rounded to ``digits`` significant digits: DuckDB's parallel sums and averages add in any
    order, so two runs of the same code differ in the last bits of a few (kpis.revenue_by_grain's
    ``mean_logo_churn_6m`` and ``clv_6m``). ``exact_a_not_b`` counts the rows that differ at all."""
    import duckdb

    out = {}
    with duckdb.connect() as con:
        con.execute(f"attach '{a}' as a (read_only)")
        con.execute(f"attach '{b}' as b (read_only)")
        for t in tables:
            cols = columns_of(con, "a", t)
            sel = ", ".join(f"case when {c} = 0 or not isfinite({c}) then {c} "
                            f"else round({c} / pow(10, floor(log10(abs({c}))) - {digits - 1})) end as {c}"
                            if d == "DOUBLE" else c for c, d in cols)
            count = lambda sql: con.execute(f"select count(*) from ({sql})").fetchall()[0][0]
            out[t] = {"rows": [count(f"select * from {x}.{t}") for x in "ab"],
                      "a_not_b": count(f"select {sel} from a.{t} except all select {sel} from b.{t}"),
                      "b_not_a": count(f"select {sel} from b.{t} except all select {sel} from a.{t}"),
                      "exact_a_not_b": count(f"select * from a.{t} except all select * from b.{t}")}
    return out


def main(argv: list[str] | None = None) -> int:
    p, sub = copies_cli("python -m benchmarks.marts_copies",
                        "a warehouse of N copies of every account's billing and CRM inputs", 100)
    b = sub.add_parser("build", help="time every marts and revenue KPI model (and the heavy checks) on a copy")
    b.add_argument("--warehouse", type=Path, required=True)
    b.add_argument("--out", type=Path, required=True)
    b.add_argument("--memory-limit", default="8GB")
    b.add_argument("--threads", type=int, default=None)
    b.add_argument("--only", nargs="*", default=None, help="model names or check:<name> to time (default: all)")
    f = sub.add_parser("check-fx", help="time the invoice check's query with more FX rates per currency, "
                                        "against another checkout's")
    f.add_argument("--warehouse", type=Path, required=True, help="a build output")
    f.add_argument("--out", type=Path, required=True)
    f.add_argument("--rate-days", type=int, default=1826, help="rates per currency (1826: 60 months)")
    f.add_argument("--reference", type=Path, default=None, help="another checkout (e.g. a git archive) to time too")
    f.add_argument("--rounds", type=int, default=2)
    a = sub.add_parser("ab", help="time one model's SQL against another checkout's, alternating, and compare")
    a.add_argument("--warehouse", type=Path, required=True, help="a build output")
    a.add_argument("--out", type=Path, required=True)
    a.add_argument("--model", required=True, help="a marts or kpis model name, e.g. subscription_history_states")
    a.add_argument("--reference", type=Path, required=True, help="another checkout (e.g. a git archive)")
    a.add_argument("--rounds", type=int, default=4)
    a.add_argument("--memory-limit", default="6GB")
    k = sub.add_parser("compare", help="except all both ways between two build outputs")
    k.add_argument("a", type=Path)
    k.add_argument("b", type=Path)
    args = p.parse_args(argv)
    if args.cmd == "copies":
        print(json.dumps(copies(args.source, args.target, args.copies)))
    elif args.cmd == "build":
        print(json.dumps(build(args.warehouse, args.out, args.memory_limit, args.threads, args.only)))
    elif args.cmd == "check-fx":
        print(json.dumps(check_fx(args.warehouse, args.out, args.rate_days, args.reference, args.rounds),
                         default=str))
    elif args.cmd == "ab":
        print(json.dumps(ab(args.warehouse, args.out, args.model, args.reference, args.rounds, args.memory_limit)))
    else:
        print(json.dumps(compare_tables(args.a, args.b, built_tables(args.a))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
