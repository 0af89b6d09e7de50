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
