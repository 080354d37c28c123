"""Sans-I/O decoding of captured frames down to TCP segments.

Sits between the readers (files, sockets) and reassembly: `PacketDecoder.decode` takes a
`RawPacket` and returns a `TcpSegment`, or None after counting, under a named reason, why
the frame carries no TCP segment we can use. It never raises on malformed input.

Header layouts are tables of struct formats with the RFC beside them; the hot path uses
`struct.unpack_from` on the frame's bytes and builds no object until the segment itself.
"""

from __future__ import annotations

import socket
import struct
from collections import Counter

from capture.packets import LinkType, RawPacket, TcpSegment

__all__ = ["PacketDecoder"]

# IEEE 802.3 Ethernet II: destination(6) source(6) ethertype(2)
_ETHERNET = struct.Struct("!6s6sH")
# IEEE 802.1Q / 802.1ad tag after the TPID: TCI(2) ethertype(2)
_VLAN_TAG = struct.Struct("!HH")
# RFC 791 section 3.1: version/IHL, TOS, total length, id, flags/fragment offset, TTL, protocol
_IPV4 = struct.Struct("!BBHHHBB")
# RFC 8200 section 3: version/class/label(4) payload length(2) next header(1) hop limit(1)
_IPV6 = struct.Struct("!IHBB")
# RFC 9293 section 3.1: source port, destination port, sequence, acknowledgment, offset, flags
_TCP = struct.Struct("!HHIIBB")

_ETHERTYPE_IPV4 = 0x0800
_ETHERTYPE_IPV6 = 0x86DD
_ETHERTYPE_VLAN = frozenset({0x8100, 0x88A8, 0x9100})
_IPPROTO_TCP = 6
# RFC 8200 section 4: extension headers whose length is (byte 1 + 1) * 8.
_IPV6_SKIPPABLE = frozenset({0, 43, 60})
_IPV6_FRAGMENT = 44


class PacketDecoder:
    """Decode frames into TCP segments and count every frame that yields none, by reason."""

    def __init__(self) -> None:
        self.stats: Counter[str] = Counter()

    def decode(self, packet: RawPacket) -> TcpSegment | None:
        decoded = _decode_frame(packet)
        if isinstance(decoded, str):
            self.stats[decoded] += 1
            return None
        return decoded


def _decode_frame(packet: RawPacket) -> TcpSegment | str:
    """The frame's TCP segment, or the reason it has none."""
    buf = packet.data
    link = packet.linktype
    if link == LinkType.ETHERNET:
        located = _locate_ethernet_payload(buf)
    elif link in (LinkType.RAW, LinkType.IPV4, LinkType.IPV6):
        located = _locate_raw_ip(buf)
    else:
        located = f"unsupported_linktype_{link}"
    if isinstance(located, str):
        return located
    ethertype, offset = located
    if ethertype == _ETHERTYPE_IPV4:
        network = _decode_ipv4(buf, offset)
    elif ethertype == _ETHERTYPE_IPV6:
        network = _decode_ipv6(buf, offset)
    else:
        return "not_ip"
    if isinstance(network, str):
        return network
    src, dst, l4_offset, l4_end, ip_truncated = network
    if l4_end - l4_offset < 20:
        return "tcp_header_truncated"
    sport, dport, seq, ack, data_offset, flags = _TCP.unpack_from(buf, l4_offset)
    header_length = (data_offset >> 4) * 4
    if header_length < 20:  # RFC 9293 section 3.1: the header is at least 5 words
        return "tcp_bad_header_length"
    if l4_offset + header_length > l4_end:
        return "tcp_header_truncated"
    return TcpSegment(
        ts=packet.ts,
        src=src,
        dst=dst,
        sport=sport,
        dport=dport,
        seq=seq,
        ack=ack,
        flags=flags,
        payload=buf[l4_offset + header_length : l4_end],
        truncated=ip_truncated or packet.wire_length > len(buf),
    )


def _locate_ethernet_payload(buf: bytes) -> tuple[int, int] | str:
    if len(buf) < _ETHERNET.size:
        return "ethernet_truncated"
    ethertype = _ETHERNET.unpack_from(buf)[2]
    offset = _ETHERNET.size
    while ethertype in _ETHERTYPE_VLAN:
        if len(buf) < offset + _VLAN_TAG.size:
            return "vlan_truncated"
        ethertype = _VLAN_TAG.unpack_from(buf, offset)[1]
        offset += _VLAN_TAG.size
    return ethertype, offset


def _locate_raw_ip(buf: bytes) -> tuple[int, int] | str:
    if not buf:
        return "ip_truncated"
    version = buf[0] >> 4
    if version == 4:
        return _ETHERTYPE_IPV4, 0
    if version == 6:
        return _ETHERTYPE_IPV6, 0
    return "not_ip"


def _decode_ipv4(buf: bytes, offset: int) -> tuple[str, str, int, int, bool] | str:
    if len(buf) < offset + 20:
        return "ipv4_truncated"
    version_ihl, _tos, total_length, _ident, fragment, _ttl, protocol = _IPV4.unpack_from(buf, offset)
    if version_ihl >> 4 != 4:
        return "ipv4_bad_version"
    header_length = (version_ihl & 0x0F) * 4
    if header_length < 20 or total_length < header_length:
        return "ipv4_bad_length"
    if fragment & 0x3FFF:  # more-fragments flag or a fragment offset
        return "ipv4_fragment"
    if protocol != _IPPROTO_TCP:
        return "not_tcp"
    end = offset + total_length
    truncated = end > len(buf)
    src = socket.inet_ntop(socket.AF_INET, buf[offset + 12 : offset + 16])
    dst = socket.inet_ntop(socket.AF_INET, buf[offset + 16 : offset + 20])
    return src, dst, offset + header_length, min(end, len(buf)), truncated


def _decode_ipv6(buf: bytes, offset: int) -> tuple[str, str, int, int, bool] | str:
    if len(buf) < offset + 40:
        return "ipv6_truncated"
    first_word, payload_length, next_header, _hop_limit = _IPV6.unpack_from(buf, offset)
    if first_word >> 28 != 6:
        return "ipv6_bad_version"
    end = offset + 40 + payload_length
    truncated = end > len(buf)
    end = min(end, len(buf))
    src = socket.inet_ntop(socket.AF_INET6, buf[offset + 8 : offset + 24])
    dst = socket.inet_ntop(socket.AF_INET6, buf[offset + 24 : offset + 40])
    cursor = offset + 40
    while next_header in _IPV6_SKIPPABLE:
        if cursor + 8 > end:
            return "ipv6_extension_truncated"
        next_header = buf[cursor]
        cursor += (buf[cursor + 1] + 1) * 8
    if next_header == _IPV6_FRAGMENT:
        return "ipv6_fragment"
    if next_header != _IPPROTO_TCP:
        return "not_tcp"
    if cursor > end:
        return "ipv6_extension_truncated"
    return src, dst, cursor, end, truncated
