"""The Dagster instance's event log with its connections kept open (cs_kpis/lib/event_log.py).

The generated dagster.yaml names it; what it stores is what Dagster's own SQLite event log reads from the
same files; a connection serves event after event (what saves the time); and the webserver's live view of a
run in progress (a file watch on the run's shard) still hears of each new event.
"""

import logging
import os
import shutil
import threading
import time

import dagster as dg
import pytest
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log import SqliteEventLogStorage

from cs_kpis import settings
from cs_kpis.lib.event_log import KeptOpenSqliteEventLogStorage


def _entry(run_id: str, message: str) -> EventLogEntry:
    return EventLogEntry(error_info=None, level=logging.INFO, user_message=message, run_id=run_id,
                         timestamp=time.time())


def test_the_generated_instance_keeps_its_event_log_open_in_dagsters_place(tmp_path):
    home = settings.ensure_dagster_home(tmp_path / "home")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        storage = instance.event_log_storage
        assert type(storage) is KeptOpenSqliteEventLogStorage
        assert storage.path_for_shard("index") == str(home / "history" / "runs" / "index.db")


def test_a_home_moved_elsewhere_stops_the_instance_instead_of_starting_an_empty_event_log(tmp_path):
    home = settings.ensure_dagster_home(tmp_path / "home")
    moved = home.rename(tmp_path / "moved")
    with pytest.raises(Exception, match="not in a Dagster home"):
        dg.DagsterInstance.from_config(str(moved))
    assert not home.exists()


def test_a_copied_home_stops_the_instance_instead_of_writing_into_the_originals_event_log(tmp_path):
    home = settings.ensure_dagster_home(tmp_path / "home")
    copy = shutil.copytree(home, tmp_path / "copy")
    with pytest.raises(Exception, match="a copied home"):
        dg.DagsterInstance.from_config(str(copy))
    with dg.DagsterInstance.from_config(str(home)):  # the original still opens
        pass


def test_reading_a_run_does_not_tell_the_live_view_of_a_change(tmp_path):
    # the view reads the run's shard whenever its file changes: a read that touched the file would loop
    storage = KeptOpenSqliteEventLogStorage(str(tmp_path / "runs"))
    try:
        storage.store_event(_entry("r1", "first"))
        shard = storage.path_for_shard("r1")
        os.utime(shard, (0, 0))
        assert [r.event_log_entry.user_message for r in storage.get_records_for_run("r1").records] == ["first"]
        assert os.stat(shard).st_mtime == 0
        storage.store_event(_entry("r1", "second"))  # a write still does
        assert os.stat(shard).st_mtime > 0
    finally:
        storage.dispose()


def test_a_run_stored_kept_open_reads_the_same_with_dagsters_own_storage(tmp_path):
    home = settings.ensure_dagster_home(tmp_path / "home")

    @dg.asset(pool="warehouse")
    def a():
        return dg.MaterializeResult(metadata={"n": 1})

    @dg.asset_check(asset=a, blocking=True)
    def a_ok():
        return dg.AssetCheckResult(passed=False)

    with dg.DagsterInstance.from_config(str(home)) as instance:
        result = dg.materialize([a, a_ok], instance=instance, raise_on_error=False)
        kept = instance.event_log_storage
        used = []
        for _ in range(2):
            with kept.index_connection() as conn:
                used.append(conn.connection.dbapi_connection)
        # one SQLite connection for event after event (Dagster's own opens and closes one per event)
        assert used[0] is used[1]
        stored = [(r.event_log_entry.dagster_event_type, r.event_log_entry.step_key)
                  for r in kept.get_records_for_run(result.run_id).records]
    plain = SqliteEventLogStorage(str(home / "history" / "runs"))
    assert [(r.event_log_entry.dagster_event_type, r.event_log_entry.step_key)
            for r in plain.get_records_for_run(result.run_id).records] == stored
    assert dg.DagsterEventType.ASSET_MATERIALIZATION in {t for t, _ in stored}
    assert plain.get_latest_materialization_events([a.key])[a.key].run_id == result.run_id
    check = plain.get_latest_asset_check_execution_by_key([dg.AssetCheckKey(a.key, "a_ok")])
    assert not check[dg.AssetCheckKey(a.key, "a_ok")].evaluation.passed


def test_the_live_view_of_a_run_hears_each_new_event(tmp_path):
    storage = KeptOpenSqliteEventLogStorage(str(tmp_path / "runs"))
    storage.store_event(_entry("r1", "first"))  # the run's shard exists before the view watches it
    heard, got = [], threading.Event()

    def callback(entry, cursor):
        heard.append(entry.user_message)
        if "second" in heard:
            got.set()

    storage.watch("r1", None, callback)
    try:
        time.sleep(0.2)
        storage.store_event(_entry("r1", "second"))
        assert got.wait(5), f"the watch heard {heard}"
    finally:
        storage.end_watch("r1", callback)
        storage.dispose()


def _synchronous(conn) -> int:
    return conn.connection.dbapi_connection.execute("PRAGMA synchronous").fetchone()[0]


def test_the_generated_instance_syncs_each_commit_and_normal_is_set_when_asked_in_wal_mode(tmp_path):
    # SQLite's synchronous: 1 = NORMAL (the WAL synced at checkpoints), 2 = FULL (at every commit)
    home = settings.ensure_dagster_home(tmp_path / "home")
    yaml = home / "dagster.yaml"
    assert "synchronous: FULL" in yaml.read_text()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.event_log_storage.store_event(_entry("r1", "first"))
        with instance.event_log_storage._connect("r1") as conn:
            assert _synchronous(conn) == 2
    yaml.write_text(yaml.read_text().replace("synchronous: FULL", "synchronous: NORMAL"))
    with dg.DagsterInstance.from_config(str(home)) as instance:
        storage = instance.event_log_storage
        storage.store_event(_entry("r2", "second"))
        for shard in ("index", "r2"):
            with storage._connect(shard) as conn:
                mode = conn.connection.dbapi_connection.execute("PRAGMA journal_mode").fetchone()[0]
                assert (mode, _synchronous(conn)) == ("wal", 1)
        assert [r.event_log_entry.user_message for r in storage.get_records_for_run("r1").records] == ["first"]


def test_an_older_yaml_without_synchronous_gets_full(tmp_path):
    home = settings.ensure_dagster_home(tmp_path / "home")
    yaml = home / "dagster.yaml"
    yaml.write_text(yaml.read_text().replace("    synchronous: FULL\n", ""))
    assert "synchronous:" not in yaml.read_text().split("event_log_storage:")[1]
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.event_log_storage.store_event(_entry("r1", "first"))
        with instance.event_log_storage.index_connection() as conn:
            assert _synchronous(conn) == 2


def test_a_synchronous_mode_other_than_normal_or_full_is_refused(tmp_path):
    with pytest.raises(ValueError, match="synchronous is 'OFF'"):
        KeptOpenSqliteEventLogStorage(str(tmp_path / "runs"), synchronous="OFF")
    home = settings.ensure_dagster_home(tmp_path / "home")
    yaml = home / "dagster.yaml"
    yaml.write_text(yaml.read_text().replace("synchronous: FULL", "synchronous: OFF"))
    with pytest.raises(Exception, match="synchronous"):
        dg.DagsterInstance.from_config(str(home))


def _index_commits(storage: KeptOpenSqliteEventLogStorage) -> list:
    from sqlalchemy import event

    commits = []
    event.listen(storage._engine("index"), "commit", lambda conn: commits.append(1))
    return commits


def test_a_step_claims_and_frees_its_pool_slot_in_one_index_transaction_each(tmp_path):
    # each transaction is a commit, and a sync under FULL: the claim and the release wrote in two and three
    storage = KeptOpenSqliteEventLogStorage(str(tmp_path / "runs"))
    try:
        storage.set_concurrency_slots("warehouse", 1)
        commits = _index_commits(storage)
        status = storage.claim_concurrency_slot("warehouse", "r1", "step_a")
        assert status.is_claimed and len(commits) == 1
        blocked = storage.claim_concurrency_slot("warehouse", "r2", "step_b")  # waits for r1's slot
        assert not blocked.is_claimed
        del commits[:]
        storage.free_concurrency_slot_for_step("r1", "step_a")
        assert len(commits) == 1
        assert storage.claim_concurrency_slot("warehouse", "r2", "step_b").is_claimed  # assigned by the release
        assert storage.get_concurrency_info("warehouse").claimed_slots[0].run_id == "r2"
    finally:
        storage.dispose()


def test_a_check_evaluation_is_stored_in_one_index_transaction_and_read_back_as_dagsters(tmp_path):
    from dagster._core.definitions.asset_checks.asset_check_evaluation import (
        AssetCheckEvaluation,
        AssetCheckEvaluationPlanned,
    )
    from dagster._core.events import DagsterEvent, DagsterEventType

    def entry(event_type, data):
        return EventLogEntry(error_info=None, level=logging.INFO, user_message="", run_id="r1", timestamp=time.time(),
                             dagster_event=DagsterEvent(event_type.value, "job", event_specific_data=data))

    key = dg.AssetCheckKey(dg.AssetKey(["marts", "t"]), "t_not_null")
    storage = KeptOpenSqliteEventLogStorage(str(tmp_path / "runs"))
    try:
        commits = _index_commits(storage)
        storage.store_event(entry(DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED,
                                  AssetCheckEvaluationPlanned(asset_key=key.asset_key, check_name=key.name)))
        assert len(commits) == 1
        storage.store_event(entry(DagsterEventType.ASSET_CHECK_EVALUATION,
                                  AssetCheckEvaluation(asset_key=key.asset_key, check_name=key.name, passed=True, metadata={})))
        assert len(commits) == 2
    finally:
        storage.dispose()
    dagsters = SqliteEventLogStorage(str(tmp_path / "runs"))
    try:
        [record] = dagsters.get_asset_check_execution_history(key, limit=5)
        assert record.status.value == "SUCCEEDED" and record.run_id == "r1"
        assert record.event.dagster_event.event_specific_data.passed
    finally:
        dagsters.dispose()


def _planned(keys: list[dg.AssetKey]) -> list[EventLogEntry]:
    """Run r1's planned materializations of ``keys``, as Dagster stores them at a run's start."""
    from dagster._core.events import AssetMaterializationPlannedData, DagsterEvent, DagsterEventType

    return [EventLogEntry(error_info=None, level=logging.DEBUG, user_message="", run_id="r1", timestamp=time.time(),
                          dagster_event=DagsterEvent(DagsterEventType.ASSET_MATERIALIZATION_PLANNED.value, "job",
                                                     event_specific_data=AssetMaterializationPlannedData(key)))
            for key in keys]


def test_a_runs_planned_events_are_stored_as_a_batch_in_one_transaction_per_shard(tmp_path):
    from dagster._core.events import DagsterEventType
    from sqlalchemy import event

    keys = [dg.AssetKey(["marts", f"t{n}"]) for n in range(5)]
    entries = _planned(keys)
    storage = KeptOpenSqliteEventLogStorage(str(tmp_path / "runs"))
    try:
        storage.store_event(_entry("r1", "the run's shard and its engine exist"))
        index, run = _index_commits(storage), []
        event.listen(storage._engine("r1"), "commit", lambda conn: run.append(1))
        storage.store_event_batch(entries)
        assert (len(index), len(run)) == (1, 1)  # one by one: 5 and 5
    finally:
        storage.dispose()
    dagsters = SqliteEventLogStorage(str(tmp_path / "runs"))
    try:
        planned = dagsters.get_records_for_run("r1", of_type=DagsterEventType.ASSET_MATERIALIZATION_PLANNED).records
        assert [r.event_log_entry.dagster_event.asset_key for r in planned] == keys
        assert {r.asset_entry.asset_key for r in dagsters.get_asset_records(keys)} == set(keys)  # the index's copies
    finally:
        dagsters.dispose()


def test_a_batch_that_fails_midway_leaves_nothing_so_dagsters_fallback_stores_each_event_once(tmp_path):
    # Dagster stores a failed batch's events again one by one (event_methods.handle_new_event): the batch's events
    # before the error must be rolled back in both shards, or the fallback copies them twice
    from dagster._core.events import DagsterEventType

    keys = [dg.AssetKey(["marts", f"t{n}"]) for n in range(5)]
    entries = _planned(keys)
    storage = KeptOpenSqliteEventLogStorage(str(tmp_path / "runs"))
    real_store = storage.store_event
    stored = []

    def failing_third(event):
        if len(stored) == 2:
            raise OSError("disk full (simulated)")
        real_store(event)
        stored.append(event)

    try:
        storage.store_event(_entry("r1", "the run's shard and its engine exist"))
        storage.store_event = failing_third
        with pytest.raises(OSError, match="simulated"):
            storage.store_event_batch(entries)
        assert len(stored) == 2  # two events were written in the batch's transactions before the error
        storage.store_event = real_store
        for entry in entries:  # Dagster's fallback
            storage.store_event(entry)
    finally:
        storage.dispose()
    dagsters = SqliteEventLogStorage(str(tmp_path / "runs"))
    try:
        planned = dagsters.get_records_for_run("r1", of_type=DagsterEventType.ASSET_MATERIALIZATION_PLANNED).records
        assert [r.event_log_entry.dagster_event.asset_key for r in planned] == keys  # each once
        assert {r.asset_entry.asset_key for r in dagsters.get_asset_records(keys)} == set(keys)
    finally:
        dagsters.dispose()


def test_the_run_commands_event_batches_set_dagsters_variable_only_for_the_block(monkeypatch):
    from cs_kpis.lib.event_log import EVENT_BATCH_SIZE, event_batches

    monkeypatch.delenv("DAGSTER_EVENT_BATCH_SIZE", raising=False)
    with event_batches():
        assert int(os.environ["DAGSTER_EVENT_BATCH_SIZE"]) == int(EVENT_BATCH_SIZE) > 0  # Dagster batches when > 0
    assert "DAGSTER_EVENT_BATCH_SIZE" not in os.environ
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "7")  # a deployment's own setting wins
    with event_batches():
        assert os.environ["DAGSTER_EVENT_BATCH_SIZE"] == "7"
    assert os.environ["DAGSTER_EVENT_BATCH_SIZE"] == "7"
