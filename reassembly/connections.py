"""Connection tracking: TCP segments in, HTTP events out, for every connection at once.

Sans-I/O. Finds each segment's connection by (tunnel context, both endpoints), decides which
side is the client (from the handshake, or from the first data when the capture starts in
the middle of a connection), orders each direction's bytes with a `TcpStream` and parses
them: the client's with an `HttpRequestParser`, the server's with an `HttpResponseParser`
that learns of each request as it is emitted, so responses are paired without ever holding
a request back. Holes that will not fill, full buffers, idle and surplus connections are
handled by the `ReassemblyLimits` passed in; whatever they cost is counted in `stats`.
Acknowledgements of bytes the capture never held feed the capture-loss estimate
(`capture_loss`, see `reassembly.capture_loss`).

This is the pure-Python reference; `reassembly.tracker.ConnectionTracker` picks it or its
compiled twin.
"""

from __future__ import annotations

import re
from collections import Counter, OrderedDict
from dataclasses import dataclass, field

from capture.packets import TcpSegment
from reassembly.capture_loss import CaptureLoss, acknowledged_unseen
from reassembly.events import Anomaly, FlowKey, HttpRequest, HttpResponse, ProtocolSwitch, ReassemblyEvent
from reassembly.http_message import NEED_DATA
from reassembly.http_request import HttpRequestParser
from reassembly.http_response import HttpResponseParser
from reassembly.limits import ReassemblyLimits
from reassembly.tcp_stream import TcpStream

__all__ = ["PythonConnectionTracker"]

_SYN = TcpSegment.SYN
_ACK = TcpSegment.ACK
_FIN = TcpSegment.FIN
_RST = TcpSegment.RST
_OPENS_OR_CLOSES = _SYN | _FIN | _RST
_LOOKS_LIKE_REQUEST = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+ [^\r\n]* HTTP/\d\.\d\r?\n")
_LOOKS_LIKE_RESPONSE = re.compile(rb"HTTP/\d\.\d \d{3}")

_REQUEST_FIRST_BYTES = frozenset(
    bytes([c]) for c in b"!#$%&'*+.^_`|~-\r\n0123456789" + bytes(range(65, 91)) + bytes(range(97, 123))
)

_LATE_SEGMENT_WINDOW = 60.0  # seconds after a close in which a segment of it is a straggler
_SEQ_MOD = 1 << 32
_RST_WINDOW = 1 << 16
_HALF_SEQ = 1 << 31
# An acknowledgement that jumps further than the largest TCP window (RFC 7323 section 2.3)
# is garbage or hostile, not evidence of bytes the capture missed.
_MAX_ACK_ADVANCE = 1 << 30

_ConnectionId = tuple[object, ...]


@dataclass(slots=True)
class _Direction:
    stream: TcpStream
    parser: HttpRequestParser | HttpResponseParser
    fin_seq: int | None = None  # the sequence number just past the last byte, once a FIN said so
    gap_after_truncated: bool = False  # a snaplen-cut segment left a hole right behind it
    conflicts_reported: int = 0
    seen: bool = False  # any payload arrived
    delivered: bool = False  # any payload was handed to the parser
    acked: int | None = None  # one past the last of these bytes the other side acknowledged


@dataclass(slots=True)
class _Connection:
    flow: FlowKey
    client: _Direction
    server: _Direction
    last_ts: float
    from_handshake: bool  # False when picked up mid-stream: the first bytes may be mid-message
    early_expected: int = -1  # index of a request announced to the server side before it completed
    pending_bytes: int = 0  # early bytes held by both directions, for the global bound
    events: list[ReassemblyEvent] = field(default_factory=list)
    held: list[TcpSegment] = field(default_factory=list)  # server segments ahead of the client's bytes
    held_bytes: int = 0


class PythonConnectionTracker:
    """Tracks every TCP connection and parses the HTTP messages both sides send.

    The reference implementation: `reassembly.ConnectionTracker` runs the compiled twin of
    this class (reassembly/_fasttrack*.c) when it is built, and this one otherwise, or when
    asked (`compiled=False`); tests/reassembly/test_compiled_tracker.py holds the two to the
    same events, stats and capture-loss counts.
    """

    def __init__(self, limits: ReassemblyLimits | None = None) -> None:
        self.limits = limits or ReassemblyLimits()
        self.stats: Counter[str] = Counter()
        # Least recently active first: idle eviction looks at the front only.
        self._connections: OrderedDict[_ConnectionId, _Connection] = OrderedDict()
        self._pending_total = 0
        self._next_idle_check = float("-inf")
        # Connections closed by FIN/RST, with when: a retransmission arriving after the close
        # must not open a connection "mid-stream" and report its request twice.
        self._recently_closed: OrderedDict[_ConnectionId, float] = OrderedDict()
        # The capture-loss estimate's counters: plain integers, bumped on the hot path.
        self._ack_events = 0
        self._ack_bytes = 0
        self._gap_events = 0
        self._gap_bytes = 0

    def receive_segment(self, segment: TcpSegment) -> list[ReassemblyEvent]:
        events = self._evict_idle(segment.ts) if segment.ts >= self._next_idle_check else []
        key = _connection_id(segment)
        connection = self._connections.get(key)
        if connection is not None and not segment.payload and not segment.flags & _OPENS_OR_CLOSES:
            self._note_bare_ack(key, connection, segment)  # a third of real traffic: kept cheap
            return events
        if connection is not None and _is_new_connection(connection, segment):
            events += self._close(key, reason="connections_reused")
            connection = None
        if connection is None:
            if self._is_late_for_closed(key, segment):
                self.stats["segments_after_close"] += 1
                return events
            connection = self._open(segment)
            if connection is None:
                return events
            events += self._make_room()
            self._connections[key] = connection
        else:
            self._connections.move_to_end(key)
        connection.last_ts = segment.ts
        from_client = (segment.src, segment.sport) == (connection.flow.client, connection.flow.client_port)
        if segment.flags & _ACK:
            acked = connection.server if from_client else connection.client
            if segment.ack != acked.acked:  # most segments repeat the last acknowledgement
                self._note_ack(acked, segment.ack)
        if from_client:
            self._receive(connection, connection.client, segment)
            self._release_held(connection, force=False)
        elif segment.payload and (connection.held or _answers_unseen_bytes(connection, segment)):
            self._hold(connection, segment)  # behind the held ones: the server's segments keep their order
        else:
            self._receive(connection, connection.server, segment)
        events += connection.events
        connection.events = []
        if segment.flags & _RST and not _rst_in_window(connection, from_client, segment):
            # RFC 5961 section 3.2: a reset is believed only in the window; another is what an
            # attacker sends to make a monitor stop looking.
            self.stats["resets_out_of_window"] += 1
            events.append(
                Anomaly(ts=segment.ts, flow=connection.flow, name="rst_out_of_window", detail=f"seq {segment.seq}")
            )
        elif segment.flags & _RST or _both_finished(connection):
            events += self._close(key, reason="connections_closed")
            self._remember_closed(key, segment.ts)
        return events

    def close_all(self) -> list[ReassemblyEvent]:
        """End of input: hand back every message still in progress."""
        events: list[ReassemblyEvent] = []
        for key in list(self._connections):
            events += self._close(key, reason="connections_open_at_end")
        return events

    @property
    def tracked_connections(self) -> int:
        return len(self._connections)

    @property
    def pending_bytes(self) -> int:
        return self._pending_total

    @property
    def capture_loss(self) -> CaptureLoss:
        """Acknowledgements seen so far, and the acknowledged bytes the capture never held."""
        return CaptureLoss(
            ack_events=self._ack_events,
            ack_bytes=self._ack_bytes,
            gap_events=self._gap_events,
            gap_bytes=self._gap_bytes,
        )

    # -- opening and closing -----------------------------------------------------------

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
        limits = self.limits
        return _Connection(
            flow=flow,
            client=_Direction(
                TcpStream(overlap_check_bytes=limits.overlap_check_bytes),
                HttpRequestParser(flow, midstream=midstream, limits=limits),
            ),
            server=_Direction(
                TcpStream(overlap_check_bytes=limits.overlap_check_bytes),
                # A response seen first is believed only from its status line.
                HttpResponseParser(flow, midstream=midstream, limits=limits),
            ),
            last_ts=segment.ts,
            from_handshake=not midstream,
        )

    def _remember_closed(self, key: _ConnectionId, ts: float) -> None:
        self._recently_closed[key] = ts
        self._recently_closed.move_to_end(key)
        while len(self._recently_closed) > self.limits.max_flows:
            self._recently_closed.popitem(last=False)

    def _is_late_for_closed(self, key: _ConnectionId, segment: TcpSegment) -> bool:
        closed_at = self._recently_closed.get(key)
        if closed_at is None:
            return False
        if segment.flags & _SYN or segment.ts - closed_at > _LATE_SEGMENT_WINDOW:
            del self._recently_closed[key]  # a new connection on the same ports
            return False
        return True

    def _make_room(self) -> list[ReassemblyEvent]:
        events: list[ReassemblyEvent] = []
        while len(self._connections) >= self.limits.max_flows:
            oldest = next(iter(self._connections))
            events += self._close(oldest, reason="connections_evicted_table_full")
        return events

    def _note_bare_ack(self, key: _ConnectionId, connection: _Connection, segment: TcpSegment) -> None:
        connection.last_ts = segment.ts
        self._connections.move_to_end(key)
        if segment.flags & _ACK:
            flow = connection.flow
            from_client = segment.sport == flow.client_port and segment.src == flow.client
            self._note_ack(connection.server if from_client else connection.client, segment.ack)

    def _note_ack(self, acked: _Direction, ack: int) -> None:
        """The other side acknowledged `acked`'s bytes up to `ack`: count the advance."""
        previous = acked.acked
        if previous is None:
            acked.acked = ack  # the first acknowledgement is only where counting starts
            return
        advance = (ack - previous) % _SEQ_MOD
        if 0 < advance < _MAX_ACK_ADVANCE:
            acked.acked = ack
            self._ack_events += 1
            self._ack_bytes += advance

    def _count_unseen(self, unseen: int) -> None:
        if unseen > 0:
            self._gap_events += 1
            self._gap_bytes += unseen

    def _evict_idle(self, now: float) -> list[ReassemblyEvent]:
        # Looked at a few times per idle timeout, not per segment.
        self._next_idle_check = now + self.limits.idle_timeout / 16
        events: list[ReassemblyEvent] = []
        deadline = now - self.limits.idle_timeout
        while self._connections:
            oldest_key, oldest = next(iter(self._connections.items()))
            if oldest.last_ts >= deadline:
                break
            events += self._close(oldest_key, reason="connections_evicted_idle")
        return events

    def _close(self, key: _ConnectionId, *, reason: str) -> list[ReassemblyEvent]:
        connection = self._connections.pop(key)
        self.stats[reason] += 1
        while connection.client.stream.has_pending:
            self._skip_hole(connection, connection.client, "gaps_at_close")
        self._release_held(connection, force=True)
        while connection.server.stream.has_pending:
            self._skip_hole(connection, connection.server, "gaps_at_close")
        for direction in (connection.client, connection.server):
            # Acknowledged past the last byte seen (a FIN's own sequence number is no byte).
            self._count_unseen(_acknowledged_past_the_end(direction))
        events = connection.events
        for direction in (connection.client, connection.server):
            self._drain(connection, direction)
            unfinished = direction.parser.close()
            if unfinished is not None:
                self._emit(connection, unfinished)
            for event in direction.parser.take_queued():  # what finishing the message queued
                self._emit(connection, event)
        self._pending_total -= connection.pending_bytes
        self._count_what_parsers_passed_over(connection)
        return events

    def _count_what_parsers_passed_over(self, connection: _Connection) -> None:
        stats = self.stats
        for parser in (connection.client.parser, connection.server.parser):
            if parser.tunnel_bytes:
                stats["bytes_not_parsed_after_protocol_switch"] += parser.tunnel_bytes
        server_parser = connection.server.parser
        assert isinstance(server_parser, HttpResponseParser)
        if server_parser.forgotten_requests:
            stats["requests_forgotten_unanswered_limit"] += server_parser.forgotten_requests
        if server_parser.requests_unanswered_after_gap:
            stats["requests_whose_response_was_lost"] += server_parser.requests_unanswered_after_gap

    # -- bytes -------------------------------------------------------------------------

    def _receive(self, connection: _Connection, direction: _Direction, segment: TcpSegment) -> None:
        flags = segment.flags
        if flags & _SYN:
            direction.stream.start(segment.seq)
        if segment.payload:
            self._receive_payload(connection, direction, segment)
        if flags & _FIN:
            direction.fin_seq = (segment.seq + len(segment.payload)) % _SEQ_MOD

    def _receive_payload(self, connection: _Connection, direction: _Direction, segment: TcpSegment) -> None:
        stream = direction.stream
        direction.seen = True
        if direction is connection.server:
            _announce_request_in_progress(connection)
        before = stream.pending_bytes
        ack = segment.ack if segment.flags & _ACK else None
        parts = stream.add_parts(segment.seq, segment.payload, segment.ts, ack)
        if stream.overlap_conflicts > direction.conflicts_reported:  # named before the message it is in
            direction.conflicts_reported = stream.overlap_conflicts
            self.stats["overlap_conflicts"] += 1
            connection.events.append(
                Anomaly(ts=segment.ts, flow=connection.flow, name="overlap_conflict", detail=f"seq {segment.seq}")
            )
        # Part by part: bytes drained from the reorder buffer keep their own segment's
        # acknowledgement, which pairing relies on.
        for data, arrived, part_ack in parts:
            self._deliver(connection, direction, data, arrived, part_ack)
            self._drain(connection, direction)
        if stream.pending_bytes != before:
            self._account(connection, stream.pending_bytes - before)
            self._enforce_buffer_limits(connection, direction)
        if direction.gap_after_truncated and stream.has_pending:
            self._skip_hole(connection, direction, "gaps_after_truncated_segment")
        direction.gap_after_truncated = segment.truncated

    def _deliver(
        self, connection: _Connection, direction: _Direction, data: bytes, ts: float, ack: int | None = None
    ) -> None:
        if not direction.delivered:
            direction.delivered = True
            # Only a stream seen from its first byte can tell that it is not HTTP.
            if direction is connection.client and connection.from_handshake and _is_not_http(data):
                self._give_up_on_http(connection)
        parser = direction.parser
        if isinstance(parser, HttpResponseParser):
            parser.receive_data(data, ts, ack)
        else:
            parser.receive_data(data, ts)

    def _give_up_on_http(self, connection: _Connection) -> None:
        """Three outcomes per decoder: this connection is not HTTP (TLS, SSH, ...); count, don't parse."""
        self.stats["connections_not_http"] += 1
        connection.client.parser.switch_protocol()
        connection.server.parser.switch_protocol()

    # -- keeping responses behind their requests ---------------------------------------
    #
    # A mirror can deliver a response before the last segments of its request (the two
    # directions take different paths to the tap). A server segment acknowledging client
    # bytes not yet seen waits until they are, so that every response meets its request
    # first and pairing stays in step; bounded like any other buffered bytes.

    def _hold(self, connection: _Connection, segment: TcpSegment) -> None:
        connection.held.append(segment)
        connection.held_bytes += len(segment.payload)
        self._account(connection, len(segment.payload))
        if (
            connection.held_bytes > self.limits.max_pending_bytes_per_direction
            or self._pending_total > self.limits.max_pending_bytes_total
        ):
            self.stats["responses_released_before_their_request"] += 1
            self._release_held(connection, force=True)

    def _release_held(self, connection: _Connection, *, force: bool) -> None:
        while connection.held and (force or not _answers_unseen_bytes(connection, connection.held[0])):
            segment = connection.held.pop(0)
            connection.held_bytes -= len(segment.payload)
            self._account(connection, -len(segment.payload))
            self._receive(connection, connection.server, segment)

    def _enforce_buffer_limits(self, connection: _Connection, direction: _Direction) -> None:
        limits = self.limits
        while direction.stream.pending_bytes > limits.max_pending_bytes_per_direction:
            self._skip_hole(connection, direction, "gaps_forced_by_flow_buffer_limit")
        while self._pending_total > limits.max_pending_bytes_total and direction.stream.has_pending:
            self._skip_hole(connection, direction, "gaps_forced_by_total_buffer_limit")

    def _skip_hole(self, connection: _Connection, direction: _Direction, reason: str) -> None:
        stream = direction.stream
        before, hole_start = stream.pending_bytes, stream.next_seq
        lost, parts = stream.skip_hole()
        self._count_unseen(acknowledged_unseen(direction.acked, hole_start, lost))
        self._account(connection, stream.pending_bytes - before)
        self.stats[reason] += 1
        self.stats["bytes_lost_in_gaps"] += lost
        direction.parser.receive_gap(lost, parts[0][1] if parts else connection.last_ts)
        self._drain(connection, direction)
        direction.delivered = True  # bytes after a gap start anywhere: they cannot tell "not HTTP"
        for data, arrived, ack in parts:  # one by one: each keeps its time and acknowledgement
            self._deliver(connection, direction, data, arrived, ack)
            self._drain(connection, direction)

    def _account(self, connection: _Connection, delta: int) -> None:
        connection.pending_bytes += delta
        self._pending_total += delta

    # -- events ------------------------------------------------------------------------

    def _drain(self, connection: _Connection, direction: _Direction) -> None:
        parser = direction.parser
        while (event := parser.next_event()) is not NEED_DATA:
            if isinstance(event, HttpRequest):
                self._announce(connection, event)
            self._emit(connection, event)

    def _announce(self, connection: _Connection, request: HttpRequest) -> None:
        """Tell the server side a request was sent, and the client sequence number just past it."""
        if request.index == connection.early_expected:
            return
        server_parser = connection.server.parser
        assert isinstance(server_parser, HttpResponseParser)
        initial = connection.client.stream.initial_seq
        end_seq = None if initial is None else (initial + connection.client.parser.last_end_offset) % _SEQ_MOD
        server_parser.expect(request, connection.last_ts, end_seq)

    def _emit(self, connection: _Connection, event: ReassemblyEvent) -> None:
        connection.events.append(event)
        if isinstance(event, HttpResponse) and event.request is None and event.status >= 200:
            self.stats["responses_without_request"] += 1
        elif isinstance(event, ProtocolSwitch):
            self.stats[f"protocol_switches_{'confirmed' if event.confirmed else 'inferred'}"] += 1
            if event.confirmed:
                connection.client.parser.switch_protocol()


def _announce_request_in_progress(connection: _Connection) -> None:
    """A server may answer before the request's body is done (413, 401, 100 Continue):
    pair its response with the request whose head has been read."""
    server_parser = connection.server.parser
    head = connection.client.parser.in_progress
    assert isinstance(server_parser, HttpResponseParser)
    if (
        isinstance(head, HttpRequest)
        and head.index != connection.early_expected
        and not server_parser.awaiting_response
    ):
        server_parser.expect(head, connection.last_ts)
        connection.early_expected = head.index


def _rst_in_window(connection: _Connection, from_client: bool, segment: TcpSegment) -> bool:
    stream = (connection.client if from_client else connection.server).stream
    if stream.next_seq is None:
        return True
    # Within a receive window of where the stream is (a FIN, or bytes the mirror lost, may
    # come between); a full TCP would demand the exact number and challenge the rest.
    return 0 <= (segment.seq - stream.next_seq) % _SEQ_MOD <= _RST_WINDOW


def _answers_unseen_bytes(connection: _Connection, segment: TcpSegment) -> bool:
    """The server segment acknowledges client bytes that have not been parsed yet.

    Asked of a new server segment, and of the first held one each time client bytes arrive:
    once they cover its acknowledgement it is released, and the next held one is asked.
    """
    if not segment.flags & _ACK:
        return False
    client_next = connection.client.stream.next_seq
    if client_next is None:
        return False
    ahead = (segment.ack - client_next + _HALF_SEQ) % _SEQ_MOD - _HALF_SEQ
    # A FIN takes a sequence number too; a server acking it has seen no byte beyond it.
    return 0 < ahead - (connection.client.fin_seq is not None) < _HALF_SEQ


def _is_not_http(first_bytes: bytes) -> bool:
    """The client's first byte can start no request (RFC 9112 section 2.2 allows leading CRLF)."""
    return first_bytes[:1] not in _REQUEST_FIRST_BYTES


def _is_new_connection(connection: _Connection, segment: TcpSegment) -> bool:
    """A SYN with another initial sequence number: the ports were reused by a new connection."""
    if not segment.flags & _SYN or segment.flags & _ACK:
        return False
    return connection.client.stream.next_seq not in (None, (segment.seq + 1) % (1 << 32))


def _acknowledged_past_the_end(direction: _Direction) -> int:
    """Bytes acknowledged beyond the last one seen (a FIN's own sequence number is no byte)."""
    end = direction.stream.next_seq
    if direction.fin_seq is None or end is None:
        return acknowledged_unseen(direction.acked, end)
    return acknowledged_unseen(direction.acked, end, (direction.fin_seq - end) % _SEQ_MOD)


def _finished(direction: _Direction) -> bool:
    """A FIN was seen and every byte before it has arrived (a reordered one may be late)."""
    stream = direction.stream
    return direction.fin_seq is not None and stream.next_seq in (None, direction.fin_seq) and not stream.has_pending


def _both_finished(connection: _Connection) -> bool:
    client, server = connection.client, connection.server
    if not _finished(client):
        return False
    # One-sided mirror: the server's direction was never seen, so its FIN never will be.
    return (not server.seen and server.stream.next_seq is None) or _finished(server)


def _connection_id(segment: TcpSegment) -> _ConnectionId:
    a = (segment.src, segment.sport)
    b = (segment.dst, segment.dport)
    return (segment.tunnel, a, b) if a < b else (segment.tunnel, b, a)
