"""Sans-I/O decoding of captured frames, through any tunnels, down to TCP segments.

Sits between the readers (files, sockets) and reassembly: `PacketDecoder.decode` takes a
`RawPacket` and returns a `TcpSegment`, or None after counting, under a named reason, why
the frame carries no TCP segment we can use. It never raises on malformed input.

Link layers: Ethernet (802.1Q/802.1ad tags), Linux cooked SLL and SLL2, raw IP, BSD
loopback (NULL/LOOP), NFLOG, MPLS, PPPoE session. Tunnels, nested in any order: VXLAN,
GENEVE, GRE (also over UDP, RFC 8086), ERSPAN I/II/III, GTP-U, IP in IP. Each tunnel crossed adds
(kind, outer source>destination, VNI/key/session id) to the segment's `tunnel`, which is
part of every flow key. IPv4 and IPv6 fragments are reassembled (`capture.fragments`).

The per-frame path is plain code over `struct.unpack_from` (header tables in
`capture.layers`) and builds no object until the segment itself. The common shapes
(Ethernet, VLAN tags, IPv4/IPv6, TCP, in VXLAN or GENEVE) go first through the compiled
`capture._fastdecode` when it is built (`pip install` builds it): it hands every frame it
does not decode whole back to this module, which alone names reasons and anomalies, and
tests/capture/test_fastdecode.py holds the two to the same segments and counters.
"""

from __future__ import annotations

import socket
import struct
from collections import Counter
from collections.abc import Iterable

from capture import layers
from capture.fragments import FragmentReassembler
from capture.layers import Layer
from capture.packets import LinkType, RawPacket, TcpSegment, TunnelContext

try:
    from capture import _fastdecode
except ImportError:  # a checkout run without `pip install`: the pure-Python decoder alone
    _fastdecode = None  # type: ignore[assignment]

__all__ = ["DEFAULT_GENEVE_PORT", "DEFAULT_VXLAN_PORT", "PacketDecoder"]

DEFAULT_VXLAN_PORT = 4789  # RFC 7348 section 5
DEFAULT_GENEVE_PORT = 6081  # RFC 8926 section 3.3
GRE_IN_UDP_PORT = 4754  # RFC 8086 section 3
GTP_USER_PORT = 2152  # 3GPP TS 29.281 section 4.4.2

_IPPROTO_IPIP, _IPPROTO_TCP, _IPPROTO_UDP, _IPPROTO_IPV6, _IPPROTO_GRE = 4, 6, 17, 41, 47
_IPV6_FRAGMENT = 44
_IPV6_AUTHENTICATION = 51  # RFC 4302: its length counts 4-byte words, less two
# RFC 8200 section 4: extension headers whose length is (byte 1 + 1) * 8.
_IPV6_SKIPPABLE = frozenset({0, 43, 60, 135, 139, 140})
_ERSPAN_II, _ERSPAN_III = 0x88BE, 0x22EB
_MAX_ADDRESSES_CACHED = 1 << 16
_MAX_TUNNELS_CACHED = 1 << 14
_LINKTYPE_ETHERNET = LinkType.ETHERNET
_UDP_PORT_LENGTH = struct.Struct("!HH")  # RFC 768: destination port and length, at offset 2

Result = TcpSegment | str  # the segment, or the reason the frame has none


class PacketDecoder:
    """Decode frames into TCP segments.

    `stats` counts every frame that yields no segment, by reason; `anomalies` counts what
    was odd but decoded (a VXLAN header without its I flag, overlapping fragments).
    `compiled=False` keeps to the pure-Python decoder, the reference the compiled path is
    tested against; `compiled` tells afterwards whether the compiled path is in use.
    """

    def __init__(
        self,
        *,
        vxlan_ports: Iterable[int] = (DEFAULT_VXLAN_PORT,),
        geneve_ports: Iterable[int] = (DEFAULT_GENEVE_PORT,),
        fragments: FragmentReassembler | None = None,
        max_tunnel_depth: int = 8,
        compiled: bool = True,
    ) -> None:
        self.stats: Counter[str] = Counter()
        self._vxlan_ports = frozenset(vxlan_ports)
        self._geneve_ports = frozenset(geneve_ports)
        self.fragments = fragments or FragmentReassembler()
        self.max_tunnel_depth = max_tunnel_depth
        self._anomalies: Counter[str] = Counter()
        self._addresses: dict[bytes, str] = {}
        self._address_pairs: dict[bytes, tuple[str, str]] = {}  # the fast path's
        self._tunnels: dict[tuple[TunnelContext, str, bytes, bytes, int], TunnelContext] = {}
        self._vxlan_tunnels: dict[tuple[TunnelContext, bytes, int], TunnelContext] = {}  # the fast path's
        self._ts = 0.0
        self._truncated = False
        self._compiled = (
            _fastdecode.FrameDecoder(
                raw_packet_type=RawPacket,
                segment_type=TcpSegment,
                vxlan_ports=self._vxlan_ports,
                geneve_ports=self._geneve_ports,
                address=self._address,
                enter=self._enter,
            )
            if compiled and _fastdecode is not None
            else None
        )

    @property
    def compiled(self) -> bool:
        return self._compiled is not None

    @property
    def vxlan_ports(self) -> frozenset[int]:
        return self._vxlan_ports

    @vxlan_ports.setter
    def vxlan_ports(self, ports: frozenset[int]) -> None:
        self._vxlan_ports = frozenset(ports)
        if self._compiled is not None:
            self._compiled.set_ports(self._vxlan_ports, self._geneve_ports)

    @property
    def geneve_ports(self) -> frozenset[int]:
        return self._geneve_ports

    @geneve_ports.setter
    def geneve_ports(self, ports: frozenset[int]) -> None:
        self._geneve_ports = frozenset(ports)
        if self._compiled is not None:
            self._compiled.set_ports(self._vxlan_ports, self._geneve_ports)

    @property
    def frame_decoder(self) -> _fastdecode.FrameDecoder | None:
        """The compiled path alone (None when not in use): its `decode` gives a segment, or None
        for a frame only `decode` here can handle. Lets a caller in C try it first."""
        return self._compiled

    @property
    def anomalies(self) -> Counter[str]:
        return self._anomalies + self.fragments.anomalies

    def decode(self, packet: RawPacket) -> TcpSegment | None:
        if self._compiled is not None:  # the common shapes, compiled; None hands the frame on
            segment = self._compiled.decode(packet)
            if segment is not None:
                return segment
        elif packet.linktype == _LINKTYPE_ETHERNET:  # the common case first, without the dispatch
            buf = packet.data
            end = len(buf)
            self._ts, self._truncated = packet.ts, packet.wire_length > end
            segment = self._decode_ethernet_ipv4_tcp(buf, 0, end, ())
            if segment is not None:
                return segment
        decoded = self._decode_frame(packet)
        if isinstance(decoded, str):
            self.stats[decoded] += 1
            return None
        return decoded

    def _decode_frame(self, packet: RawPacket) -> Result:
        buf = packet.data
        end = len(buf)
        link = packet.linktype
        step: layers.Step
        if link == LinkType.ETHERNET:  # `decode` tried the common shape already: go on past it
            if end < layers.ETHERNET_HEADER:
                return "ethernet_truncated"
            step = layers.decode_ethertype(buf, layers.ETHERNET_HEADER, end, (buf[12] << 8) | buf[13])
        elif link in (LinkType.RAW, LinkType.IPV4, LinkType.IPV6):
            step = Layer.IP_BY_VERSION, 0
        elif link == LinkType.LINUX_SLL:  # protocol at 14 after type, ARPHRD, address len and address
            step = (
                layers.decode_ethertype(buf, 16, end, struct.unpack_from("!H", buf, 14)[0])
                if end >= 16
                else "sll_truncated"
            )
        elif link == LinkType.LINUX_SLL2:  # protocol first, then 18 bytes of interface and address
            step = (
                layers.decode_ethertype(buf, 20, end, struct.unpack_from("!H", buf)[0])
                if end >= 20
                else "sll2_truncated"
            )
        elif link in (LinkType.NULL, LinkType.LOOP):
            step = layers.decode_null(buf, end, network_order=link == LinkType.LOOP)
        elif link == LinkType.NFLOG:
            step = layers.decode_nflog(buf, end)
        else:
            return f"unsupported_linktype_{link}"
        if isinstance(step, str):
            return step
        # Per-frame state: the time, and whether bytes are missing (it only ever turns true).
        self._ts, self._truncated = packet.ts, packet.wire_length > end
        return self._decode_from(buf, step[0], step[1], end, ())

    def _decode_from(self, buf: bytes, layer: int, offset: int, end: int, tunnel: TunnelContext) -> Result:
        """Walk the link layers from `layer` at `offset` to IP, then hand on to the transport."""
        if layer == Layer.ETHERNET:
            segment = self._decode_ethernet_ipv4_tcp(buf, offset, end, tunnel)
            if segment is not None:
                return segment
        while True:
            if layer == Layer.IPV4:
                return self._decode_ipv4(buf, offset, end, tunnel)
            if layer == Layer.IPV6:
                return self._decode_ipv6(buf, offset, end, tunnel)
            step: layers.Step
            if layer == Layer.ETHERNET:
                if offset + layers.ETHERNET_HEADER > end:
                    return "ethernet_truncated"
                ethertype = (buf[offset + 12] << 8) | buf[offset + 13]
                step = layers.decode_ethertype(buf, offset + layers.ETHERNET_HEADER, end, ethertype)
            elif layer == Layer.IP_BY_VERSION:
                if offset >= end:
                    return "ip_truncated"
                version = buf[offset] >> 4
                step = (Layer.IPV4 if version == 4 else Layer.IPV6, offset) if version in (4, 6) else "not_ip"
            elif layer == Layer.MPLS:
                step = layers.decode_mpls(buf, offset, end)
            else:
                step = layers.decode_pppoe_session(buf, offset, end)
            if isinstance(step, str):
                return step
            layer, offset = step

    def _decode_ethernet_ipv4_tcp(self, buf: bytes, offset: int, end: int, tunnel: TunnelContext) -> TcpSegment | None:
        """Ethernet, IPv4 without options or fragments, TCP, all there: in one go, or None.

        Most mirrored frames have this shape, bare or in VXLAN; this path takes them
        without the general walk's calls (three times faster: benchmarks/capture_decode.py).
        Anything else, odd or not, returns None and goes the general way, which counts
        what is wrong.
        """
        if end - offset < 54 or buf[offset + 12] != 0x08 or buf[offset + 13] != 0x00:
            return None
        ip = offset + 14
        version_ihl, _tos, total_length, _ident, fragment, _ttl, protocol = layers.IPV4.unpack_from(buf, ip)
        ip_end = ip + total_length
        if version_ihl != 0x45 or fragment & 0x3FFF or ip_end > end:
            return None
        if protocol == _IPPROTO_UDP:
            return self._decode_vxlan_in_one_go(buf, ip, ip_end, tunnel)
        if protocol != _IPPROTO_TCP or total_length < 40:
            return None
        sport, dport, seq, ack, data_offset, flags = layers.TCP.unpack_from(buf, ip + 20)
        payload = ip + 20 + (data_offset >> 4) * 4
        if data_offset < 0x50 or payload > ip_end:
            return None
        endpoints = buf[ip + 12 : ip + 20]  # source and destination, looked up as one
        pair = self._address_pairs.get(endpoints)
        if pair is None:
            if len(self._address_pairs) >= _MAX_ADDRESSES_CACHED:
                self._address_pairs.clear()
            pair = self._address_pairs[endpoints] = (self._address(endpoints[:4]), self._address(endpoints[4:]))
        return TcpSegment(
            ts=self._ts,
            src=pair[0],
            dst=pair[1],
            sport=sport,
            dport=dport,
            seq=seq,
            ack=ack,
            flags=flags,
            payload=buf[payload:ip_end],
            truncated=self._truncated,
            tunnel=tunnel,
        )

    def _decode_vxlan_in_one_go(self, buf: bytes, ip: int, ip_end: int, tunnel: TunnelContext) -> TcpSegment | None:
        """UDP to a VXLAN port, the I flag set, an inner frame of the common shape: or None."""
        vxlan = ip + 28
        if vxlan + layers.VXLAN.size > ip_end:
            return None
        dport, udp_length = _UDP_PORT_LENGTH.unpack_from(buf, ip + 22)
        flags, vni_word = layers.VXLAN.unpack_from(buf, vxlan)
        # UDP length equal to the IP payload's: no trailer to leave out
        if dport not in self._vxlan_ports or udp_length != ip_end - ip - 20 or not flags & layers.VXLAN_FLAG_I:
            return None
        key = (tunnel, buf[ip + 12 : ip + 20], vni_word)  # outer addresses and VNI
        inner = self._vxlan_tunnels.get(key)
        if inner is None:
            entered = self._enter(tunnel, "vxlan", buf[ip + 12 : ip + 16], buf[ip + 16 : ip + 20], vni_word >> 8)
            if isinstance(entered, str):
                return None
            if len(self._vxlan_tunnels) >= _MAX_TUNNELS_CACHED:
                self._vxlan_tunnels.clear()
            inner = self._vxlan_tunnels[key] = entered
        return self._decode_ethernet_ipv4_tcp(buf, vxlan + layers.VXLAN.size, ip_end, inner)

    def _decode_ipv4(self, buf: bytes, offset: int, end: int, tunnel: TunnelContext) -> Result:
        if offset + 20 > end:
            return "ipv4_truncated"
        version_ihl, _tos, total_length, ident, fragment, _ttl, protocol = layers.IPV4.unpack_from(buf, offset)
        if version_ihl >> 4 != 4:
            return "ipv4_bad_version"
        header_length = (version_ihl & 0x0F) * 4
        if header_length < 20 or total_length < header_length:
            return "ipv4_bad_length"
        if offset + header_length > end:
            return "ipv4_truncated"
        ip_end = offset + total_length
        if ip_end > end:
            self._truncated, ip_end = True, end
        src, dst = buf[offset + 12 : offset + 16], buf[offset + 16 : offset + 20]
        payload = offset + header_length
        if fragment & 0x3FFF:  # more-fragments flag or a fragment offset (RFC 791 section 3.2)
            if self._truncated:
                return "ip_fragment_truncated"  # cannot be put together: bytes are missing
            whole = self.fragments.add(
                (tunnel, src, dst, ident, protocol),
                self._ts,
                (fragment & 0x1FFF) * 8,
                buf[payload:ip_end],
                bool(fragment & 0x2000),
            )
            if whole is None:
                return "ip_fragment_held"
            return self._decode_transport(whole, 0, len(whole), protocol, src, dst=dst, tunnel=tunnel)
        return self._decode_transport(buf, payload, ip_end, protocol, src, dst=dst, tunnel=tunnel)

    def _decode_ipv6(self, buf: bytes, offset: int, end: int, tunnel: TunnelContext) -> Result:
        if offset + 40 > end:
            return "ipv6_truncated"
        first_word, payload_length, next_header, _hop_limit = layers.IPV6.unpack_from(buf, offset)
        if first_word >> 28 != 6:
            return "ipv6_bad_version"
        ip_end = offset + 40 + payload_length
        if ip_end > end:
            self._truncated, ip_end = True, end
        src, dst = buf[offset + 8 : offset + 24], buf[offset + 24 : offset + 40]
        skipped = _skip_ipv6_extensions(buf, offset + 40, ip_end, next_header)
        if isinstance(skipped, str):
            return skipped
        next_header, cursor = skipped
        if next_header == _IPV6_FRAGMENT:
            if cursor + layers.IPV6_FRAGMENT.size > ip_end:
                return "ipv6_extension_truncated"
            if self._truncated:
                return "ip_fragment_truncated"
            inner_header, _reserved, offset_flags, ident = layers.IPV6_FRAGMENT.unpack_from(buf, cursor)
            whole = self.fragments.add(
                (tunnel, src, dst, ident),
                self._ts,
                (offset_flags >> 3) * 8,
                buf[cursor + layers.IPV6_FRAGMENT.size : ip_end],
                bool(offset_flags & 1),
            )
            if whole is None:
                return "ip_fragment_held"
            skipped = _skip_ipv6_extensions(whole, 0, len(whole), inner_header)
            if isinstance(skipped, str):
                return skipped
            next_header, cursor = skipped
            return self._decode_transport(whole, cursor, len(whole), next_header, src, dst=dst, tunnel=tunnel)
        return self._decode_transport(buf, cursor, ip_end, next_header, src, dst=dst, tunnel=tunnel)

    def _decode_transport(
        self,
        buf: bytes,
        offset: int,
        end: int,
        protocol: int,
        src: bytes,
        *,
        dst: bytes,
        tunnel: TunnelContext,
    ) -> Result:
        if protocol == _IPPROTO_TCP:
            return self._decode_tcp(buf, offset, end, src, dst, tunnel=tunnel)
        if protocol == _IPPROTO_UDP:
            return self._decode_udp(buf, offset, end, src, dst, tunnel=tunnel)
        if protocol == _IPPROTO_GRE:
            return self._decode_gre(buf, offset, end, src, dst, tunnel=tunnel)
        if protocol in (_IPPROTO_IPIP, _IPPROTO_IPV6):
            inner = self._enter(tunnel, "ip-in-ip", src, dst, 0)
            if isinstance(inner, str):
                return inner
            layer = Layer.IPV4 if protocol == _IPPROTO_IPIP else Layer.IPV6
            return self._decode_from(buf, layer, offset, end, inner)
        return "not_tcp"

    def _decode_tcp(
        self,
        buf: bytes,
        offset: int,
        end: int,
        src: bytes,
        dst: bytes,
        *,
        tunnel: TunnelContext,
    ) -> Result:
        if end - offset < 20:
            return "tcp_header_truncated"
        sport, dport, seq, ack, data_offset, flags = layers.TCP.unpack_from(buf, offset)
        header_length = (data_offset >> 4) * 4
        if header_length < 20:  # RFC 9293 section 3.1: the header is at least 5 words
            return "tcp_bad_header_length"
        if offset + header_length > end:
            return "tcp_header_truncated"
        return TcpSegment(
            ts=self._ts,
            src=self._address(src),
            dst=self._address(dst),
            sport=sport,
            dport=dport,
            seq=seq,
            ack=ack,
            flags=flags,
            payload=buf[offset + header_length : end],
            truncated=self._truncated,
            tunnel=tunnel,
        )

    def _decode_udp(
        self,
        buf: bytes,
        offset: int,
        end: int,
        src: bytes,
        dst: bytes,
        *,
        tunnel: TunnelContext,
    ) -> Result:
        if offset + layers.UDP.size > end:
            return "udp_truncated"
        _sport, dport, length, _checksum = layers.UDP.unpack_from(buf, offset)
        if length >= layers.UDP.size and offset + length < end:
            end = offset + length  # what follows is Ethernet padding
        payload = offset + layers.UDP.size
        if dport in self._vxlan_ports:
            vxlan = layers.decode_vxlan(buf, payload, end)
            if isinstance(vxlan, str):
                return vxlan
            vni, inner_offset, flag_set = vxlan
            if not flag_set:  # RFC 7348 says it must be set; AWS sets it; decode anyway
                self._anomalies["vxlan_flag_not_set"] += 1
            inner = self._enter(tunnel, "vxlan", src, dst, vni)
            if isinstance(inner, str):
                return inner
            return self._decode_from(buf, Layer.ETHERNET, inner_offset, end, inner)
        if dport in self._geneve_ports:
            geneve = layers.decode_geneve(buf, payload, end)
            if isinstance(geneve, str):
                return geneve
            vni, layer, inner_offset = geneve
            inner = self._enter(tunnel, "geneve", src, dst, vni)
            if isinstance(inner, str):
                return inner
            return self._decode_from(buf, layer, inner_offset, end, inner)
        if dport == GRE_IN_UDP_PORT:
            return self._decode_gre(buf, payload, end, src, dst, tunnel=tunnel)
        if dport == GTP_USER_PORT:
            gtp = layers.decode_gtp_user(buf, payload, end)
            if isinstance(gtp, str):
                return gtp
            inner = self._enter(tunnel, "gtp", src, dst, gtp[0])
            if isinstance(inner, str):
                return inner
            return self._decode_from(buf, Layer.IP_BY_VERSION, gtp[1], end, inner)
        return "not_tcp"

    def _decode_gre(
        self,
        buf: bytes,
        offset: int,
        end: int,
        src: bytes,
        dst: bytes,
        *,
        tunnel: TunnelContext,
    ) -> Result:
        gre = layers.decode_gre(buf, offset, end)
        if isinstance(gre, str):
            return gre
        protocol, key, payload, has_sequence = gre
        step: layers.Step
        if protocol == _ERSPAN_II and has_sequence:
            erspan2 = layers.decode_erspan2(buf, payload, end)
            if isinstance(erspan2, str):
                return erspan2
            kind, ident, step = "erspan", erspan2[0], (Layer.ETHERNET, erspan2[1])
        elif protocol == _ERSPAN_II:  # type I: no sequence number and no ERSPAN header
            kind, ident, step = "erspan", 0, (Layer.ETHERNET, payload)
        elif protocol == _ERSPAN_III:
            erspan3 = layers.decode_erspan3(buf, payload, end)
            if isinstance(erspan3, str):
                return erspan3
            kind, ident, step = "erspan", erspan3[0], (erspan3[1], erspan3[2])
        else:
            kind, ident = "gre", key
            step = layers.decode_ethertype(buf, payload, end, protocol)
            if isinstance(step, str):
                return "gre_not_ip" if step == "not_ip" else step
        inner = self._enter(tunnel, kind, src, dst, ident)
        if isinstance(inner, str):
            return inner
        return self._decode_from(buf, step[0], step[1], end, inner)

    def _enter(self, tunnel: TunnelContext, kind: str, src: bytes, dst: bytes, ident: int) -> TunnelContext | str:
        # One tuple per tunnel, shared by its segments: built once, not per packet.
        key = (tunnel, kind, src, dst, ident)
        context = self._tunnels.get(key)
        if context is None:
            if len(tunnel) >= self.max_tunnel_depth:
                return "tunnel_too_deep"
            if len(self._tunnels) >= _MAX_TUNNELS_CACHED:
                self._tunnels.clear()
            context = (*tunnel, (kind, f"{self._address(src)}>{self._address(dst)}", ident))
            self._tunnels[key] = context
        return context

    def _address(self, raw: bytes) -> str:
        text = self._addresses.get(raw)
        if text is None:
            if len(self._addresses) >= _MAX_ADDRESSES_CACHED:
                self._addresses.clear()
            family = socket.AF_INET if len(raw) == 4 else socket.AF_INET6
            text = self._addresses[raw] = socket.inet_ntop(family, raw)
        return text


def _skip_ipv6_extensions(buf: bytes, cursor: int, end: int, next_header: int) -> tuple[int, int] | str:
    while next_header in _IPV6_SKIPPABLE or next_header == _IPV6_AUTHENTICATION:
        if cursor + 8 > end:
            return "ipv6_extension_truncated"
        current, next_header, length = next_header, buf[cursor], buf[cursor + 1]
        cursor += (length + 2) * 4 if current == _IPV6_AUTHENTICATION else (length + 1) * 8
    if cursor > end:
        return "ipv6_extension_truncated"
    return next_header, cursor
