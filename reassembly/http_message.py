"""What HTTP/1.x request and response parsing share (RFC 9112): the sans-I/O machinery.

One direction's bytes go in with `receive_data(data, ts)`, and lost bytes are announced with
`receive_gap(size, ts)` (never zero-filled); `next_event()` hands back messages and anomalies
until `NEED_DATA`. Subclasses say how a start line reads, where to resynchronise, and how a
message's body is framed; this module does heads, header fields, bodies (length, chunked,
close-delimited), gaps and protocol switches. Parsing is tolerant, as a passive monitor's
must be: what a strict peer would refuse is parsed and named as an anomaly. Nothing here
raises on malformed input.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import replace
from enum import Enum, auto
from typing import Final, Generic, TypeVar

from reassembly.body_decoding import decode_body
from reassembly.events import Anomaly, FlowKey, HttpMessage, HttpRequest, ProtocolSwitch
from reassembly.limits import ReassemblyLimits

__all__ = ["NEED_DATA", "BodyFraming", "HttpMessageParser", "NeedData", "StartLine"]


class NeedData(Enum):
    NEED_DATA = auto()


NEED_DATA: Final = NeedData.NEED_DATA

_HEAD_END = re.compile(rb"\r?\n\r?\n")
_NO_BODY = 0  # a BodyFraming that is a length of zero
# Past these a Content-Length (decimal) or chunk size (hex) is invalid: no body is that long,
# and every count stays within 64 bits (the compiled tracker, reassembly/_fasttrack*.c, agrees).
_MAX_LENGTH_DIGITS = 18
_MAX_CHUNK_SIZE_DIGITS = 15

M = TypeVar("M", bound=HttpMessage)

# A parsed start line: the message with its head filled in, plus anomalies of the line.
StartLine = tuple[M, list[str]]


class BodyFraming(Enum):
    """How a message's body ends, when it is not a known length (RFC 9112 section 6.3)."""

    CHUNKED = auto()
    UNTIL_CLOSE = auto()
    TUNNEL = auto()


class _State(Enum):
    HEAD = auto()
    BODY = auto()
    CHUNK_SIZE = auto()
    CHUNK_DATA = auto()
    CHUNK_DATA_END = auto()
    TRAILERS = auto()
    UNTIL_CLOSE = auto()
    TUNNEL = auto()


class HttpMessageParser(Generic[M]):
    """Base of `HttpRequestParser` and `HttpResponseParser`; not used on its own."""

    # Where to pick up again after garbage or a gap: a line that is unmistakably a start line.
    _resync_point: re.Pattern[bytes]
    _garbage_anomaly = "garbage_before_message"

    def __init__(self, flow: FlowKey, *, midstream: bool = False, limits: ReassemblyLimits | None = None) -> None:
        self.flow = flow
        self.limits = limits or ReassemblyLimits()
        # Picked up mid-stream or after a gap, the next start line must be unmistakable:
        # a body line such as "abc def" is not a request.
        self._resyncing = midstream
        self._buffer = bytearray()
        self._ready: deque[M | Anomaly | ProtocolSwitch] = deque()
        self._state = _State.HEAD
        self._last_ts = 0.0
        self._message_ts = 0.0
        self._head: M | None = None
        self._anomalies: list[str] = []
        self._body = bytearray()
        self._body_length = 0
        self._body_kept_whole = True  # False once a gap or the inspection depth cut the body
        self._remaining = 0
        self._count = 0
        self._received = 0  # stream offset: bytes received plus bytes lost in gaps
        self.last_end_offset = 0  # stream offset just past the last finished message
        self.tunnel_bytes = 0
        # After CONNECT or Upgrade, until the next bytes show whether HTTP/1 goes on.
        self._switch_asked: HttpRequest | None = None
        self._switch_confirmed = False
        self._head_handed_out = False  # once `in_progress` gave the head away, it is never changed

    # -- public face -------------------------------------------------------------------

    def receive_data(self, data: bytes, ts: float) -> None:
        self._received += len(data)
        if self._state is _State.TUNNEL:
            self.tunnel_bytes += len(data)
            return
        if self._state is _State.HEAD and not self._buffer.strip():
            self._message_ts = ts
        self._last_ts = ts
        self._buffer += data

    def receive_gap(self, size: int, ts: float) -> None:
        """`size` bytes of the stream were lost here (never seen by the mirror)."""
        self._drain_into_ready()
        self._received += size
        self._last_ts = ts
        if self._state is _State.TUNNEL:
            self.tunnel_bytes += size
            return
        if self._head is None:
            self._gap_between_messages(size)
        elif self._state is _State.BODY and size < self._remaining:
            self._remaining -= size
            self._count_lost_body(size)
        elif self._state is _State.UNTIL_CLOSE:
            self._count_lost_body(size)
        else:
            if self._state is _State.BODY:
                self._body_length += self._remaining  # the lost bytes ended this body
            else:
                self._body_length += size  # the gap's bytes belonged to this body
            self._anomalies.append("tcp_gap")
            self._ready.append(self._finish(complete=False))
            self._resyncing = True  # what follows the gap starts anywhere

    def next_event(self) -> M | Anomaly | ProtocolSwitch | NeedData:
        if self._ready:
            return self._ready.popleft()
        if not self._buffer and self._state is not _State.TRAILERS and self._switch_asked is None:
            return NEED_DATA  # the common case, kept cheap: everything received was consumed
        while True:
            event = self._step()
            if event is not None:
                return event

    def close(self) -> M | None:
        """The stream ended: the message in progress, if any (incomplete unless it ends at close)."""
        if self._head is None:
            return None
        if self._state is _State.UNTIL_CLOSE:
            return self._finish(complete="tcp_gap" not in self._anomalies)
        self._anomalies.append("message_incomplete")
        return self._finish(complete=False)

    def take_queued(self) -> list[M | Anomaly | ProtocolSwitch]:
        """The events queued and not handed out, without parsing further: after `close`, the
        `ProtocolSwitch` that the end of a response inside a tunnel announces."""
        queued = list(self._ready)
        self._ready.clear()
        return queued

    @property
    def in_progress(self) -> M | None:
        """The head of the message being read (its body not yet complete), if any.

        Once read here the head is the caller's too, so the parser copies rather than fills it.
        """
        self._head_handed_out = self._head is not None
        return self._head

    @property
    def in_tunnel(self) -> bool:
        return self._state is _State.TUNNEL

    def switch_protocol(self) -> bool:
        """The connection left HTTP/1 (a confirmed CONNECT or Upgrade): count what follows.

        Returns False if it had already been switched.
        """
        self._switch_asked = None
        if self._state is _State.TUNNEL:
            return False
        self._state = _State.TUNNEL
        self.tunnel_bytes += len(self._buffer)
        self._buffer.clear()
        return True

    # -- for subclasses ----------------------------------------------------------------

    def _parse_start_line(self, line: bytes) -> StartLine[M] | None:
        raise NotImplementedError

    def _is_start_line(self, line: bytes) -> bool:
        return self._parse_start_line(line) is not None

    def _body_framing(self, message: M) -> int | BodyFraming:
        """The body's length, or how else it ends, for this message head."""
        raise NotImplementedError

    def _after_message(self, message: M) -> None:
        """Called with every finished message, before it is handed out."""

    def _looks_like_message_start(self, head: bytes) -> bool | None:
        """Whether `head` starts a message of this direction; None when too short to tell."""
        raise NotImplementedError

    def _pending_event(self) -> ProtocolSwitch | NeedData | None:
        """After CONNECT/Upgrade: another message means HTTP/1 goes on; anything else is the new protocol."""
        asked = self._switch_asked
        if asked is None:
            return None
        if asked.version != "HTTP/2.0":  # after the HTTP/2 preface there is no doubt
            head = bytes(self._buffer[:64]).lstrip(b"\r\n")
            if not head:
                return None
            verdict = self._looks_like_message_start(head)
            # Undecided (a token with no end yet) waits, but no longer than a head may be long:
            # past that no message starts here, and the buffer stays bounded.
            if verdict is None and len(self._buffer) <= self.limits.max_head_bytes:
                return NEED_DATA
            if verdict:
                self._switch_asked = None
                return None
        confirmed = self._switch_confirmed
        self.switch_protocol()
        protocol = asked.switch_protocol
        return ProtocolSwitch(
            ts=self._last_ts, flow=self.flow, protocol=protocol, target=asked.target, confirmed=confirmed
        )

    def _finish(self, *, complete: bool) -> M:
        assert self._head is not None
        body = bytes(self._body)
        decoded = None
        if complete and self._body_kept_whole and body:
            decoded = decode_body(self._head.header("content-encoding"), body, self.limits, self._anomalies)
        message = self._filled(
            self._head,
            body=body,
            body_length=self._body_length,
            complete=complete,
            anomalies=tuple(self._anomalies),
            decoded_body=decoded,
            index=self._count,
        )
        self._count += 1
        self.last_end_offset = self._received - len(self._buffer)
        self._head = None
        self._body = bytearray()
        if self._state is not _State.TUNNEL:
            self._state = _State.HEAD
        self._message_ts = self._last_ts  # what is left in the buffer came with the last data
        self._after_message(message)
        return message

    def _filled(self, head: M, **values: object) -> M:
        """`head` with `values`: changed in place while this parser is its only holder, which
        saves a copy per message on the hot path; copied once it has been handed out."""
        if self._head_handed_out:
            return replace(head, **values)  # type: ignore[arg-type]
        _fill(head, **values)
        return head

    # -- the state machine -------------------------------------------------------------

    def _step(self) -> M | Anomaly | ProtocolSwitch | NeedData | None:
        state = self._state
        if state is _State.HEAD:
            pending = self._pending_event()
            return pending if pending is not None else self._parse_head()
        if state is _State.BODY:
            return self._read_body()
        if state is _State.CHUNK_SIZE:
            return self._read_chunk_size()
        if state is _State.CHUNK_DATA:
            return self._read_chunk_data()
        if state is _State.CHUNK_DATA_END:
            return self._read_chunk_data_end()
        if state is _State.TRAILERS:
            return self._read_trailers()
        if state is _State.UNTIL_CLOSE:
            self._take_body(len(self._buffer))
            return NEED_DATA
        self.tunnel_bytes += len(self._buffer)
        self._buffer.clear()
        return NEED_DATA

    def _drain_into_ready(self) -> None:
        while (event := self._step()) is not NEED_DATA:
            if event is not None:
                self._ready.append(event)

    # -- start line and header fields --------------------------------------------------

    def _parse_head(self) -> M | Anomaly | NeedData | None:
        buffer = self._buffer
        start = 0
        while buffer.startswith(b"\r\n", start) or buffer.startswith(b"\n", start):
            start += 1 if buffer[start] == 0x0A else 2  # RFC 9112 section 2.2: ignore empty lines
        if start:
            del buffer[:start]
        if self._resyncing and buffer:
            line_end = buffer.find(b"\n")
            if line_end >= 0 and not self._is_start_line(bytes(buffer[:line_end]).removesuffix(b"\r")):
                return self._resync(bytes(buffer[:line_end]))
        match = _HEAD_END.search(buffer)
        if match is None:
            if len(buffer) > self.limits.max_head_bytes:
                return self._discard("header_too_long", len(buffer))
            return NEED_DATA
        head = bytes(buffer[: match.start()])
        head_end, terminator = match.end(), match.group()  # before the buffer changes under the match
        lines = head.split(b"\n")
        parsed = self._parse_start_line(lines[0].removesuffix(b"\r"))
        if parsed is None:
            return self._resync(lines[0])
        self._resyncing = False
        del buffer[:head_end]
        message, self._anomalies = parsed
        # The last line's CR, if any, is inside the matched terminator.
        if terminator != b"\r\n\r\n" or any(not line.endswith(b"\r") for line in lines[:-1]):
            self._anomalies.append("bare_lf")
        headers = self._parse_header_lines([line.removesuffix(b"\r") for line in lines[1:]])
        _fill(message, ts=self._message_ts, headers=headers, index=self._count)  # built just above
        return self._start_body(message)

    def _parse_header_lines(self, lines: list[bytes]) -> tuple[tuple[str, str], ...]:
        headers: list[tuple[str, str]] = []
        for line in lines:
            if line[:1] in (b" ", b"\t"):
                self._anomalies.append("obs_fold")
                if headers:  # RFC 9112 section 5.2: replace the fold with a space
                    folded_name, folded_value = headers[-1]
                    headers[-1] = (folded_name, f"{folded_value} {line.strip().decode('latin-1')}")
                continue
            name, colon, value = line.partition(b":")
            if not colon:
                self._anomalies.append("header_without_colon")
                continue
            if name != name.rstrip():
                self._anomalies.append("whitespace_before_colon")
            headers.append((name.strip().decode("latin-1"), value.strip(b" \t").decode("latin-1")))
        return tuple(headers)

    # -- bodies ------------------------------------------------------------------------

    def _start_body(self, message: M) -> M | None:
        self._head = message
        self._head_handed_out = False
        self._body = bytearray()
        self._body_length = 0
        self._body_kept_whole = True
        framing = self._body_framing(message)
        if framing is BodyFraming.CHUNKED:
            self._state = _State.CHUNK_SIZE
            return None
        if framing is BodyFraming.UNTIL_CLOSE:
            self._state = _State.UNTIL_CLOSE
            return None
        if framing is BodyFraming.TUNNEL:
            self._state = _State.TUNNEL
            return self._finish(complete=True)
        if framing == _NO_BODY:
            return self._finish(complete=True)
        self._remaining = framing
        self._state = _State.BODY
        return None

    def _content_length_framing(self, headers: tuple[tuple[str, str], ...]) -> int | BodyFraming | None:
        """Framing from Transfer-Encoding and Content-Length (RFC 9112 section 6.3), or None if neither."""
        transfer_encoding = [v for k, v in headers if k.lower() == "transfer-encoding"]
        content_length = [v for k, v in headers if k.lower() == "content-length"]
        if transfer_encoding:
            codings = [c.strip().lower() for v in transfer_encoding for c in v.split(",")]
            if content_length:
                self._anomalies.append("content_length_and_chunked")
            if codings[-1] == "chunked":  # RFC 9112 section 6.3 rule 4
                return BodyFraming.CHUNKED
            self._anomalies.append("unknown_transfer_encoding")
            return None
        if not content_length:
            return None
        if len({v.strip() for v in content_length}) > 1 or "," in content_length[0]:
            self._anomalies.append("multiple_content_length")
        first = content_length[0].split(",")[0].strip()
        # ASCII digits only ("²".isdigit() is true, and int() refuses it), and no more than any
        # body can be: a longer number is no length but an attempt (int() refuses 4,300 digits).
        if not (first.isascii() and first.isdigit()) or len(first.lstrip("0")) > _MAX_LENGTH_DIGITS:
            self._anomalies.append("invalid_content_length")
            return None
        return int(first)

    def _take_body(self, count: int) -> int:
        """Move up to `count` buffered bytes into the body; returns how many moved."""
        taken = min(count, len(self._buffer))
        room = self.limits.body_inspection_bytes - len(self._body)
        if self._body_kept_whole and room > 0:
            self._body += self._buffer[: min(taken, room)]
        if taken > room:
            self._body_kept_whole = False
        del self._buffer[:taken]
        self._body_length += taken
        return taken

    def _count_lost_body(self, size: int) -> None:
        """A gap inside a body whose end is still known: count it, keep no bytes past it."""
        self._body_length += size
        self._body_kept_whole = False
        if "tcp_gap" not in self._anomalies:
            self._anomalies.append("tcp_gap")

    def _read_body(self) -> M | NeedData:
        self._remaining -= self._take_body(self._remaining)
        if self._remaining:
            return NEED_DATA
        return self._finish(complete="tcp_gap" not in self._anomalies)

    def _read_line(self) -> bytes | None:
        end = self._buffer.find(b"\n")
        if end < 0:
            return None
        line = bytes(self._buffer[:end]).removesuffix(b"\r")
        del self._buffer[: end + 1]
        return line

    def _read_chunk_size(self) -> M | NeedData | None:
        line = self._read_line()
        if line is None:
            if len(self._buffer) > self.limits.max_head_bytes:
                self._anomalies.append("invalid_chunk_size")
                self._resyncing = True
                return self._finish(complete=False)
            return NEED_DATA
        size_text = line.split(b";", 1)[0].strip(b" \t")
        if (
            not size_text
            or not all(c in b"0123456789abcdefABCDEF" for c in size_text)
            or len(size_text.lstrip(b"0")) > _MAX_CHUNK_SIZE_DIGITS
        ):
            self._anomalies.append("invalid_chunk_size")
            self._resyncing = True
            return self._finish(complete=False)
        size = int(size_text, 16)
        if size == 0:
            self._state = _State.TRAILERS
        else:
            self._remaining = size
            self._state = _State.CHUNK_DATA
        return None

    def _read_chunk_data(self) -> NeedData | None:
        self._remaining -= self._take_body(self._remaining)
        if self._remaining:
            return NEED_DATA
        self._state = _State.CHUNK_DATA_END
        return None

    def _read_chunk_data_end(self) -> M | NeedData | None:
        line = self._read_line()
        if line is None:
            return self._line_too_long("chunk_missing_crlf")
        if line:
            self._anomalies.append("chunk_missing_crlf")
        self._state = _State.CHUNK_SIZE
        return None

    def _read_trailers(self) -> M | NeedData:
        while (line := self._read_line()) is not None:
            if not line:
                return self._finish(complete=True)
            if self._head is not None and b":" in line:
                name, _, value = line.partition(b":")
                trailer = (name.strip().decode("latin-1"), value.strip().decode("latin-1"))
                self._head = self._filled(self._head, headers=(*self._head.headers, trailer))
        return self._line_too_long("header_too_long")

    def _line_too_long(self, anomaly: str) -> M | NeedData:
        """No line end yet: wait, unless the line is past any sane length (memory stays bounded)."""
        if len(self._buffer) <= self.limits.max_head_bytes:
            return NEED_DATA
        self._anomalies.append(anomaly)
        self._resyncing = True
        return self._finish(complete=False)

    # -- losing bytes ------------------------------------------------------------------

    def _gap_between_messages(self, size: int) -> None:
        """A gap with no message in progress, or inside a head: keep what can be kept."""
        partial = self._partial_head()
        if partial is not None:
            partial_message, self._anomalies = partial
            self._head = partial_message
            self._body_length = 0
            self._anomalies.append("tcp_gap")
            self._ready.append(self._finish(complete=False))
        lost = len(self._buffer)
        self._buffer.clear()
        detail = f"{size} bytes missing" + (f", {lost} bytes of a message head dropped" if lost else "")
        self._ready.append(Anomaly(ts=self._last_ts, flow=self.flow, name="tcp_gap", detail=detail))
        self._resyncing = True

    def _partial_head(self) -> StartLine[M] | None:
        """A head cut by a gap after its start line: the message with the fields that did arrive."""
        lines = bytes(self._buffer.lstrip(b"\r\n")).split(b"\n")
        if len(lines) < 2:
            return None
        parsed = self._parse_start_line(lines[0].removesuffix(b"\r"))
        if parsed is None:
            return None
        message, anomalies = parsed
        self._anomalies = anomalies
        headers = self._parse_header_lines([line.removesuffix(b"\r") for line in lines[1:-1]])
        self._buffer.clear()
        _fill(message, ts=self._message_ts, headers=headers, index=self._count)  # built just above
        return message, self._anomalies

    def _discard(self, name: str, count: int, detail: str = "") -> Anomaly:
        del self._buffer[:count]
        self._message_ts = self._last_ts
        return Anomaly(ts=self._last_ts, flow=self.flow, name=name, detail=f"{count} bytes discarded{detail}")

    def _resync(self, bad_line: bytes) -> Anomaly | NeedData:
        """Skip bytes that start no message, up to the next line that does."""
        found = self._resync_point.search(self._buffer, 1)
        if found is None:
            # Keep what follows the last line break: a start line may still be arriving.
            count = self._buffer.rfind(b"\n") + 1
            if not count:
                if len(self._buffer) <= self.limits.max_head_bytes:
                    return NEED_DATA
                count = len(self._buffer)
        else:
            count = found.start()
        return self._discard(self._garbage_anomaly, count, f", starting {shorten(bad_line)!r}")


def _fill(message: HttpMessage, **values: object) -> None:
    """Set fields of a message no one else holds yet (frozen for everyone else)."""
    for name, value in values.items():
        object.__setattr__(message, name, value)


def shorten(data: bytes, limit: int = 40) -> bytes:
    return data if len(data) <= limit else data[:limit] + b"..."
