"""The parallel run: route here, spread the flows over worker processes, record in one writer.

`analyze_packets_in_workers` is `pipeline.analyze_packets` with N workers: this process reads,
finds each frame's flow with the compiled decoder and packs the frame, as captured, for the
worker that owns the flow (`capture._fastdecode.route_packet`: no segment built); the workers
decode and track the frames in C. A frame the compiled decoder does not take (IP fragments,
which are put together here, before a flow's worker can be known; GRE; anything odd) is
decoded here in Python and crosses as a segment, in order with the frames (`flows`). The
pool's collector thread hands what the workers find to the one sink. The summary ends up
exactly as the in-process path fills it: packets counted by the reader, decoder counters
from here plus the workers' decoders' (which only see frames this decoder took, so normally
count nothing), requests, responses and hits counted as the workers' results arrive (so a
progress bar moves), connection and engine counters summed from the workers at the end.
"""

from __future__ import annotations

import contextlib
import functools
import os
import stat
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from capture import STDIN, PacketDecoder, RawPacket, expand_capture_paths
from capture.errors import CaptureError
from capture.files import RecordParse, read_pcap_with
from oob_analyzer.pipeline import HitSink, RunSummary
from oob_analyzer.workers.child import DECODE_ANOMALY_PREFIX, DECODE_DROP_PREFIX
from oob_analyzer.workers.flows import FramePart, segment_to_tuple, worker_for
from oob_analyzer.workers.messages import DecoderSettings, EngineFactory
from oob_analyzer.workers.pool import WorkerError, WorkerPool
from reassembly import ReassemblyLimits

if TYPE_CHECKING:
    from capture._fastdecode import FrameDecoder, PcapRecordReader

try:
    from capture._fastdecode import route_packet, route_records
except ImportError:  # not built: every frame is decoded here and crosses as a segment
    route_packet = None  # type: ignore[assignment]
    route_records = None  # type: ignore[assignment]

__all__ = [
    "SMALL_INPUT_BYTES",
    "analyze_packets_in_workers",
    "available_cores",
    "choose_workers",
    "reads_never_stall",
]

SMALL_INPUT_BYTES = 32 << 20  # below this much capture, starting workers costs more than it saves
_BATCH_SEGMENTS = 512  # frames and segments
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
    record_file: Path | None = None,
    pool_ready: list[WorkerPool] | None = None,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Analyze packets with `workers` processes; every hit and anomaly goes to `sink`.

    Files (`live` False) wait for a busy worker: nothing is lost. A live source never waits
    for long: a batch for a worker whose queue is full is dropped and counted under
    `segments_dropped_worker_queue_full`. On KeyboardInterrupt the workers analyze what was
    queued, their results are recorded, and the interrupt goes on. Raises `WorkerError` when
    a worker dies. `pool_ready`, if given, receives the pool (for reconfigure and counters),
    and `on_ready` is called, once the first packet can be read: from a live source, once
    every worker has built its engine; from files, at once (`WorkerPool.started`).

    `regular_files`: the packets come from regular files only (`reads_never_stall`), so no
    read waits for data and no thread needs to send what a stalled source left waiting: the
    dispatcher takes no lock and reads no clock per packet (a fifth of its instructions).
    `record_file`: the one file `packets` reads (`pipeline.single_capture_file`); when it is
    a plain classic pcap, its records are routed in C (`route_records`) and `packets` is not
    read.
    """
    decoder = decoder or PacketDecoder()
    started = WorkerPool.started(
        workers,
        engine_factory=engine_factory,
        sink=sink,
        summary=summary,
        limits=limits,
        live=live,
        decoder=DecoderSettings.of(decoder),
    )
    with started as pool:
        if pool_ready is not None:
            pool_ready.append(pool)
        if on_ready is not None:
            on_ready()
        batches = _Batches(workers, decoder)
        try:
            if regular_files and not live:
                full = _FullBatches(pool, batches)
                if record_file is None or not _dispatch_records(record_file, batches, full, summary):
                    _dispatch_from_files(packets, batches, full)
            else:
                with _StalledSourceFlusher(pool, batches, wait=not live) as flusher:
                    _dispatch(packets, pool, batches, flusher, live=live)
            _send_all(batches, pool, wait=True)
            pool.finish(close_connections=True)
        except BaseException:
            _finish_after_error(pool, batches)
            raise
        finally:
            counters = pool.final_counters()  # requests, responses, hits: counted as the results came
            worker_decoders = _prefixed(counters, DECODE_DROP_PREFIX)
            summary.drops = (
                decoder.stats
                + worker_decoders
                + pool.tracker_stats(counters)
                + pool.dropped
                + pool.engine_counters(counters)
            )
            summary.decode_anomalies = decoder.anomalies + _prefixed(counters, DECODE_ANOMALY_PREFIX)


def _prefixed(counters: Counter[str], prefix: str) -> Counter[str]:
    return Counter({name.removeprefix(prefix): n for name, n in counters.items() if name.startswith(prefix)})


def _packs_nothing(_packet: RawPacket, _buffers: list[bytearray]) -> int:
    return -1


class _Batches:
    """What waits for each worker, in order: runs of frames packed by `route_packet` (into
    `frames[index]`, a bytearray) and the segments decoded here between them.

    `add(packet)` is the per-packet step: the worker's index, or None when the packet yields
    no segment (counted by the decoder, as in process).
    """

    def __init__(self, workers: int, decoder: PacketDecoder) -> None:
        self.frames = [bytearray() for _ in range(workers)]
        self.parts: list[list[FramePart]] = [[] for _ in range(workers)]
        self.counts = [0] * workers
        self._decoder = decoder
        self._route = self.packer()

    @property
    def frame_decoder(self) -> FrameDecoder | None:
        return self._decoder.frame_decoder

    def packer(self) -> Callable[[RawPacket, list[bytearray]], int]:
        """`route_packet` bound to the compiled decoder; when that is not built, one that packs nothing."""
        frame_decoder = self._decoder.frame_decoder
        if route_packet is None or frame_decoder is None:
            return _packs_nothing
        return functools.partial(route_packet, frame_decoder)

    def add(self, packet: RawPacket) -> int | None:
        index = self._route(packet, self.frames)
        if index < 0:
            return self.add_decoded(packet)
        self.counts[index] += 1
        return index

    def add_decoded(self, packet: RawPacket) -> int | None:
        """The Python decoder's way, for a frame `route_packet` did not take."""
        segment = self._decoder.decode(packet)
        if segment is None:
            return None
        index = worker_for(segment, len(self.frames))
        self._seal(index)
        self.parts[index].append(segment_to_tuple(segment))
        self.counts[index] += 1
        return index

    def take(self, index: int) -> tuple[list[FramePart], int]:
        """Worker `index`'s batch and how many frames and segments it holds; it starts anew."""
        self._seal(index)
        parts, count = self.parts[index], self.counts[index]
        self.parts[index], self.counts[index] = [], 0
        return parts, count

    def _seal(self, index: int) -> None:
        if self.frames[index]:
            self.parts[index].append(self.frames[index])
            self.frames[index] = bytearray()


def _finish_after_error(pool: WorkerPool, batches: _Batches) -> None:
    """Interrupted (or failed): what was read is still analyzed and its results recorded, as
    in the in-process path; connections in progress are not closed, as there either."""
    with contextlib.suppress(WorkerError):  # the error that brought us here is the one to report
        _send_all(batches, pool, wait=True)
    with contextlib.suppress(WorkerError):
        pool.finish(close_connections=False)


def _dispatch(
    packets: Iterable[RawPacket | None],
    pool: WorkerPool,
    batches: _Batches,
    flusher: _StalledSourceFlusher,
    *,
    live: bool,
) -> None:
    add, counts, send, clock, lock = batches.add, batches.counts, pool.send, time.monotonic, flusher.lock
    wait = not live
    for packet in packets:  # waiting for the next packet happens outside the lock
        with lock:
            if packet is not None:
                index = add(packet)
                if index is not None and counts[index] >= _BATCH_SEGMENTS:
                    parts, count = batches.take(index)
                    send(index, parts, wait=wait, count=count)
            # A slow source (a quiet link) must not keep segments waiting for a full batch.
            now = clock()
            if packet is None or now >= flusher.flush_at:
                pool.check()  # a worker that died while the source was quiet is noticed here
                _send_all(batches, pool, wait=wait)
                flusher.flush_at = now + _BATCH_SECONDS


class _FullBatches:
    """Sends a worker's batch when it is full, and then the others too if they waited
    `_BATCH_SECONDS` (a worker whose flows are rare in the capture would otherwise hear
    nothing until the end): the flushing of a source that never stalls."""

    def __init__(self, pool: WorkerPool, batches: _Batches) -> None:
        self._pool, self._batches = pool, batches
        self._flush_at = time.monotonic() + _BATCH_SECONDS

    def send(self, index: int) -> None:
        parts, count = self._batches.take(index)
        self._pool.send(index, parts, wait=True, count=count)
        if (now := time.monotonic()) >= self._flush_at:
            _send_all(self._batches, self._pool, wait=True)
            self._flush_at = now + _BATCH_SECONDS


def _dispatch_from_files(packets: Iterable[RawPacket | None], batches: _Batches, full: _FullBatches) -> None:
    """`_dispatch` for a source that never stalls: no lock, no clock per packet.

    The common case inline: `route_packet` packs the frame; the rest goes through `_Batches`."""
    route = batches.packer()
    frames, counts, add_decoded = batches.frames, batches.counts, batches.add_decoded
    for packet in packets:
        if packet is None:
            continue
        index = route(packet, frames)
        if index >= 0:
            counts[index] += 1
        else:
            decoded = add_decoded(packet)
            if decoded is None:
                continue
            index = decoded
        if counts[index] >= _BATCH_SEGMENTS:
            full.send(index)


def _dispatch_records(path: Path, batches: _Batches, full: _FullBatches, summary: RunSummary) -> bool:
    """`_dispatch_from_files` for one plain classic pcap, its records read, decoded and packed
    in C (`route_records`), no packet built; packets and bytes counted in `summary`, a read
    error noted there (after the packets before it), as `pipeline.iter_packets` does.

    False, having read nothing, when it cannot take the file (not a plain classic pcap, or
    not compiled): `_dispatch_from_files` then reads it."""
    frame_decoder = batches.frame_decoder
    if route_records is None or frame_decoder is None:
        return False
    frames, counts = batches.frames, batches.counts

    def parse_with(reader: PcapRecordReader) -> RecordParse[RawPacket]:
        def parse(buffer: bytes, start: int) -> tuple[list[RawPacket], int, int, int]:
            whole = 0
            while True:
                start, needed, records, size, stop = route_records(
                    reader, buffer, start, frame_decoder, frames, counts, _BATCH_SEGMENTS
                )
                summary.packets += records
                summary.bytes += size
                whole += records
                if stop is None:
                    return [], start, needed, whole
                index = stop if isinstance(stop, int) else batches.add_decoded(stop)
                if index is not None and counts[index] >= _BATCH_SEGMENTS:
                    full.send(index)

        return parse

    tail = read_pcap_with(path, parse_with)
    if tail is None:
        return False
    try:
        for packet in tail:  # records the Python reader read: a cut or damaged end
            summary.packets += 1
            summary.bytes += len(packet.data)
            index = batches.add(packet)
            if index is not None and counts[index] >= _BATCH_SEGMENTS:
                full.send(index)
    except CaptureError as exc:
        summary.errors.append(str(exc))
    return True


class _StalledSourceFlusher:
    """Sends the batches when the source stalls inside a read (a pipe, `tcpdump -w - |`), which
    yields no None to go round the loop with: a thread sends what waited `_BATCH_SECONDS`.

    It sends under `lock`, which the dispatcher holds while it handles a packet, so batches
    reach each worker in order.
    """

    def __init__(self, pool: WorkerPool, batches: _Batches, *, wait: bool) -> None:
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


def _send_all(batches: _Batches, pool: WorkerPool, *, wait: bool) -> None:
    for index, waiting in enumerate(batches.counts):
        if waiting:
            parts, count = batches.take(index)
            pool.send(index, parts, wait=wait, count=count)
