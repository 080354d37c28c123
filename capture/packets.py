"""What the capture stage hands on: raw frames as read, and the TCP segments decoded from them.

First stage of the flow (capture -> reassembly -> detection -> storage). Readers yield
`RawPacket`s; `PacketDecoder` turns each into a `TcpSegment` or counts why it could not.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LinkType", "RawPacket", "TcpSegment", "TunnelContext"]


class LinkType:
    """libpcap LINKTYPE_* values (https://www.tcpdump.org/linktypes.html) that the decoder knows."""

    NULL = 0
    ETHERNET = 1
    RAW = 101
    LOOP = 108
    LINUX_SLL = 113
    IPV4 = 228
    IPV6 = 229
    NFLOG = 239
    LINUX_SLL2 = 276


# RawPacket and TcpSegment are made once per packet: they are slotted dataclasses but not
# frozen, because a frozen dataclass's __init__ sets each field through object.__setattr__
# and costs four times as much (benchmarks/capture_decode.py). Treat them as immutable.


@dataclass(slots=True, kw_only=True)
class RawPacket:
    """One frame as it came off a file or a socket.

    `wire_length` is the frame's length on the wire; when it exceeds `len(data)`
    the frame was cut by the capture's snap length.
    """

    ts: float
    data: bytes
    linktype: int
    wire_length: int
    origin: str = ""


# The tunnel context: the outer layers an inner packet arrived through, outermost first,
# e.g. (("vxlan", "10.0.0.5>10.0.0.9", 42),): kind, outer source>destination, and the VNI,
# GRE key or ERSPAN session id (0 when the layer has none). Part of every flow key, so the same inner
# 5-tuple from two mirror sessions never mixes.
TunnelContext = tuple[tuple[str, str, int], ...]


@dataclass(slots=True, kw_only=True)
class TcpSegment:
    """A decoded TCP segment: what reassembly consumes."""

    ts: float
    src: str
    dst: str
    sport: int
    dport: int
    seq: int
    ack: int
    flags: int
    payload: bytes
    truncated: bool = False
    tunnel: TunnelContext = ()

    FIN = 0x01
    SYN = 0x02
    RST = 0x04
    PSH = 0x08
    ACK = 0x10
