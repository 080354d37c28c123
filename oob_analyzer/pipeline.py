"""The main job: capture -> reassembly -> detection -> storage, wired for one run.

The only place that knows every stage. `RequestStream` turns packets into reassembly events;
`analyze_packets` adds detection and hands hits to a `HitSink` (the store, or a writer in
front of it), for packets from any source; `analyze_event_runs` does it for the runs of
events the compiled record path reads from capture files (`file_event_runs`);
`replay_captures` does it for capture files, by whichever path can take them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from capture import CaptureError, PacketDecoder, RawPacket, read_captures
from capture.files import STDIN, RecordParse, read_pcap_with
from oob_analyzer.detection import AttackHit
from oob_analyzer.gc_policy import fewer_collections
from oob_analyzer.response_wait import HitsAwaitingResponse
from reassembly import Anomaly, ConnectionTracker, HttpRequest, HttpResponse, ReassemblyEvent, ReassemblyLimits
from storage.batches import AnomalySighting

if TYPE_CHECKING:
    from capture._fastdecode import PcapRecordReader

__all__ = [
    "EventRun",
    "HitSink",
    "RequestAnalyzer",
    "RequestStream",
    "RunSummary",
    "analyze_event_runs",
    "analyze_packets",
    "extract_events",
    "extract_requests",
    "file_event_runs",
    "iter_packets",
    "judge_events",
    "judge_packets_events",
    "record_hits",
    "replay_captures",
    "single_capture_file",
]


@dataclass(frozen=True, slots=True)
class EventRun:
    """The events of a run of packets, with the capture times that judging them needs.

    Packet by packet, waiting hits expire by each packet's timestamp before its events are
    judged. Between two packets that give events, only the latest of those timestamps
    matters, so a run keeps just that: `marks` holds, for each packet that gave events, (the
    index of its first event, the latest timestamp since the previous such packet, its own
    included); `trailing`, the latest timestamp of the packets after the last one (None when
    there are none). `analyze_event_runs` thus judges exactly as `analyze_packets` does.
    """

    events: list[ReassemblyEvent]
    marks: list[tuple[int, float]]
    trailing: float | None

    @classmethod
    def of_packet(cls, events: list[ReassemblyEvent], ts: float) -> EventRun:
        return cls(events, [(0, ts)], None) if events else cls(events, [], ts)


@dataclass(slots=True)
class RunSummary:
    """What one run saw: counts, why packets were passed over, and unreadable inputs."""

    packets: int = 0
    bytes: int = 0  # of the packets, as captured
    requests: int = 0
    responses: int = 0
    hits: int = 0
    anomalies: int = 0  # anomalies recorded (on requests and connections)
    hits_by_type: Counter[str] = field(default_factory=Counter)
    anomalies_by_name: Counter[str] = field(default_factory=Counter)
    drops: Counter[str] = field(default_factory=Counter)
    decode_anomalies: Counter[str] = field(default_factory=Counter)  # odd but decoded (capture stage)
    errors: list[str] = field(default_factory=list)

    def line(self) -> str:
        # A source of requests rather than packets (the mirror receiver) reads no packets.
        packets = f"{self.packets} packets, " if self.packets or not self.requests else ""
        return f"{packets}{self.requests} requests, {self.hits} hits"


class RequestStream:
    """Packets in, reassembly events out: the capture decoder and the connection tracker.

    `feed(packet)` returns the events the packet completes; with both compiled it is one C
    call per packet (`ConnectionTracker.packet_feed`).
    """

    feed: Callable[[RawPacket], list[ReassemblyEvent]]

    def __init__(self, decoder: PacketDecoder | None = None, limits: ReassemblyLimits | None = None) -> None:
        self.decoder = decoder or PacketDecoder()
        self.tracker = ConnectionTracker(limits)
        frames = self.decoder.frame_decoder
        self.feed = self.tracker.packet_feed(self.decoder.decode, fast_decode=frames.decode if frames else None)

    def feed_file(self, path: Path, summary: RunSummary) -> Iterator[EventRun] | None:
        """One capture file's events, a run of packets at a time (with their capture times),
        packets and bytes counted in `summary` and a read error noted there (after the packets
        before it).

        The compiled record path (`ConnectionTracker.feed_records`): records read, decoded and
        tracked in C, no packet object built. None when it cannot take the file (not a plain
        classic pcap, or a part not compiled); `iter_packets` and `feed` give the same events.
        """
        frames = self.decoder.frame_decoder
        if frames is None or not self.tracker.compiled:
            return None
        feed_records, decode = self.tracker.feed_records, self.decoder.decode

        def parse_with(reader: PcapRecordReader) -> RecordParse[EventRun]:
            def parse(buffer: bytes, start: int) -> tuple[list[EventRun], int, int, int]:
                events, start, needed, packets, size, marks, trailing = feed_records(
                    buffer, start, reader, frames, decode
                )
                summary.packets += packets
                summary.bytes += size
                return [EventRun(events, marks, trailing)], start, needed, packets

            return parse

        items = read_pcap_with(path, parse_with)
        return None if items is None else self._file_events(items, summary)

    def _file_events(self, items: Iterator[EventRun | RawPacket], summary: RunSummary) -> Iterator[EventRun]:
        try:
            for item in items:
                if isinstance(item, RawPacket):  # a record the Python reader read (the file's tail)
                    summary.packets += 1
                    summary.bytes += len(item.data)
                    yield EventRun.of_packet(self.feed(item), item.ts)
                else:
                    yield item
        except CaptureError as exc:  # after every packet before the damage, as `iter_packets` does
            summary.errors.append(str(exc))

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
        summary.bytes += len(packet.data)
        yield packet


class RequestAnalyzer(Protocol):
    """What judges a request: a `DetectionEngine`, or the config's `SensorEngine` around one."""

    def analyze(self, request: HttpRequest) -> list[AttackHit]: ...


class HitSink(Protocol):
    """Where hits and anomalies go: the store itself, or a writer in front of it (which batches)."""

    def record(self, hits: Sequence[AttackHit]) -> None: ...

    def record_anomalies(self, sightings: Sequence[AnomalySighting]) -> None: ...


def analyze_packets(
    packets: Iterable[RawPacket | None],
    *,
    engine: RequestAnalyzer,
    sink: HitSink,
    summary: RunSummary,
    stream: RequestStream | None = None,
    awaiting: HitsAwaitingResponse | None = None,
) -> None:
    """Analyze a stream of packets, from any source, and hand every hit and anomaly to `sink`.

    A request's hits wait in `awaiting` for its response, to carry its status; they go to
    the sink when it comes, after a few seconds without it, or at the end (see
    `response_wait`). Batching is the sink's business (the storage writer batches, and
    flushes what has waited too long, so a quiet live capture does not sit on its hits).
    A live source yields None when it has waited for packets in vain: nothing to feed, but
    the loop goes round (and hits that waited too long are released). `stream` (the decoder
    and the tracker with its limits; default ones if not given) can be read while the run
    goes (metrics). The loop runs with fewer collections of the cyclic GC (`gc_policy`).
    """
    stream = stream or RequestStream()
    waiting = awaiting if awaiting is not None else HitsAwaitingResponse()
    with fewer_collections():
        try:
            for packet in packets:
                if packet is None:
                    judge_events([], engine=engine, sink=sink, summary=summary, waiting=waiting, capture_time=None)
                else:
                    events = stream.feed(packet)
                    judge_events(
                        events, engine=engine, sink=sink, summary=summary, waiting=waiting, capture_time=packet.ts
                    )
            _judge_end(stream, engine=engine, sink=sink, summary=summary, waiting=waiting)
        finally:
            _end_run(stream, waiting, sink=sink, summary=summary)


def analyze_event_runs(
    runs: Iterable[EventRun],
    *,
    engine: RequestAnalyzer,
    sink: HitSink,
    summary: RunSummary,
    stream: RequestStream,
    awaiting: HitsAwaitingResponse | None = None,
) -> None:
    """`analyze_packets` over runs of packets' events (`file_event_runs`: `stream`'s record path).

    The same hits, with the same statuses, in the same order: each packet's events are judged
    after waiting hits expire by the latest capture time reached (`EventRun`), as packet by
    packet; packets that gave no event only move that time on.
    """
    waiting = awaiting if awaiting is not None else HitsAwaitingResponse()
    with fewer_collections():
        try:
            for run in runs:
                judge_packets_events(run.events, run.marks, engine=engine, sink=sink, summary=summary, waiting=waiting)
                if run.trailing is not None:
                    record_hits(waiting.expire(run.trailing), sink=sink, summary=summary)
            _judge_end(stream, engine=engine, sink=sink, summary=summary, waiting=waiting)
        finally:
            _end_run(stream, waiting, sink=sink, summary=summary)


def _judge_end(
    stream: RequestStream, *, engine: RequestAnalyzer, sink: HitSink, summary: RunSummary, waiting: HitsAwaitingResponse
) -> None:
    """The messages the end of input completes, judged by the latest capture time, not the clock:
    a long replay must not expire, before them, hits whose response is among them."""
    judge_events(
        stream.finish(), engine=engine, sink=sink, summary=summary, waiting=waiting, capture_time=waiting.capture_time
    )


def _end_run(stream: RequestStream, waiting: HitsAwaitingResponse, *, sink: HitSink, summary: RunSummary) -> None:
    summary.drops = stream.drops()
    summary.decode_anomalies = stream.decoder.anomalies
    # Stopped (end of input, SIGINT, an error): what still waits is recorded, status unknown.
    record_hits(waiting.release_all(), sink=sink, summary=summary)


def judge_events(
    events: list[ReassemblyEvent],
    *,
    engine: RequestAnalyzer,
    sink: HitSink,
    summary: RunSummary,
    waiting: HitsAwaitingResponse,
    capture_time: float | None,
) -> None:
    """Detection over one packet's reassembly events (`capture_time`: the packet's; None when
    a live source is quiet): hits wait for their response in `waiting`, anomalies go to `sink`.

    Shared by the in-process loop and every worker process (`oob_analyzer.workers`).
    """
    judge_packets_events(events, ((0, capture_time),), engine=engine, sink=sink, summary=summary, waiting=waiting)


def judge_packets_events(
    events: list[ReassemblyEvent],
    marks: Sequence[tuple[int, float | None]],
    *,
    engine: RequestAnalyzer,
    sink: HitSink,
    summary: RunSummary,
    waiting: HitsAwaitingResponse,
) -> None:
    """`judge_events` for each packet of a run of them (`EventRun.marks`: where each packet's
    events start in `events`, and its capture time), in one call for them all: most packets
    give one event, which is not worth a call and a slice of its own. Shared by the record
    path here and the workers' packed frames (`ConnectionTracker.feed_frames`)."""
    expire, analyze = waiting.expire, engine.analyze
    last = len(marks) - 1
    for number, (start, capture_time) in enumerate(marks):
        ready = expire(capture_time)
        sightings: list[AnomalySighting] | None = None
        for event in events if last == 0 else events[start : marks[number + 1][0] if number < last else None]:
            if isinstance(event, HttpRequest):
                summary.requests += 1
                hits = analyze(event)
                if hits:
                    ready += waiting.hold(event, hits)
                if event.anomalies:
                    if sightings is None:
                        sightings = []
                    sightings.extend(AnomalySighting.from_request(event))
            elif isinstance(event, HttpResponse):
                summary.responses += 1
                ready += waiting.answer(event)
            elif isinstance(event, Anomaly):
                if sightings is None:
                    sightings = []
                sightings.append(AnomalySighting.from_event(event))
        if ready:
            record_hits(ready, sink=sink, summary=summary)
        if sightings:
            sink.record_anomalies(sightings)
            summary.anomalies += len(sightings)
            summary.anomalies_by_name.update(sighting.name for sighting in sightings)


def record_hits(hits: list[AttackHit], *, sink: HitSink, summary: RunSummary) -> None:
    if hits:
        sink.record(hits)
        summary.hits += len(hits)
        summary.hits_by_type.update(hit.attack_type for hit in hits)


def replay_captures(
    paths: Iterable[Path], *, engine: RequestAnalyzer, sink: HitSink, decoder: PacketDecoder | None = None
) -> RunSummary:
    """Analyze capture files and record every hit (through the record path where it can take them)."""
    summary = RunSummary()
    stream = RequestStream(decoder)
    sources = list(paths)
    runs = file_event_runs(stream, sources, summary)
    if runs is not None:
        analyze_event_runs(runs, engine=engine, sink=sink, summary=summary, stream=stream)
    else:
        analyze_packets(iter_packets(sources, summary), engine=engine, sink=sink, summary=summary, stream=stream)
    return summary


def file_event_runs(stream: RequestStream, sources: Sequence[Path], summary: RunSummary) -> Iterator[EventRun] | None:
    """The sources' events through `stream`'s compiled record path, a run at a time, when it
    can take them: one plain classic pcap file today. None otherwise (`iter_packets` then)."""
    path = single_capture_file(sources)
    return None if path is None else stream.feed_file(path, summary)


def single_capture_file(sources: Sequence[Path]) -> Path | None:
    """The one file `sources` name, for a record path to try (it takes plain classic pcaps);
    None for several sources, a directory or standard input."""
    return sources[0] if len(sources) == 1 and _is_file(sources[0]) else None


def extract_requests(
    paths: Iterable[Path], summary: RunSummary, decoder: PacketDecoder | None = None
) -> Iterator[HttpRequest]:
    """Every HTTP request in the capture files, in the order they complete."""
    for event in extract_events(paths, summary, decoder):
        if isinstance(event, HttpRequest):
            yield event


def extract_events(
    paths: Iterable[Path],
    summary: RunSummary,
    decoder: PacketDecoder | None = None,
    limits: ReassemblyLimits | None = None,
) -> Iterator[ReassemblyEvent]:
    """Every reassembly event (requests, responses, anomalies) in the capture files, in order."""
    stream = RequestStream(decoder, limits)
    sources = list(paths)
    runs = file_event_runs(stream, sources, summary)
    if runs is not None:  # read, decoded and tracked in C
        for run in runs:
            for event in run.events:
                summary.requests += isinstance(event, HttpRequest)
                yield event
    else:
        for packet in iter_packets(sources, summary):
            for event in stream.feed(packet):
                summary.requests += isinstance(event, HttpRequest)
                yield event
    for event in stream.finish():
        summary.requests += isinstance(event, HttpRequest)
        yield event
    summary.drops = stream.drops()
    summary.decode_anomalies = stream.decoder.anomalies


def _is_file(path: Path) -> bool:
    return path != STDIN and path.is_file()
