"""Every raw column a staging model reads is declared by its source, so it exists on a first day where every
record leaves the field null (dlt creates a column only for a non-null value) and in an optional entity's
table when no record came at all.

Which columns a model reads is found, not listed: on a copy of the tiny company's raw tables, each column is
dropped in turn (and put back) and the model bound again; a model that no longer binds reads it.
"""

import re

import duckdb
import pytest
from dlt.common.normalizers.naming.snake_case import NamingConvention

from cs_kpis.defs.staging.assets import STAGING_MODELS
from cs_kpis.lib import sql as sqllib
from cs_kpis.sources.pipelines import SOURCES

_NAMING = NamingConvention()

LINEAGE = frozenset({"_extract_day", "_origin", "_dlt_load_id", "_dlt_id", "_dlt_valid_from", "_dlt_valid_to"})
"""columns the loader writes on every row it loads"""

LOAD_IDS = frozenset({"_dlt_load_id", "_dlt_id"})
"""the columns an optional entity's empty table has too: dlt adds them to a table it creates from
``materialize_table_schema``, and ``empty_table`` (the insert-only tables') declares them
(test_an_optional_entitys_empty_table_has_the_load_id); a staging model built by load reads ``_dlt_load_id``"""

NOT_DLT_RESOURCES = frozenset({"product__events", "billing__fx_rates"})
"""tables whose columns are fixed by their loader (product events: created by SQL with every column,
``cs_kpis/sources/product/settings.py`` TABLE_COLUMNS; fx rates: date, currency and rate on every parsed row)"""


def _declared(monkeypatch: pytest.MonkeyPatch) -> dict[str, tuple[set[str], set[str], bool]]:
    """raw table -> (columns declared with a type, primary key, created even when empty) of every dlt source."""
    import importlib

    from cs_kpis.sources.common.entity import entity_resource

    specs = {}

    def spy(system, spec, **kwargs):  # the Entity specs the sources build (materialize_empty is on the spec)
        specs[f"{system}__{spec.name}"] = spec
        return entity_resource(system, spec, **kwargs)

    out: dict[str, tuple[set[str], set[str], bool]] = {}
    for system, factory in SOURCES.items():
        if system == "product":
            continue
        monkeypatch.setattr(importlib.import_module(f"cs_kpis.sources.{system}"), "entity_resource", spy)
        for resource in factory(landing_dir=None).resources.values():
            table = resource.table_name
            if table in NOT_DLT_RESOURCES:
                continue
            columns = resource.compute_table_schema().get("columns", {})
            typed = {_NAMING.normalize_path(n) for n, c in columns.items() if c.get("data_type")}
            keys = {_NAMING.normalize_path(n) for n, c in columns.items() if c.get("primary_key")}
            out[table] = (typed, keys, specs[table].materialize_empty)
    return out


def _columns_read(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], set[str]]:
    """(model, raw table) -> the raw columns the model's SQL cannot bind without."""
    reads: dict[tuple[str, str], set[str]] = {}
    for model in STAGING_MODELS:
        sql = sqllib.render_model(model)
        con.execute(f"explain {sql}")  # binds with every column there
        for table in sorted(set(re.findall(r"raw\.(\w+)", sql))):
            if table.startswith("_"):
                continue
            cols = [r[0] for r in con.execute(
                "select column_name from information_schema.columns where table_schema = 'raw' and table_name = ? "
                "order by ordinal_position", [table]).fetchall()]
            used = set()
            for col in cols:
                con.execute("begin")
                con.execute(f'alter table raw.{table} drop column "{col}"')
                try:
                    con.execute(f"explain {sql}")
                except duckdb.Error:
                    used.add(col)
                con.execute("rollback")
            reads[(model.name, table)] = used
    return reads


def test_every_raw_column_staging_reads_is_declared_by_its_source(tiny_company, monkeypatch: pytest.MonkeyPatch) -> None:
    con = duckdb.connect()
    con.execute(f"attach '{tiny_company.warehouse}' as wh (read_only)")
    con.execute("create schema raw")
    con.execute("create schema staging")
    for (table,) in con.execute("select table_name from information_schema.tables where table_catalog = 'wh' "
                                "and table_schema = 'raw'").fetchall():
        con.execute(f"create table raw.{table} as select * from wh.raw.{table} limit 0")
    for (table,) in con.execute("select table_name from information_schema.tables where table_catalog = 'wh' "
                                "and table_schema = 'staging' and table_name like '\\_%' escape '\\'").fetchall():
        con.execute(f"create table staging.{table} as select * from wh.staging.{table} limit 0")
    con.execute("detach wh")
    declared = _declared(monkeypatch)
    reads = _columns_read(con)
    assert reads[("stg_crm__accounts", "crm__accounts")] >= {"id", "parent_id", "csm__c"}  # the probe works
    missing = {}
    for (model, table), used in sorted(reads.items()):
        if table in NOT_DLT_RESOURCES:
            continue
        typed, keys, optional = declared[table]
        given = typed | LOAD_IDS if optional else typed | keys | LINEAGE
        if used - given:
            missing[f"{model} <- raw.{table}"] = sorted(used - given)
    assert not missing, ("staging reads raw columns its source does not declare (a first day where the field is "
                         f"null in every record, or an optional entity with no record, fails the build): {missing}")


def test_salesforce_api_mode_selects_every_declared_field() -> None:
    # API mode reads only the SOQL field list: a declared field it did not select would be a column that
    # exists but stays null, silently
    from cs_kpis.sources.crm import settings
    from cs_kpis.sources.crm.api import SOQL_FIELDS

    for resource, types in settings.DECLARED_FIELDS.items():
        selected = set(SOQL_FIELDS[settings.FOLDERS[resource]])
        assert {p for paths in types.values() for p in paths} <= selected, resource


def test_an_optional_entitys_empty_table_has_the_load_id(tmp_path) -> None:
    """Both ways an optional entity's table is created without records (cs_kpis/sources/common/entity.py) give
    it dlt's load and row ids: ``materialize_table_schema`` (a merged table) and ``empty_table`` (insert-only)."""
    import dlt

    from cs_kpis.sources.common.arrow_rows import empty_table

    hints = {"id": {"data_type": "text"}, "amount": {"data_type": "bigint"}}

    @dlt.resource(table_name="demo__merged", primary_key="id", write_disposition="merge", columns=hints)
    def merged():
        yield dlt.mark.materialize_table_schema()

    @dlt.resource(table_name="demo__events", primary_key="id", columns=hints,
                  write_disposition={"disposition": "merge", "strategy": "insert-only"})
    def events():
        yield empty_table(hints)

    warehouse = tmp_path / "warehouse.duckdb"
    pipeline = dlt.pipeline("optional_empty", destination=dlt.destinations.duckdb(str(warehouse)),
                            dataset_name="raw", pipelines_dir=str(tmp_path / "dlt"))
    pipeline.run([merged(), events()])
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for table in ("demo__merged", "demo__events"):
            columns = {c for (c,) in con.execute("select column_name from information_schema.columns where "
                                                 "table_schema = 'raw' and table_name = ?", [table]).fetchall()}
            assert columns >= {"id", "amount"} | LOAD_IDS, (table, columns)
            assert con.execute(f"select count(*) from raw.{table}").fetchone()[0] == 0
