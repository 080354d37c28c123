"""Frames packed for the workers (`capture._fastdecode.route_packet`, `unpack_frames`): the
compiled router sends each frame to the worker `worker_for` would choose for its segment, and
the worker gets back the very packet the dispatcher read."""

from __future__ import annotations

import functools
import struct
from collections import Counter
from pathlib import Path

import pytest

from capture import LinkType, PacketDecoder, RawPacket, TcpSegment
from capture.files import RecordParse, read_pcap_with
from oob_analyzer.pipeline import RequestStream, RunSummary, analyze_packets, iter_packets
from oob_analyzer.workers import worker_for
from oob_analyzer.workers.child import DECODE_DROP_PREFIX, FlowWorker
from oob_analyzer.workers.messages import DecoderSettings
from tests.builders import ethernet_frame, ipv4_packet, outer_ipv4_udp, tcp_header, vxlan_header
from tests.paths import SAMPLES, SHARED
from tests.workers.runs import ListSink, small_engine

fastdecode = pytest.importorskip("capture._fastdecode")


def shared_packets() -> list[RawPacket]:
    return list(iter_packets([SHARED / "pcaps", SAMPLES], RunSummary()))


@pytest.mark.parametrize("workers", [1, 2, 3, 7])
def test_each_packed_frame_goes_where_its_segment_would(workers: int) -> None:
    """On every shared capture (tunnels, fragments, odd frames): a frame is packed exactly when
    the compiled decoder decodes it, for the worker of its segment, and unpacks to itself."""
    decoder = PacketDecoder()
    frames = decoder.frame_decoder
    assert frames is not None
    packed = 0
    for packet in shared_packets():
        buffers = [bytearray() for _ in range(workers)]
        index = fastdecode.route_packet(frames, packet, buffers)
        segment = frames.decode(packet)
        if segment is None:
            assert index == -1 and not any(buffers)
            continue
        assert isinstance(segment, TcpSegment)
        assert index == worker_for(segment, workers)
        (back,) = fastdecode.unpack_frames(buffers[index], RawPacket, packet.origin)
        assert back == packet
        assert [bool(buffer) for buffer in buffers] == [i == index for i in range(workers)]
        packed += 1
    assert packed > 10_000


def test_frames_unpack_in_order_and_a_cut_buffer_is_refused() -> None:
    decoder = PacketDecoder()
    frames = decoder.frame_decoder
    assert frames is not None
    buffers = [bytearray()]
    routed = [packet for packet in shared_packets()[:3000] if fastdecode.route_packet(frames, packet, buffers) == 0]
    unpacked = fastdecode.unpack_frames(buffers[0], RawPacket, "worker")
    assert [(p.ts, p.data, p.linktype, p.wire_length) for p in unpacked] == [
        (p.ts, p.data, p.linktype, p.wire_length) for p in routed
    ]
    with pytest.raises(ValueError, match="cut short"):
        fastdecode.unpack_frames(buffers[0][:-1], RawPacket, "worker")
    with pytest.raises(ValueError, match="cut short"):
        fastdecode.unpack_frames(bytes(5), RawPacket, "worker")
    assert fastdecode.unpack_frames(b"", RawPacket, "worker") == []


def test_a_frame_the_compiled_decoder_hands_back_is_not_packed() -> None:
    """A snaplen-cut frame, another link type: the dispatcher decodes those in Python."""
    decoder = PacketDecoder()
    frames = decoder.frame_decoder
    assert frames is not None
    buffers = [bytearray(), bytearray()]
    odd = [
        RawPacket(ts=1.0, data=b"\x00" * 10, linktype=1, wire_length=10, origin="x"),
        RawPacket(ts=1.0, data=b"\x45" + b"\x00" * 40, linktype=101, wire_length=41, origin="x"),
    ]
    assert [fastdecode.route_packet(frames, packet, buffers) for packet in odd] == [-1, -1]
    assert buffers == [bytearray(), bytearray()]


def test_what_a_workers_decoder_drops_is_counted_under_its_reason() -> None:
    """A worker decodes with the dispatcher's settings; should they ever differ (here: no VXLAN
    port), the frame it cannot decode is counted, as `decode.<reason>`, not lost silently."""
    inner = ethernet_frame(ipv4_packet(tcp_header() + b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"))
    frame = outer_ipv4_udp(vxlan_header(5) + inner)
    packet = RawPacket(ts=1.0, data=frame, linktype=1, wire_length=len(frame), origin="x")
    dispatcher = PacketDecoder().frame_decoder
    assert dispatcher is not None
    buffers = [bytearray()]
    assert fastdecode.route_packet(dispatcher, packet, buffers) == 0
    settings = DecoderSettings(vxlan_ports=frozenset(), geneve_ports=frozenset(), max_tunnel_depth=8)
    worker = FlowWorker(small_engine(), decoder=settings)
    worker.analyze([buffers[0]])
    drops = {name: n for name, n in worker.counters().items() if name.startswith(DECODE_DROP_PREFIX)}
    assert sum(drops.values()) == 1 and worker.summary.requests == 0


PLAIN_PCAPS = sorted(
    path
    for root in (SHARED / "pcaps", SAMPLES)
    for path in root.rglob("*.pcap")
    if path.read_bytes()[:4] in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
)


def routed_records(path: Path, workers: int, batch_limit: int) -> tuple[list[bytearray], list[RawPacket], int]:
    """`path`'s records through `route_records` as the dispatcher reads them: the packed
    buffers, the frames handed back (and the Python reader's tail), how many batches filled."""
    frames = PacketDecoder().frame_decoder
    assert frames is not None
    buffers, counts, back = [bytearray() for _ in range(workers)], [0] * workers, []
    stops = 0

    def parse_with(reader: fastdecode.PcapRecordReader) -> RecordParse[RawPacket]:
        def parse(buffer: bytes, start: int) -> tuple[list[RawPacket], int, int, int]:
            nonlocal stops
            whole = 0
            while True:
                start, needed, records, _size, stop = fastdecode.route_records(
                    reader, buffer, start, frames, buffers, counts, batch_limit
                )
                whole += records
                if stop is None:
                    return [], start, needed, whole
                if isinstance(stop, int):
                    assert counts[stop] == batch_limit
                    counts[stop] = 0
                    stops += 1
                else:
                    back.append(stop)

        return parse

    tail = read_pcap_with(path, parse_with)
    assert tail is not None
    back.extend(tail)  # a cut or damaged end: read in Python
    return buffers, back, stops


@pytest.mark.parametrize("batch_limit", [1, 7, 512])
def test_records_are_routed_as_their_packets_are(batch_limit: int) -> None:
    """`route_records` over each plain pcap's records, stopping for full batches and for frames
    the Python decoder must take, packs the same bytes for the same workers as `route_packet`
    over the packets read from the same file, and hands back exactly the frames it hands back."""
    assert len(PLAIN_PCAPS) > 10
    handed_back = filled = 0
    for path in PLAIN_PCAPS:
        frames = PacketDecoder().frame_decoder
        assert frames is not None
        expected, expected_back, per_worker = [bytearray() for _ in range(3)], [], [0, 0, 0]
        for packet in iter_packets([path], RunSummary()):
            index = fastdecode.route_packet(frames, packet, expected)
            if index < 0:
                expected_back.append(packet)
            else:
                per_worker[index] += 1
        buffers, back, stops = routed_records(path, 3, batch_limit)
        assert buffers == expected, path
        assert back == expected_back, path
        assert stops == sum(count // batch_limit for count in per_worker), path
        handed_back += len(back)
        filled += stops
    assert handed_back > 50 and filled > 10


# ---- packed frames tracked in one call (ConnectionTracker.feed_frames) ----------------------

_PACKED = struct.Struct("=dqqq")  # capture/_fastdecode_api.h PackedFrame: ts, wire length, link type, captured


def frame_offsets(buffer: bytes | bytearray) -> list[int]:
    offsets, at = [], 0
    while at < len(buffer):
        offsets.append(at)
        at += _PACKED.size + _PACKED.unpack_from(buffer, at)[3]
    return offsets


def packet_at(buffer: bytes | bytearray, offset: int, end: int | None = None) -> RawPacket:
    """The frame packed at `offset` (its end found from its header when not given)."""
    if end is None:
        end = offset + _PACKED.size + _PACKED.unpack_from(buffer, offset)[3]
    (packet,) = fastdecode.unpack_frames(buffer[offset:end], RawPacket, "worker")
    return packet


def frame_by_frame(buffer: bytes | bytearray) -> tuple[list[str], list[int], Counter[str]]:
    """Events (as repr), the index of each packet's first event, and the tracker's stats, of
    `unpack_frames` and `RequestStream.feed` packet by packet: the workers' path before."""
    stream = RequestStream()
    events: list[str] = []
    firsts: list[int] = []
    for packet in fastdecode.unpack_frames(buffer, RawPacket, "worker"):
        got = stream.feed(packet)
        if got:
            firsts.append(len(events))
            events.extend(repr(event) for event in got)
    return events, firsts, stream.tracker.stats


def in_one_call(buffer: bytes | bytearray, chunk_frames: int) -> tuple[list[str], list[int], Counter[str], int]:
    """The same through `feed_frames`, `chunk_frames` frames a call (as batches arrive)."""
    stream = RequestStream()
    frames = stream.decoder.frame_decoder
    assert frames is not None
    events: list[str] = []
    firsts: list[int] = []
    count = 0
    offsets = [*frame_offsets(buffer), len(buffer)]
    for start in range(0, len(offsets) - 1, chunk_frames):
        chunk = buffer[offsets[start] : offsets[min(start + chunk_frames, len(offsets) - 1)]]
        got, frames_in_chunk, last, marks, trailing = stream.tracker.feed_frames(
            chunk, frames, stream.decoder.decode, functools.partial(packet_at, chunk)
        )
        assert last == packet_at(chunk, frame_offsets(chunk)[-1]).ts
        assert trailing is None or trailing >= max((ts for _, ts in marks), default=trailing)
        firsts.extend(len(events) + first for first, _ in marks)
        events.extend(repr(event) for event in got)
        count += frames_in_chunk
    return events, firsts, stream.tracker.stats, count


@pytest.mark.parametrize("chunk_frames", [1, 700])
def test_packed_frames_tracked_in_one_call_give_the_events_of_frame_by_frame(chunk_frames: int) -> None:
    """Every shared capture and the samples, packed as the dispatcher packs them: the same events
    in the same order, each packet's first event marked, the same tracker stats."""
    frames = PacketDecoder().frame_decoder
    assert frames is not None
    buffers = [bytearray()]
    for packet in shared_packets():
        fastdecode.route_packet(frames, packet, buffers)
    expected_events, expected_firsts, expected_stats = frame_by_frame(buffers[0])
    events, firsts, stats, count = in_one_call(buffers[0], chunk_frames)
    assert count == len(frame_offsets(buffers[0])) > 10_000
    assert events == expected_events and len(events) > 1000
    assert firsts == expected_firsts
    assert stats == expected_stats


def test_a_frame_the_compiled_decoder_hands_back_is_built_at_its_offset_for_python() -> None:
    """Raw IP frames (no Ethernet header), which only the Python decoder takes: each one is
    built by `packet_at` at its own offset, and the events are those of frame by frame."""
    packed = bytearray()
    for packet in iter_packets([SAMPLES / "mirror-http.pcap"], RunSummary()):
        ip = packet.data[14:]
        packed += _PACKED.pack(packet.ts, packet.wire_length - 14, LinkType.RAW, len(ip)) + ip
    stream = RequestStream()
    assert stream.decoder.frame_decoder is not None
    asked: list[int] = []

    def built(start: int, end: int) -> RawPacket:
        asked.append(start)
        return packet_at(packed, start, end)

    got, count, _, marks, _ = stream.tracker.feed_frames(
        packed, stream.decoder.frame_decoder, stream.decoder.decode, built
    )
    assert asked == frame_offsets(packed) and count == len(asked) == 55
    expected_events, expected_firsts, expected_stats = frame_by_frame(packed)
    assert [repr(event) for event in got] == expected_events and len(got) >= 18
    assert [first for first, _ in marks] == expected_firsts
    assert stream.tracker.stats == expected_stats


def test_a_cut_packed_frame_is_refused() -> None:
    frames = PacketDecoder().frame_decoder
    assert frames is not None
    buffers = [bytearray()]
    for packet in iter_packets([SAMPLES / "mirror-http.pcap"], RunSummary()):
        fastdecode.route_packet(frames, packet, buffers)
    stream = RequestStream()
    with pytest.raises(ValueError, match="cut short"):
        stream.tracker.feed_frames(
            buffers[0][:-1], frames, stream.decoder.decode, functools.partial(packet_at, buffers[0])
        )


def test_a_worker_tracks_a_batch_of_packed_frames_in_one_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker takes a batch of frames through `feed_frames` (not a packet at a time), and
    finds what the same frames give packet by packet."""
    frames = PacketDecoder().frame_decoder
    assert frames is not None
    buffers = [bytearray()]
    for packet in iter_packets([SAMPLES / "mirror-http.pcap"], RunSummary()):
        fastdecode.route_packet(frames, packet, buffers)
    worker = FlowWorker(small_engine())
    calls: list[int] = []
    feed_frames = worker.tracker.feed_frames

    def counted(*args: object) -> object:
        calls.append(len(args[0]))  # type: ignore[arg-type]
        return feed_frames(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(worker.tracker, "feed_frames", counted)
    results = [worker.analyze([buffers[0]]), worker.finish(close_connections=True)]
    assert calls == [len(buffers[0])]
    in_process = ListSink()
    summary = RunSummary()
    packets = iter_packets([SAMPLES / "mirror-http.pcap"], RunSummary())
    analyze_packets(packets, engine=small_engine(), sink=in_process, summary=summary)
    hits = [hit for result in results if result is not None for hit in result.hits]
    assert sorted(map(repr, hits)) == in_process.found()[0] and hits
    assert (worker.summary.requests, worker.summary.responses) == (summary.requests, summary.responses) == (9, 9)
