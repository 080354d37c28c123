"""How the cyclic garbage collector runs: while a command starts, and while packets are analyzed.

`quiet_start_up`, from the moment a command knows what it will run until its first packet,
and at its exit: no collection walks what start-up builds (imports, the store, the engine).

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

import atexit
import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["YOUNG_COLLECTION_THRESHOLD", "fewer_collections", "quiet_start_up"]

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


@contextmanager
def quiet_start_up() -> Iterator[Callable[[], None]]:
    """No collection until the analysis starts; then what start-up built is never walked again.

    Entered once a command knows what it will run, before it opens the store. Until the
    analysis starts, no collection runs: the start-up (the store's imports, SQLAlchemy's
    tables and caches, the engine) only builds objects that live as long as the process, and
    full collections walking them cost tens of milliseconds on the way to the first packet.
    The function it yields, called when the analysis starts, moves every object then alive
    out of the collector's sight (`gc.freeze`) and lets it run again: for what the loop
    makes (`fewer_collections`, in this process or in workers), the dispatcher, the results
    collector and the storage writer. Undone on the way out, for a caller that goes on
    (tests, in one process); but when the process exits, everything is frozen again first
    (`atexit`), so that the interpreter's last full collection, which only frees what the
    system is about to take back, does not walk the whole heap (a twentieth of a second at
    the very end of the run).
    """
    atexit.unregister(gc.freeze)  # once, however many runs a process makes
    atexit.register(gc.freeze)
    enabled = gc.isenabled()
    gc.disable()

    def analysis_started() -> None:
        gc.freeze()
        if enabled:
            gc.enable()

    try:
        yield analysis_started
    finally:
        gc.unfreeze()
        if enabled:
            gc.enable()
