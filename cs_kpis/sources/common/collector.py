"""Python's cyclic garbage collector, paused while an entity pass reads records.

A pass turns every record into dicts and lists (orjson's parse, flatten, the rows), and most of them stay
alive until their part or their Arrow batch is done. With the collector's default thresholds each of
those containers is traversed again and again by the young and middle generations' collections, which
find nothing to free: reference counting frees the records. Measured on a 177 MB sample of the large
company's Stripe pages (BENCHMARKS.md, ingestion): the collector cost about a fifth of the load's CPU time.

While any pass runs (passes of one source run interleaved, so the pause is counted), the automatic
collector is off; a pass calls :meth:`Paused.tick` per record, which collects the youngest generation
every :data:`YOUNG_EVERY` records if a record was rejected since the last collection, so the few reference
cycles a pass makes (a rejected record's exception and its traceback) are freed within that many records
instead of piling up. A pass without rejections (nearly every one) makes no cycle to free, and then skips the
collection: with the automatic collector off, the youngest generation holds every container the pass keeps
alive (the Arrow batch's rows, the key pass's winners), which a collection would traverse for nothing (2.3 %
of a large sample's samples, BENCHMARKS.md, billing, session 19). The collector is re-enabled when the last
pass ends, and :func:`restore` re-enables it after a load whatever happened.
"""

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG_EVERY = 50_000
"""records between two collections of the youngest generation while paused (when one of them was rejected)"""

_lock = threading.Lock()
_depth = 0
_was_enabled = False


class Paused:
    """A pass's side of the pause: :meth:`tick` once per record."""

    def __init__(self, every: int = YOUNG_EVERY) -> None:
        self.every = every
        self.count = 0
        self.rejected = False
        """a record was rejected since the last collection: its exception may hold a cycle"""

    def tick(self, rejected: bool = True) -> None:
        """One record read; ``rejected``: it was rejected (for any table), so a collection is due at the next
        :attr:`every`-th record."""
        self.count += 1
        if rejected:
            self.rejected = True
        if self.count % self.every == 0 and self.rejected:
            self.rejected = False
            gc.collect(0)


@contextmanager
def paused(every: int = YOUNG_EVERY) -> Iterator[Paused]:
    """The automatic collector off while the block runs (and while any other pass's block runs)."""
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield Paused(every)
    finally:
        with _lock:
            _depth = max(0, _depth - 1)
            if _depth == 0 and _was_enabled:
                gc.enable()


def restore() -> None:
    """After a load: the collector as it was before the first pause, even if a pass never ended (a generator
    dropped without being closed)."""
    global _depth
    with _lock:
        if _depth and _was_enabled:
            gc.enable()
        _depth = 0
