"""SQL models as Dagster assets: one ``.sql`` file per table, documented in its own header.

A model file ``defs/<layer>/sql/<name>.sql`` becomes the asset ``[<schema>, <name>]`` that (re)builds
``<schema>.<name>`` in the warehouse. Its header comment is the documentation the UI shows::

    -- One row per subscription per stretch of constant MRR.       <- description (first paragraph)
    -- @grain subscription_id, start_date                           <- the table's unique key
    -- @column mrr: monthly recurring revenue in USD, after discounts
    -- @materialized view                                           <- optional (default: table)
    -- @row_count <part>                                            <- optional, a view only (below)
    -- @incremental lookback_days=7 history=limited                  <- optional: built by window (below)
    select ...

A part several models share is written once, in ``defs/<layer>/sql/parts/<part>.sql``, and a model takes
it in with a line ``-- include: <part>`` (the line is replaced by the part, indented as the line is): the
pricing of a quantity and the composition of discounts are such parts (marts/README.md). The model's SQL,
its lineage and its code version are those of the text with its parts in.

Dependencies are read from the SQL itself: every ``raw.<system>__<entity>``, ``staging.x``,
``marts.x``, ``kpis.x`` or ``alerts.x`` it names becomes an upstream asset, so lineage cannot drift
from the code. The body must stay in the portable subset of docs/PORTABILITY.md.

A view's build records its rows, as a table's does; counting a view runs its query, so a view whose rows follow
from its inputs (``marts.mrr_daily``: a day per change and covered day) may name a part that counts them
(``@row_count <part>``: one row, one column, the count; null when it cannot tell, and then the view is counted).

An ``@incremental`` model (an account x day table) is not rebuilt whole every night: cs_kpis/lib/incremental.py
plans the days to rebuild (the lookback's days ending at the last built day and later ones, every day of the accounts whose older inputs
changed, or everything) and deletes and inserts them in ranges of accounts; the SQL reads its window from
``kpis._build_window``. Its asset takes ``full_refresh`` in the run config.

A staging model tagged ``@incremental by=load`` (over an insert-only raw table: product events) appends only
the raw loads its table does not hold yet, and is rebuilt whole when its SQL, the raw table's columns or the
engine change (cs_kpis/lib/incremental_loads.py); its SQL reads the current build's loads from
``staging._build_loads``. It runs on the chosen engine like any staging model, and takes ``full_refresh`` too.
"""

import hashlib
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from cs_kpis.config import render_sql
from cs_kpis.lib import incremental as builds
from cs_kpis.lib import incremental_loads as load_builds
from cs_kpis.lib import systems
from cs_kpis.lib.engine import SQL_ENGINE, SqlEngineResource

WAREHOUSE_POOL = "warehouse"
"""every step that writes the DuckDB warehouse runs in this one-at-a-time pool (see dagster.yaml)"""

NIGHTLY_FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=26), warn_window=timedelta(hours=24))
"""tables rebuilt by the nightly job: stale after a missed night (warn at 24 h, fail at 26 h)"""
_REF = re.compile(r"\b(raw|staging|marts|kpis|alerts)\.([a-z_][a-z0-9_]*)\b")
_TAG = re.compile(r"^--\s*@(\w+)\s*(.*)$")
_INCLUDE = re.compile(r"^([ \t]*)--[ \t]*include:[ \t]*([a-z_][a-z0-9_]*)[ \t]*$", re.MULTILINE)


def sql_part(sql_dir: Path, part: str) -> str:
    """The shared SQL part ``<sql_dir>/parts/<part>.sql`` (see the module docstring)."""
    path = Path(sql_dir) / "parts" / f"{part}.sql"
    if not path.is_file():
        raise ValueError(f"no shared SQL part {part!r}: {path} does not exist")
    return path.read_text().rstrip()


def with_sql_parts(text: str, sql_dir: Path) -> str:
    """``text`` with every ``-- include: <part>`` line replaced by that part, indented as the line is."""
    def part(m: re.Match) -> str:
        indent = m.group(1)
        return "\n".join(indent + line if line else line for line in sql_part(sql_dir, m.group(2)).splitlines())

    return _INCLUDE.sub(part, text)


def raw_key(system: str, entity: str) -> dg.AssetKey:
    """The key of the raw table ``raw.<system>__<entity>`` (one dlt resource): ``raw/<system>/<entity>``."""
    return dg.AssetKey(["raw", system, entity])


def asset_key_for_table(schema: str, table: str) -> dg.AssetKey | None:
    """The asset that owns ``schema.table``: raw tables are keyed ``raw/<system>/<entity>``, every other
    table ``<schema>/<table>``. This is the one rule from a table to its key (see ``model_key``)."""
    if table.startswith("_"):
        return None  # dlt bookkeeping, quarantine and accounting tables belong to the raw loads
    if schema == "raw":
        system, _, entity = table.partition("__")
        return raw_key(system, entity) if entity else None
    return dg.AssetKey([schema, table])


def model_key(sql_dir: Path, schema: str, name: str, python_built: Iterable[str] = ()) -> dg.AssetKey:
    """The key of the model ``<sql_dir>/<name>.sql`` in ``schema``, or of a table of the same layer built in
    Python (``python_built``). Each layer exposes this as ``key(name)`` in its assets module, and a module
    that names a table another module builds imports it from there (``marts.key("mrr_monthly")``) instead
    of retyping the key: a name that is neither a model file nor built in Python raises ValueError when the
    module is imported, rather than leaving a dependency on an asset that does not exist."""
    path = Path(sql_dir) / f"{name}.sql"
    if name not in set(python_built) and not path.is_file():
        raise ValueError(f"no table {schema}.{name}: {path} does not exist and the layer builds no such table")
    return asset_key_for_table(schema, name)


@dataclass(frozen=True)
class SqlModel:
    schema: str
    name: str
    sql: str
    description: str
    grain: tuple[str, ...] = ()
    columns: dict[str, str] = field(default_factory=dict)
    materialized: str = "table"
    incremental: dict | None = None
    """the @incremental tag's settings (cs_kpis/lib/incremental.py), None for a model rebuilt whole"""
    row_count_sql: str | None = None
    """a view's @row_count part: a query for its rows that does not run the view (None: count(*) of it)"""

    @property
    def key(self) -> dg.AssetKey:
        return dg.AssetKey([self.schema, self.name])

    @property
    def table(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def deps(self) -> list[dg.AssetKey]:
        keys = {asset_key_for_table(s, t) for s, t in _REF.findall(strip_comments(self.sql))}
        return sorted((k for k in keys if k is not None and k != self.key), key=lambda k: k.to_user_string())

    @property
    def code_version(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()[:12]

    @classmethod
    def from_file(cls, path: Path, schema: str) -> "SqlModel":
        text = with_sql_parts(path.read_text(), path.parent)
        description, columns, grain, materialized, incr, row_count = [], {}, (), "table", None, None
        for line in text.splitlines():
            if not line.startswith("--"):
                break
            tag = _TAG.match(line)
            if tag:
                name, value = tag.groups()
                if name == "column":
                    col, _, desc = value.partition(":")
                    columns[col.strip()] = desc.strip()
                elif name == "grain":
                    grain = tuple(c.strip() for c in value.split(",") if c.strip())
                elif name == "materialized":
                    materialized = value.strip()
                elif name == "incremental":
                    incr = builds.parse_tag(value, str(path))
                elif name == "row_count":
                    row_count = sql_part(path.parent, value.strip())
            else:
                description.append(line[2:].strip())
        if materialized not in ("table", "view"):
            raise ValueError(f"{path}: @materialized must be table or view, not {materialized!r}")
        if row_count is not None and materialized != "view":
            raise ValueError(f"{path}: @row_count is for a view (a table's rows are counted from its storage)")
        desc = " ".join(d for d in description if d).strip()
        if not desc:
            raise ValueError(f"{path}: a model needs a header comment describing its grain and meaning")
        if incr is not None and incr.get("by") == "load":
            if materialized != "table":
                raise ValueError(f"{path}: an @incremental by=load model is a table")
            unknown = [c for c in incr.get("merge", ()) if c not in grain and c not in columns]
            if unknown:
                raise ValueError(f"{path}: @incremental merge names {unknown}: neither in the @grain nor an @column")
            load_builds.check_model_sql(text, f"{schema}.{path.stem}", str(path))
        elif incr is not None and (materialized != "table" or not {"account_id", "day"} <= set(grain)):
            raise ValueError(f"{path}: an @incremental model is a table whose @grain has account_id and day")
        return cls(schema, path.stem, text, desc, grain, columns, materialized, incr, row_count)

    @property
    def by_load(self) -> bool:
        """``@incremental by=load``: built by appending the raw loads not built yet (incremental_loads.py)."""
        return self.incremental is not None and self.incremental.get("by") == "load"

    @property
    def merge(self) -> tuple[str, ...]:
        """``@incremental by=load merge=...``: the columns a raw load replaces rows on (a merged raw table), or ()
        for an insert-only one (incremental_loads.py)."""
        return tuple((self.incremental or {}).get("merge", ()))

    def incremental_spec(self, fingerprint=None, carry=None) -> builds.Incremental:
        """How this @incremental model is built: its tag's settings, its SQL's version, the tables it reads
        (a full build of one of them makes its next build full), its inputs' ``fingerprint`` and the ``carry``
        (incremental.Carry) its build keeps for the next one."""
        upstream = tuple(".".join(k.path) for k in self.deps if len(k.path) == 2)
        return builds.Incremental(self.table, self.code_version, upstream=upstream, fingerprint=fingerprint, carry=carry,
                                       **{k: v for k, v in (self.incremental or {}).items() if k not in ("by", "merge")})


def strip_comments(sql: str) -> str:
    return "\n".join(line.split("--", 1)[0] for line in sql.splitlines())


def load_models(sql_dir: Path, schema: str) -> list[SqlModel]:
    """Every ``*.sql`` in ``sql_dir``, in name order."""
    return [SqlModel.from_file(p, schema) for p in sorted(Path(sql_dir).glob("*.sql"))]


def build(con, model: SqlModel) -> dict:
    """(Re)build the model's table or view in one statement and return its UI metadata."""
    if model.by_load:  # only the raw loads it does not hold yet (cs_kpis/lib/incremental_loads.py)
        build_by_load(con, model)
        return table_metadata(con, model.schema, model.name, model.columns)
    con.execute(f"create schema if not exists {model.schema}")
    con.execute("set TimeZone = 'UTC'")  # casts of timestamptz to date are UTC days everywhere
    kind = "view" if model.materialized == "view" else "table"
    drop_other_kind(con, model.schema, model.name, kind)
    # {{ name }} placeholders: the company's field names (join keys, custom fields), validated, at run time
    sql = render_sql(model.sql, where=f"model {model.table}")
    sql = systems.read_nothing_when_off(model.table, sql)  # an off system's old raw rows stay out of staging
    created = con.execute(f"create or replace {kind} {model.table} as\n{sql}").fetchall()
    columns = columns_of(con, model.schema, model.name)
    if kind == "table":
        changed = bigint_instead_of_hugeint(con, model.schema, model.name, columns)
        columns = [(name, "BIGINT" if name in changed else dtype) for name, dtype in columns]
        rows = created[0][0]  # DuckDB's create table as returns the rows it wrote: no count(*) after it
    else:
        rows = view_row_count(con, model)
    return table_metadata(con, model.schema, model.name, model.columns, rows=rows, columns=columns)


def view_row_count(con, model: SqlModel) -> int | None:
    """The rows of a view with a ``@row_count`` part, by that part (None: count them, or not a view)."""
    if model.materialized != "view" or model.row_count_sql is None:
        return None
    (rows,) = con.execute(render_sql(model.row_count_sql, where=f"row count of {model.table}")).fetchall()[0]
    return None if rows is None else int(rows)


def build_incremental(con, model: SqlModel, *, full_refresh: bool = False, fingerprint=None, carry=None,
                      chunk_rows: int | None = None) -> dict:
    """Plan and run a build of an @incremental model (cs_kpis/lib/incremental.py); returns its counts."""
    spec = model.incremental_spec(fingerprint, carry)
    con.execute("set TimeZone = 'UTC'")
    window = builds.plan(con, spec, full_refresh=full_refresh)
    sql = render_sql(model.sql, where=f"model {model.table}")
    stats = builds.build(con, spec, sql, window, chunk_rows)
    bigint_instead_of_hugeint(con, model.schema, model.name)  # sums of counts: BIGINT (once, then no-op)
    return stats


def render_model(model: SqlModel) -> str:
    """The model's SQL as a build runs it: the company's field names in, an off system's rows out."""
    sql = render_sql(model.sql, where=f"model {model.table}")
    return systems.read_nothing_when_off(model.table, sql)  # an off system's old raw rows stay out of staging


def build_by_load(con, model: SqlModel, *, full_refresh: bool = False) -> tuple[load_builds.LoadPlan, int]:
    """Plan and run a DuckDB build of an ``@incremental by=load`` model (cs_kpis/lib/incremental_loads.py), in one
    transaction with its record: a full build replaces the table, an incremental one appends the new loads'
    rows (a merged model's replace the rows they merge on). Returns the plan and the table's rows."""
    con.execute("set TimeZone = 'UTC'")  # casts of timestamptz to date are UTC days everywhere
    sql = render_model(model)
    raw = load_builds.raw_table(model.sql, model.table)
    ver = load_builds.version(con, sql, raw, "duckdb")
    plan = load_builds.plan(con, model.table, raw, ver, full_refresh=full_refresh, merged=bool(model.merge))
    con.execute(f"create schema if not exists {model.schema}")
    load_builds.ensure_control_tables(con)
    try:
        return plan, _run_by_load(con, model, sql, plan)
    except load_builds.NotMerged as e:  # rolled back: raw changed otherwise than by merges, build it whole
        plan = load_builds.LoadPlan("full", str(e), ver, load_builds.raw_loads(con, raw))
        return plan, _run_by_load(con, model, sql, plan)


def _run_by_load(con, model: SqlModel, sql: str, plan: load_builds.LoadPlan) -> int:
    con.execute("begin transaction")
    try:
        seq = load_builds.record(con, model.table, plan)
        if plan.mode == "full":
            drop_other_kind(con, model.schema, model.name, "table")
            con.execute(f"create or replace table {model.table} as\n{sql}")
            bigint_instead_of_hugeint(con, model.schema, model.name)  # sums of integers: BIGINT, as sql.build
            if model.merge and not systems.turned_off(model.table):
                _one_row_per_raw_row(con, model, plan.raw_rows)
        elif plan.loads and model.merge:
            load_builds.merge_new_rows(con, model.table, sql, model.merge, plan.raw_rows)
        elif plan.loads:
            con.execute(f"insert into {model.table} by name\n{sql}")
        rows = load_builds.finish(con, model.table, plan, seq, "duckdb")
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    return rows


def _one_row_per_raw_row(con, model: SqlModel, raw_rows: int) -> None:
    """A merged model's nightly replaces the rows its new loads merge on and trusts the count (raw's rows) to
    show that it did: that holds only for a model that gives one row per raw row. A model that filters, joins,
    dedupes or unnests raw's rows could keep a row a full build drops with the count unchanged, so its full
    build stops here, naming it, instead of a later nightly going wrong silently."""
    rows = con.execute(f"select count(*) from {model.table}").fetchall()[0][0]
    if rows != raw_rows:
        raise ValueError(
            f"{model.table} declares @incremental by=load merge={','.join(model.merge)}, but its full build gave "
            f"{rows} rows for {raw_rows} rows of {load_builds.raw_table(model.sql, model.table)}: a merged model "
            "must give one row per raw row (no where, join, distinct, group by or unnest); drop merge= from it")


class IncrementalRunConfig(dg.Config):
    full_refresh: bool = False
    """rebuild every day instead of the nightly window (the lookback's days ending at the last built day, and every later day)"""


class ByLoadRunConfig(dg.Config):
    full_refresh: bool = False
    """rebuild the table from every raw load instead of appending the loads it does not hold yet"""


def drop_other_kind(con, schema: str, name: str, kind: str) -> None:
    """A model may switch between table and view (or a Spark-built table replace a view): drop the other kind."""
    other = "table" if kind == "view" else "view"
    # duckdb_tables() and duckdb_views() are what information_schema.tables reads ('BASE TABLE': not temporary),
    # without that view's union and columns: a few ms less per model
    exists = con.execute(
        "select count(*) from duckdb_views() where schema_name = ? and view_name = ? and not internal" if other == "view" else
        "select count(*) from duckdb_tables() where schema_name = ? and table_name = ? and not temporary",
        [schema, name]).fetchall()[0][0]
    if exists:
        con.execute(f"drop {other} {schema}.{name}")


def columns_of(con, schema: str, table: str) -> list[tuple[str, str]]:
    """(name, DuckDB type) of each column of the table or view, in order: ``duckdb_columns()``, which
    information_schema.columns is a view of (the same names and types; ``not internal``: DuckDB's own views are
    not in it either), without that view's other columns."""
    return con.execute(
        "select column_name, data_type from duckdb_columns() "
        "where schema_name = ? and table_name = ? and not internal order by column_index", [schema, table]).fetchall()


def bigint_instead_of_hugeint(con, schema: str, table: str, columns: list[tuple[str, str]] | None = None) -> list[str]:
    """DuckDB types ``sum()`` of integers as HUGEINT (128 bit); counts are stored as BIGINT, the type every
    reader (Spark, pandas, the Dagster UI's column schema) knows. ``columns``: the table's (``columns_of``), when
    the caller has them. Returns the columns changed."""
    cols = [c for c, dtype in (columns_of(con, schema, table) if columns is None else columns) if dtype == "HUGEINT"]
    for col in cols:
        con.execute(f'alter table {schema}.{table} alter column "{col}" type bigint')
    return cols


def table_metadata(con, schema: str, table: str, descriptions: dict[str, str] | None = None,
                   rows: int | None = None, columns: list[tuple[str, str]] | None = None) -> dict:
    """Row count (``rows`` when the caller knows it, else counted), column schema (with descriptions; ``columns``
    as ``columns_of`` gives them, when the caller has them) and table name, as Dagster shows them."""
    if rows is None:
        rows = con.execute(f"select count(*) from {schema}.{table}").fetchall()[0][0]
    cols = columns_of(con, schema, table) if columns is None else columns
    descriptions = descriptions or {}
    return {
        "dagster/row_count": dg.MetadataValue.int(int(rows)),
        "dagster/column_schema": dg.TableSchema(
            columns=[dg.TableColumn(name, dtype, description=descriptions.get(name)) for name, dtype in cols]
        ),
        "dagster/table_name": f"{schema}.{table}",
    }


def sql_assets(
    models: Iterable[SqlModel],
    *,
    group: str,
    owners: Sequence[str] = ("team:data-eng",),
    extra_metadata=None,
    freshness_policy: dg.FreshnessPolicy | None = None,
    fingerprints: dict | None = None,
    carries: dict | None = None,
) -> list[dg.AssetsDefinition]:
    """One asset per model; ``extra_metadata(con, model) -> dict`` runs after the build on the same
    connection and can add model-specific previews; ``fingerprints`` maps an @incremental model's table to
    its inputs' fingerprint (cs_kpis/lib/incremental.py), ``carries`` to the carry its build keeps (incremental.Carry)."""
    fingerprints, carries = fingerprints or {}, carries or {}
    return [_by_load_asset(m, group, list(owners), extra_metadata, freshness_policy) if m.by_load
            else _incremental_asset(m, group, list(owners), extra_metadata, freshness_policy, fingerprints.get(m.table),
                                    carries.get(m.table))
            if m.incremental is not None else _sql_asset(m, group, list(owners), extra_metadata, freshness_policy)
            for m in models]


def _description(model: SqlModel) -> str:
    description = model.description
    if model.grain:
        description += f"\n\nUnique key: `{', '.join(model.grain)}`."
    if model.by_load:
        description += (
            "\n\nBuilt incrementally: a nightly run appends only the raw loads this table does not hold yet"
            + (f" (their rows replace the rows with the same `{'`, `'.join(model.merge)}`, as in raw)" if model.merge else "")
            + "; a change "
            "of its SQL, of the raw table's columns or of the engine, a raw load that changed since it was built, or "
            "`full_refresh` in the run config rebuild it whole (`staging._builds` logs each build).")
    elif model.incremental is not None:
        spec = model.incremental_spec()
        description += (
            "\n\nBuilt incrementally: a nightly run rebuilds the lookback's days ending at the last built day and every "
            f"later day (`{builds.ENV_LOOKBACK_DAYS}`, default {spec.lookback_days})"
            + (f"; history kept: `{builds.ENV_HISTORY_DAYS}` days (default all)" if spec.limited_history else "")
            + "; changed older inputs rebuild every day of the accounts they touch (of every account when more than "
            f"{builds.MAX_REBUILT_SHARE:.0%} of them, or an input no account owns, changed; `kpis._build_window` says "
            "which and why), and `full_refresh` in the run config every day of every account.")
    return description


def _incremental_asset(model: SqlModel, group: str, owners: list[str], extra_metadata,
                       freshness_policy: dg.FreshnessPolicy | None, fingerprint, carry=None) -> dg.AssetsDefinition:
    # the calendar (as-of day) and the subscription periods (account ranges) plan every build
    planner_deps = [asset_key_for_table(*table.split(".")) for table in builds.PLANNER_TABLES]

    @dg.asset(
        key=model.key,
        deps=sorted({*model.deps, *planner_deps} - {model.key}, key=lambda k: k.to_user_string()),
        group_name=group,
        kinds={"duckdb", "sql"},
        owners=owners,
        description=_description(model),
        code_version=model.code_version,
        pool=WAREHOUSE_POOL,
        metadata={"grain": ", ".join(model.grain)},
        freshness_policy=freshness_policy,
    )
    def _asset(context: dg.AssetExecutionContext, duckdb: DuckDBResource,
               config: IncrementalRunConfig) -> dg.MaterializeResult:
        t0 = time.perf_counter()
        with duckdb.get_connection() as con:
            stats = build_incremental(con, model, full_refresh=config.full_refresh, fingerprint=fingerprint,
                                      carry=carry)
            meta = table_metadata(con, model.schema, model.name, model.columns)
            if extra_metadata is not None:
                meta.update(extra_metadata(con, model) or {})
        seconds = round(time.perf_counter() - t0, 2)
        context.log.info(f"{stats['mode']} build from {stats['start_day'] or 'the start'} ({stats['reason']}): "
                         f"{stats['rows_written']} rows in {stats['account_ranges']} account range(s), {seconds}s")
        return dg.MaterializeResult(metadata={**meta, **builds.metadata(stats, seconds)})

    return _asset


def _by_load_asset(model: SqlModel, group: str, owners: list[str], extra_metadata,
                   freshness_policy: dg.FreshnessPolicy | None) -> dg.AssetsDefinition:
    @dg.asset(
        key=model.key,
        deps=model.deps,
        group_name=group,
        kinds={"duckdb", "sql"},
        owners=owners,
        description=_description(model),
        code_version=model.code_version,
        pool=WAREHOUSE_POOL,
        metadata={"grain": ", ".join(model.grain)} if model.grain else None,
        freshness_policy=freshness_policy,
        resource_defs={"sql_engine": SQL_ENGINE},
    )
    def _asset(context: dg.AssetExecutionContext, duckdb: DuckDBResource, sql_engine: SqlEngineResource,
               config: ByLoadRunConfig) -> dg.MaterializeResult:
        t0 = time.perf_counter()
        with duckdb.get_connection() as con:
            # DuckDB by default; on Spark a full build rewrites its Parquet folder, a nightly one appends to it
            plan, rows, meta = sql_engine.build_by_load(con, model, full_refresh=config.full_refresh)
            meta.update(table_metadata(con, model.schema, model.name, model.columns))
            if extra_metadata is not None:
                meta.update(extra_metadata(con, model) or {})
        seconds = round(time.perf_counter() - t0, 2)
        context.log.info(f"{plan.mode} build ({plan.reason}): {len(plan.loads)} raw load(s), "
                         f"{sum(plan.loads.values())} raw rows read, {rows} rows in the table, {seconds}s")
        return dg.MaterializeResult(metadata={**meta, **load_builds.metadata(plan, rows, seconds)})

    return _asset


def _sql_asset(model: SqlModel, group: str, owners: list[str], extra_metadata,
               freshness_policy: dg.FreshnessPolicy | None) -> dg.AssetsDefinition:
    description = _description(model)

    @dg.asset(
        key=model.key,
        deps=model.deps,
        group_name=group,
        kinds={"duckdb", "sql"},
        owners=owners,
        description=description,
        code_version=model.code_version,
        pool=WAREHOUSE_POOL,
        metadata={"grain": ", ".join(model.grain)} if model.grain else None,
        freshness_policy=freshness_policy,
        # one shared instance: an asset materialized without Definitions' resources still has its engine
        resource_defs={"sql_engine": SQL_ENGINE},
    )
    def _asset(context: dg.AssetExecutionContext, duckdb: DuckDBResource,
               sql_engine: SqlEngineResource) -> dg.MaterializeResult:
        with duckdb.get_connection() as con:
            # the engine seam (cs_kpis/lib/engine.py): DuckDB by default, or Spark Connect, then DuckDB's mirror
            meta = sql_engine.build(con, model)
            if extra_metadata is not None:
                meta.update(extra_metadata(con, model) or {})
        return dg.MaterializeResult(metadata=meta)

    return _asset
