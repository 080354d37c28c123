"""Tunnels, alone and nested: the inner segment comes out with its tunnel context."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from capture import PacketDecoder, TcpSegment
from reassembly import ConnectionTracker, HttpRequest
from tests.builders import (
    erspan2_header,
    erspan3_header,
    ethernet_frame,
    geneve_header,
    gre_header,
    ipv4_packet,
    ipv6_packet,
    outer_ipv4_udp,
    raw_packet,
    tcp_header,
    udp_datagram,
    vxlan_header,
)

REQUEST = b"GET /?id=1 HTTP/1.1\r\nHost: a\r\n\r\n"
INNER_FRAME = ethernet_frame(ipv4_packet(tcp_header() + REQUEST))
INNER_IPV6 = ipv6_packet(tcp_header() + REQUEST)
OUTER = "198.18.0.5>198.18.0.99"


def decode_one(frame: bytes, decoder: PacketDecoder | None = None) -> TcpSegment:
    decoder = decoder or PacketDecoder()
    segment = decoder.decode(raw_packet(frame))
    assert segment is not None, decoder.stats
    assert (segment.src, segment.dst, segment.payload) == ("192.0.2.10", "198.51.100.80", REQUEST)
    return segment


def gre_frame(gre_and_payload: bytes) -> bytes:
    return ethernet_frame(ipv4_packet(gre_and_payload, src="198.18.0.5", dst="198.18.0.99", proto=47))


def test_vxlan_carries_its_vni_and_outer_endpoints() -> None:
    segment = decode_one(outer_ipv4_udp(vxlan_header(7) + INNER_FRAME))
    assert segment.tunnel == (("vxlan", OUTER, 7),)


def test_vxlan_without_the_i_flag_is_decoded_and_counted() -> None:
    decoder = PacketDecoder()
    segment = decode_one(outer_ipv4_udp(vxlan_header(7, flags=0x00) + INNER_FRAME), decoder)
    assert segment.tunnel == (("vxlan", OUTER, 7),)
    assert decoder.anomalies == {"vxlan_flag_not_set": 1}


def test_vxlan_reserved_bits_are_ignored() -> None:
    header = bytearray(vxlan_header(7, flags=0xFF))
    header[1:4] = b"\xff\xff\xff"
    header[7] = 0xFF
    assert decode_one(outer_ipv4_udp(bytes(header) + INNER_FRAME)).tunnel == (("vxlan", OUTER, 7),)


def test_vxlan_port_is_configurable() -> None:
    frame = outer_ipv4_udp(vxlan_header(9) + INNER_FRAME, dport=8472)  # Linux's old default
    default = PacketDecoder()
    assert default.decode(raw_packet(frame)) is None
    assert default.stats == {"not_tcp": 1}
    assert decode_one(frame, PacketDecoder(vxlan_ports=[4789, 8472])).tunnel == (("vxlan", OUTER, 9),)


def test_geneve_skips_options_by_length_and_carries_ethernet_or_ip() -> None:
    options = b"\x01\x02\x03\x04" * 5
    frame = outer_ipv4_udp(geneve_header(0xABCDE, options=options) + INNER_FRAME, dport=6081)
    assert decode_one(frame).tunnel == (("geneve", OUTER, 0xABCDE),)
    ip_inner = outer_ipv4_udp(geneve_header(3, protocol=0x86DD) + INNER_IPV6, dport=6081)
    decoder = PacketDecoder()
    segment = decoder.decode(raw_packet(ip_inner))
    assert segment is not None and segment.src == "2001:db8::10" and segment.tunnel == (("geneve", OUTER, 3),)


def test_geneve_carrying_vxlan_as_gateway_load_balancer_does() -> None:
    vxlan = outer_ipv4_udp(vxlan_header(42) + INNER_FRAME, src="10.0.0.1", dst="10.0.0.2")
    frame = outer_ipv4_udp(geneve_header(5) + vxlan, dport=6081)
    assert decode_one(frame).tunnel == (("geneve", OUTER, 5), ("vxlan", "10.0.0.1>10.0.0.2", 42))


def test_gre_transparent_ethernet_bridging_with_key_sequence_and_checksum() -> None:
    frame = gre_frame(gre_header(0x6558, key=77, sequence=1, checksum=True) + INNER_FRAME)
    assert decode_one(frame).tunnel == (("gre", OUTER, 77),)


def test_gre_with_an_ip_payload_and_no_key() -> None:
    frame = gre_frame(gre_header(0x0800) + ipv4_packet(tcp_header() + REQUEST))
    assert decode_one(frame).tunnel == (("gre", OUTER, 0),)


def test_gre_over_udp() -> None:
    frame = outer_ipv4_udp(gre_header(0x0800) + ipv4_packet(tcp_header() + REQUEST), dport=4754)
    assert decode_one(frame).tunnel == (("gre", OUTER, 0),)


def test_erspan_types_one_two_and_three() -> None:
    type_1 = gre_frame(gre_header(0x88BE) + INNER_FRAME)
    type_2 = gre_frame(gre_header(0x88BE, sequence=5) + erspan2_header(300) + INNER_FRAME)
    type_3 = gre_frame(gre_header(0x22EB, sequence=5) + erspan3_header(1023) + INNER_FRAME)
    type_3_sub = gre_frame(gre_header(0x22EB, sequence=5) + erspan3_header(12, subheader=True) + INNER_FRAME)
    type_3_ip = gre_frame(gre_header(0x22EB) + erspan3_header(13, frame_type=2) + ipv4_packet(tcp_header() + REQUEST))
    assert [decode_one(frame).tunnel[0][2] for frame in (type_1, type_2, type_3, type_3_sub, type_3_ip)] == [
        0,
        300,
        1023,
        12,
        13,
    ]


def test_ip_in_ip() -> None:
    frame = ethernet_frame(
        ipv4_packet(ipv4_packet(tcp_header() + REQUEST), src="198.18.0.5", dst="198.18.0.99", proto=4)
    )
    assert decode_one(frame).tunnel == (("ip-in-ip", OUTER, 0),)


def test_vxlan_inside_gre_inside_vxlan() -> None:
    innermost = outer_ipv4_udp(vxlan_header(3) + INNER_FRAME, src="10.0.0.3", dst="10.0.0.4")
    gre = ethernet_frame(ipv4_packet(gre_header(0x6558, key=2) + innermost, src="10.0.0.1", dst="10.0.0.2", proto=47))
    frame = outer_ipv4_udp(vxlan_header(1) + gre)
    assert decode_one(frame).tunnel == (
        ("vxlan", OUTER, 1),
        ("gre", "10.0.0.1>10.0.0.2", 2),
        ("vxlan", "10.0.0.3>10.0.0.4", 3),
    )


def test_tunnels_nested_too_deep_are_counted() -> None:
    frame = INNER_FRAME
    for vni in range(10):
        frame = outer_ipv4_udp(vxlan_header(vni) + frame)
    decoder = PacketDecoder()
    assert decoder.decode(raw_packet(frame)) is None
    assert decoder.stats == {"tunnel_too_deep": 1}


def test_inner_frame_cut_by_the_mirror_session_is_marked_truncated() -> None:
    # AWS truncates mirrored packets to the session's packet length: the outer headers
    # are whole (the outer IP length says so), the inner IP length claims more.
    inner = ethernet_frame(ipv4_packet(tcp_header() + REQUEST + b"x" * 500))[:120]
    decoder = PacketDecoder()
    segment = decoder.decode(raw_packet(outer_ipv4_udp(vxlan_header(7) + inner)))
    assert segment is not None and segment.truncated
    assert segment.payload == (REQUEST + b"x" * 500)[: 120 - 14 - 20 - 20]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (vxlan_header(1)[:5], "vxlan_truncated"),
        (b"\x40" + geneve_header(1)[1:], "geneve_unknown_version"),
        (geneve_header(1, options=b"\x00" * 8)[:12], "geneve_truncated"),
    ],
)
def test_broken_tunnel_headers_are_counted_by_name(payload: bytes, reason: str) -> None:
    dport = 4789 if reason.startswith("vxlan") else 6081
    decoder = PacketDecoder()
    frame = ethernet_frame(ipv4_packet(udp_datagram(payload, dport=dport), proto=17))
    assert decoder.decode(raw_packet(frame)) is None
    assert decoder.stats == {reason: 1}


def test_same_inner_connection_in_two_vnis_never_mixes() -> None:
    """Two VPCs with overlapping addresses: one request each, split across two segments."""
    decoder, tracker = PacketDecoder(), ConnectionTracker()
    requests: list[HttpRequest] = []
    first, second = b"GET /vpc-one HTTP/1.1\r\nHost: a\r\n\r\n", b"GET /vpc-two HTTP/1.1\r\nHost: a\r\n\r\n"
    steps = [
        (1, b"", 0),
        (2, b"", 0),
        (1, first[:10], 1),
        (2, second[:10], 1),
        (1, first[10:], 11),
        (2, second[10:], 11),
    ]
    for vni, data, seq in steps:
        inner = ethernet_frame(ipv4_packet(tcp_header(seq=seq, flags=0x02 if seq == 0 else 0x18) + data))
        segment = decoder.decode(raw_packet(outer_ipv4_udp(vxlan_header(vni) + inner)))
        assert segment is not None
        requests += [event for event in tracker.receive_segment(segment) if isinstance(event, HttpRequest)]
    requests += [event for event in tracker.close_all() if isinstance(event, HttpRequest)]
    assert sorted((r.flow.tunnel[0][2], r.target) for r in requests) == [(1, "/vpc-one"), (2, "/vpc-two")]


NESTED_FRAMES = [
    outer_ipv4_udp(vxlan_header(7) + INNER_FRAME),
    outer_ipv4_udp(geneve_header(5, options=b"\x00" * 8) + outer_ipv4_udp(vxlan_header(1) + INNER_FRAME), dport=6081),
    gre_frame(gre_header(0x88BE, sequence=1) + erspan2_header(3) + INNER_FRAME),
    gre_frame(gre_header(0x22EB, key=1) + erspan3_header(4, subheader=True) + INNER_FRAME),
    outer_ipv4_udp(b"\x30\xff\x00\x10" + b"\x00\x00\x00\x09" + ipv4_packet(tcp_header() + REQUEST), dport=2152),
]


@pytest.mark.parametrize("frame", NESTED_FRAMES)
def test_tunnelled_frames_cut_at_every_offset_are_decoded_or_counted(frame: bytes) -> None:
    assert decode_one(frame).tunnel
    for cut in range(len(frame)):
        decoder = PacketDecoder()
        segment = decoder.decode(raw_packet(frame[:cut], wire_length=len(frame)))
        assert (segment is not None and segment.truncated) or sum(decoder.stats.values()) == 1


@given(
    st.sampled_from(NESTED_FRAMES),
    st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), min_size=1, max_size=6),
)
def test_tunnelled_frames_with_any_bytes_changed_never_raise(frame: bytes, changes: list[tuple[int, int]]) -> None:
    mutated = bytearray(frame)
    for position, value in changes:
        mutated[position % len(mutated)] = value
    decoder = PacketDecoder()
    segment = decoder.decode(raw_packet(bytes(mutated)))
    assert segment is not None or sum(decoder.stats.values()) == 1
