"""Fixtures for source tests: a warehouse, a dlt pipelines_dir and a landing folder, all in tmp_path."""

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dlt
import duckdb
import pytest

from cs_kpis.sources.billing import billing_source
from cs_kpis.sources.common.runner import run_until_caught_up
from cs_kpis.sources.crm import crm_source
from cs_kpis.sources.nps import nps_source
from cs_kpis.sources.product import product_source
from cs_kpis.sources.support import support_source

SOURCES: dict[str, Callable[..., Any]] = {
    "crm": crm_source,
    "billing": billing_source,
    "product": product_source,
    "support": support_source,
    "nps": nps_source,
}


@dataclass
class Loader:
    """Runs sources of one landing folder into one warehouse, the way the raw assets do."""

    tmp_path: Path
    warehouse: Path

    def run(self, system: str, landing: Path, **source_args: Any) -> dict[str, Any]:
        pipeline = dlt.pipeline(
            pipeline_name=f"test_{system}",
            destination=dlt.destinations.duckdb(credentials=str(self.warehouse)),
            dataset_name="raw",
            pipelines_dir=str(self.tmp_path / "dlt"),
        )
        source = SOURCES[system](landing_dir=landing, **source_args)
        _, totals = run_until_caught_up(pipeline, source)
        return totals

    def staging_rows_of(self, models: Iterable[Any]) -> dict[str, int]:
        """Each staging model of ``models`` built in turn on the raw tables loaded (as a run builds it: a model
        built by raw load reads the loads its build planned), and its rows: model name -> rows. A model reading a
        column that does not exist raises. One connection for them all: opening and closing the warehouse took
        longer than building a staging model of the tiny company."""
        from cs_kpis.lib import sql as sqllib

        out = {}
        with duckdb.connect(str(self.warehouse)) as con:
            for model in models:
                sqllib.build(con, model)
                out[model.name] = con.execute(f"select count(*) from {model.table}").fetchone()[0]
        return out

    def query(self, sql: str) -> list[tuple]:
        with duckdb.connect(str(self.warehouse), read_only=True) as con:
            return con.execute(sql).fetchall()

    def tables(self, names: Iterable[str] = (), *, like: str | None = None,
               drop_prefix: str = "_") -> dict[str, list[tuple]]:
        """All rows of each ``raw.<name>`` of ``names`` (or, with ``like``, of every raw table whose name matches
        that LIKE pattern, escape character ``\\``) without dlt/lineage columns, sorted, for comparisons:
        name -> rows. Read on one connection: opening the warehouse costs more than reading a tiny table (a
        connection per table was a fifth of the bad-input corpus's time)."""
        out = {}
        with duckdb.connect(str(self.warehouse), read_only=True) as con:
            if like is not None:
                names = [n for (n,) in con.execute(
                    "select table_name from information_schema.tables where table_schema = 'raw' "
                    "and table_name like ? escape '\\'", [like]).fetchall()]
            for name in names:
                columns = [
                    c
                    for (c,) in con.execute(
                        "select column_name from information_schema.columns where table_schema = 'raw' "
                        "and table_name = ? order by column_name",
                        [name],
                    ).fetchall()
                    if not c.startswith(drop_prefix)
                ]
                rows = con.execute(f"select {', '.join(columns)} from raw.{name}").fetchall()
                out[name] = sorted(rows, key=repr)
        return out


@pytest.fixture(autouse=True)
def _no_telemetry(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RUNTIME__DLTHUB_TELEMETRY", "false")
    # dlt writes its global files (.anonymous_id) under DLT_DATA_DIR; keep them out of $HOME
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt_global"))
    os.environ.pop("DLT_PROJECT_DIR", None)


@pytest.fixture
def loader(tmp_path: Path) -> Loader:
    return Loader(tmp_path, tmp_path / "warehouse.duckdb")


def make_loader(tmp_path: Path, name: str) -> Loader:
    """A second, independent warehouse in the same test."""
    return Loader(tmp_path / name, tmp_path / name / "warehouse.duckdb")
