"""SQL models as Dagster assets: one ``.sql`` file per table, documented in its own header.

A model file ``defs/<layer>/sql/<name>.sql`` becomes the asset ``[<schema>, <name>]`` that (re)builds
``<schema>.<name>`` in the warehouse. Its header comment is the documentation the UI shows::

    -- One row per subscription per stretch of constant MRR.       <- description (first paragraph)
    -- @grain subscription_id, start_date                           <- the table's unique key
    -- @column mrr: monthly recurring revenue in USD, after discounts
    -- @materialized view                                           <- optional (default: table)
    select ...

A part several models share is written once, in ``defs/<layer>/sql/shared/<part>.sql``, and a model takes
it in with a line ``-- include: <part>`` (the line is replaced by the part, indented as the line is): the
pricing of a quantity and the composition of discounts are such parts (marts/README.md). The model's SQL,
its lineage and its code version are those of the text with its parts in.

Dependencies are read from the SQL itself: every ``raw.<system>__<entity>``, ``staging.x``,
``marts.x``, ``kpis.x`` or ``alerts.x`` it names becomes an upstream asset, so lineage cannot drift
from the code. The body must stay in the portable subset of docs/PORTABILITY.md.
"""

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from cs_kpis.config import render_sql
from cs_kpis.lib.engine import SQL_ENGINE, SqlEngineResource

WAREHOUSE_POOL = "warehouse"
"""every step that writes the DuckDB warehouse runs in this one-at-a-time pool (see dagster.yaml)"""

NIGHTLY_FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=26), warn_window=timedelta(hours=24))
"""tables rebuilt by the nightly job: stale after a missed night (warn at 24 h, fail at 26 h)"""
_REF = re.compile(r"\b(raw|staging|marts|kpis|alerts)\.([a-z_][a-z0-9_]*)\b")
_TAG = re.compile(r"^--\s*@(\w+)\s*(.*)$")
_INCLUDE = re.compile(r"^([ \t]*)--[ \t]*include:[ \t]*([a-z_][a-z0-9_]*)[ \t]*$", re.MULTILINE)


def shared_sql(sql_dir: Path, part: str) -> str:
    """The shared SQL part ``<sql_dir>/shared/<part>.sql`` (see the module docstring)."""
    path = Path(sql_dir) / "shared" / f"{part}.sql"
    if not path.is_file():
        raise ValueError(f"no shared SQL part {part!r}: {path} does not exist")
    return path.read_text().rstrip()


def with_shared_parts(text: str, sql_dir: Path) -> str:
    """``text`` with every ``-- include: <part>`` line replaced by that part, indented as the line is."""
    def part(m: re.Match) -> str:
        indent = m.group(1)
        return "\n".join(indent + line if line else line for line in shared_sql(sql_dir, m.group(2)).splitlines())

    return _INCLUDE.sub(part, text)


def asset_key_for_table(schema: str, table: str) -> dg.AssetKey | None:
    """The asset that owns ``schema.table``: raw tables are keyed ``raw/<system>/<entity>``."""
    if table.startswith("_"):
        return None  # dlt bookkeeping, quarantine and accounting tables belong to the raw loads
    if schema == "raw":
        system, _, entity = table.partition("__")
        return dg.AssetKey(["raw", system, entity]) if entity else None
    return dg.AssetKey([schema, table])


@dataclass(frozen=True)
class SqlModel:
    schema: str
    name: str
    sql: str
    description: str
    grain: tuple[str, ...] = ()
    columns: dict[str, str] = field(default_factory=dict)
    materialized: str = "table"

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
        text = with_shared_parts(path.read_text(), path.parent)
        description, columns, grain, materialized = [], {}, (), "table"
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
            else:
                description.append(line[2:].strip())
        if materialized not in ("table", "view"):
            raise ValueError(f"{path}: @materialized must be table or view, not {materialized!r}")
        desc = " ".join(d for d in description if d).strip()
        if not desc:
            raise ValueError(f"{path}: a model needs a header comment describing its grain and meaning")
        return cls(schema, path.stem, text, desc, grain, columns, materialized)


def strip_comments(sql: str) -> str:
    return "\n".join(line.split("--", 1)[0] for line in sql.splitlines())


def load_models(sql_dir: Path, schema: str) -> list[SqlModel]:
    """Every ``*.sql`` in ``sql_dir``, in name order."""
    return [SqlModel.from_file(p, schema) for p in sorted(Path(sql_dir).glob("*.sql"))]


def build(con, model: SqlModel) -> dict:
    """(Re)build the model's table or view in one statement and return its UI metadata."""
    con.execute(f"create schema if not exists {model.schema}")
    con.execute("set TimeZone = 'UTC'")  # casts of timestamptz to date are UTC days everywhere
    kind = "view" if model.materialized == "view" else "table"
    drop_other_kind(con, model.schema, model.name, kind)
    # {{ name }} placeholders: the company's field names (join keys, custom fields), validated, at run time
    sql = render_sql(model.sql, where=f"model {model.table}")
    con.execute(f"create or replace {kind} {model.table} as\n{sql}")
    if kind == "table":
        bigint_instead_of_hugeint(con, model.schema, model.name)
    return table_metadata(con, model.schema, model.name, model.columns)


def drop_other_kind(con, schema: str, name: str, kind: str) -> None:
    """A model may switch between table and view (or a Spark-built table replace a view): drop the other kind."""
    other = "table" if kind == "view" else "view"
    exists = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ? and table_type = ?",
        [schema, name, "VIEW" if other == "view" else "BASE TABLE"],
    ).fetchall()[0][0]
    if exists:
        con.execute(f"drop {other} {schema}.{name}")


def bigint_instead_of_hugeint(con, schema: str, table: str) -> list[str]:
    """DuckDB types ``sum()`` of integers as HUGEINT (128 bit); counts are stored as BIGINT, the type every
    reader (Spark, pandas, the Dagster UI's column schema) knows. Returns the columns changed."""
    cols = [c for (c,) in con.execute(
        "select column_name from information_schema.columns "
        "where table_schema = ? and table_name = ? and data_type = 'HUGEINT'", [schema, table]).fetchall()]
    for col in cols:
        con.execute(f'alter table {schema}.{table} alter column "{col}" type bigint')
    return cols


def table_metadata(con, schema: str, table: str, descriptions: dict[str, str] | None = None) -> dict:
    """Row count, column schema (with descriptions) and table name, as Dagster shows them."""
    rows = con.execute(f"select count(*) from {schema}.{table}").fetchall()[0][0]
    cols = con.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = ? and table_name = ? order by ordinal_position",
        [schema, table],
    ).fetchall()
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
) -> list[dg.AssetsDefinition]:
    """One asset per model; ``extra_metadata(con, model) -> dict`` can add model-specific previews."""
    return [_sql_asset(m, group, list(owners), extra_metadata, freshness_policy) for m in models]


def _sql_asset(model: SqlModel, group: str, owners: list[str], extra_metadata,
               freshness_policy: dg.FreshnessPolicy | None) -> dg.AssetsDefinition:
    description = model.description
    if model.grain:
        description += f"\n\nUnique key: `{', '.join(model.grain)}`."

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
