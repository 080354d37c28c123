"""How the cyclic garbage collector runs while packets are analyzed.

Around the pipeline's loops: `pipeline.analyze_packets` and `analyze_event_runs` in this
process, and each worker's loop (`workers.child`). Per request the loop builds events,
header tuples, lists and dicts that reference counting frees at once: almost none of them
is cyclic garbage (on the benchmark capture, a few hundred objects in a run of 45,000
requests). Yet with CPython's default thresholds the collector runs every 700 net container
allocations, and every tenth of those runs also walks the middle generation; every full
collection walks every object the process holds: modules, the engine's compiled detectors,
its verdict caches, SQLAlchemy's tables. That was about 9 % of a single-process replay's
samples in `perf`.

So, for the length of the loop: what exists when it starts (the engine, the modules) is
frozen out of collections (`gc.freeze`), and the youngest generation is collected every
`YOUNG_COLLECTION_THRESHOLD` net allocations instead of 700. Memory stays bounded: cyclic
garbage is still collected, later; the caches that hold objects for long are bounded
themselves. The previous settings come back when the loop ends.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["YOUNG_COLLECTION_THRESHOLD", "fewer_collections"]

# Net container allocations between two collections of the youngest generation (CPython: 700).
# Measured on the benchmark capture, in-process: 10,000 and 50,000 give the same CPU time
# (the collector then runs a few dozen times per run); a young collection still walks only
# the objects allocated since the last one, so a pause stays in the milliseconds.
YOUNG_COLLECTION_THRESHOLD = 50_000


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Collect less often while the block runs, and never walk what existed before it.

    Nested blocks (or a process that froze its objects itself) leave the freeze to the
    outermost: only a block that found nothing frozen unfreezes on its way out.
    """
    previous = gc.get_threshold()
    unfreeze = gc.get_freeze_count() == 0
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *previous[1:])
    try:
        yield
    finally:
        gc.set_threshold(*previous)
        if unfreeze:
            gc.unfreeze()
