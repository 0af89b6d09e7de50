"""The garbage-collector pause of the entity passes (cs_kpis/sources/common/collector.py)."""

import gc
import weakref

from cs_kpis.sources.common import collector


class _Node:
    pass


def test_the_collector_is_off_while_any_pass_runs_and_back_on_after_the_last():
    assert gc.isenabled()
    with collector.paused():
        assert not gc.isenabled()
        with collector.paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer pass still runs
    assert gc.isenabled()


def test_a_pass_left_unfinished_is_undone_by_restore():
    passes = (collector.paused() for _ in range(1))
    suspended = next(passes)
    suspended.__enter__()
    assert not gc.isenabled()
    collector.restore()
    assert gc.isenabled()
    with collector.paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_ticks_free_reference_cycles_while_paused():
    with collector.paused(every=3) as collecting:
        node = _Node()
        node.self = node  # a cycle: only the collector frees it
        alive = weakref.ref(node)
        del node
        collecting.tick()
        collecting.tick()
        assert alive() is not None
        collecting.tick()  # the third record collects the youngest generation
        assert alive() is None


def test_ticks_collect_only_after_a_rejected_record():
    """A pass without rejections makes no cycle to free: its ticks do not traverse the young generation (which,
    with the collector off, holds every container the pass keeps alive); a rejected record's tick makes the
    next due collection happen, and frees its cycle."""
    collections = []

    def count(phase, info):
        if phase == "start":
            collections.append(info["generation"])

    gc.callbacks.append(count)
    try:
        with collector.paused(every=2) as collecting:
            for _ in range(6):
                collecting.tick(False)
            assert collections == []
            node = _Node()
            node.self = node
            alive = weakref.ref(node)
            del node
            collecting.tick(True)  # the 7th record, rejected: the 8th collects
            assert alive() is not None and collections == []
            collecting.tick(False)
            assert alive() is None and collections == [0]
            collecting.tick(False)
            collecting.tick(False)  # nothing rejected since: no collection
            assert collections == [0]
    finally:
        gc.callbacks.remove(count)
