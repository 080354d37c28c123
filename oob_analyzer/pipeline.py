"""The main job: capture -> reassembly -> detection -> storage, wired for one run.

The only place that knows every stage. `RequestStream` turns packets into reassembly events;
`replay_captures` adds detection and storage and returns what the run saw.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from capture import CaptureError, PacketDecoder, RawPacket, read_capture
from oob_analyzer.detection import AttackHit, DetectionEngine
from reassembly import ConnectionTracker, HttpRequest, ReassemblyEvent
from storage import AttackStore

__all__ = ["RequestStream", "RunSummary", "extract_requests", "iter_packets", "replay_captures"]

HIT_BATCH_SIZE = 500


@dataclass(slots=True)
class RunSummary:
    """What one run saw: counts, why packets were passed over, and unreadable inputs."""

    packets: int = 0
    requests: int = 0
    hits: int = 0
    drops: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    def line(self) -> str:
        return f"{self.packets} packets, {self.requests} requests, {self.hits} hits"


class RequestStream:
    """Packets in, reassembly events out: the capture decoder and the connection tracker."""

    def __init__(self) -> None:
        self.decoder = PacketDecoder()
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
    """The packets of every file in turn; a file that cannot be read is noted and skipped.

    Packets before the damage in a damaged file are still yielded.
    """
    for path in paths:
        try:
            for packet in read_capture(path):
                summary.packets += 1
                yield packet
        except CaptureError as exc:
            summary.errors.append(str(exc))


def replay_captures(paths: Iterable[Path], *, engine: DetectionEngine, store: AttackStore) -> RunSummary:
    """Analyze capture files and record every hit; hits are written in batches as they come."""
    summary = RunSummary()
    stream = RequestStream()
    pending: list[AttackHit] = []

    def handle(events: list[ReassemblyEvent]) -> None:
        for event in events:
            if isinstance(event, HttpRequest):
                summary.requests += 1
                pending.extend(engine.analyze(event))
        if len(pending) >= HIT_BATCH_SIZE:
            flush()

    def flush() -> None:
        store.record(pending)
        summary.hits += len(pending)
        pending.clear()

    for packet in iter_packets(paths, summary):
        handle(stream.feed(packet))
    handle(stream.finish())
    flush()
    summary.drops = stream.drops()
    return summary


def extract_requests(paths: Iterable[Path], summary: RunSummary) -> Iterator[HttpRequest]:
    """Every HTTP request in the capture files, in the order they complete."""
    stream = RequestStream()
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
