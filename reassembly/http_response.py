"""Sans-I/O HTTP/1.x response parser for one server->client byte stream (RFC 9112).

Same face as `HttpRequestParser`, plus `expect(request)`: a response's framing depends on
the request it answers (HEAD and a 2xx to CONNECT have no body), so the connection tracker
tells the parser about each request as it is emitted, and every response carries the
request it answers. 1xx responses (100 Continue) answer nothing on their own; 101 and a
2xx to CONNECT end HTTP/1 on the connection.
"""

from __future__ import annotations

import re
from collections import deque

from reassembly.events import FlowKey, HttpRequest, HttpResponse, ProtocolSwitch
from reassembly.http_message import BodyFraming, HttpMessageParser, StartLine
from reassembly.limits import ReassemblyLimits

__all__ = ["HttpResponseParser"]

# RFC 9112 section 4: status-line = HTTP-version SP status-code SP [ reason-phrase ]
_STATUS_LINE = re.compile(rb"(HTTP/\d\.\d) +(\d{3})(?: (.*))?", re.DOTALL)
# Anywhere, not only at a line start: a body cut by a gap rarely ends with a line break.
_RESYNC_POINT = re.compile(rb"HTTP/\d\.\d \d{3}[^\r\n]*\r?\n")
_UNANSWERED_LIMIT = 1000  # requests waiting for responses; past it the oldest are forgotten


class HttpResponseParser(HttpMessageParser[HttpResponse]):
    """Turns one server->client byte stream into `HttpResponse`, `Anomaly` and `ProtocolSwitch` events."""

    _resync_point = _RESYNC_POINT
    _garbage_anomaly = "garbage_before_response"

    def __init__(self, flow: FlowKey, *, midstream: bool = False, limits: ReassemblyLimits | None = None) -> None:
        super().__init__(flow, midstream=midstream, limits=limits)
        # Each request waiting for its response, with when it was complete and the client
        # sequence number just past it (None when unknown).
        self._unanswered: deque[tuple[HttpRequest, float, int | None]] = deque()
        self._ack: int | None = None  # what the server had acknowledged when it sent the last bytes
        self._after_gap = False
        self.forgotten_requests = 0
        self.requests_unanswered_after_gap = 0

    def expect(self, request: HttpRequest, completed_at: float | None = None, end_seq: int | None = None) -> None:
        """`request` was sent on this connection: the next final response answers it (or a later one)."""
        if len(self._unanswered) >= _UNANSWERED_LIMIT:
            self._unanswered.popleft()
            self.forgotten_requests += 1
        self._unanswered.append((request, request.ts if completed_at is None else completed_at, end_seq))

    def receive_data(self, data: bytes, ts: float, ack: int | None = None) -> None:
        """As for requests; `ack`, the acknowledgement number the server sent with these bytes, keeps
        a response from being paired with a request the server had not received yet."""
        if ack is not None:
            self._ack = ack
        super().receive_data(data, ts)

    def receive_gap(self, size: int, ts: float) -> None:
        self._after_gap = True
        self._ack = None  # what was acknowledged before the gap says nothing of what follows
        super().receive_gap(size, ts)

    @property
    def awaiting_response(self) -> int:
        """How many requests wait for their final response."""
        return len(self._unanswered)

    def _is_start_line(self, line: bytes) -> bool:
        return _STATUS_LINE.fullmatch(line) is not None

    def _parse_start_line(self, line: bytes) -> StartLine[HttpResponse] | None:
        parsed = _STATUS_LINE.fullmatch(line)
        if parsed is None:
            return None
        version, status, reason = parsed.groups()
        code = int(status)
        informational = 100 <= code < 200 and code != 101
        if self._after_gap and not informational:
            self._skip_requests_answered_in_a_gap()
        anomalies: list[str] = []
        if not self._unanswered:
            request = None
        elif self._answers_an_unseen_request():
            request = None
            anomalies.append("response_to_unseen_request")
        elif informational:
            request = self._unanswered[0][0]
        else:
            request = self._unanswered.popleft()[0]
        response = HttpResponse(
            ts=0.0,
            flow=self.flow,
            version=version.decode("latin-1"),
            status=code,
            reason=(reason or b"").decode("latin-1"),
            headers=(),
            request=request,
        )
        if request is None and not informational and not anomalies:
            anomalies.append("response_without_request")
        return response, anomalies

    def _answers_an_unseen_request(self) -> bool:
        """The server sent this before it had the oldest waiting request: that request's
        response is still to come, and this one answers a request the mirror lost."""
        end_seq = self._unanswered[0][2]
        if self._ack is None or end_seq is None:
            return False
        return 0 < (end_seq - self._ack) % (1 << 32) < (1 << 31)

    def _skip_requests_answered_in_a_gap(self) -> None:
        """Responses were lost: this one answers the last request the server had by then, known
        from its acknowledgement, or else from time (exact unless requests were pipelined)."""
        self._after_gap = False
        started, ack = self._message_ts, self._ack
        while len(self._unanswered) > 1:
            _, completed_at, end_seq = self._unanswered[1]
            if ack is not None and end_seq is not None:
                answered_later = not 0 < (end_seq - ack) % (1 << 32) < (1 << 31)
            else:
                answered_later = completed_at <= started
            if not answered_later:
                break
            self._unanswered.popleft()
            self.requests_unanswered_after_gap += 1

    def _body_framing(self, message: HttpResponse) -> int | BodyFraming:
        # RFC 9112 section 6.3, rules 1 and 2, in order.
        request, status = message.request, message.status
        method = request.method if request is not None else ""
        if status == 101:
            return BodyFraming.TUNNEL
        if method == "CONNECT" and 200 <= status < 300:
            return 0  # the tunnel starts; _after_message decides what it carries
        if method == "HEAD" or 100 <= status < 200 or status in (204, 304):
            return 0
        framing = self._content_length_framing(message.headers)
        return BodyFraming.UNTIL_CLOSE if framing is None else framing

    def _looks_like_message_start(self, head: bytes) -> bool | None:
        if head.startswith(b"HTTP/"):
            return True
        return None if b"HTTP/".startswith(head) else False

    def _after_message(self, message: HttpResponse) -> None:
        request = message.request
        if request is not None and request.method == "CONNECT" and 200 <= message.status < 300:
            # Plain HTTP through the tunnel is still parsed (a proxy's clients do this); TLS is not.
            self._switch_asked = request
            self._switch_confirmed = True
        if self.in_tunnel:
            request = message.request
            self._ready.append(
                ProtocolSwitch(
                    ts=message.ts,
                    flow=self.flow,
                    protocol=request.switch_protocol if request is not None else "unknown",
                    target=request.target if request is not None else "",
                    confirmed=True,
                )
            )
