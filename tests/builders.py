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


def conversation(requests: int = 4, *, client_isn: int = 1000, server_isn: int = 5000) -> list[TcpSegment]:
    """A keep-alive connection: handshake, `requests` exchanges each acknowledged, FINs."""
    client_seq, server_seq, ts = client_isn + 1, server_isn + 1, 1.0
    segments = [
        segment(seq=client_isn, flags=TcpSegment.SYN, ts=ts),
        segment(seq=server_isn, ack=client_seq, flags=TcpSegment.SYN | TcpSegment.ACK, from_client=False, ts=ts),
        segment(seq=client_seq, ack=server_seq, flags=TcpSegment.ACK, ts=ts),
    ]
    for index in range(requests):
        request = f"POST /item/{index} HTTP/1.1\r\nHost: h\r\nContent-Length: 300\r\n\r\n".encode() + b"x" * 300
        response = b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n" + b"y" * 500
        for half in (request[:150], request[150:]):
            ts += 0.01
            segments.append(segment(half, seq=client_seq, ack=server_seq, flags=TcpSegment.ACK | TcpSegment.PSH, ts=ts))
            client_seq += len(half)
        segments.append(segment(seq=server_seq, ack=client_seq, flags=TcpSegment.ACK, from_client=False, ts=ts))
        for half in (response[:270], response[270:]):
            ts += 0.01
            segments.append(segment(half, seq=server_seq, ack=client_seq, from_client=False, ts=ts))
            server_seq += len(half)
        segments.append(segment(seq=client_seq, ack=server_seq, flags=TcpSegment.ACK, ts=ts))
    segments += [
        segment(seq=client_seq, ack=server_seq, flags=TcpSegment.FIN | TcpSegment.ACK, ts=ts + 0.1),
        segment(
            seq=server_seq, ack=client_seq + 1, flags=TcpSegment.FIN | TcpSegment.ACK, from_client=False, ts=ts + 0.1
        ),
        segment(seq=client_seq + 1, ack=server_seq + 1, flags=TcpSegment.ACK, ts=ts + 0.1),
    ]
    return segments


def segment_frame(item: TcpSegment) -> bytes:
    """The Ethernet/IPv4 frame that carries `item`, for a capture file."""
    header = tcp_header(sport=item.sport, dport=item.dport, seq=item.seq, ack=item.ack, flags=item.flags)
    return ethernet_frame(ipv4_packet(header + item.payload, src=item.src, dst=item.dst))


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


# Link layers and tunnels (capture decoding), each with the RFC its layout follows.


def udp_datagram(payload: bytes, *, sport: int = 50000, dport: int = 4789) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload  # RFC 768


def vxlan_header(vni: int, *, flags: int = 0x08) -> bytes:
    return struct.pack("!B3xI", flags, vni << 8)  # RFC 7348 section 5


def geneve_header(vni: int, *, protocol: int = 0x6558, options: bytes = b"") -> bytes:
    return struct.pack("!BBHI", len(options) // 4, 0, protocol, vni << 8) + options  # RFC 8926 section 3.4


def gre_header(protocol: int, *, key: int | None = None, sequence: int | None = None, checksum: bool = False) -> bytes:
    flags = (0x8000 if checksum else 0) | (0x2000 if key is not None else 0) | (0x1000 if sequence is not None else 0)
    header = struct.pack("!HH", flags, protocol)  # RFC 2784, RFC 2890
    if checksum:
        header += b"\x00" * 4
    if key is not None:
        header += struct.pack("!I", key)
    if sequence is not None:
        header += struct.pack("!I", sequence)
    return header


def erspan2_header(session: int) -> bytes:
    return struct.pack("!HHI", 1 << 12, session, 0)  # draft-foschiano-erspan section 4.1


def erspan3_header(session: int, *, frame_type: int = 0, subheader: bool = False) -> bytes:
    last = (frame_type << 10) | (1 if subheader else 0)
    header = struct.pack("!HHIHH", 2 << 12, session, 0, 0, last)  # draft-foschiano-erspan section 4.2
    return header + (b"\x00" * 8 if subheader else b"")


def outer_ipv4_udp(inner: bytes, *, dport: int = 4789, src: str = "198.18.0.5", dst: str = "198.18.0.99") -> bytes:
    """An Ethernet frame carrying `inner` in UDP, as a mirror session sends it."""
    return ethernet_frame(ipv4_packet(udp_datagram(inner, dport=dport), src=src, dst=dst, proto=17))


def ipv4_fragments(packet: bytes, *, size: int, ident: int = 7, order: tuple[int, ...] | None = None) -> list[bytes]:
    """Split an IPv4 packet built by `ipv4_packet` into fragments carrying `size` bytes each."""
    header, payload = packet[:20], packet[20:]
    pieces = [payload[start : start + size] for start in range(0, len(payload), size)]
    fragments = []
    for index, piece in enumerate(pieces):
        more = 0x2000 if index < len(pieces) - 1 else 0
        fragment_field = more | (index * size // 8)
        fragments.append(header[:2] + struct.pack("!HHH", 20 + len(piece), ident, fragment_field) + header[8:] + piece)
    return [fragments[i] for i in order] if order is not None else fragments


def ipv6_fragment(payload: bytes, *, offset: int, more: bool, ident: int = 9, next_header: int = 6) -> bytes:
    header = struct.pack("!BBHI", next_header, 0, (offset // 8) << 3 | int(more), ident)  # RFC 8200 section 4.5
    return ipv6_packet(header + payload, next_header=44)


# Capture files.


def pcap_file(packets: list[tuple[float, bytes]], *, linktype: int = LinkType.ETHERNET) -> bytes:
    """A little-endian microsecond pcap (draft-ietf-opsawg-pcap sections 4 and 5)."""
    out = [struct.pack("<IHHIIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype)]
    for ts, data in packets:
        seconds = int(ts)
        out.append(struct.pack("<IIII", seconds, round((ts - seconds) * 1e6), len(data), len(data)) + data)
    return b"".join(out)


def pcapng_block(block_type: int, body: bytes, *, order: str = "<") -> bytes:
    body += b"\x00" * (-len(body) % 4)
    length = 12 + len(body)
    return struct.pack(order + "II", block_type, length) + body + struct.pack(order + "I", length)


def pcapng_section(*, order: str = "<") -> bytes:
    return pcapng_block(0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1), order=order)


def pcapng_interface(linktype: int, *, tsresol: int | None = None, order: str = "<") -> bytes:
    options = b""
    if tsresol is not None:
        options = struct.pack(order + "HH", 9, 1) + bytes([tsresol, 0, 0, 0]) + struct.pack(order + "HH", 0, 0)
    return pcapng_block(1, struct.pack(order + "HHI", linktype, 0, 0) + options, order=order)


def pcapng_packet(
    interface: int, ticks: int, data: bytes, *, wire_length: int | None = None, order: str = "<"
) -> bytes:
    header = struct.pack(
        order + "IIIII", interface, ticks >> 32, ticks & 0xFFFFFFFF, len(data), wire_length or len(data)
    )
    return pcapng_block(6, header + data, order=order)


# A jumbo frame, as inside an AWS VPC.

JUMBO_IP_PACKET = 9001  # the MTU inside an AWS VPC
JUMBO_ATTACK = "<script>alert(9001)</script>"


def jumbo_connection() -> list[bytes]:
    """A handshake, then one 9001-byte IP packet whose attack sits in its last bytes."""
    client, server = "10.1.0.5", "10.1.0.80"
    room = JUMBO_IP_PACKET - 20 - 20
    head = "POST /comments HTTP/1.1\r\nHost: api.example.com\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    form_tail = "&comment=" + JUMBO_ATTACK
    body_length = room - len(head) - len("Content-Length: 0000\r\n\r\n")
    padding = "pad=" + "A" * (body_length - len("pad=") - len(form_tail))
    request = f"{head}Content-Length: {body_length}\r\n\r\n{padding}{form_tail}".encode()
    assert len(request) == room
    syn = tcp_header(sport=41000, dport=80, seq=0, flags=0x02)
    data = tcp_header(sport=41000, dport=80, seq=1, flags=0x18) + request
    frames = [ethernet_frame(ipv4_packet(segment, src=client, dst=server)) for segment in (syn, data)]
    assert len(frames[1]) == 14 + JUMBO_IP_PACKET
    return frames


# A keep-alive HTTP/1.1 connection, both directions, as a mirror sees it.


def keep_alive_connection(
    exchanges: list[tuple[bytes, bytes]], *, client: str, client_port: int, server: str, server_port: int = 80
) -> list[bytes]:
    """Ethernet frames of one connection: handshake, each (request, response) in 1460-byte
    segments with the right sequence and acknowledgement numbers, then FINs from both ends."""
    c_seq, s_seq = 1000, 9000
    out: list[bytes] = []

    def emit(from_client: bool, seq: int, ack: int, flags: int, payload: bytes = b"") -> None:
        if from_client:
            tcp = tcp_header(sport=client_port, dport=server_port, seq=seq, ack=ack, flags=flags)
            out.append(ethernet_frame(ipv4_packet(tcp + payload, src=client, dst=server)))
        else:
            tcp = tcp_header(sport=server_port, dport=client_port, seq=seq, ack=ack, flags=flags)
            out.append(ethernet_frame(ipv4_packet(tcp + payload, src=server, dst=client)))

    emit(True, c_seq, 0, 0x02)
    emit(False, s_seq, c_seq + 1, 0x12)
    c_seq, s_seq = c_seq + 1, s_seq + 1
    emit(True, c_seq, s_seq, 0x10)
    for request, response in exchanges:
        for offset in range(0, len(request), 1460):
            emit(True, c_seq + offset, s_seq, 0x18, request[offset : offset + 1460])
        c_seq += len(request)
        for offset in range(0, len(response), 1460):
            emit(False, s_seq + offset, c_seq, 0x18, response[offset : offset + 1460])
        s_seq += len(response)
    emit(True, c_seq, s_seq, 0x11)
    emit(False, s_seq, c_seq + 1, 0x11)
    return out


def tcp_connection_frames(
    request: bytes, *, client: str, server: str, sport: int, dport: int = 80, split: int | None = None
) -> list[bytes]:
    """Ethernet frames of a client's SYN, then `request` (in two segments when `split` is given)."""
    parts = [request] if split is None else [request[:split], request[split:]]
    frames = [
        ethernet_frame(ipv4_packet(tcp_header(sport=sport, dport=dport, seq=0, flags=0x02), src=client, dst=server))
    ]
    seq = 1
    for part in parts:
        data = tcp_header(sport=sport, dport=dport, seq=seq, flags=0x18) + part
        frames.append(ethernet_frame(ipv4_packet(data, src=client, dst=server)))
        seq += len(part)
    return frames
