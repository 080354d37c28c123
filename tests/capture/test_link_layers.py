"""Every link layer the decoder knows, fed frames built byte by byte."""

from __future__ import annotations

import struct

import pytest

from capture import LinkType, PacketDecoder, TcpSegment
from tests.builders import ethernet_frame, ipv4_packet, ipv6_packet, raw_packet, tcp_header

REQUEST = b"GET / HTTP/1.1\r\n"
IPV4_TCP = ipv4_packet(tcp_header() + REQUEST)
IPV6_TCP = ipv6_packet(tcp_header() + REQUEST)


def decode_one(data: bytes, linktype: int = LinkType.ETHERNET) -> TcpSegment:
    decoder = PacketDecoder()
    segment = decoder.decode(raw_packet(data, linktype=linktype))
    assert segment is not None, decoder.stats
    assert segment.payload == REQUEST
    return segment


def sll_header(protocol: int) -> bytes:
    # packet type, ARPHRD_ETHER, address length, address (8), protocol
    return struct.pack("!HHH8sH", 0, 1, 6, b"\x02" * 6 + b"\x00\x00", protocol)


def sll2_header(protocol: int) -> bytes:
    # protocol, reserved, interface index, ARPHRD_ETHER, packet type, address length, address (8)
    return struct.pack("!HHIHBB8s", protocol, 0, 3, 1, 0, 6, b"\x02" * 6 + b"\x00\x00")


@pytest.mark.parametrize(("packet", "protocol"), [(IPV4_TCP, 0x0800), (IPV6_TCP, 0x86DD)])
def test_linux_cooked_v1_and_v2(packet: bytes, protocol: int) -> None:
    decode_one(sll_header(protocol) + packet, LinkType.LINUX_SLL)
    decode_one(sll2_header(protocol) + packet, LinkType.LINUX_SLL2)


@pytest.mark.parametrize(
    ("header", "linktype"),
    [
        (struct.pack("<I", 2), LinkType.NULL),  # little-endian host, AF_INET
        (struct.pack(">I", 2), LinkType.NULL),  # big-endian host
        (struct.pack(">I", 2), LinkType.LOOP),  # LOOP is always network order
        (struct.pack("<I", 2), LinkType.LOOP),  # ... but some writers got it wrong
    ],
)
def test_bsd_loopback_ipv4(header: bytes, linktype: int) -> None:
    decode_one(header + IPV4_TCP, linktype)


@pytest.mark.parametrize("family", [10, 24, 28, 30])
def test_bsd_loopback_ipv6_families_of_every_os(family: int) -> None:
    decode_one(struct.pack("<I", family) + IPV6_TCP, LinkType.NULL)


def test_nflog_finds_the_packet_tlv() -> None:
    prefix_tlv = struct.pack("<HH", 4 + 5, 10) + b"drop\x00" + b"\x00" * 3  # padded to 4 bytes
    payload_tlv = struct.pack("<HH", 4 + len(IPV4_TCP), 9) + IPV4_TCP
    decode_one(struct.pack("!BBH", 2, 0, 0) + prefix_tlv + payload_tlv, LinkType.NFLOG)


def test_qinq_and_triple_tags() -> None:
    inner = ipv4_packet(tcp_header() + REQUEST)
    frame = (
        b"\x02" * 12
        + struct.pack("!HH", 0x88A8, 100)
        + struct.pack("!HH", 0x8100, 200)
        + struct.pack("!HH", 0x8100, 300)
        + struct.pack("!H", 0x0800)
        + inner
    )
    decode_one(frame)


def test_mpls_label_stack_to_ipv4_and_to_pseudowire_ethernet() -> None:
    labels = struct.pack("!I", (16 << 12) | 64) + struct.pack("!I", (17 << 12) | 0x100 | 64)
    decode_one(ethernet_frame(labels + IPV4_TCP, ethertype=0x8847))
    control_word = b"\x00\x00\x00\x00"
    decode_one(ethernet_frame(labels + control_word + ethernet_frame(IPV6_TCP, ethertype=0x86DD), ethertype=0x8847))


def test_mpls_without_bottom_of_stack_is_counted() -> None:
    decoder = PacketDecoder()
    endless = struct.pack("!I", 16 << 12) * 20
    assert decoder.decode(raw_packet(ethernet_frame(endless, ethertype=0x8847))) is None
    assert decoder.stats == {"mpls_too_many_labels": 1}


@pytest.mark.parametrize(
    ("ppp_protocol", "packet"), [(b"\x00\x21", IPV4_TCP), (b"\x00\x57", IPV6_TCP), (b"\x21", IPV4_TCP)]
)
def test_pppoe_session(ppp_protocol: bytes, packet: bytes) -> None:
    pppoe = struct.pack("!BBHH", 0x11, 0, 0x1234, len(ppp_protocol) + len(packet))
    decode_one(ethernet_frame(pppoe + ppp_protocol + packet, ethertype=0x8864))


def test_pppoe_control_protocol_is_counted() -> None:
    decoder = PacketDecoder()
    lcp = struct.pack("!BBHH", 0x11, 0, 1, 6) + b"\xc0\x21" + b"\x01\x01\x00\x04"
    assert decoder.decode(raw_packet(ethernet_frame(lcp, ethertype=0x8864))) is None
    assert decoder.stats == {"pppoe_not_ip": 1}


def test_802_3_frame_with_snap_header() -> None:
    snap = b"\xaa\xaa\x03\x00\x00\x00\x08\x00"
    frame = b"\x02" * 12 + struct.pack("!H", len(snap) + len(IPV4_TCP)) + snap + IPV4_TCP
    decode_one(frame)


def test_ipv6_hop_by_hop_routing_and_authentication_headers() -> None:
    hop_by_hop = bytes([43, 0]) + b"\x00" * 6
    routing = bytes([51, 0]) + b"\x00" * 6
    authentication = bytes([6, 1]) + b"\x00" * 10  # (1 + 2) * 4 = 12 bytes
    packet = ipv6_packet(hop_by_hop + routing + authentication + tcp_header() + REQUEST, next_header=0)
    decode_one(packet, LinkType.RAW)


def test_ethernet_padding_after_the_ip_packet_is_not_payload() -> None:
    decode_one(ethernet_frame(IPV4_TCP) + b"\x00" * 6)


@pytest.mark.parametrize("linktype", [LinkType.LINUX_SLL, LinkType.LINUX_SLL2, LinkType.NULL, LinkType.NFLOG])
def test_short_link_headers_are_counted_not_raised(linktype: int) -> None:
    decoder = PacketDecoder()
    assert decoder.decode(raw_packet(b"\x00\x01", linktype=linktype)) is None
    assert sum(decoder.stats.values()) == 1


def test_an_unknown_link_type_is_named() -> None:
    decoder = PacketDecoder()
    assert decoder.decode(raw_packet(IPV4_TCP, linktype=147)) is None
    assert decoder.stats == {"unsupported_linktype_147": 1}
