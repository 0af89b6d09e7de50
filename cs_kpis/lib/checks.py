"""Check factories. Every check is a query for the rows that break a rule: no rows, no problem.

Failing rows come back as a count and a markdown sample in the check's metadata, so the on-call
engineer sees *which* rows broke the rule without opening a SQL console. Blocking checks (the default
for anything downstream KPIs rely on) stop downstream assets in the same run.

Each factory's check is one Dagster check (its own step when it runs alone, as tests run it); the code
location runs the checks of one asset in one step (:func:`batch_checks`), because a step costs Dagster's
bookkeeping, a pool slot and a warehouse connection whatever its query costs (BENCHMARKS.md, "Check steps").
"""

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import ExitStack
from typing import Any, Self

import dagster as dg
from dagster_duckdb import DuckDBResource

from cs_kpis.lib.settings_resources import CheckThresholdsResource
from cs_kpis.lib.sql import WAREHOUSE_POOL

SAMPLE_ROWS = 10


def _markdown(columns: Sequence[str], rows: Sequence[tuple]) -> str:
    head = "| " + " | ".join(columns) + " |\n| " + " | ".join("---" for _ in columns) + " |\n"
    return head + "\n".join("| " + " | ".join(str(v) for v in r) + " |" for r in rows)


class CheckInputs:
    """What a check's evaluation reads: the resources its check declares, the Dagster instance, and the
    warehouse connection, opened from the ``duckdb`` resource on first use and then shared by every check
    evaluated in the same step; closed when the ``with`` block ends, on an error too."""

    def __init__(self, resources: Mapping[str, Any], instance: dg.DagsterInstance | None = None):
        self.resources = dict(resources)
        self.instance = instance
        self._stack = ExitStack()
        self._con = None

    def connection(self):
        if self._con is None:
            self._con = self._stack.enter_context(self.resources["duckdb"].get_connection())
            self._con.execute("set TimeZone = 'UTC'")  # a cast of a timestamptz to a date is the UTC day
        return self._con

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()


Evaluate = Callable[[CheckInputs], dg.AssetCheckResult]
_EVALUATE = "cs_kpis_evaluate"


def evaluates(evaluate: Evaluate):
    """Marks a check's function as ``evaluate`` called with its step's inputs, so that :func:`batch_checks`
    can evaluate the check in a step of several. Put it under ``@dg.asset_check``."""

    def mark(fn):
        setattr(fn, _EVALUATE, evaluate)
        return fn

    return mark


def run_rule(con, violations_sql: str, params: Sequence | None = None) -> tuple[int, str]:
    """Count the violating rows and render a sample of them, on UTC days (a cast of a timestamptz to a date
    is the UTC day, as in the models, whatever the connection's time zone was)."""
    con.execute("set TimeZone = 'UTC'")
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

        def evaluate_tuned(inputs: CheckInputs) -> dg.AssetCheckResult:
            check_thresholds = inputs.resources["check_thresholds"]
            return result(inputs.connection(), build_sql(check_thresholds), check_thresholds.as_metadata(*thresholds))

        @decorate
        @evaluates(evaluate_tuned)
        def _tuned(duckdb: DuckDBResource, check_thresholds: CheckThresholdsResource) -> dg.AssetCheckResult:
            with CheckInputs({"duckdb": duckdb, "check_thresholds": check_thresholds}) as inputs:
                return evaluate_tuned(inputs)

        return _tuned

    def evaluate(inputs: CheckInputs) -> dg.AssetCheckResult:
        return result(inputs.connection(), violations_sql, {})

    @decorate
    @evaluates(evaluate)
    def _check(duckdb: DuckDBResource) -> dg.AssetCheckResult:
        with CheckInputs({"duckdb": duckdb}) as inputs:
            return evaluate(inputs)

    return _check


def unique_key_check(asset: dg.AssetKey, table: str, columns: Sequence[str], **kw) -> dg.AssetChecksDefinition:
    cols = ", ".join(columns)
    return sql_check(
        asset, f"{asset.path[-1]}_unique_{'_'.join(columns)}"[:100],
        f"{table} has exactly one row per ({cols})",
        f"select {cols}, count(*) as copies from {table} group by {cols} having count(*) > 1", **kw)


def written_rows_check(asset: dg.AssetKey, name: str, description: str, table: str,
                       violations: Callable[[str], str], blocking: bool = True) -> dg.AssetChecksDefinition:
    """A check of a table built by account and day (cs_kpis/lib/incremental.py) that looks only at the rows its
    builds wrote since the check last passed, the earlier ones having passed when they were written:
    ``violations(source)`` is the rule's query over ``source`` (the table, or the rows of it to check). Every row
    after a full build, before a first pass, or when the table's row counts show another write
    (incremental.rows_to_check); a failed check marks nothing, so what it found is looked at again next time."""
    from cs_kpis.lib import incremental

    def evaluate(inputs: CheckInputs) -> dg.AssetCheckResult:
        con = inputs.connection()
        rows, scope = incremental.rows_to_check(con, table, name)
        count, sample = run_rule(con, violations(rows or table))
        if count == 0:
            incremental.mark_checked(con, table, name, every_row=rows is None)
        meta = {"violations": dg.MetadataValue.int(count), "rows_checked": scope}
        if sample:
            meta["sample"] = dg.MetadataValue.md(sample)
        return dg.AssetCheckResult(passed=count == 0, severity=dg.AssetCheckSeverity.ERROR, metadata=meta,
                                   description=None if count == 0 else f"{count} rows break the rule: {description}")

    @dg.asset_check(asset=asset, name=name, description=description, blocking=blocking, pool=WAREHOUSE_POOL)
    @evaluates(evaluate)
    def _check(duckdb: DuckDBResource) -> dg.AssetCheckResult:
        with CheckInputs({"duckdb": duckdb}) as inputs:
            return evaluate(inputs)

    return _check


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

    def evaluate(inputs: CheckInputs) -> dg.AssetCheckResult:
        con = inputs.connection()
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

    @dg.asset_check(asset=asset, name=f"{asset.path[-1]}_unique_{'_'.join(columns)}"[:100], description=description,
                    blocking=blocking, pool=WAREHOUSE_POOL)
    @evaluates(evaluate)
    def _check(duckdb: DuckDBResource) -> dg.AssetCheckResult:
        with CheckInputs({"duckdb": duckdb}) as inputs:
            return evaluate(inputs)

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


# ------------------------------------------------------------------------------------ one step per asset

def _evaluate_of(checks_def: dg.AssetChecksDefinition) -> Evaluate | None:
    """The function a check of one of this module's factories (or marked with :func:`evaluates`) runs."""
    fn = getattr(checks_def.node_def.compute_fn, "decorated_fn", None)
    return getattr(fn, _EVALUATE, None) if len(checks_def.check_specs) == 1 else None


def _one_step(asset: dg.AssetKey, blocking: bool, members: list[dg.AssetChecksDefinition]) -> dg.AssetChecksDefinition:
    """One multi-asset check for ``members``, every one a single check on ``asset`` with the same ``blocking``:
    the same check keys, specs (name, description, blocking, additional deps) and results, in one step.

    A step runs only the checks selected (``can_subset``). One check's error does not stop the others: each
    is evaluated, then the step raises the first error (the other errors are in its log), as the single
    check's step did. A failed blocking check of ERROR severity fails the step after every result is out."""
    specs = [spec for c in members for spec in c.check_specs]
    evaluations = {spec.key: _evaluate_of(c) for c in members for spec in c.check_specs}
    resource_keys = set().union(*(c.required_resource_keys for c in members))
    pools = {c.node_def.pool for c in members} - {None}
    if len(pools) > 1:
        raise ValueError(f"the checks of {asset.to_user_string()} name different pools: {sorted(pools)}")

    @dg.multi_asset_check(
        specs=specs, can_subset=True, required_resource_keys=resource_keys, pool=next(iter(pools), None),
        name=f"{asset.to_python_identifier()}__{'blocking_' if blocking else ''}checks",
        description=f"the {'blocking' if blocking else 'non-blocking'} checks of {asset.to_user_string()}, in one step",
    )
    def _checks(context: dg.AssetCheckExecutionContext):
        errors = []
        selected = context.selected_asset_check_keys
        with CheckInputs({k: getattr(context.resources, k) for k in resource_keys}, context.instance) as inputs:
            for key, evaluate in evaluations.items():
                if key not in selected:
                    continue
                try:
                    result = evaluate(inputs)
                except Exception as e:  # noqa: BLE001 - raised below, after the other checks of the step ran
                    context.log.error(f"check {key.name} could not be evaluated: {type(e).__name__}: {e}")
                    errors.append(e)
                    continue
                yield result._replace(asset_key=key.asset_key, check_name=key.name)
        if errors:
            raise errors[0]

    return _checks


def batch_checks(checks: Iterable[dg.AssetChecksDefinition]) -> list[dg.AssetChecksDefinition]:
    """``checks`` with the checks of one asset that :func:`_evaluate_of` can run merged into one step per asset
    and ``blocking`` (a blocking and a non-blocking check stay apart: an error in a non-blocking one must not
    stop the assets downstream). Check keys, specs and results are unchanged; only steps are fewer: about
    70 CPU ms each (Dagster's step, the pool's slot, a warehouse connection; BENCHMARKS.md, "Check steps")."""
    out, groups = [], {}
    for checks_def in checks:
        if _evaluate_of(checks_def) is None:
            out.append(checks_def)
            continue
        [spec] = checks_def.check_specs
        groups.setdefault((spec.asset_key, spec.blocking), []).append(checks_def)
    for (asset, blocking), members in groups.items():
        out.append(members[0] if len(members) == 1 else _one_step(asset, blocking, members))
    return out


def batched(defs: dg.Definitions) -> dg.Definitions:
    """``defs`` with its checks merged by :func:`batch_checks` (checks may sit in ``assets`` or ``asset_checks``)."""
    assets = list(defs.assets or [])
    checks = [a for a in assets if isinstance(a, dg.AssetChecksDefinition)] + list(defs.asset_checks or [])
    return dg.Definitions(
        assets=[a for a in assets if not isinstance(a, dg.AssetChecksDefinition)], asset_checks=batch_checks(checks),
        schedules=defs.schedules, sensors=defs.sensors, jobs=defs.jobs, resources=defs.resources,
        executor=defs.executor, loggers=defs.loggers, metadata=defs.metadata, component_tree=defs.component_tree)
