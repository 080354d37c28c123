"""IPv4 and IPv6 fragments: reassembled in any order, bounded, overlaps counted."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from capture import PacketDecoder
from capture.fragments import FragmentReassembler
from tests.builders import (
    ethernet_frame,
    gre_header,
    ipv4_fragments,
    ipv4_packet,
    ipv6_fragment,
    raw_packet,
    tcp_header,
)

PAYLOAD = b"POST /login HTTP/1.1\r\nContent-Length: 40\r\n\r\n" + b"username=admin'--&password=" + b"x" * 13
WHOLE = ipv4_packet(tcp_header() + PAYLOAD)


def feed(decoder: PacketDecoder, packets: list[bytes], ts: float = 1.0) -> list[bytes]:
    segments = [decoder.decode(raw_packet(ethernet_frame(packet), ts=ts)) for packet in packets]
    return [segment.payload for segment in segments if segment is not None]


def test_ipv4_fragments_in_every_order_give_the_whole_segment() -> None:
    count = len(ipv4_fragments(WHOLE, size=24))
    assert count == 5
    for order in itertools.permutations(range(count)):
        decoder = PacketDecoder()
        assert feed(decoder, ipv4_fragments(WHOLE, size=24, order=order)) == [PAYLOAD]
        assert decoder.stats == {"ip_fragment_held": 4}
        assert decoder.fragments.pending() == 0


def test_overlapping_fragments_that_disagree_are_an_anomaly_and_the_first_bytes_win() -> None:
    fragments = ipv4_fragments(WHOLE, size=24)
    evil = bytearray(fragments[1])
    evil[20:28] = b"EVIL-EVL"  # same offset as fragment 1, different bytes
    decoder = PacketDecoder()
    assert feed(decoder, [fragments[0], fragments[1], bytes(evil), *fragments[2:]]) == [PAYLOAD]
    assert decoder.anomalies == {"ip_fragment_overlap": 1}


def test_a_duplicated_fragment_is_no_anomaly() -> None:
    fragments = ipv4_fragments(WHOLE, size=24)
    decoder = PacketDecoder()
    assert feed(decoder, [fragments[0], fragments[0], *fragments[1:]]) == [PAYLOAD]
    assert decoder.anomalies == {}


def test_ipv6_fragments() -> None:
    datagram = tcp_header() + PAYLOAD
    decoder = PacketDecoder()
    pieces = [
        ipv6_fragment(datagram[48:], offset=48, more=False),
        ipv6_fragment(datagram[:48], offset=0, more=True),
    ]
    segments = [decoder.decode(raw_packet(ethernet_frame(p, ethertype=0x86DD))) for p in pieces]
    assert segments[0] is None
    assert segments[1] is not None and segments[1].payload == PAYLOAD and segments[1].src == "2001:db8::10"


def test_fragmented_tunnel_packets_are_reassembled_before_the_tunnel_is_decoded() -> None:
    inner = ethernet_frame(WHOLE)
    outer = ipv4_packet(gre_header(0x6558, key=4) + inner, src="198.18.0.1", dst="198.18.0.2", proto=47)
    decoder = PacketDecoder()
    assert feed(decoder, ipv4_fragments(outer, size=64, order=(2, 0, 1))) == [PAYLOAD]


def test_incomplete_datagrams_expire_and_are_counted() -> None:
    decoder = PacketDecoder(fragments=FragmentReassembler(timeout=30))
    first, *_ = ipv4_fragments(WHOLE, size=24, ident=1)
    assert feed(decoder, [first], ts=100.0) == []
    assert feed(decoder, ipv4_fragments(WHOLE, size=24, ident=2), ts=200.0) == [PAYLOAD]
    assert decoder.anomalies == {"ip_fragments_timed_out": 1}


def test_memory_is_bounded_by_datagram_count_and_bytes() -> None:
    reassembler = FragmentReassembler(max_datagrams=10, max_bytes=1000)
    for ident in range(50):
        assert reassembler.add(ident, 1.0, 0, b"x" * 80, more=True) is None
    assert reassembler.pending() == 10
    assert reassembler.anomalies == {"ip_fragments_evicted": 40}
    for ident in range(50, 60):
        reassembler.add(ident, 1.0, 0, b"x" * 400, more=True)
    assert reassembler.pending() <= 2


def test_a_fragment_beyond_the_largest_datagram_is_refused() -> None:
    reassembler = FragmentReassembler()
    assert reassembler.add("k", 1.0, 65528, b"x" * 16, more=False) is None
    assert reassembler.anomalies == {"ip_fragment_too_large": 1} and reassembler.pending() == 0


@given(st.lists(st.tuples(st.integers(0, 200), st.binary(min_size=1, max_size=40), st.booleans()), max_size=12))
def test_any_fragments_complete_consistently_or_wait(pieces: list[tuple[int, bytes, bool]]) -> None:
    reassembler = FragmentReassembler()
    for offset, data, more in pieces:
        whole = reassembler.add("k", 1.0, offset, data, more)
        if whole is not None:
            assert len(whole) == offset + len(data) or not more
            assert reassembler.pending() == 0
