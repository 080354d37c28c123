"""The worker process: the in-process path (connection tracker + detection) on its share of flows.

Runs in a child started by `WorkerPool`. It ignores SIGINT and SIGTERM (a Ctrl-C reaches
the whole process group, systemd signals the whole cgroup): the parent decides when the run
ends and tells it with `Finish`, so nothing already detected is lost. It leaves on its own
when its parent is gone.
"""

from __future__ import annotations

import contextlib
import functools
import queue
import signal
import time
import traceback
from collections import Counter
from collections.abc import Sequence
from multiprocessing.connection import Connection
from multiprocessing.queues import Queue

from capture import RawPacket
from oob_analyzer.detection import AttackHit
from oob_analyzer.gc_policy import fewer_collections
from oob_analyzer.metrics import ENGINE_PREFIX, tracker_counters
from oob_analyzer.pipeline import (
    RequestAnalyzer,
    RequestStream,
    RunSummary,
    judge_events,
    judge_packets_events,
    record_hits,
)
from oob_analyzer.response_wait import HitsAwaitingResponse
from oob_analyzer.workers.flows import FramePart, SegmentTuple, segment_from_tuple
from oob_analyzer.workers.messages import (
    CountersReply,
    CountersRequest,
    Crashed,
    DecoderSettings,
    EngineFactory,
    Finish,
    Finished,
    Ready,
    Reconfigure,
    ReconfigureFailed,
    Results,
    SegmentBatch,
    ToWorker,
)
from reassembly import ReassemblyLimits
from storage.batches import AnomalySighting

try:
    from capture._fastdecode import unpack_frames
except ImportError:  # not built: the dispatcher packs no frames either, only segments
    unpack_frames = None  # type: ignore[assignment]

__all__ = ["DECODE_ANOMALY_PREFIX", "DECODE_DROP_PREFIX", "FlowWorker", "run_worker"]

DECODE_DROP_PREFIX = "decode."  # counters keys that are the worker decoder's `stats`
DECODE_ANOMALY_PREFIX = "decode_anomaly."
_FRAMES_ORIGIN = "worker"  # a packed frame does not carry its source's name; nothing downstream reads it

_PARENT_CHECK_SECONDS = 1.0


class _CollectedResults:
    """The worker's `HitSink`: keeps what one batch produced, to send it in one message."""

    def __init__(self) -> None:
        self.hits: list[AttackHit] = []
        self.sightings: list[AnomalySighting] = []

    def record(self, hits: Sequence[AttackHit]) -> None:
        self.hits.extend(hits)

    def record_anomalies(self, sightings: Sequence[AnomalySighting]) -> None:
        self.sightings.extend(sightings)


class FlowWorker:
    """Sans-I/O core of a worker: batches of packed frames and segments in, results and counters out.

    Each frame is decoded, by a decoder set up as the dispatcher's (`DecoderSettings`), and
    tracked in one C call (`RequestStream.feed`); a segment the dispatcher decoded goes to the
    tracker as it is. Each `Results` also says how many requests and responses were parsed
    since the last one, so the parent's summary (the progress bar, the metrics) moves while
    the run goes.
    """

    def __init__(
        self,
        engine: RequestAnalyzer,
        limits: ReassemblyLimits | None = None,
        decoder: DecoderSettings | None = None,
    ) -> None:
        self.engine = engine
        self.stream = RequestStream(decoder.build() if decoder is not None else None, limits)
        self.tracker = self.stream.tracker
        self.summary = RunSummary()
        self.waiting = HitsAwaitingResponse()  # each flow's responses reach the same worker
        self.segments = 0  # frames and segments analyzed
        self._results = _CollectedResults()
        self._reported = (0, 0)  # requests and responses already told to the parent
        self._retired_engine_counters: Counter[str] = Counter()  # of engines a reconfigure replaced

    def analyze(self, parts: list[FramePart]) -> Results | None:
        capture_time: float | None = None
        for part in parts:
            if isinstance(part, tuple):
                capture_time = self._track_segment(part)
            else:
                capture_time = self._track_frames(part)
        if capture_time is not None:  # hits whose response is overdue, by the capture time reached
            record_hits(self.waiting.expire(capture_time), sink=self._results, summary=self.summary)
        return self._take()

    def _track_frames(self, frames: bytearray) -> float | None:
        assert unpack_frames is not None  # the dispatcher packs frames only when it is built
        stream, engine, sink, summary, waiting = self.stream, self.engine, self._results, self.summary, self.waiting
        frame_decoder = stream.decoder.frame_decoder
        if frame_decoder is not None and self.tracker.compiled:
            # Decoded and tracked in C in one call, as the record path takes a pcap's records;
            # its events judged per packet, by each packet's capture time (the marks).
            events, count, last, marks, trailing = self.tracker.feed_frames(
                frames, frame_decoder, stream.decoder.decode, functools.partial(_packet_at, frames)
            )
            judge_packets_events(events, marks, engine=engine, sink=sink, summary=summary, waiting=waiting)
            if trailing is not None:
                record_hits(waiting.expire(trailing), sink=sink, summary=summary)
            self.segments += count
            return last
        packets = unpack_frames(frames, RawPacket, _FRAMES_ORIGIN)
        for packet in packets:
            events = stream.feed(packet)
            if events:
                judge_events(events, engine=engine, sink=sink, summary=summary, waiting=waiting, capture_time=packet.ts)
        self.segments += len(packets)
        return packets[-1].ts if packets else None

    def _track_segment(self, fields: SegmentTuple) -> float:
        segment = segment_from_tuple(fields)
        events = self.tracker.receive_segment(segment)
        if events:
            judge_events(
                events,
                engine=self.engine,
                sink=self._results,
                summary=self.summary,
                waiting=self.waiting,
                capture_time=segment.ts,
            )
        self.segments += 1
        return segment.ts

    def wait_idle(self) -> Results | None:
        """No segments came for a while (a quiet live source): release hits overdue in wall time."""
        record_hits(self.waiting.expire(None), sink=self._results, summary=self.summary)
        return self._take()

    def finish(self, *, close_connections: bool) -> Results | None:
        """The input ended (`close_connections`: hand back every message in progress) or the run
        was interrupted: either way every hit still waiting for its response is released."""
        if close_connections:
            events = self.tracker.close_all()
            judge_events(
                events,
                engine=self.engine,
                sink=self._results,
                summary=self.summary,
                waiting=self.waiting,
                # The latest capture time, not the clock, as in one process (`analyze_packets`).
                capture_time=self.waiting.capture_time,
            )
        record_hits(self.waiting.release_all(), sink=self._results, summary=self.summary)
        return self._take()

    def reconfigure(self, engine: RequestAnalyzer) -> None:
        self._retired_engine_counters.update(_engine_counters(self.engine))
        self.engine = engine

    def _take(self) -> Results | None:
        collected, summary = self._results, self.summary
        requests, responses = summary.requests - self._reported[0], summary.responses - self._reported[1]
        if not (collected.hits or collected.sightings or requests or responses):
            return None
        results = Results(collected.hits, collected.sightings, requests=requests, responses=responses)
        collected.hits, collected.sightings = [], []
        self._reported = (summary.requests, summary.responses)
        return results

    def counters(self) -> Counter[str]:
        """A picklable sample that adds up across workers (the parent sums them)."""
        counters = tracker_counters(self.tracker)
        decoder = self.stream.decoder  # normally counts nothing: the dispatcher packs only what it decoded
        counters.update({DECODE_DROP_PREFIX + reason: n for reason, n in decoder.stats.items()})
        counters.update({DECODE_ANOMALY_PREFIX + name: n for name, n in decoder.anomalies.items()})
        counters.update(
            {
                "segments": self.segments,
                "requests": self.summary.requests,
                "hits": self.summary.hits,
                "anomalies": self.summary.anomalies,
                "cpu_milliseconds": int(time.process_time() * 1000),  # this process's, so far
            }
        )
        engine_counters = self._retired_engine_counters + _engine_counters(self.engine)
        counters.update({ENGINE_PREFIX + name: count for name, count in engine_counters.items()})
        return counters


def _packet_at(frames: bytearray, start: int, end: int) -> RawPacket:
    """The RawPacket of the frame packed at frames[start:end] (for `feed_frames`, which hands a
    frame the compiled decoder does not take to the Python decoder)."""
    assert unpack_frames is not None
    (packet,) = unpack_frames(frames[start:end], RawPacket, _FRAMES_ORIGIN)
    return packet


def _engine_counters(engine: RequestAnalyzer) -> Counter[str]:
    """What a `SensorEngine` counts (requests not judged, by reason); a bare engine counts nothing."""
    return Counter(getattr(engine, "counters", {}))


def run_worker(
    inbox: Queue[ToWorker],
    outbox: Connection,
    engine_factory: EngineFactory,
    limits: ReassemblyLimits | None,
    lifeline: Connection,
    *,
    live: bool,
    decoder: DecoderSettings | None = None,
) -> None:
    """A worker process's main function."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        worker = FlowWorker(engine_factory(), limits, decoder)  # a live source waits for Ready
        outbox.send(Ready())
        with fewer_collections():  # the engine just built is never walked again (gc_policy)
            _serve(inbox, outbox, worker, lifeline, live=live)
    except BaseException:
        with contextlib.suppress(OSError):  # the parent is gone: nobody to tell
            outbox.send(Crashed(traceback.format_exc()))
        raise SystemExit(1) from None
    finally:
        outbox.close()


def _serve(inbox: Queue[ToWorker], outbox: Connection, worker: FlowWorker, lifeline: Connection, *, live: bool) -> None:
    last_segments = time.monotonic()
    while True:
        try:
            message: ToWorker | None = inbox.get(timeout=_PARENT_CHECK_SECONDS)
        except queue.Empty:
            if lifeline.poll():  # never written to: readable means its other end closed
                return  # orphaned: the parent died without saying goodbye
            message = None
        if isinstance(message, SegmentBatch):
            last_segments = time.monotonic()
            results = worker.analyze(message.parts)
            if results is not None:
                outbox.send(results)
            continue
        # No segments for a while (metrics scrapes asking for counters do not count): a live
        # source is quiet. (A file is never quiet: capture time alone releases its hits.)
        if live and time.monotonic() - last_segments >= _PARENT_CHECK_SECONDS:
            results = worker.wait_idle()
            if results is not None:
                outbox.send(results)
        if message is None:
            continue
        if isinstance(message, CountersRequest):
            outbox.send(CountersReply(message.sequence, worker.counters()))
        elif isinstance(message, Reconfigure):
            try:
                worker.reconfigure(message.engine_factory())
            except Exception as exc:  # keep judging with the engine we have, and say why
                outbox.send(ReconfigureFailed(f"{type(exc).__name__}: {exc}"))
        elif isinstance(message, Finish):
            results = worker.finish(close_connections=message.close_connections)
            if results is not None:
                outbox.send(results)
            outbox.send(Finished(worker.counters()))
            return
