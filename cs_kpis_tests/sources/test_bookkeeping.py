"""raw._quarantine and raw._row_accounting: there from the first load, only their own columns, failures recorded."""

from pathlib import Path

import pytest
from dlt.pipeline.exceptions import PipelineStepFailed

from cs_kpis.sources.common.bookkeeping import ACCOUNTING_COLUMNS, QUARANTINE_COLUMNS
from cs_kpis_tests.landing_builder import write_landing
from cs_kpis_tests.sources.conftest import Loader
from cs_kpis_tests.sources.landing_builder import DAYS, coupon, ticket, tiny_company, tiny_events

DLT_COLUMNS = {"_dlt_load_id", "_dlt_id"}


def _columns(loader: Loader, table: str) -> set[str]:
    return {c for (c,) in loader.query(
        "select column_name from information_schema.columns where table_schema = 'raw' and table_name = ?"
        .replace("?", f"'{table}'"))}


def test_a_clean_load_leaves_both_tables_with_only_their_own_columns(loader: Loader, tmp_path: Path) -> None:
    events = {day: tiny_events(day, i * 100, 5) for i, day in enumerate(DAYS)}
    landing = write_landing(tmp_path / "landing", tiny_company(), events=events)
    for system in ("crm", "billing", "support", "nps", "product"):
        loader.run(system, landing)
    assert loader.query("select count(*) from raw._quarantine") == [(0,)]
    assert _columns(loader, "_quarantine") == set(QUARANTINE_COLUMNS) | DLT_COLUMNS
    assert _columns(loader, "_row_accounting") == set(ACCOUNTING_COLUMNS) | DLT_COLUMNS
    assert loader.query("select distinct status from raw._row_accounting") == [("loaded",)]


def test_quarantine_rows_carry_only_their_own_columns(loader: Loader, tmp_path: Path) -> None:
    history = tiny_company()
    history[DAYS[1]][("support", "tickets")] = [ticket(1, 1, DAYS[1], priority=3)]
    landing = write_landing(tmp_path / "landing", history)
    loader.run("billing", landing)
    loader.run("support", landing)
    assert loader.query("select count(*) from raw._quarantine") == [(1,)]
    assert _columns(loader, "_quarantine") == set(QUARANTINE_COLUMNS) | DLT_COLUMNS
    assert _columns(loader, "_row_accounting") == set(ACCOUNTING_COLUMNS) | DLT_COLUMNS


def test_a_failed_entity_writes_an_accounting_row_that_says_so(loader: Loader, tmp_path: Path) -> None:
    history = tiny_company()
    history[DAYS[1]][("support", "tickets")] = [ticket(n, 1, DAYS[1], priority=3) for n in range(1, 13)]
    landing = write_landing(tmp_path / "landing", history)
    with pytest.raises(PipelineStepFailed):
        loader.run("support", landing)
    rows = loader.query("select entity, status, error from raw._row_accounting order by entity")
    by_entity = {entity: (status, error) for entity, status, error in rows}
    assert by_entity["tickets"][0] == "failed"
    assert "contract change in field 'priority'" in by_entity["tickets"][1]
    assert by_entity["organizations"] == ("failed", "not loaded: resource 'tickets' of the same load failed")
    # the export is fixed: the rerun loads, and the failure rows stay as history
    history[DAYS[1]][("support", "tickets")] = [ticket(n, 1, DAYS[1]) for n in range(1, 13)]
    landing = write_landing(tmp_path / "landing", history)
    loader.run("support", landing)
    assert loader.query("select count(*) from raw._row_accounting where status = 'failed'") == [(4,)]
    assert loader.query("select count(*) from raw.support__tickets where priority = 'normal'")[0][0] >= 12


def test_a_column_a_newer_version_declares_appears_without_new_data(loader: Loader, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """An upgraded cs_kpis declares a column (coupons' currency_options, which staging reads) that the raw table
    loaded by the older version lacks: the next load adds it even though no coupon changed (no new extract day),
    so staging does not wait for a column that only a changed coupon would bring."""
    from cs_kpis.sources.billing import settings

    landing = write_landing(tmp_path / "landing", tiny_company())
    older = {**settings.DECLARED_FIELDS["coupons"], "json": ()}  # the older version: currency_options not declared
    monkeypatch.setitem(settings.DECLARED_FIELDS, "coupons", older)
    loader.run("billing", landing)
    assert "currency_options" not in _columns(loader, "billing__coupons")
    before = loader.query("select count(*) from raw.billing__coupons")
    monkeypatch.undo()
    loader.run("billing", landing)  # the same landing: nothing new to load
    assert "currency_options" in _columns(loader, "billing__coupons")
    assert loader.query("select count(*) from raw.billing__coupons") == before


# key columns (primary and merge keys) that the versions before these declarations left undeclared: dlt stored
# them as not nullable. crm AccountHistory's Id and billing invoice items' id were declared (nullable) before.
_UNDECLARED_KEYS = {
    "billing": {"coupons": ("id",), "invoices": ("id",), "invoice_lines": ("id", "invoice"),
                "subscription_items": ("subscription",)},
    "crm": {"accounts": ("Id",), "contacts": ("Id",), "opportunities": ("Id",)},
    "nps": {None: ("id",)},
}


@pytest.mark.parametrize("system", ["billing", "crm", "nps"])
def test_a_warehouse_loaded_before_the_keys_were_declared_takes_the_next_load(
        loader: Loader, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, system: str) -> None:
    """An upgrade: the older version did not declare these key columns, so dlt stored them as not nullable. A
    declared column is hinted nullable, and with frozen data types dlt refused the flipped key ("Can't evolve
    column type of `id`"), so every load into such a warehouse failed until key columns kept no nullable hint."""
    import importlib

    settings = importlib.import_module(f"cs_kpis.sources.{system}.settings")
    landing = write_landing(tmp_path / "landing", tiny_company())
    for entity, keys in _UNDECLARED_KEYS[system].items():
        declared = settings.DECLARED_FIELDS if entity is None else settings.DECLARED_FIELDS[entity]
        older = {t: tuple(p for p in paths if p not in keys) for t, paths in declared.items()}
        if entity is None:
            monkeypatch.setattr(settings, "DECLARED_FIELDS", older)
        else:
            monkeypatch.setitem(settings.DECLARED_FIELDS, entity, older)
    loader.run(system, landing)
    before = {t: loader.query(f"select count(*) from raw.{t}")
              for (t,) in loader.query("select table_name from information_schema.tables "
                                       f"where table_schema = 'raw' and table_name like '{system}\\_\\_%' escape '\\'")}
    monkeypatch.undo()
    loader.run(system, landing)  # this version's declarations, on the older warehouse
    assert {t: loader.query(f"select count(*) from raw.{t}") for t in before} == before


def test_a_warehouse_with_whole_number_percent_off_takes_the_declared_double(
        loader: Loader, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An upgrade: before coupons' ``percent_off`` was declared double, an export writing it as whole numbers made
    the column BIGINT, and with frozen data types every later billing load failed ("Can't evolve column type of
    `percent_off`"). The stored type is kept: whole values load, and a fractional one stops the load naming the
    field instead of being rounded into the BIGINT column (12.5 loaded as 12 before the stored type was held)."""
    from cs_kpis.sources.billing import settings

    history = tiny_company()
    for day, (code, off) in zip(DAYS, [("A", 20), ("B", 30.0), ("C", 12.5)], strict=True):
        history[day][("billing", "coupons")] = [coupon(code, off)]
    older = {t: tuple(p for p in paths if p != "percent_off") for t, paths in settings.DECLARED_FIELDS["coupons"].items()}
    monkeypatch.setitem(settings.DECLARED_FIELDS, "coupons", older)
    loader.run("billing", write_landing(tmp_path / "landing", {DAYS[0]: history[DAYS[0]]}))
    percent_off = ("select data_type from information_schema.columns where table_schema = 'raw' "
                   "and table_name = 'billing__coupons' and column_name = 'percent_off'")
    assert loader.query(percent_off) == [("BIGINT",)]
    monkeypatch.undo()

    loader.run("billing", write_landing(tmp_path / "landing", {day: history[day] for day in DAYS[:2]}))
    assert loader.query("select id, percent_off from raw.billing__coupons order by id") == [("A", 20), ("B", 30)]
    assert loader.query(percent_off) == [("BIGINT",)]

    with pytest.raises(PipelineStepFailed, match=r"'percent_off' of billing__coupons changed type from whole "
                                                 r"numbers to fractional \(value 12\.5\)"):
        loader.run("billing", write_landing(tmp_path / "landing", history))
    assert loader.query("select id, percent_off from raw.billing__coupons order by id") == [("A", 20), ("B", 30)]
