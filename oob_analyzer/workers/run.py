"""The parallel run: decode here, spread the flows over worker processes, record in one writer.

`analyze_packets_in_workers` is `pipeline.analyze_packets` with N workers: this process
reads and decodes (IP fragments are put together here, before a flow's worker can be
known), batches each segment for the worker that owns its flow, and the pool's collector
thread hands what the workers find to the one sink. The summary ends up exactly as the
in-process path fills it: packets counted by the reader, decoder counters from here,
requests, responses and hits counted as the workers' results arrive (so a progress bar
moves), connection and engine counters summed from the workers at the end.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from capture import STDIN, PacketDecoder, RawPacket, expand_capture_paths
from capture.errors import CaptureError
from oob_analyzer.pipeline import HitSink, RunSummary
from oob_analyzer.workers.flows import SegmentTuple, segment_to_tuple, worker_for
from oob_analyzer.workers.messages import EngineFactory
from oob_analyzer.workers.pool import WorkerError, WorkerPool
from reassembly import ReassemblyLimits

__all__ = [
    "SMALL_INPUT_BYTES",
    "analyze_packets_in_workers",
    "available_cores",
    "choose_workers",
    "reads_never_stall",
]

SMALL_INPUT_BYTES = 32 << 20  # below this much capture, starting workers costs more than it saves
_BATCH_SEGMENTS = 512
_BATCH_SECONDS = 0.05  # the longest a segment waits in the dispatcher for its batch to fill


def available_cores() -> int:
    return len(os.sched_getaffinity(0))


def choose_workers(requested: int | None, sources: Sequence[Path] = (), *, live: bool = False) -> int:
    """How many workers a run gets. `requested` None means auto:

    one per core this process may run on (os.sched_getaffinity); but 1 (in-process) on a
    single core, or for capture files that add up to less than SMALL_INPUT_BYTES (32 MiB),
    since starting a worker and building its detection engine takes seconds. Standard input
    and live sources count as large.
    """
    if requested is not None:
        return requested
    cores = available_cores()
    if cores <= 1 or live:
        return cores
    if any(path == STDIN for path in sources):
        return cores
    try:
        files = expand_capture_paths(sources)
    except CaptureError:
        return 1  # the in-process path reports the directory it cannot list
    return cores if _total_size(files) >= SMALL_INPUT_BYTES else 1


def reads_never_stall(sources: Sequence[Path]) -> bool:
    """Whether every source is a regular file (standard input too, when redirected from one),
    whose reads return at once: a pipe, a FIFO or a terminal can keep a read waiting."""
    try:
        files = expand_capture_paths(sources)
    except CaptureError:
        return False
    try:
        return bool(files) and all(stat.S_ISREG(_stat_of(path).st_mode) for path in files)
    except OSError:
        return False  # the run reports it; the safe dispatcher will do


def _stat_of(path: Path) -> os.stat_result:
    return os.fstat(sys.stdin.fileno()) if path == STDIN else path.stat()


def _total_size(files: Iterable[Path]) -> int:
    total = 0
    for path in files:
        with contextlib.suppress(OSError):  # a missing file is the run's to report
            total += path.stat().st_size
    return total


def analyze_packets_in_workers(
    packets: Iterable[RawPacket | None],
    *,
    workers: int,
    engine_factory: EngineFactory,
    sink: HitSink,
    summary: RunSummary,
    decoder: PacketDecoder | None = None,
    limits: ReassemblyLimits | None = None,
    live: bool = False,
    regular_files: bool = False,
    pool_ready: list[WorkerPool] | None = None,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Analyze packets with `workers` processes; every hit and anomaly goes to `sink`.

    Files (`live` False) wait for a busy worker: nothing is lost. A live source never waits
    for long: a batch for a worker whose queue is full is dropped and counted under
    `segments_dropped_worker_queue_full`. On KeyboardInterrupt the workers analyze what was
    queued, their results are recorded, and the interrupt goes on. Raises `WorkerError` when
    a worker dies. `pool_ready`, if given, receives the pool (for reconfigure and counters),
    and `on_ready` is called, once every worker has built its engine and the first packet can
    be read.

    `regular_files`: the packets come from regular files only (`reads_never_stall`), so no
    read waits for data and no thread needs to send what a stalled source left waiting: the
    dispatcher takes no lock and reads no clock per packet (a fifth of its instructions).
    """
    decoder = decoder or PacketDecoder()
    started = WorkerPool.started(
        workers, engine_factory=engine_factory, sink=sink, summary=summary, limits=limits, live=live
    )
    with started as pool:
        if pool_ready is not None:
            pool_ready.append(pool)
        if on_ready is not None:
            on_ready()
        batches: list[list[SegmentTuple]] = [[] for _ in range(workers)]
        try:
            if regular_files and not live:
                _dispatch_from_files(packets, pool, decoder, batches)
            else:
                with _StalledSourceFlusher(pool, batches, wait=not live) as flusher:
                    _dispatch(packets, pool, decoder, batches, flusher, live=live)
            _send_all(batches, pool, wait=True)
            pool.finish(close_connections=True)
        except BaseException:
            _finish_after_error(pool, batches)
            raise
        finally:
            counters = pool.final_counters()  # requests, responses, hits: counted as the results came
            summary.drops = decoder.stats + pool.tracker_stats(counters) + pool.dropped + pool.engine_counters(counters)
            summary.decode_anomalies = decoder.anomalies


def _finish_after_error(pool: WorkerPool, batches: list[list[SegmentTuple]]) -> None:
    """Interrupted (or failed): what was read is still analyzed and its results recorded, as
    in the in-process path; connections in progress are not closed, as there either."""
    with contextlib.suppress(WorkerError):  # the error that brought us here is the one to report
        _send_all(batches, pool, wait=True)
    with contextlib.suppress(WorkerError):
        pool.finish(close_connections=False)


def _dispatch(
    packets: Iterable[RawPacket | None],
    pool: WorkerPool,
    decoder: PacketDecoder,
    batches: list[list[SegmentTuple]],
    flusher: _StalledSourceFlusher,
    *,
    live: bool,
) -> None:
    count = pool.size
    decode, send, clock, lock = decoder.decode, pool.send, time.monotonic, flusher.lock
    wait = not live
    for packet in packets:  # waiting for the next packet happens outside the lock
        with lock:
            if packet is not None:
                segment = decode(packet)
                if segment is not None:
                    index = worker_for(segment, count)
                    batch = batches[index]
                    batch.append(segment_to_tuple(segment))
                    if len(batch) >= _BATCH_SEGMENTS:
                        send(index, batch, wait=wait)
                        batches[index] = []
            # A slow source (a quiet link) must not keep segments waiting for a full batch.
            now = clock()
            if packet is None or now >= flusher.flush_at:
                pool.check()  # a worker that died while the source was quiet is noticed here
                _send_all(batches, pool, wait=wait)
                flusher.flush_at = now + _BATCH_SECONDS


def _dispatch_from_files(
    packets: Iterable[RawPacket | None], pool: WorkerPool, decoder: PacketDecoder, batches: list[list[SegmentTuple]]
) -> None:
    """`_dispatch` for a source that never stalls: no lock, no clock per packet. Each time a
    batch is full, the others are sent too if they waited `_BATCH_SECONDS` (a worker whose
    flows are rare in the capture would otherwise hear nothing until the end)."""
    count = pool.size
    decode, send, clock = decoder.decode, pool.send, time.monotonic
    flush_at = clock() + _BATCH_SECONDS
    for packet in packets:
        if packet is None:
            continue
        segment = decode(packet)
        if segment is not None:
            index = worker_for(segment, count)
            batch = batches[index]
            batch.append(segment_to_tuple(segment))
            if len(batch) >= _BATCH_SEGMENTS:
                send(index, batch, wait=True)
                batches[index] = []
                if (now := clock()) >= flush_at:
                    _send_all(batches, pool, wait=True)
                    flush_at = now + _BATCH_SECONDS


class _StalledSourceFlusher:
    """Sends the batches when the source stalls inside a read (a pipe, `tcpdump -w - |`), which
    yields no None to go round the loop with: a thread sends what waited `_BATCH_SECONDS`.

    It sends under `lock`, which the dispatcher holds while it handles a packet, so batches
    reach each worker in order.
    """

    def __init__(self, pool: WorkerPool, batches: list[list[SegmentTuple]], *, wait: bool) -> None:
        self.lock = threading.Lock()
        self.flush_at = time.monotonic() + _BATCH_SECONDS
        self._pool, self._batches, self._wait = pool, batches, wait
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="oob-batch-flusher", daemon=True)

    def __enter__(self) -> _StalledSourceFlusher:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(_BATCH_SECONDS):
            with self.lock:
                now = time.monotonic()
                if now < self.flush_at:
                    continue
                with contextlib.suppress(WorkerError):  # the dispatcher reports it
                    _send_all(self._batches, self._pool, wait=self._wait)
                self.flush_at = now + _BATCH_SECONDS


def _send_all(batches: list[list[SegmentTuple]], pool: WorkerPool, *, wait: bool) -> None:
    for index, batch in enumerate(batches):
        if batch:
            pool.send(index, batch, wait=wait)
            batches[index] = []
