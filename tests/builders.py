"""The one place where tests build frames, segments, flows and requests.

Frames are built with struct, byte by byte, so that a test can make them as broken as it
needs to.
"""

from __future__ import annotations

import socket
import struct

from capture.packets import LinkType, RawPacket, TcpSegment
from reassembly.events import FlowKey, HttpRequest

CLIENT = "192.0.2.10"
SERVER = "198.51.100.80"
FLOW = FlowKey(client=CLIENT, client_port=40000, server=SERVER, server_port=80)


def tcp_header(*, sport: int = 40000, dport: int = 80, seq: int = 1, ack: int = 0, flags: int = 0x18) -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0)


def ipv4_packet(payload: bytes, *, src: str = CLIENT, dst: str = SERVER, proto: int = 6, fragment: int = 0) -> bytes:
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(payload),
        0,
        fragment,
        64,
        proto,
        0,
        socket.inet_pton(socket.AF_INET, src),
        socket.inet_pton(socket.AF_INET, dst),
    )
    return header + payload


def ipv6_packet(payload: bytes, *, src: str = "2001:db8::10", dst: str = "2001:db8::80", next_header: int = 6) -> bytes:
    header = struct.pack(
        "!IHBB16s16s",
        6 << 28,
        len(payload),
        next_header,
        64,
        socket.inet_pton(socket.AF_INET6, src),
        socket.inet_pton(socket.AF_INET6, dst),
    )
    return header + payload


def ethernet_frame(payload: bytes, *, ethertype: int = 0x0800, vlans: tuple[int, ...] = ()) -> bytes:
    tags = b"".join(struct.pack("!HH", 0x8100, vid) for vid in vlans)
    return b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + tags + struct.pack("!H", ethertype) + payload


def raw_packet(
    data: bytes, *, linktype: int = LinkType.ETHERNET, ts: float = 1.0, wire_length: int | None = None
) -> RawPacket:
    return RawPacket(ts=ts, data=data, linktype=linktype, wire_length=len(data) if wire_length is None else wire_length)


def segment(
    payload: bytes = b"",
    *,
    seq: int = 1,
    flags: int = TcpSegment.ACK | TcpSegment.PSH,
    from_client: bool = True,
    ts: float = 1.0,
    ack: int = 0,
) -> TcpSegment:
    if from_client:
        src, sport, dst, dport = CLIENT, 40000, SERVER, 80
    else:
        src, sport, dst, dport = SERVER, 80, CLIENT, 40000
    return TcpSegment(ts=ts, src=src, dst=dst, sport=sport, dport=dport, seq=seq, ack=ack, flags=flags, payload=payload)


def http_request(
    target: str = "/",
    *,
    method: str = "GET",
    body: bytes = b"",
    headers: tuple[tuple[str, str], ...] = (("Host", "shop.example.com"),),
) -> HttpRequest:
    return HttpRequest(
        ts=1.0,
        flow=FLOW,
        method=method,
        target=target,
        version="HTTP/1.1",
        headers=headers,
        body=body,
        body_length=len(body),
    )
