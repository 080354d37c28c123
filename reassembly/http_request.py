"""Sans-I/O HTTP/1.x request parser for one client->server byte stream (RFC 9112).

Feed it the bytes of one direction with `receive_data(data, ts)` (and lost bytes with
`receive_gap(size, ts)`), then call `next_event()` until it returns `NEED_DATA`; `close()`
at the end of the stream hands back a message cut short. HTTP/0.9 request lines and methods
nobody registered are still requests. After CONNECT or an Upgrade request, bytes that are
no request line end HTTP/1 on the connection (`ProtocolSwitch`), so a one-sided mirror
does not read a TLS tunnel as garbage.
"""

from __future__ import annotations

import re
from dataclasses import replace

from reassembly.events import FlowKey, HttpRequest
from reassembly.http_message import BodyFraming, HttpMessageParser, StartLine
from reassembly.limits import ReassemblyLimits

__all__ = ["HttpRequestParser"]

# RFC 9110 section 5.6.2: token = 1*tchar
_TOKEN = rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_METHOD = re.compile(_TOKEN)
_HTTP09_METHOD = re.compile(rb"[A-Z][A-Z0-9_-]*")
_VERSION = re.compile(rb"HTTP/\d\.\d")
# A request line at a line start, or one with a registered method anywhere: a body cut by a
# gap rarely ends with a line break, and a token glued to body bytes is no method.
_RESYNC_POINT = re.compile(
    rb"(?m)(?:^" + _TOKEN + rb"|(?:GET|POST|PUT|HEAD|DELETE|OPTIONS|PATCH|CONNECT|TRACE))"
    rb" [^\r\n ]+ HTTP/\d\.\d\r?$"
)
_STARTS_LIKE_REQUEST = re.compile(_TOKEN + rb" ")
_TOKEN_ONLY = re.compile(_TOKEN)
_HTTP2_PREFIX = b"PRI "  # RFC 9113 section 3.4: the connection preface starts "PRI * HTTP/2.0"


class HttpRequestParser(HttpMessageParser[HttpRequest]):
    """Turns one client->server byte stream into `HttpRequest`, `Anomaly` and `ProtocolSwitch` events."""

    _resync_point = _RESYNC_POINT
    _garbage_anomaly = "garbage_before_request"

    def __init__(
        self,
        flow: FlowKey,
        *,
        midstream: bool = False,
        limits: ReassemblyLimits | None = None,
        max_head_bytes: int | None = None,
        body_inspection_bytes: int | None = None,
    ) -> None:
        limits = limits or ReassemblyLimits()
        if max_head_bytes is not None or body_inspection_bytes is not None:
            limits = _with_overrides(limits, max_head_bytes, body_inspection_bytes)
        super().__init__(flow, midstream=midstream, limits=limits)

    def _parse_start_line(self, line: bytes) -> StartLine[HttpRequest] | None:
        parsed = split_request_line(line)
        if parsed is None:
            return None
        method, target, version, anomalies = parsed
        # After garbage or a gap, only an unmistakable request line will do: a method and a
        # well-formed version. Spaces inside the target still count (scanners and botnets send
        # them: "GET /shell?cd+/tmp;wget+ http://... HTTP/1.1"); other oddities do not.
        if self._resyncing and (version is None or set(anomalies) - {"space_in_target"}):
            return None
        request = HttpRequest(
            ts=0.0,
            flow=self.flow,
            method=method.decode("latin-1"),
            target=target.decode("latin-1"),
            version=version.decode("latin-1") if version is not None else "HTTP/0.9",
            headers=(),
        )
        return request, anomalies

    def _body_framing(self, message: HttpRequest) -> int | BodyFraming:
        framing = self._content_length_framing(message.headers)
        # RFC 9112 section 6.3 rule 7: a request without either has no body.
        return 0 if framing is None else framing

    def _after_message(self, message: HttpRequest) -> None:
        if message.method == "CONNECT" or message.header("upgrade") is not None or message.version == "HTTP/2.0":
            self._switch_asked = message

    def _looks_like_message_start(self, head: bytes) -> bool | None:
        if head.startswith(_HTTP2_PREFIX):
            return False
        if _STARTS_LIKE_REQUEST.match(head):
            return True
        if _TOKEN_ONLY.fullmatch(head) or _HTTP2_PREFIX.startswith(head):
            return None  # too little to tell yet
        return False


def split_request_line(line: bytes) -> tuple[bytes, bytes, bytes | None, list[str]] | None:
    """Method, target, version (None for HTTP/0.9) and anomalies of a request line, or None.

    RFC 9112 section 3: method SP request-target SP HTTP-version. Tolerant as servers are:
    several spaces, a target with spaces in it ("space_in_target"), a version that is
    malformed but there ("invalid_http_version", e.g. "GET / HTTP/1."), no version at all
    (HTTP/0.9, believed only from an upper-case method), no target ("missing_target").
    """
    method_match = _METHOD.match(line)
    if method_match is None:
        return None
    method, rest = method_match.group(), line[method_match.end() :]
    if rest[:1] not in (b"", b" "):
        return None
    rest = rest.strip(b" ")
    anomalies: list[str] = []
    head, space, last = rest.rpartition(b" ")
    version: bytes | None = None
    if space and last.startswith(b"HTTP"):
        version, rest = last, head.rstrip(b" ")
        if not _VERSION.fullmatch(version):
            anomalies.append("invalid_http_version")
    elif _HTTP09_METHOD.fullmatch(method):
        anomalies.append("http09_request_line")
    else:
        return None
    if not rest:
        anomalies.append("missing_target")
    elif b" " in rest:
        anomalies.append("space_in_target")
    return method, rest, version, anomalies


def _with_overrides(limits: ReassemblyLimits, max_head: int | None, inspection: int | None) -> ReassemblyLimits:
    return replace(
        limits,
        max_head_bytes=limits.max_head_bytes if max_head is None else max_head,
        body_inspection_bytes=limits.body_inspection_bytes if inspection is None else inspection,
    )
