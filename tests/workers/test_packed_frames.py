"""Frames packed for the workers (`capture._fastdecode.route_packet`, `unpack_frames`): the
compiled router sends each frame to the worker `worker_for` would choose for its segment, and
the worker gets back the very packet the dispatcher read."""

from __future__ import annotations

import pytest

from capture import PacketDecoder, RawPacket, TcpSegment
from oob_analyzer.pipeline import RunSummary, iter_packets
from oob_analyzer.workers import worker_for
from oob_analyzer.workers.child import DECODE_DROP_PREFIX, FlowWorker
from oob_analyzer.workers.messages import DecoderSettings
from tests.builders import ethernet_frame, ipv4_packet, outer_ipv4_udp, tcp_header, vxlan_header
from tests.paths import SAMPLES, SHARED
from tests.workers.runs import small_engine

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
