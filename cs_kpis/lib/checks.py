"""Check factories. Every check is a query for the rows that break a rule: no rows, no problem.

Failing rows come back as a count and a markdown sample in the check's metadata, so the on-call
engineer sees *which* rows broke the rule without opening a SQL console. Blocking checks (the default
for anything downstream KPIs rely on) stop downstream assets in the same run.
"""

from collections.abc import Callable, Sequence

import dagster as dg
from dagster_duckdb import DuckDBResource

from cs_kpis.lib.settings_resources import CheckThresholdsResource
from cs_kpis.lib.sql import WAREHOUSE_POOL

SAMPLE_ROWS = 10


def _markdown(columns: Sequence[str], rows: Sequence[tuple]) -> str:
    head = "| " + " | ".join(columns) + " |\n| " + " | ".join("---" for _ in columns) + " |\n"
    return head + "\n".join("| " + " | ".join(str(v) for v in r) + " |" for r in rows)


def run_rule(con, violations_sql: str, params: Sequence | None = None) -> tuple[int, str]:
    """Count the violating rows and render a sample of them."""
    count = con.execute(f"select count(*) from ({violations_sql}) as v", params or None).fetchall()[0][0]
    if not count:
        return 0, ""
    cur = con.execute(f"select * from ({violations_sql}) as v limit {SAMPLE_ROWS}", params or None)
    cols = [d[0] for d in cur.description]
    return int(count), _markdown(cols, cur.fetchall())


def sql_check(
    asset: dg.AssetKey,
    name: str,
    description: str,
    violations_sql: str | Callable[[CheckThresholdsResource], str],
    *,
    blocking: bool = True,
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR,
    additional_deps: Sequence[dg.AssetKey] = (),
    thresholds: Sequence[str] = (),
) -> dg.AssetChecksDefinition:
    """A check that fails when ``violations_sql`` returns any row.

    A rule with a threshold passes a function of the ``check_thresholds`` resource (and names the fields it
    reads in ``thresholds``): the SQL is built when the check runs, with the values the resource holds then
    (the company file's ``settings.checks``, each overridable by its variable), and the values used are in
    the result's metadata. Nothing is read when the code loads."""

    def result(con, sql: str, extra: dict) -> dg.AssetCheckResult:
        count, sample = run_rule(con, sql)
        meta = {"violations": dg.MetadataValue.int(count), **extra}
        if sample:
            meta["sample"] = dg.MetadataValue.md(sample)
        return dg.AssetCheckResult(passed=count == 0, severity=severity, metadata=meta,
                                   description=None if count == 0 else f"{count} rows break the rule: {description}")

    decorate = dg.asset_check(asset=asset, name=name, description=description, blocking=blocking,
                              pool=WAREHOUSE_POOL, additional_deps=list(additional_deps) or None)
    if callable(violations_sql):
        build_sql = violations_sql

        @decorate
        def _tuned(duckdb: DuckDBResource, check_thresholds: CheckThresholdsResource) -> dg.AssetCheckResult:
            with duckdb.get_connection() as con:
                return result(con, build_sql(check_thresholds), check_thresholds.as_metadata(*thresholds))

        return _tuned

    @decorate
    def _check(duckdb: DuckDBResource) -> dg.AssetCheckResult:
        with duckdb.get_connection() as con:
            return result(con, violations_sql, {})

    return _check


def unique_key_check(asset: dg.AssetKey, table: str, columns: Sequence[str], **kw) -> dg.AssetChecksDefinition:
    cols = ", ".join(columns)
    return sql_check(
        asset, f"{asset.path[-1]}_unique_{'_'.join(columns)}"[:100],
        f"{table} has exactly one row per ({cols})",
        f"select {cols}, count(*) as copies from {table} group by {cols} having count(*) > 1", **kw)


def unique_key_check_by_load(asset: dg.AssetKey, table: str, columns: Sequence[str], raw: str,
                             blocking: bool = True) -> dg.AssetChecksDefinition:
    """The unique-key check of a table built by raw load (cs_kpis/lib/incremental_loads.py), with the same name
    and meaning as :func:`unique_key_check`: a nightly check looks up only the keys of the loads appended since
    the last passing check, in the whole table, instead of grouping every row (36 s on 61 M events,
    BENCHMARKS.md); after a full build, or when the table holds other rows than its last build left, every
    key. A failing check marks no load as checked, so it fails again the next night until the rows are fixed."""
    from cs_kpis.lib import incremental_loads

    cols = ", ".join(columns)
    description = f"{table} has exactly one row per ({cols})"

    @dg.asset_check(asset=asset, name=f"{asset.path[-1]}_unique_{'_'.join(columns)}"[:100], description=description,
                    blocking=blocking, pool=WAREHOUSE_POOL)
    def _check(duckdb: DuckDBResource) -> dg.AssetCheckResult:
        with duckdb.get_connection() as con:
            sql, params, loads = incremental_loads.unique_violations(con, table, raw, tuple(columns))
            count, sample = run_rule(con, sql, params)
            if count == 0:
                incremental_loads.mark_checked(con, table, loads)
        meta = {"violations": dg.MetadataValue.int(count), "raw_loads_checked": dg.MetadataValue.int(len(loads)),
                "keys_checked": ("the keys of the loads appended since the last passing check" if params
                                 else "none: no load appended since the last passing check" if sql.endswith(" limit 0")
                                 else "every key")}
        if sample:
            meta["sample"] = dg.MetadataValue.md(sample)
        return dg.AssetCheckResult(passed=count == 0, severity=dg.AssetCheckSeverity.ERROR, metadata=meta,
                                   description=None if count == 0 else f"{count} rows break the rule: {description}")

    return _check


def not_null_check(asset: dg.AssetKey, table: str, columns: Sequence[str], **kw) -> dg.AssetChecksDefinition:
    cond = " or ".join(f"{c} is null" for c in columns)
    return sql_check(asset, f"{asset.path[-1]}_not_null", f"{table} has no nulls in {', '.join(columns)}",
                     f"select * from {table} where {cond}", **kw)


def accepted_range_check(asset: dg.AssetKey, table: str, column: str, low=None, high=None, *,
                         name: str | None = None, **kw) -> dg.AssetChecksDefinition:
    conds = ([f"{column} < {low}"] if low is not None else []) + ([f"{column} > {high}"] if high is not None else [])
    bounds = f"[{'' if low is None else low}, {'' if high is None else high}]"
    return sql_check(asset, name or f"{asset.path[-1]}_{column}_in_range", f"{table}.{column} within {bounds}",
                     f"select * from {table} where {' or '.join(conds)}", **kw)
