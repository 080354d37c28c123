"""The main job: capture -> reassembly -> detection -> storage, wired for one run.

The only place that knows every stage. `RequestStream` turns packets into reassembly events;
`analyze_packets` adds detection and hands hits to a `HitSink` (the store, or a writer in
front of it), for packets from any source; `replay_captures` does it for capture files.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from capture import CaptureError, PacketDecoder, RawPacket, read_captures
from oob_analyzer.detection import AttackHit, DetectionEngine
from oob_analyzer.response_wait import HitsAwaitingResponse
from reassembly import Anomaly, ConnectionTracker, HttpRequest, HttpResponse, ReassemblyEvent, ReassemblyLimits
from storage.batches import AnomalySighting

__all__ = [
    "HitSink",
    "RequestStream",
    "RunSummary",
    "analyze_packets",
    "extract_events",
    "extract_requests",
    "iter_packets",
    "replay_captures",
]


@dataclass(slots=True)
class RunSummary:
    """What one run saw: counts, why packets were passed over, and unreadable inputs."""

    packets: int = 0
    requests: int = 0
    hits: int = 0
    anomalies: int = 0  # anomalies recorded (on requests and connections)
    drops: Counter[str] = field(default_factory=Counter)
    decode_anomalies: Counter[str] = field(default_factory=Counter)  # odd but decoded (capture stage)
    errors: list[str] = field(default_factory=list)

    def line(self) -> str:
        # A source of requests rather than packets (the mirror receiver) reads no packets.
        packets = f"{self.packets} packets, " if self.packets or not self.requests else ""
        return f"{packets}{self.requests} requests, {self.hits} hits"


class RequestStream:
    """Packets in, reassembly events out: the capture decoder and the connection tracker."""

    def __init__(self, decoder: PacketDecoder | None = None, limits: ReassemblyLimits | None = None) -> None:
        self.decoder = decoder or PacketDecoder()
        self.tracker = ConnectionTracker(limits)

    def feed(self, packet: RawPacket) -> list[ReassemblyEvent]:
        segment = self.decoder.decode(packet)
        if segment is None:
            return []
        return self.tracker.receive_segment(segment)

    def finish(self) -> list[ReassemblyEvent]:
        return self.tracker.close_all()

    def drops(self) -> Counter[str]:
        return self.decoder.stats + self.tracker.stats


def iter_packets(paths: Iterable[Path], summary: RunSummary) -> Iterator[RawPacket]:
    """The packets of every source (files, directories, `-`), merged in timestamp order.

    A source that cannot be read is noted and skipped; packets before the damage in a
    damaged file are still yielded.
    """

    def note(exc: CaptureError) -> None:
        summary.errors.append(str(exc))

    for packet in read_captures(paths, on_error=note):
        summary.packets += 1
        yield packet


class HitSink(Protocol):
    """Where hits and anomalies go: the store itself, or a writer in front of it (which batches)."""

    def record(self, hits: Sequence[AttackHit]) -> None: ...

    def record_anomalies(self, sightings: Sequence[AnomalySighting]) -> None: ...


def analyze_packets(
    packets: Iterable[RawPacket | None],
    *,
    engine: DetectionEngine,
    sink: HitSink,
    summary: RunSummary,
    decoder: PacketDecoder | None = None,
    awaiting: HitsAwaitingResponse | None = None,
) -> None:
    """Analyze a stream of packets, from any source, and hand every hit and anomaly to `sink`.

    A request's hits wait in `awaiting` for its response, to carry its status; they go to
    the sink when it comes, after a few seconds without it, or at the end (see
    `response_wait`). Batching is the sink's business (the storage writer batches, and
    flushes what has waited too long, so a quiet live capture does not sit on its hits).
    A live source yields None when it has waited for packets in vain: nothing to feed, but
    the loop goes round (and hits that waited too long are released).
    """
    stream = RequestStream(decoder)
    waiting = awaiting if awaiting is not None else HitsAwaitingResponse()

    def record(hits: list[AttackHit]) -> None:
        if hits:
            sink.record(hits)
            summary.hits += len(hits)

    def handle(events: list[ReassemblyEvent], capture_time: float | None) -> None:
        ready = waiting.expire(capture_time)
        sightings: list[AnomalySighting] = []
        for event in events:
            if isinstance(event, HttpRequest):
                summary.requests += 1
                hits = engine.analyze(event)
                if hits:
                    ready += waiting.hold(event, hits)
                if event.anomalies:
                    sightings.extend(AnomalySighting.from_request(event))
            elif isinstance(event, HttpResponse):
                ready += waiting.answer(event)
            elif isinstance(event, Anomaly):
                sightings.append(AnomalySighting.from_event(event))
        record(ready)
        if sightings:
            sink.record_anomalies(sightings)
            summary.anomalies += len(sightings)

    try:
        for packet in packets:
            if packet is None:
                handle([], None)
            else:
                handle(stream.feed(packet), packet.ts)
        handle(stream.finish(), None)
    finally:
        summary.drops = stream.drops()
        summary.decode_anomalies = stream.decoder.anomalies
        # Stopped (end of input, SIGINT, an error): what still waits is recorded, status unknown.
        record(waiting.release_all())


def replay_captures(
    paths: Iterable[Path], *, engine: DetectionEngine, sink: HitSink, decoder: PacketDecoder | None = None
) -> RunSummary:
    """Analyze capture files and record every hit."""
    summary = RunSummary()
    analyze_packets(iter_packets(paths, summary), engine=engine, sink=sink, summary=summary, decoder=decoder)
    return summary


def extract_requests(
    paths: Iterable[Path], summary: RunSummary, decoder: PacketDecoder | None = None
) -> Iterator[HttpRequest]:
    """Every HTTP request in the capture files, in the order they complete."""
    for event in extract_events(paths, summary, decoder):
        if isinstance(event, HttpRequest):
            yield event


def extract_events(
    paths: Iterable[Path], summary: RunSummary, decoder: PacketDecoder | None = None
) -> Iterator[ReassemblyEvent]:
    """Every reassembly event (requests, responses, anomalies) in the capture files, in order."""
    stream = RequestStream(decoder)
    for packet in iter_packets(paths, summary):
        for event in stream.feed(packet):
            summary.requests += isinstance(event, HttpRequest)
            yield event
    for event in stream.finish():
        summary.requests += isinstance(event, HttpRequest)
        yield event
    summary.drops = stream.drops()
    summary.decode_anomalies = stream.decoder.anomalies
