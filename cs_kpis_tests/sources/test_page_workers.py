"""Billing's and support's passes with their per-record work in worker processes
(cs_kpis/sources/common/workers.py) give what the loading process alone gives: the same records, ordinals,
rows, rejections (reasons, fields, raw text), keys and learned field types, on pages full of what goes wrong
(type changes learned in an earlier part or an earlier load, a child's own rejection that unshares its
field types, contract rejections, a damaged part, a record that is not an object, repeated keys)."""

import contextlib
import json
import multiprocessing as mp
import os
import pickle
import random
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import dlt
import duckdb
import pytest

from cs_kpis.sources import billing, support
from cs_kpis.sources.billing import files as billing_files
from cs_kpis.sources.common import workers
from cs_kpis.sources.common.contract import landing_window
from cs_kpis.sources.common.helpers import FieldTypes, Reject, iter_leaf_types, leaf_types, to_raw_text
from cs_kpis.sources.common.landing import read_fx_currencies
from cs_kpis.sources.common.runner import run_until_caught_up
from cs_kpis.sources.common.steps import (
    CheckAlone,
    CheckShared,
    ChildFeed,
    FilesRead,
    Numbered,
    check_records,
    record_key,
)
from cs_kpis.sources.support import files as support_files
from cs_kpis_tests.landing_builder import write_landing
from cs_kpis_tests.processes import AS_FROM_A_SHELL, read_line, running, wait_for
from cs_kpis_tests.sources.landing_builder import DAYS, invoice, subscription, ticket, tiny_company


def _bad_company() -> dict:
    history = tiny_company()
    d1, d2, _ = DAYS
    invoices = history[d1][("billing", "invoices")]
    invoices += [invoice(n, 1, 1, d1) for n in range(3, 12)]
    invoices[2]["x_note"] = "text first"  # learned in an early part ...
    invoices[7]["x_note"] = 5  # ... rejected in a later one
    invoices[4]["lines"]["data"][0]["x_line"] = {"a": 1}
    invoices[6]["lines"]["data"][0]["x_line"] = 7  # a change inside a child item: parent and lines both
    invoices[10]["currency"] = "xyz"  # the contract: the invoice and its lines
    invoices[5]["x_old"] = 1  # the earlier load taught text (below)
    history[d2][("billing", "invoices")] += [invoice(4, 1, 1, d2), invoice(5, 1, 1, d2)]  # later versions
    subs = history[d1][("billing", "subscriptions")]
    bad_item = subscription(8, 1, d1)
    bad_item["items"]["data"][0]["created"] = 10**20  # the item's own rejection: the child unshares its types
    later = subscription(9, 1, d1)
    later["items"]["data"][0]["quantity"] = "5"
    later["x_sub"] = 1
    subs += [bad_item, subscription(10, 1, d1), later]
    tickets = history[d1][("support", "tickets")]
    tickets += [ticket(n, 1, d1) for n in range(3, 9)]
    tickets[3]["x_t"] = [1]  # the earlier load taught text (below)
    tickets[6]["x_t"] = {"a": 1}
    tickets[4]["x_u"] = 1  # learned in an early part, rejected in a later one
    tickets[7]["x_u"] = "1"
    return history


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    root = write_landing(tmp_path_factory.mktemp("workers") / "landing", _bad_company(), part_size=2)
    folder = root / "billing" / "invoices" / DAYS[0]
    parts = sorted(folder.glob("part-*.json"))
    data = json.loads(parts[-1].read_text())
    data["data"].insert(1, 42)  # a record that is not an object
    parts[-1].write_text(json.dumps(data))
    cut = parts[-2].read_text()
    parts[-2].write_text(cut[: len(cut) * 2 // 3])  # a damaged part: the records before the damage load
    return root


class _InlinePool:
    """The pool's interface, the worker's work done here, the results through pickle as from a process."""

    def submit(self, message: Any) -> Any:
        return pickle.loads(pickle.dumps(message))

    def result(self, message: Any) -> Any:
        return pickle.loads(pickle.dumps(workers.run_task(message)))


def _summary(items: list, tables: tuple) -> list:
    out = []
    for item, table in zip(items, tables, strict=True):
        record = item.record
        key = item.key if item.key is not None else (record_key(table, record.obj) if record.obj is not None else None)
        error = None if item.error is None else (str(item.error), item.error.field,
                                                  record.raw_text if record.obj is None else to_raw_text(record.obj))
        out.append((item.day, item.ordinal, record.origin, record.position, record.records, item.rows, error, key))
    return out


def _passes(landing: Path, system: str, specs: list, pages: Any, source: Any, known: dict) -> dict[str, list]:
    """Each pass both ways; returns the rejection reasons per pass."""
    by_name = {one.name: one for one in specs}
    reasons = {}
    for spec in specs:
        if spec.parent:
            continue
        runs = []
        for in_workers in (False, True):
            field_types = json.loads(json.dumps(known.get(spec.name, {})))
            feeds = [ChildFeed(system, child, None, {"field_types": dict(known.get(child.name, {}))})
                     for child in spec.children]
            check = CheckShared(spec, field_types, feeds) if feeds else CheckAlone(spec, field_types)
            for feed in feeds:
                feed.share(spec, field_types)
            read = FilesRead(landing, spec.reads, pages.iter_records, None, None)
            if in_workers:
                parts = [(day, path) for day in read.days for path in pages.parts(landing, spec.reads, day)]
                job = source.job(landing, spec, tuple(child.name for child in spec.children))
                records = workers.WorkerPass(_InlinePool(), job, parts,
                                             lambda: (field_types, *(feed.field_types for feed in feeds)))  # noqa: B023
                checked = records.checked(check)
            else:
                records = Numbered(read.batches())
                checked = check_records(records, check)
            tables = (spec, *(by_name[child.name] for child in spec.children))
            runs.append(([_summary(items, tables) for items in checked], records.count, field_types,
                         [feed.field_types for feed in feeds]))
        assert runs[0] == runs[1], spec.name
        reasons[spec.name] = [one[6][0] for items in runs[0][0] for one in items if one[6] is not None]
    return reasons


def test_workers_check_billing_pages_as_the_loading_process_does(landing: Path) -> None:
    currencies = read_fx_currencies(landing)
    window = landing_window(landing)
    specs = billing.entities(currencies, window)
    source = workers.WorkerSource(billing.entities, (currencies,), billing_files.PAGES, window)
    reasons = _passes(landing, "billing", specs, billing_files.PAGES, source, {"invoices": {"x_old": "text"}})
    for expected in ("'x_note' changed type", "'lines[].x_line' changed type", "'x_old' changed type", "currency",
                     "records before the damage", "not an object"):
        assert any(expected in reason for reason in reasons["invoices"]), (expected, reasons["invoices"])
    assert any("created" in reason for reason in reasons["subscriptions"]), reasons["subscriptions"]


def test_workers_check_support_pages_as_the_loading_process_does(landing: Path) -> None:
    window = landing_window(landing)
    source = workers.WorkerSource(support.entities, (), support_files.PAGES, window)
    reasons = _passes(landing, "support", support.entities(window), support_files.PAGES, source,
                      {"tickets": {"x_t": "text"}})
    assert sum("'x_t' changed type" in reason for reason in reasons["tickets"]) == 2, reasons["tickets"]
    assert sum("'x_u' changed type" in reason for reason in reasons["tickets"]) == 1, reasons["tickets"]


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.choice(["int", "float", "text", "bool", "none", "list", "dict"] if depth < 2 else ["int", "text", "none"])
    return {"int": lambda: rng.randint(0, 9), "float": lambda: 0.5, "text": lambda: "t", "bool": lambda: True,
            "none": lambda: None, "list": lambda: [1],
            "dict": lambda: {rng.choice("abe"): _random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))},
            }[kind]()


def test_leaf_types_are_checked_as_the_objects_are() -> None:
    """FieldTypes.check_leaves on an object's leaf types: the same rejections (reason, field) and the same types
    learned as FieldTypes.check on the object, record after record, JSON paths and dotted keys included."""
    rng = random.Random(7)
    objects = [{rng.choice(["a", "b", "d", "d.e", "j"]): _random_value(rng) for _ in range(rng.randint(1, 4))}
               for _ in range(3000)]
    json_paths = frozenset({"j"})
    on_objects, on_leaves = FieldTypes({}, json_paths), FieldTypes({}, json_paths)
    for number, obj in enumerate(objects):
        results = []
        where = f"r{number}"
        checks = (lambda: on_objects.check(obj, where),  # noqa: B023 - called in this iteration
                  lambda: on_leaves.check_leaves(leaf_types(obj, json_paths), where, lambda: obj))  # noqa: B023
        for check in checks:
            try:
                check()
                results.append(None)
            except Reject as exc:
                results.append((str(exc), exc.field))
        assert results[0] == results[1], obj
        assert on_objects.known == on_leaves.known
    assert leaf_types(objects[0], json_paths) == tuple(iter_leaf_types(objects[0], json_paths))


# ---- end to end, with worker processes -------------------------------------------------------------------

def _load(tmp_path: Path, name: str, landing: Path, system: str) -> Path:
    warehouse = tmp_path / f"{name}.duckdb"
    pipeline = dlt.pipeline(pipeline_name=f"workers_{name}", destination=dlt.destinations.duckdb(str(warehouse)),
                            dataset_name="raw", pipelines_dir=str(tmp_path / f"dlt_{name}"))
    source = {"billing": billing.billing_source, "support": support.support_source}[system](landing_dir=landing)
    _, totals = run_until_caught_up(pipeline, source)
    assert all(counts.balanced for counts in totals.values()), totals
    return warehouse


def _tables(warehouse: Path) -> dict[str, tuple]:
    """Every raw table: its columns in order with their types, and its rows (without dlt's ids and load times)."""
    out = {}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for (name,) in con.execute("select table_name from information_schema.tables where table_schema = 'raw' "
                                   "and table_name not like '_dlt%'").fetchall():
            columns = con.execute("select column_name, data_type from information_schema.columns where "
                                  "table_schema = 'raw' and table_name = ? order by ordinal_position", [name]).fetchall()
            kept = [c for c, _ in columns if c not in ("_dlt_load_id", "_dlt_id", "loaded_at")]
            select = ", ".join(f'"{c}"::varchar' for c in kept)
            out[name] = (columns, sorted(con.execute(f"select {select} from raw.{name}").fetchall(), key=repr))
    return out


def _children_running() -> list[int]:
    return [child.pid for child in mp.active_children()]


@pytest.mark.slow
@pytest.mark.parametrize("system", ["billing", "support"])
def test_a_load_with_page_workers_equals_one_without(tmp_path: Path, landing: Path, monkeypatch, system: str) -> None:
    monkeypatch.setenv("CS_KPIS_LOAD_WORKERS_MIN_BYTES", "0")
    monkeypatch.setenv("CS_KPIS_LOAD_WORKERS", "1")
    alone = _tables(_load(tmp_path, "alone", landing, system))
    started = []
    real_pool = workers.Pool

    def counting_pool(size: int) -> workers.Pool:
        started.append(size)
        return real_pool(size)

    monkeypatch.setattr(workers, "Pool", counting_pool)
    monkeypatch.setenv("CS_KPIS_LOAD_WORKERS", "3")
    shared = _tables(_load(tmp_path, "shared", landing, system))
    assert started and set(started) == {2}, started  # the passes ran in workers
    assert alone == shared
    assert alone["_quarantine"][1] and any(f"{system}__" in name for name in alone)
    assert not _children_running()


def test_a_failed_worker_fails_the_load_and_leaves_no_process(tmp_path: Path, landing: Path, monkeypatch) -> None:
    """A part a worker cannot read (a folder in its place) fails the load with the worker's traceback; no
    worker process is left running."""
    monkeypatch.setenv("CS_KPIS_LOAD_WORKERS_MIN_BYTES", "0")
    monkeypatch.setenv("CS_KPIS_LOAD_WORKERS", "2")
    listed = support_files.PAGES.parts
    unreadable = tmp_path / "part-09999.json"
    unreadable.mkdir()

    def with_an_unreadable_part(self, landing_dir, entity, day):
        return [*listed(landing_dir, entity, day), unreadable]

    monkeypatch.setattr(type(support_files.PAGES), "parts", with_an_unreadable_part)
    pids = []
    real_pool = workers.Pool

    def recording_pool(size: int) -> workers.Pool:
        pool = real_pool(size)
        pids.extend(worker.proc.pid for worker in pool.workers)
        return pool

    monkeypatch.setattr(workers, "Pool", recording_pool)
    with pytest.raises(Exception, match="IsADirectoryError"):
        _load(tmp_path, "failed", landing, "support")
    assert pids
    assert not _children_running()
    assert not any(running(pid) for pid in pids)


def _driver(mode: str) -> tuple[subprocess.Popen, list[int]]:
    proc = subprocess.Popen([sys.executable, "-c", AS_FROM_A_SHELL + _DRIVE, mode], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    pids = json.loads(read_line(proc, 120))
    assert read_line(proc, 60) == "waiting\n" and len(pids) == 2
    return proc, pids


_DRIVE = "import sys\nfrom cs_kpis_tests.sources.page_worker_driver import main\nmain(sys.argv[1])\n"


@pytest.mark.slow
@pytest.mark.parametrize(("mode", "how"), [("default", signal.SIGINT), ("dagster", signal.SIGTERM),
                                           ("background", "group SIGTERM"), ("default", signal.SIGKILL)])
def test_page_workers_stop_with_the_loading_process(mode: str, how: Any) -> None:
    """Ctrl-C; SIGTERM under Dagster's handlers (SIGINT's); a background job's, which ignores both, stopped by
    a SIGTERM to its process group; and a loading process killed outright: no worker outlives it (the busy one
    is terminated, or exits once its part is done and its result cannot be sent)."""
    proc, pids = _driver(mode)
    try:
        if how == "group SIGTERM":
            os.killpg(proc.pid, signal.SIGTERM)  # the workers die; the loading process sees it and stops
        else:
            os.kill(proc.pid, how)
        proc.wait(30)
        wait_for(lambda: not any(running(pid) for pid in pids), 30, "a page worker outlived the loading process")
    finally:
        for pid in [proc.pid, *pids]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
