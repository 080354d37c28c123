"""Wire formats of the layers a mirrored frame can be wrapped in, as tables with their RFC.

Part of the capture stage's sans-I/O decoder (`capture.decode`). Each `decode_*` step takes
the buffer, the offset of its header and the end of the bytes that belong to it, and
returns where the next layer starts and what it is, or a named reason why it cannot go
on. Steps are plain functions over `struct.unpack_from`: no object per packet.
"""

from __future__ import annotations

import struct

__all__ = [
    "ETHERTYPE_IPV4",
    "ETHERTYPE_IPV6",
    "ETHERTYPE_TEB",
    "GENEVE",
    "GRE",
    "IPV4",
    "IPV6",
    "IPV6_FRAGMENT",
    "TCP",
    "UDP",
    "VXLAN",
    "VXLAN_FLAG_I",
    "Layer",
    "decode_erspan2",
    "decode_erspan3",
    "decode_ethertype",
    "decode_geneve",
    "decode_gre",
    "decode_gtp_user",
    "decode_mpls",
    "decode_nflog",
    "decode_null",
    "decode_pppoe_session",
    "decode_vxlan",
]


class Layer:
    """What the bytes at an offset are: the decoder's dispatch values."""

    ETHERNET = 1
    IPV4 = 2
    IPV6 = 3
    IP_BY_VERSION = 4  # raw IP: the version nibble says which
    MPLS = 5
    PPPOE_SESSION = 6


# IEEE 802.3 Ethernet II: destination(6) source(6) ethertype(2)
ETHERNET_HEADER = 14
# IEEE 802.1Q / 802.1ad tag after the TPID: TCI(2) ethertype(2)
_VLAN_TAG = struct.Struct("!HH")
# RFC 791 section 3.1: version/IHL, TOS, total length, id, flags/fragment offset, TTL, protocol
IPV4 = struct.Struct("!BBHHHBB")
# RFC 8200 section 3: version/class/label(4) payload length(2) next header(1) hop limit(1)
IPV6 = struct.Struct("!IHBB")
# RFC 8200 section 4.5: next header(1) reserved(1) offset/M(2) identification(4)
IPV6_FRAGMENT = struct.Struct("!BBHI")
# RFC 9293 section 3.1: source port, destination port, sequence, acknowledgment, offset, flags
TCP = struct.Struct("!HHIIBB")
# RFC 768: source port, destination port, length, checksum
UDP = struct.Struct("!HHHH")
# RFC 7348 section 5: flags(1) reserved(3) VNI(3) reserved(1)
VXLAN = struct.Struct("!B3xI")
VXLAN_FLAG_I = 0x08
# RFC 8926 section 3.4: ver/opt len(1) O/C/rsvd(1) protocol type(2) VNI(3) reserved(1)
GENEVE = struct.Struct("!BBHI")
# RFC 2784 section 2.1 with RFC 2890 section 2: C/R/K/S flags and version(2) protocol type(2)
GRE = struct.Struct("!HH")
_GRE_CHECKSUM, _GRE_ROUTING, _GRE_KEY, _GRE_SEQUENCE = 0x8000, 0x4000, 0x2000, 0x1000
# draft-foschiano-erspan section 4.1 (type II): ver/VLAN(2) COS/En/T/session id(2) reserved/index(4)
_ERSPAN2 = struct.Struct("!HHI")
# draft-foschiano-erspan section 4.2 (type III): ver/VLAN(2) COS/BSO/T/session(2) timestamp(4)
# SGT(2) P/FT/HW ID/D/Gra/O(2); an 8-byte platform subheader follows when O is set
_ERSPAN3 = struct.Struct("!HHIHH")
# 3GPP TS 29.281 section 5.1: flags(1) message type(1) length(2) TEID(4); sequence(2)
# N-PDU(1) next extension type(1) follow when any of the E, S, PN flags is set.
_GTP_USER = struct.Struct("!BBHI")
_GTP_G_PDU = 0xFF  # a user packet, as opposed to echo and error messages
# RFC 3032 section 2.1: label(20) TC(3) S(1) TTL(8)
_MPLS_ENTRY = struct.Struct("!I")
# RFC 2516 section 4: ver/type(1) code(1) session id(2) length(2), then the PPP protocol (RFC 1661)
_PPPOE = struct.Struct("!BBHH")
# https://www.tcpdump.org/linktypes/LINKTYPE_NFLOG.html: family(1) version(1) resource id(2),
# then TLVs of length(2, host order) type(2) padded to 4 bytes; type 9 is the packet.
_NFLOG_TLV = struct.Struct("<HH")
_NFULA_PAYLOAD = 9

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
ETHERTYPE_TEB = 0x6558  # transparent Ethernet bridging (RFC 1701)
_MAX_8023_LENGTH = 1500
_LLC_SNAP = b"\xaa\xaa\x03"  # DSAP, SSAP, control of an RFC 1042 SNAP header
_ETHERTYPE_VLAN = frozenset({0x8100, 0x88A8, 0x9100})
_ETHERTYPE_LAYER = {
    ETHERTYPE_IPV4: Layer.IPV4,
    ETHERTYPE_IPV6: Layer.IPV6,
    0x8847: Layer.MPLS,  # unicast
    0x8848: Layer.MPLS,  # multicast
    0x8864: Layer.PPPOE_SESSION,
    ETHERTYPE_TEB: Layer.ETHERNET,
}
_PPP_PROTOCOL_LAYER = {0x0021: Layer.IPV4, 0x0057: Layer.IPV6}
# BSD loopback address families: AF_INET is 2 everywhere; AF_INET6 is 24, 28 or 30 by OS
# (and 10 on Linux).
_NULL_FAMILY_LAYER = {2: Layer.IPV4, 10: Layer.IPV6, 24: Layer.IPV6, 28: Layer.IPV6, 30: Layer.IPV6}
_MAX_MPLS_LABELS = 16

Step = tuple[int, int] | str  # (next layer, its offset) or the reason decoding stops


def decode_ethertype(buf: bytes, offset: int, end: int, ethertype: int) -> Step:
    """Skip any 802.1Q/802.1ad tags starting at `offset`, then dispatch on the ethertype."""
    if ethertype <= _MAX_8023_LENGTH:  # an IEEE 802.3 length: LLC follows, maybe with SNAP
        if buf[offset : offset + 3] != _LLC_SNAP or offset + 8 > end:
            return "not_ip"
        ethertype = (buf[offset + 6] << 8) | buf[offset + 7]  # RFC 1042: OUI(3) then the ethertype
        offset += 8
    while ethertype in _ETHERTYPE_VLAN:
        if offset + _VLAN_TAG.size > end:
            return "vlan_truncated"
        ethertype = _VLAN_TAG.unpack_from(buf, offset)[1]
        offset += _VLAN_TAG.size
    layer = _ETHERTYPE_LAYER.get(ethertype)
    if layer is None:
        return "not_ip"
    return layer, offset


def decode_null(buf: bytes, end: int, *, network_order: bool) -> Step:
    """LINKTYPE_NULL (host byte order, either) and LINKTYPE_LOOP (network order) headers."""
    if end < 4:
        return "loopback_truncated"
    family = struct.unpack_from("!I" if network_order else "<I", buf)[0]
    if family > 0xFFFF:  # written on a host of the other byte order
        family = struct.unpack_from("<I" if network_order else "!I", buf)[0]
    layer = _NULL_FAMILY_LAYER.get(family)
    if layer is None:
        return "not_ip"
    return layer, 4


def decode_nflog(buf: bytes, end: int) -> Step:
    """The packet TLV of a Linux NFLOG record."""
    offset = 4
    while offset + 4 <= end:
        length, tlv_type = _NFLOG_TLV.unpack_from(buf, offset)
        if length < 4:
            return "nflog_bad_tlv"
        if tlv_type == _NFULA_PAYLOAD:
            return Layer.IP_BY_VERSION, offset + 4
        offset += (length + 3) & ~3
    return "nflog_no_packet"


def decode_mpls(buf: bytes, offset: int, end: int) -> Step:
    """Pop the label stack; guess the payload from its first nibble as routers do."""
    for _ in range(_MAX_MPLS_LABELS):
        if offset + 4 > end:
            return "mpls_truncated"
        entry = _MPLS_ENTRY.unpack_from(buf, offset)[0]
        offset += 4
        if entry & 0x100:  # bottom of stack
            break
    else:
        return "mpls_too_many_labels"
    if offset >= end:
        return "mpls_truncated"
    nibble = buf[offset] >> 4
    if nibble == 4:
        return Layer.IPV4, offset
    if nibble == 6:
        return Layer.IPV6, offset
    if nibble == 0:  # RFC 4385 pseudowire control word, then an Ethernet frame
        return Layer.ETHERNET, offset + 4
    return "mpls_unknown_payload"


def decode_pppoe_session(buf: bytes, offset: int, end: int) -> Step:
    if offset + _PPPOE.size + 1 > end:
        return "pppoe_truncated"
    offset += _PPPOE.size
    if buf[offset] & 1:  # RFC 1661 section 6.5: a compressed, one-byte protocol field
        protocol, offset = buf[offset], offset + 1
    elif offset + 2 > end:
        return "pppoe_truncated"
    else:
        protocol, offset = (buf[offset] << 8) | buf[offset + 1], offset + 2
    layer = _PPP_PROTOCOL_LAYER.get(protocol)
    if layer is None:
        return "pppoe_not_ip"
    return layer, offset


def decode_vxlan(buf: bytes, offset: int, end: int) -> tuple[int, int, bool] | str:
    """(VNI, inner Ethernet offset, I flag set). Reserved bits are ignored, not checked."""
    if offset + VXLAN.size > end:
        return "vxlan_truncated"
    flags, vni_word = VXLAN.unpack_from(buf, offset)
    return vni_word >> 8, offset + VXLAN.size, bool(flags & VXLAN_FLAG_I)


def decode_geneve(buf: bytes, offset: int, end: int) -> tuple[int, int, int] | str:
    """(VNI, inner layer, its offset): options are skipped by their total length."""
    if offset + GENEVE.size > end:
        return "geneve_truncated"
    version_options, _flags, protocol, vni_word = GENEVE.unpack_from(buf, offset)
    if version_options >> 6:
        return "geneve_unknown_version"
    inner = offset + GENEVE.size + (version_options & 0x3F) * 4
    if inner > end:
        return "geneve_truncated"
    layer = _ETHERTYPE_LAYER.get(protocol)
    if layer is None:
        return "geneve_unknown_protocol"
    return vni_word >> 8, layer, inner


def decode_gre(buf: bytes, offset: int, end: int) -> tuple[int, int, int, bool] | str:
    """(protocol type, key or 0, payload offset, sequence number present).

    The flags tell which optional fields follow the fixed header.
    """
    if offset + GRE.size > end:
        return "gre_truncated"
    flags, protocol = GRE.unpack_from(buf, offset)
    if flags & 0x0007:  # version 1 is PPTP's enhanced GRE (RFC 2637): not a mirror
        return "gre_unknown_version"
    if flags & _GRE_ROUTING:  # RFC 1701 source routing: deprecated by RFC 2784
        return "gre_routing_present"
    cursor = offset + GRE.size
    if flags & _GRE_CHECKSUM:
        cursor += 4
    key = 0
    if flags & _GRE_KEY:
        if cursor + 4 > end:
            return "gre_truncated"
        key = struct.unpack_from("!I", buf, cursor)[0]
        cursor += 4
    if flags & _GRE_SEQUENCE:
        cursor += 4
    if cursor > end:
        return "gre_truncated"
    return protocol, key, cursor, bool(flags & _GRE_SEQUENCE)


def decode_erspan2(buf: bytes, offset: int, end: int) -> tuple[int, int] | str:
    """(session id, inner Ethernet offset) of an ERSPAN type II header."""
    if offset + _ERSPAN2.size > end:
        return "erspan_truncated"
    _version_vlan, session_word, _index = _ERSPAN2.unpack_from(buf, offset)
    return session_word & 0x3FF, offset + _ERSPAN2.size


def decode_erspan3(buf: bytes, offset: int, end: int) -> tuple[int, int, int] | str:
    """(session id, inner layer, its offset) of an ERSPAN type III header."""
    if offset + _ERSPAN3.size > end:
        return "erspan_truncated"
    _version_vlan, session_word, _ts, _sgt, last_word = _ERSPAN3.unpack_from(buf, offset)
    inner = offset + _ERSPAN3.size + (8 if last_word & 0x0001 else 0)
    if inner > end:
        return "erspan_truncated"
    frame_type = (last_word >> 10) & 0x1F
    if frame_type == 0:
        return session_word & 0x3FF, Layer.ETHERNET, inner
    if frame_type == 2:
        return session_word & 0x3FF, Layer.IP_BY_VERSION, inner
    return "erspan_unknown_frame_type"


def decode_gtp_user(buf: bytes, offset: int, end: int) -> tuple[int, int] | str:
    """(TEID, inner IP offset) of a GTP-U G-PDU, extension headers skipped."""
    if offset + _GTP_USER.size > end:
        return "gtp_truncated"
    flags, message_type, _length, teid = _GTP_USER.unpack_from(buf, offset)
    if flags >> 5 != 1:
        return "gtp_unknown_version"
    if message_type != _GTP_G_PDU:
        return "gtp_not_user_data"
    cursor = offset + _GTP_USER.size
    if flags & 0x07:  # E, S or PN: the optional word is there
        if cursor + 4 > end:
            return "gtp_truncated"
        next_extension = buf[cursor + 3]
        cursor += 4
        while next_extension:  # section 5.2: length in 4-byte units, next type in the last byte
            if cursor >= end or buf[cursor] == 0 or cursor + buf[cursor] * 4 > end:
                return "gtp_truncated"
            cursor += buf[cursor] * 4
            next_extension = buf[cursor - 1]
    return teid, cursor
