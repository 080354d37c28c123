"""The main job: capture -> reassembly -> detection -> storage, wired for one run.

The only place that knows every stage. `RequestStream` turns packets into reassembly events;
`analyze_packets` adds detection and hands hits to a `HitSink` (the store, or a writer in
front of it), for packets from any source; `replay_captures` does it for capture files.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from capture import CaptureError, PacketDecoder, RawPacket, read_captures
from oob_analyzer.detection import AttackHit, DetectionEngine
from reassembly import ConnectionTracker, HttpRequest, ReassemblyEvent

__all__ = [
    "HitSink",
    "RequestStream",
    "RunSummary",
    "analyze_packets",
    "extract_requests",
    "iter_packets",
    "replay_captures",
]

HIT_BATCH_SIZE = 500


@dataclass(slots=True)
class RunSummary:
    """What one run saw: counts, why packets were passed over, and unreadable inputs."""

    packets: int = 0
    requests: int = 0
    hits: int = 0
    drops: Counter[str] = field(default_factory=Counter)
    anomalies: Counter[str] = field(default_factory=Counter)  # odd but decoded (capture stage)
    errors: list[str] = field(default_factory=list)

    def line(self) -> str:
        return f"{self.packets} packets, {self.requests} requests, {self.hits} hits"


class RequestStream:
    """Packets in, reassembly events out: the capture decoder and the connection tracker."""

    def __init__(self, decoder: PacketDecoder | None = None) -> None:
        self.decoder = decoder or PacketDecoder()
        self.tracker = ConnectionTracker()

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
    """Where hits go: the store itself, or a writer in front of it."""

    def record(self, hits: Sequence[AttackHit]) -> None: ...


def analyze_packets(
    packets: Iterable[RawPacket | None],
    *,
    engine: DetectionEngine,
    sink: HitSink,
    summary: RunSummary,
    decoder: PacketDecoder | None = None,
    flush_interval: float | None = None,
) -> None:
    """Analyze a stream of packets, from any source, and hand every hit to `sink` in batches.

    A live source passes `flush_interval` (seconds): pending hits are then also recorded
    once they have waited that long, checked as each packet arrives and on each None, which
    a live source yields when it has waited for packets in vain.
    """
    stream = RequestStream(decoder)
    pending: list[AttackHit] = []
    last_flush = time.monotonic()

    def flush() -> None:
        nonlocal last_flush
        sink.record(pending)
        summary.hits += len(pending)
        pending.clear()
        last_flush = time.monotonic()

    def handle(events: list[ReassemblyEvent]) -> None:
        for event in events:
            if isinstance(event, HttpRequest):
                summary.requests += 1
                pending.extend(engine.analyze(event))
        waited_long = flush_interval is not None and time.monotonic() - last_flush >= flush_interval
        if len(pending) >= HIT_BATCH_SIZE or (pending and waited_long):
            flush()

    try:
        for packet in packets:
            handle(stream.feed(packet) if packet is not None else [])
        handle(stream.finish())
    finally:
        flush()  # what was detected before an interruption is recorded too
        summary.drops = stream.drops()
        summary.anomalies = stream.decoder.anomalies


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
    stream = RequestStream(decoder)
    for packet in iter_packets(paths, summary):
        for event in stream.feed(packet):
            if isinstance(event, HttpRequest):
                summary.requests += 1
                yield event
    for event in stream.finish():
        if isinstance(event, HttpRequest):
            summary.requests += 1
            yield event
    summary.drops = stream.drops()
    summary.anomalies = stream.decoder.anomalies
