"""Connection tracking: TCP segments in, HTTP events out, for every connection at once.

Sans-I/O. Finds each segment's connection by (tunnel context, both endpoints), decides which
side is the client (from the handshake, or from the first data when the capture starts in
the middle of a connection), orders the client's bytes with a `TcpStream` and parses them
with an `HttpRequestParser`.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from capture.packets import TcpSegment
from reassembly.events import FlowKey, ReassemblyEvent
from reassembly.http_request import NEED_DATA, HttpRequestParser
from reassembly.tcp_stream import TcpStream

__all__ = ["ConnectionTracker"]

_SYN = TcpSegment.SYN
_ACK = TcpSegment.ACK
_FIN_OR_RST = TcpSegment.FIN | TcpSegment.RST
_LOOKS_LIKE_REQUEST = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+ [^\r\n]* HTTP/\d\.\d\r?\n")
_LOOKS_LIKE_RESPONSE = re.compile(rb"HTTP/\d\.\d \d{3}")

_ConnectionId = tuple[object, ...]


@dataclass(slots=True)
class _Connection:
    flow: FlowKey
    parser: HttpRequestParser
    client_stream: TcpStream = field(default_factory=TcpStream)
    client_closing: bool = False


class ConnectionTracker:
    """Tracks every TCP connection and parses the requests its clients send."""

    def __init__(self) -> None:
        self.stats: Counter[str] = Counter()
        self._connections: dict[_ConnectionId, _Connection] = {}

    def receive_segment(self, segment: TcpSegment) -> list[ReassemblyEvent]:
        key = _connection_id(segment)
        connection = self._connections.get(key)
        if connection is None:
            connection = self._open(segment)
            if connection is None:
                return []
            self._connections[key] = connection
        if (segment.src, segment.sport) != (connection.flow.client, connection.flow.client_port):
            if segment.flags & TcpSegment.RST:
                return self._close(key)
            return []
        return self._receive_from_client(key, connection, segment)

    def close_all(self) -> list[ReassemblyEvent]:
        """End of input: hand back every request still in progress."""
        events: list[ReassemblyEvent] = []
        for key in list(self._connections):
            events += self._close(key)
        return events

    def _open(self, segment: TcpSegment) -> _Connection | None:
        flags = segment.flags
        if flags & _SYN:
            client_is_source = not flags & _ACK
            midstream = False
        elif _LOOKS_LIKE_REQUEST.match(segment.payload):
            client_is_source, midstream = True, True
        elif _LOOKS_LIKE_RESPONSE.match(segment.payload):
            client_is_source, midstream = False, True
        else:
            self.stats["segment_before_connection_known"] += 1
            return None
        if client_is_source:
            flow = FlowKey(
                client=segment.src,
                client_port=segment.sport,
                server=segment.dst,
                server_port=segment.dport,
                tunnel=segment.tunnel,
            )
        else:
            flow = FlowKey(
                client=segment.dst,
                client_port=segment.dport,
                server=segment.src,
                server_port=segment.sport,
                tunnel=segment.tunnel,
            )
        self.stats["connections"] += 1
        if midstream:
            self.stats["connections_picked_up_midstream"] += 1
        return _Connection(flow=flow, parser=HttpRequestParser(flow, midstream=midstream))

    def _receive_from_client(
        self, key: _ConnectionId, connection: _Connection, segment: TcpSegment
    ) -> list[ReassemblyEvent]:
        stream = connection.client_stream
        if segment.flags & _SYN:
            stream.start(segment.seq)
        events: list[ReassemblyEvent] = []
        data = stream.add(segment.seq, segment.payload)
        if data:
            connection.parser.receive_data(data, segment.ts)
            while (event := connection.parser.next_event()) is not NEED_DATA:
                events.append(event)
        if segment.flags & _FIN_OR_RST:
            connection.client_closing = True
        # Close once every byte before the FIN has arrived; a reordered segment may be late.
        if connection.client_closing and not stream.pending_bytes:
            events += self._close(key)
        return events

    def _close(self, key: _ConnectionId) -> list[ReassemblyEvent]:
        connection = self._connections.pop(key)
        if connection.client_stream.dropped_segments:
            self.stats["tcp_segments_refused_buffer_full"] += connection.client_stream.dropped_segments
        unfinished = connection.parser.close()
        return [unfinished] if unfinished is not None else []


def _connection_id(segment: TcpSegment) -> _ConnectionId:
    a = (segment.src, segment.sport)
    b = (segment.dst, segment.dport)
    return (segment.tunnel, a, b) if a < b else (segment.tunnel, b, a)
