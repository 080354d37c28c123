from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from capture import LinkType, PacketDecoder, TcpSegment
from tests.builders import ethernet_frame, ipv4_packet, ipv6_packet, raw_packet, tcp_header


def test_ethernet_ipv4_tcp_decodes_to_a_segment() -> None:
    frame = ethernet_frame(ipv4_packet(tcp_header(seq=7, ack=9, flags=0x18) + b"GET / HTTP/1.1\r\n"))
    segment = PacketDecoder().decode(raw_packet(frame, ts=3.5))
    assert segment == TcpSegment(
        ts=3.5,
        src="192.0.2.10",
        dst="198.51.100.80",
        sport=40000,
        dport=80,
        seq=7,
        ack=9,
        flags=0x18,
        payload=b"GET / HTTP/1.1\r\n",
    )


def test_vlan_tags_are_skipped() -> None:
    frame = ethernet_frame(ipv4_packet(tcp_header() + b"x"), vlans=(10, 20))
    segment = PacketDecoder().decode(raw_packet(frame))
    assert segment is not None and segment.payload == b"x"


def test_ipv6_with_a_destination_options_header() -> None:
    destination_options = bytes([6, 0]) + b"\x00" * 6  # next header TCP, 8 bytes long
    frame = ethernet_frame(ipv6_packet(destination_options + tcp_header() + b"y", next_header=60), ethertype=0x86DD)
    segment = PacketDecoder().decode(raw_packet(frame))
    assert segment is not None
    assert (segment.src, segment.dst, segment.payload) == ("2001:db8::10", "2001:db8::80", b"y")


def test_raw_ip_link_type() -> None:
    segment = PacketDecoder().decode(raw_packet(ipv4_packet(tcp_header() + b"z"), linktype=LinkType.RAW))
    assert segment is not None and segment.payload == b"z"


def test_snaplen_cut_frame_is_passed_on_marked_truncated() -> None:
    frame = ethernet_frame(ipv4_packet(tcp_header() + b"A" * 100))
    cut = frame[:80]
    segment = PacketDecoder().decode(raw_packet(cut, wire_length=len(frame)))
    assert segment is not None and segment.truncated
    assert segment.payload == b"A" * (80 - 14 - 20 - 20)


def test_frames_without_tcp_are_counted_by_reason() -> None:
    decoder = PacketDecoder()
    udp = ethernet_frame(ipv4_packet(b"\x00" * 8, proto=17))
    arp = ethernet_frame(b"\x00" * 28, ethertype=0x0806)
    fragment = ethernet_frame(ipv4_packet(tcp_header(), fragment=0x2000))
    runt = b"\x02\x00"
    for frame in (udp, arp, fragment, runt):
        assert decoder.decode(raw_packet(frame)) is None
    # a first fragment is held for reassembly: it yields no segment (yet)
    assert decoder.stats == {"not_tcp": 1, "not_ip": 1, "ip_fragment_held": 1, "ethernet_truncated": 1}


def test_bad_tcp_header_length_is_counted() -> None:
    header = bytearray(tcp_header())
    header[12] = 2 << 4  # 8 bytes: less than the fixed header
    decoder = PacketDecoder()
    assert decoder.decode(raw_packet(ethernet_frame(ipv4_packet(bytes(header))))) is None
    assert decoder.stats == {"tcp_bad_header_length": 1}


ALL_LINK_TYPES = [
    LinkType.ETHERNET,
    LinkType.RAW,
    LinkType.NULL,
    LinkType.LOOP,
    LinkType.LINUX_SLL,
    LinkType.LINUX_SLL2,
    LinkType.NFLOG,
    LinkType.IPV4,
    LinkType.IPV6,
]


@given(st.binary(max_size=200), st.sampled_from(ALL_LINK_TYPES))
def test_any_bytes_decode_or_are_counted_never_raise(data: bytes, linktype: int) -> None:
    decoder = PacketDecoder()
    result = decoder.decode(raw_packet(data, linktype=linktype))
    assert result is not None or sum(decoder.stats.values()) == 1
