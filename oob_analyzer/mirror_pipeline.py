"""The mirror job: HTTP mirror receiver -> origin resolution -> detection -> storage.

The receiver (`capture.http_mirror`) runs an asyncio loop on the main thread and only
parses and answers; it offers each request to a bounded queue without ever waiting. One
analysis thread takes requests off the queue, maps each to its real client and host
(`capture.mirror_origin`), runs detection and hands hits and anomalies to a `HitSink` (the
storage writer, which batches). A full queue means the request is dropped and counted: the
mirroring server is never slowed.

On SIGINT/SIGTERM (or `request_stop()`), the receiver stops, requests cut short are
queued, and the analysis thread drains the queue and flushes before `run()` returns.
"""

from __future__ import annotations

import asyncio
import queue
import signal
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from capture.http_mirror import HttpMirrorReceiver, MirrorReceiverStats, ReceiverSettings
from capture.mirror_origin import IpNetwork, OriginResolver
from oob_analyzer.detection import AttackHit
from oob_analyzer.pipeline import HitSink, RequestAnalyzer
from reassembly import HttpRequest
from storage.batches import AnomalySighting

__all__ = ["MirrorAnalysis", "MirrorService", "MirrorSettings", "MirrorSummary"]

DEFAULT_QUEUE_SIZE = 10_000
DEFAULT_QUEUE_BYTES = 256 * 1024 * 1024
_IDLE_SECONDS = 0.2  # how long the analysis thread waits for a request before its `when_idle`


@dataclass(frozen=True, slots=True, kw_only=True)
class MirrorSettings:
    receiver: ReceiverSettings = field(default_factory=ReceiverSettings)
    trusted: tuple[IpNetwork, ...] = ()
    queue_size: int = DEFAULT_QUEUE_SIZE
    queue_bytes: int = DEFAULT_QUEUE_BYTES  # heads and kept bodies waiting, so memory stays bounded


@dataclass(slots=True)
class MirrorSummary:
    receiver: MirrorReceiverStats
    analyzed: int = 0
    hits: int = 0
    error: str = ""  # why the analysis stopped early, if it did
    unrecorded: list[AttackHit] = field(default_factory=list)  # detected, but the sink failed

    def line(self) -> str:
        stats = self.receiver
        return (
            f"{stats.requests} requests answered, {stats.incomplete} incomplete, {stats.dropped} dropped (queue full), "
            f"{stats.refused} connections refused, {self.analyzed} analyzed, {self.hits} hits"
            + (f", {stats.over_limit} connections over the limit" if stats.over_limit else "")
            + (
                "; stream anomalies: " + ", ".join(f"{name} {count}" for name, count in sorted(stats.anomalies.items()))
                if stats.anomalies
                else ""
            )
        )


class MirrorAnalysis:
    """The analysis thread behind the bounded queue."""

    def __init__(
        self,
        *,
        resolver: OriginResolver,
        engine: RequestAnalyzer,
        sink: HitSink,
        queue_size: int,
        queue_bytes: int = DEFAULT_QUEUE_BYTES,
        on_failure: Callable[[], None],
        when_idle: Callable[[], None] | None = None,
    ) -> None:
        self._resolver = resolver
        # Run by the analysis thread after each quiet `_IDLE_SECONDS` (a reload SIGHUP asked for):
        # the work that judges requests must not wait for the next one to come.
        self._when_idle = when_idle
        self._engine = engine
        self._sink = sink
        self._queue: queue.Queue[HttpRequest | None] = queue.Queue(maxsize=queue_size)
        self._queue_bytes = queue_bytes
        self._queued_bytes = 0
        self._bytes_lock = threading.Lock()
        self._on_failure = on_failure
        self._thread = threading.Thread(target=self._run, name="oob-mirror-analysis", daemon=True)
        self.analyzed = 0
        self.hits = 0
        self.hits_by_type: Counter[str] = Counter()
        self.error = ""
        self.unrecorded: list[AttackHit] = []
        self._failed = False

    def start(self) -> None:
        self._thread.start()

    @property
    def queue_depth(self) -> int:
        """Requests waiting for analysis."""
        return self._queue.qsize()

    def offer(self, request: HttpRequest) -> bool:
        """Queue `request` without waiting; False when the queue is full or analysis has failed."""
        if self._failed:
            return False
        size = _request_bytes(request)
        with self._bytes_lock:
            if self._queued_bytes + size > self._queue_bytes:
                return False
            self._queued_bytes += size
        try:
            self._queue.put_nowait(request)
        except queue.Full:
            self._release(size)
            return False
        return True

    def _release(self, size: int) -> None:
        with self._bytes_lock:
            self._queued_bytes -= size

    def finish(self) -> None:
        """Analyze what is queued, flush, and end the thread."""
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        hits: list[AttackHit] = []
        try:
            while (request := self._next_request()) is not None:
                hits = []
                self._release(_request_bytes(request))
                self.analyzed += 1
                resolved = self._resolver.resolve(request)
                hits = self._engine.analyze(resolved)
                if hits:
                    self._sink.record(hits)
                    self.hits += len(hits)
                    self.hits_by_type.update(hit.attack_type for hit in hits)
                if resolved.anomalies:
                    self._sink.record_anomalies(AnomalySighting.from_request(resolved))
        except Exception as exc:
            # Anything the sink or a detector raises ends the run with a message: a monitor
            # that silently stops recording is worse than one that stops. The hits detected
            # but not recorded are handed back (`unrecorded`) for the caller to save.
            self.unrecorded = list(hits)
            self._failed = True
            self._on_failure()
            abandoned = self._drain()
            self.error = (
                f"analysis stopped: {type(exc).__name__}: {exc}; {len(self.unrecorded)} hits not recorded, "
                f"{abandoned} queued requests not analyzed"
            )

    def _next_request(self) -> HttpRequest | None:
        when_idle = self._when_idle
        if when_idle is None:
            return self._queue.get()
        while True:
            try:
                return self._queue.get(timeout=_IDLE_SECONDS)
            except queue.Empty:
                when_idle()

    def _drain(self) -> int:
        """Empty the queue until `finish()`, so that offers fail fast; how many requests it held."""
        count = 0
        while self._queue.get() is not None:
            count += 1
        return count


def _request_bytes(request: HttpRequest) -> int:
    """Roughly what a queued request holds in memory: its kept body and its head."""
    return len(request.body) + len(request.target) + sum(len(name) + len(value) for name, value in request.headers)


class MirrorService:
    """The receiver and the analysis thread, run until a signal or `request_stop()`."""

    def __init__(
        self,
        settings: MirrorSettings,
        *,
        engine: RequestAnalyzer,
        sink: HitSink,
        when_idle: Callable[[], None] | None = None,
    ) -> None:
        """`when_idle`: run by the analysis thread whenever no request came for a moment."""
        self.settings = settings
        self._engine = engine
        self._sink = sink
        self._when_idle = when_idle
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._stop_requested = threading.Event()
        # The receiver's counters while it runs (written by its loop; safe to read for display).
        self.live_stats = MirrorReceiverStats()
        self.analysis: MirrorAnalysis | None = None  # while running, for metrics

    def run(
        self,
        *,
        on_ready: Callable[[str, int], None] | None = None,
        stop_signals: Sequence[signal.Signals] = (signal.SIGINT, signal.SIGTERM),
    ) -> MirrorSummary:
        """Serve until stopped; the summary once every queued request is analyzed and recorded."""
        analysis = MirrorAnalysis(
            resolver=OriginResolver(self.settings.trusted),
            engine=self._engine,
            sink=self._sink,
            queue_size=self.settings.queue_size,
            queue_bytes=self.settings.queue_bytes,
            on_failure=self.request_stop,
            when_idle=self._when_idle,
        )
        receiver = HttpMirrorReceiver(self.settings.receiver, analysis.offer)
        self.live_stats = receiver.stats
        self.analysis = analysis
        analysis.start()
        try:
            asyncio.run(self._serve(receiver, on_ready, stop_signals))
        finally:
            analysis.finish()
        return MirrorSummary(
            receiver=receiver.stats,
            analyzed=analysis.analyzed,
            hits=analysis.hits,
            error=analysis.error,
            unrecorded=analysis.unrecorded,
        )

    def request_stop(self) -> None:
        """Stop serving; safe from any thread, also before the loop has started."""
        self._stop_requested.set()
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            loop.call_soon_threadsafe(stop.set)

    async def _serve(
        self,
        receiver: HttpMirrorReceiver,
        on_ready: Callable[[str, int], None] | None,
        stop_signals: Sequence[signal.Signals],
    ) -> None:
        loop = asyncio.get_running_loop()
        self._stop = stop = asyncio.Event()
        self._loop = loop
        for signum in stop_signals:
            loop.add_signal_handler(signum, stop.set)
        try:
            host, port = await receiver.start()
            if self._stop_requested.is_set():
                stop.set()
            if on_ready is not None:
                on_ready(host, port)
            await stop.wait()
        finally:
            for signum in stop_signals:
                loop.remove_signal_handler(signum)
            await receiver.stop()
            self._loop = None
