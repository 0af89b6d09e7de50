"""Billing's files mode reads a parent's pages once for the parent and its child tables (subscriptions and
their items, invoices and their lines), and its first pass reads keys only (simdjson). These tests pin that
both give exactly what the slower ways gave: the child tables loaded by their own resource, and the first
pass over fully parsed records."""

import json
from pathlib import Path

import dlt
import duckdb

from cs_kpis.sources.billing import billing_source
from cs_kpis.sources.billing import files as billing_files
from cs_kpis.sources.common.landing import BOM, KeyFields
from cs_kpis.sources.common.runner import run_until_caught_up
from cs_kpis_tests.landing_builder import write_landing
from cs_kpis_tests.sources.landing_builder import DAYS, subscription, tiny_company

CHILDREN = ("subscription_items", "invoice_lines")


def _load(tmp_path: Path, name: str, landing: Path, selections: list[tuple[str, ...] | None]) -> Path:
    """Load billing into a new warehouse, one run per selection (None: every resource)."""
    warehouse = tmp_path / f"{name}.duckdb"
    pipeline = dlt.pipeline(pipeline_name=f"one_pass_{name}", destination=dlt.destinations.duckdb(str(warehouse)),
                            dataset_name="raw", pipelines_dir=str(tmp_path / f"dlt_{name}"))
    for selection in selections:
        source = billing_source(landing_dir=landing)
        if selection is not None:
            source = source.with_resources(*selection)
        _, totals = run_until_caught_up(pipeline, source)
        assert all(counts.balanced for counts in totals.values()), totals
    return warehouse


def _tables(warehouse: Path) -> dict[str, list[tuple]]:
    """Every billing table and the bookkeeping rows, without dlt's ids and load times, sorted."""
    out = {}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        names = [n for (n,) in con.execute(
            "select table_name from information_schema.tables where table_schema = 'raw' "
            "and (table_name like 'billing__%' or table_name in ('_quarantine', '_row_accounting'))").fetchall()]
        for name in names:
            columns = [c for (c,) in con.execute(
                "select column_name from information_schema.columns where table_schema = 'raw' and table_name = ? "
                "order by column_name", [name]).fetchall() if c not in ("_dlt_load_id", "_dlt_id", "loaded_at")]
            select = ", ".join(f'"{c}"::varchar' for c in columns)
            out[name] = (columns, sorted(con.execute(f"select {select} from raw.{name}").fetchall(), key=repr))
    return out


def test_children_loaded_by_their_parents_pass_equal_children_loaded_by_their_own(tmp_path: Path, monkeypatch) -> None:
    history = tiny_company()
    # a subscription whose item cannot load (its created is out of range): the subscription loads, its
    # items are quarantined; and one failing the contract (unknown currency): both are quarantined
    bad_item = subscription(8, 1, DAYS[0])
    bad_item["items"]["data"][0]["created"] = 10**20
    history[DAYS[0]][("billing", "subscriptions")] += [bad_item, subscription(9, 1, DAYS[0], currency="xyz")]
    # a later version of a subscription with two items, on the last day: one version of each set loads
    history[DAYS[2]][("billing", "subscriptions")].append(subscription(8, 1, DAYS[2], items=[(81, 2), (82, 3)]))
    landing = write_landing(tmp_path / "landing", history)

    reads: list[str] = []
    full_reader = billing_files.iter_records

    def counting_reader(landing_dir, entity, day):
        reads.append(entity)
        return full_reader(landing_dir, entity, day)

    monkeypatch.setattr(billing_files, "iter_records", counting_reader)
    together = _load(tmp_path, "together", landing, [None])
    # one full read of each day's subscriptions for the subscriptions and their items (the first pass reads keys)
    assert reads.count("subscriptions") == len(DAYS)
    reads.clear()
    apart = _load(tmp_path, "apart", landing, [CHILDREN, tuple(s for s in _resource_names(landing) if s not in CHILDREN)])
    assert reads.count("subscriptions") == 2 * len(DAYS)

    fed, own = _tables(together), _tables(apart)
    assert fed.keys() == own.keys()
    for name in fed:
        assert fed[name] == own[name], name
    assert any("si_00000000000082" in row for row in fed["billing__subscription_items"][1])
    columns, rows = fed["_quarantine"]
    quarantined = {(row[columns.index("entity")], row[columns.index("reason")]) for row in rows}
    assert any(entity == "subscription_items" and "created" in reason for entity, reason in quarantined), quarantined
    assert not any(entity == "subscriptions" and "created" in reason for entity, reason in quarantined), quarantined
    assert {entity for entity, reason in quarantined if "currency" in reason} == {"subscriptions", "subscription_items"}


def _resource_names(landing: Path) -> list[str]:
    return list(billing_source(landing_dir=landing).resources.keys())


def test_the_key_pass_reads_the_same_records_as_the_full_reader(tmp_path: Path) -> None:
    history = tiny_company()
    history[DAYS[0]][("billing", "customers")] = [
        {"id": f"cus_{n}", "object": "customer"} for n in range(5)]
    landing = write_landing(tmp_path / "landing", history, part_size=2)
    folder = landing / "billing" / "customers" / DAYS[0]
    # a part with a byte-order mark, one with a record that is not an object and a numeric id, one cut off
    (folder / "part-00001.json").write_bytes(BOM + (folder / "part-00001.json").read_bytes())
    (folder / "part-00004.json").write_text(json.dumps({"object": "list", "data": [7, {"id": 12}, {"id": True}]}))
    (folder / "part-00005.json").write_text('{"object": "list", "data": [{"id": "cus_x"}, {"id": "cus_')

    full = list(billing_files.iter_records(landing, "customers", DAYS[0]))
    keys = list(billing_files.iter_keys(landing, "customers", DAYS[0]))
    assert [(r.origin, r.position, r.records, r.error) for r in keys] == [
        (r.origin, r.position, r.records, r.error) for r in full]
    assert [None if r.obj is None else r.obj.get("id") for r in keys] == [
        None if r.obj is None else r.obj.get("id") for r in full]
    light = [r for r in keys if isinstance(r.obj, KeyFields)]
    assert len(light) == 5  # the first three parts; the unusual and the damaged ones come in full
    by_place = {(r.origin, r.position): r.obj for r in full}
    assert all(r.obj.load() == by_place[(r.origin, r.position)] for r in light)


def test_a_second_run_in_the_same_process_decides_from_its_own_load(tmp_path: Path, monkeypatch) -> None:
    """Whether the parent's pass loads a child table is decided once per load and kept with that load's
    package, not in a table of the process: a later run of another pipeline, over another landing, with only
    the child selected, must read the child's pages itself. The load ids are made to coincide (dlt makes
    them unique in one process, another pipeline state or a restarted clock need not), so an answer kept
    by load id would come back from the first run."""
    import dlt.extract.storage as extract_storage

    first = tiny_company()
    landing_a = write_landing(tmp_path / "landing_a", first)
    second = tiny_company()
    second[DAYS[1]][("billing", "subscriptions")].append(subscription(8, 1, DAYS[1], items=[(81, 2), (82, 3)]))
    landing_b = write_landing(tmp_path / "landing_b", second)

    counter = iter(range(1, 1000))
    monkeypatch.setattr(extract_storage, "create_load_id", lambda: f"1767225600.{next(counter):06d}")
    together = _tables(_load(tmp_path, "a", landing_a, [None]))
    counter = iter(range(1, 1000))  # the second pipeline's loads get the first one's ids
    child_only = _tables(_load(tmp_path, "b", landing_b, [CHILDREN]))

    for child in CHILDREN:
        assert child_only[f"billing__{child}"][1], f"{child}: nothing loaded in the second run"
    items = child_only["billing__subscription_items"][1]
    # landing b's own subscription: its two items, which landing a does not have
    assert any("si_00000000000082" in row for row in items) and any("si_00000000000081" in row for row in items)
    assert not any("si_00000000000082" in row for row in together["billing__subscription_items"][1])
    assert len(items) == len(together["billing__subscription_items"][1]) + 2
