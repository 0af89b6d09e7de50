"""The SQL path of billing's invoices (cs_kpis/sources/common/sql_parts.py, issue 18): a part DuckDB proves clean
loads as Arrow tables built in SQL, any other part goes through the Python path, and the warehouse comes out the
same as the Python path makes it: rows, columns and their order, quarantine, accounting and resource state."""

import json
from pathlib import Path

import dlt
import duckdb
import pytest

from cs_kpis.sources.billing import billing_source, entities
from cs_kpis.sources.billing import settings as billing_settings
from cs_kpis.sources.common import sql_parts
from cs_kpis.sources.common.contract import landing_window
from cs_kpis.sources.common.landing import read_fx_currencies
from cs_kpis.sources.common.runner import run_until_caught_up
from cs_kpis_tests.landing_builder import write_landing
from cs_kpis_tests.sources.landing_builder import DAYS, invoice, tiny_company
from cs_kpis_tests.sources.test_one_pass_files import raw_tables

INVOICES = ("invoices", "invoice_lines")


def _history() -> dict:
    """The tiny company with invoices over several parts (3 a part): clean parts, a re-delivered invoice (in
    two parts of one day and again, changed, on the last day), an invoice of the second day changed on the
    third (one load reads both), a part with an invoice that fails its contract
    (negative amount_due), one whose field changes type (quarantined by the type check), one whose JSON
    text DuckDB would write unlike orjson (a float with an exponent), and a second day of clean parts."""
    d1, d2, d3 = DAYS
    history = tiny_company()
    clean = [invoice(n, 1 + n % 2, 1 + n % 2, d1) for n in range(10, 22)]
    redelivered = invoice(30, 1, 1, d1, status="open")
    bad_amount = invoice(31, 2, 2, d1, amount_due=-5)
    changed_type = invoice(32, 1, 1, d1)
    changed_type["account_country"] = 5  # text in every other invoice
    exponent = invoice(33, 2, 2, d1)
    exponent["total_discount_amounts"] = [{"amount": 1e-7}]
    history[d1][("billing", "invoices")] = [
        *history[d1][("billing", "invoices")], *clean[:4], redelivered, *clean[4:8], bad_amount,
        *clean[8:10], redelivered, changed_type, *clean[10:], exponent,
    ]
    for one in history[d1][("billing", "invoices")]:
        if one is not changed_type:
            one.setdefault("account_country", "US")
    history[d2][("billing", "invoices")] += [invoice(n, 1, 1, d2) for n in range(40, 44)]
    # invoice 40 again on the last day: the increment's load reads both days and loads the later one
    history[d3][("billing", "invoices")] = [invoice(30, 1, 1, d3, status="paid"), invoice(44, 2, 2, d3),
                                            invoice(40, 1, 1, d3, status="open")]
    return history


def _load(tmp_path: Path, name: str, landings: list[Path], sql: bool, monkeypatch) -> Path:
    if sql:
        monkeypatch.setenv(billing_settings.SQL_PATH_ENV, "invoices")
    else:
        monkeypatch.delenv(billing_settings.SQL_PATH_ENV, raising=False)
    warehouse = tmp_path / f"{name}.duckdb"
    pipeline = dlt.pipeline(pipeline_name=f"sql_parts_{name}", destination=dlt.destinations.duckdb(str(warehouse)),
                            dataset_name="raw", pipelines_dir=str(tmp_path / f"dlt_{name}"))
    for landing in landings:
        _, totals = run_until_caught_up(pipeline, billing_source(landing_dir=landing).with_resources(*INVOICES))
        assert all(counts.balanced for counts in totals.values()), totals
    states = pipeline.state["sources"]["billing"]["resources"]
    (tmp_path / f"{name}.state.json").write_text(json.dumps({k: states[k] for k in INVOICES}, default=str))
    return warehouse


def _columns(warehouse: Path) -> dict[str, list[tuple]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return {table: con.execute(
            "select column_name, data_type from information_schema.columns where table_schema = 'raw' "
            "and table_name = ? order by ordinal_position", [table]).fetchall()
            for table in ("billing__invoices", "billing__invoice_lines")}


@pytest.mark.slow
def test_the_sql_path_loads_what_the_python_path_loads(tmp_path: Path, monkeypatch) -> None:
    history = _history()
    snapshot = write_landing(tmp_path / "snapshot", {DAYS[0]: history[DAYS[0]]}, part_size=3)
    full = write_landing(tmp_path / "full", history, part_size=3)
    parts: list[bool] = []
    read = sql_parts.SqlParts.read

    def counting(self, path):
        result = read(self, path)
        parts.append(result is not None)
        return result

    monkeypatch.setattr(sql_parts.SqlParts, "read", counting)
    python = _load(tmp_path, "python", [snapshot, full], sql=False, monkeypatch=monkeypatch)
    assert parts == []
    sql = _load(tmp_path, "sql", [snapshot, full], sql=True, monkeypatch=monkeypatch)
    # the bad amount, the changed type and the exponent send three parts of the first day to Python
    assert parts.count(False) == 3 and parts.count(True) >= 5, parts

    expected, got = raw_tables(python), raw_tables(sql)
    assert expected.keys() == got.keys()
    for name in expected:
        assert got[name] == expected[name], name
    quarantined = [row for row in expected["_quarantine"][1] if "invoices" in repr(row)]
    assert len(quarantined) == 4  # the bad amount and the changed type, for invoices and for their lines
    # the same columns and types; their order too, but for a column first seen after the first table went
    # to dlt, which comes after dlt's ids (as the Python path's own do after its first 50,000 rows)
    for table, columns in _columns(python).items():
        assert sorted(_columns(sql)[table]) == sorted(columns)
    assert (tmp_path / "sql.state.json").read_text() == (tmp_path / "python.state.json").read_text()
    with duckdb.connect(str(sql), read_only=True) as con:
        assert con.execute("select status from raw.billing__invoices where id = 'in_00000000000030'").fetchall() == [
            ("paid",)]
        assert con.execute("select count(*) from raw.billing__invoice_lines where invoice = 'in_00000000000030'"
                           ).fetchone() == (1,)
        assert con.execute("select status, _extract_day::varchar from raw.billing__invoices "
                           "where id = 'in_00000000000040'").fetchall() == [("open", DAYS[2])]
        deduplicated = con.execute("select rows_deduplicated from raw._row_accounting "
                                   "where entity in ('invoices', 'invoice_lines') order by all").fetchall()
    # one repeat in each load, for invoices and their lines: within a day's parts, then across two days
    assert deduplicated == [(1,)] * 4, deduplicated


def _sql(landing: Path) -> sql_parts.SqlParts:
    spec = next(one for one in entities(read_fx_currencies(landing), landing_window(landing)) if one.name == "invoices")
    return sql_parts.SqlParts(
        list_key="data", contract=spec.contract.__self__, json_paths=spec.json_paths,
        unix_fields=billing_settings.UNIX_FIELDS["invoices"], primary_key="id", child_list="lines",
        foreign_key="invoice", child_unix_fields=billing_settings.UNIX_FIELDS["invoice_lines"])


def test_a_part_the_sql_path_cannot_prove_clean_goes_to_python(tmp_path: Path) -> None:
    d1 = DAYS[0]
    bad_currency = invoice(2, 1, 1, d1, currency="xyz")
    no_lines = invoice(3, 1, 1, d1)
    no_lines["lines"] = None
    mixed = [invoice(4, 1, 1, d1), invoice(5, 1, 1, d1)]
    mixed[1]["attempt_count"] = 1.0  # the contract wants an integer
    typed = [invoice(6, 1, 1, d1), invoice(7, 1, 1, d1)]
    typed[1]["number"] = 7  # text in the other invoice of the part
    exponent = invoice(8, 1, 1, d1)
    exponent["total_discount_amounts"] = [{"amount": 1e20}]
    parts = [[invoice(1, 1, 1, d1)], [bad_currency], [no_lines], mixed, typed, [exponent]]
    history = {d1: {("billing", "invoices"): [one for part in parts for one in part]}}
    landing = write_landing(tmp_path / "landing", history, part_size=1)
    sql = _sql(landing)
    files = sorted((landing / "billing" / "invoices" / d1).glob("part-*.json"))
    results = [sql.read(path) for path in files]
    assert [result is not None for result in results] == [True, False, False, True, False, True, True, False]
    # parts of one record: a type conflict is between parts, which the pass checks against the types learned
    clean = results[0]
    assert clean.records == 1 and clean.keys == [("in_00000000000001",)]
    assert clean.child.column("invoice").to_pylist() == ["in_00000000000001"]
    assert clean.parent_types["lines[].period.start"] == "number"
    assert results[6].parent_types["number"] == "number" and results[5].parent_types.get("number") is None

    # a damaged part (cut off), one with a byte-order mark
    cut = files[0].read_bytes()[:-40]
    (files[0].parent / "part-09998.json").write_bytes(cut)
    (files[0].parent / "part-09999.json").write_bytes(b"\xef\xbb\xbf" + files[0].read_bytes())
    assert sql.read(files[0].parent / "part-09998.json") is None
    assert sql.read(files[0].parent / "part-09999.json") is None
