"""Sans-I/O HTTP/1.x request parser for one client->server byte stream (RFC 9112).

Feed it the bytes of one direction with `receive_data(data, ts)`, then call `next_event()`
until it returns `NEED_DATA`; `close()` at the end of the stream hands back a message cut
short. It parses tolerantly, as a passive monitor must: what a strict server would refuse is
still parsed, and the oddity is recorded as a named anomaly on the request. It never raises
on malformed input.
"""

from __future__ import annotations

import re
from dataclasses import replace
from enum import Enum, auto
from typing import Final

from reassembly.events import Anomaly, FlowKey, HttpRequest

__all__ = ["NEED_DATA", "HttpRequestParser", "NeedData"]


class NeedData(Enum):
    NEED_DATA = auto()


NEED_DATA: Final = NeedData.NEED_DATA

# RFC 9110 section 5.6.2: token = 1*tchar
_TOKEN = rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_REQUEST_LINE = re.compile(rb"(" + _TOKEN + rb") +(.*?)(?: +(HTTP/\d\.\d))? *$", re.DOTALL)
# Where to pick up again after garbage: a line that is unmistakably a request line.
_RESYNC_POINT = re.compile(rb"(?m)^" + _TOKEN + rb" [^\r\n]+ HTTP/\d\.\d\r?$")
_HEAD_END = re.compile(rb"\r?\n\r?\n")


class _State(Enum):
    HEAD = auto()
    BODY = auto()
    CHUNK_SIZE = auto()
    CHUNK_DATA = auto()
    CHUNK_DATA_END = auto()
    TRAILERS = auto()


class HttpRequestParser:
    """Turns one client->server byte stream into `HttpRequest` and `Anomaly` events."""

    def __init__(
        self,
        flow: FlowKey,
        *,
        midstream: bool = False,
        max_head_bytes: int = 64 * 1024,
        body_inspection_bytes: int = 1 << 20,
    ) -> None:
        self.flow = flow
        # Picked up mid-stream, the first request must carry its version to be believed:
        # a body line such as "abc def" is not a request.
        self._need_version = midstream
        self.max_head_bytes = max_head_bytes
        self.body_inspection_bytes = body_inspection_bytes
        self._buffer = bytearray()
        self._state = _State.HEAD
        self._last_ts = 0.0
        self._message_ts = 0.0
        self._head: HttpRequest | None = None
        self._anomalies: list[str] = []
        self._body = bytearray()
        self._body_length = 0
        self._remaining = 0

    def receive_data(self, data: bytes, ts: float) -> None:
        if self._state is _State.HEAD and not self._buffer.strip():
            self._message_ts = ts
        self._last_ts = ts
        self._buffer += data

    def next_event(self) -> HttpRequest | Anomaly | NeedData:
        while True:
            if self._state is _State.HEAD:
                event = self._parse_head()
            elif self._state is _State.BODY:
                event = self._read_body()
            elif self._state is _State.CHUNK_SIZE:
                event = self._read_chunk_size()
            elif self._state is _State.CHUNK_DATA:
                event = self._read_chunk_data()
            elif self._state is _State.CHUNK_DATA_END:
                event = self._read_chunk_data_end()
            else:
                event = self._read_trailers()
            if event is not None:
                return event

    def close(self) -> HttpRequest | None:
        """The stream ended: the request in progress, if any, marked incomplete."""
        if self._head is None:
            return None
        self._anomalies.append("message_incomplete")
        return self._finish(complete=False)

    # -- request line and headers ------------------------------------------------------

    def _parse_head(self) -> HttpRequest | Anomaly | NeedData | None:
        buffer = self._buffer
        start = 0
        while buffer.startswith(b"\r\n", start) or buffer.startswith(b"\n", start):
            start += 1 if buffer[start] == 0x0A else 2  # RFC 9112 section 2.2: ignore empty lines
        if start:
            del buffer[:start]
        match = _HEAD_END.search(buffer)
        if match is None:
            if len(buffer) > self.max_head_bytes:
                return self._discard("header_too_long", len(buffer))
            return NEED_DATA
        head = bytes(buffer[: match.start()])
        head_end, terminator = match.end(), match.group()  # before the buffer changes under the match
        lines = head.split(b"\n")
        request_line = lines[0].removesuffix(b"\r")
        parsed = _REQUEST_LINE.fullmatch(request_line)
        if parsed is None or (self._need_version and parsed.group(3) is None):
            return self._resync(request_line)
        self._need_version = False
        del buffer[:head_end]
        self._anomalies = []
        # The last line's CR, if any, is inside the matched terminator.
        if terminator != b"\r\n\r\n" or any(not line.endswith(b"\r") for line in lines[:-1]):
            self._anomalies.append("bare_lf")
        method, target, version = parsed.groups()
        if version is None:
            self._anomalies.append("http09_request_line")
        if b" " in target:
            self._anomalies.append("space_in_target")
        headers = self._parse_header_lines([line.removesuffix(b"\r") for line in lines[1:]])
        self._head = HttpRequest(
            ts=self._message_ts,
            flow=self.flow,
            method=method.decode("latin-1"),
            target=target.decode("latin-1"),
            version=version.decode("latin-1") if version else "HTTP/0.9",
            headers=headers,
        )
        self._body = bytearray()
        self._body_length = 0
        return self._start_body(headers)

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

    def _start_body(self, headers: tuple[tuple[str, str], ...]) -> HttpRequest | None:
        transfer_encoding = [v for k, v in headers if k.lower() == "transfer-encoding"]
        content_length = [v for k, v in headers if k.lower() == "content-length"]
        if transfer_encoding:
            codings = [c.strip().lower() for v in transfer_encoding for c in v.split(",")]
            if content_length:
                self._anomalies.append("content_length_and_chunked")
            if codings[-1] == "chunked":  # RFC 9112 section 6.3 rule 4
                self._state = _State.CHUNK_SIZE
                return None
            self._anomalies.append("unknown_transfer_encoding")
            return self._finish(complete=True)
        if not content_length:
            return self._finish(complete=True)
        if len({v.strip() for v in content_length}) > 1 or "," in content_length[0]:
            self._anomalies.append("multiple_content_length")
        first = content_length[0].split(",")[0].strip()
        if not first.isdigit():
            self._anomalies.append("invalid_content_length")
            return self._finish(complete=True)
        self._remaining = int(first)
        if self._remaining == 0:
            return self._finish(complete=True)
        self._state = _State.BODY
        return None

    # -- bodies ------------------------------------------------------------------------

    def _take_body(self, wanted: int) -> int:
        taken = min(wanted, len(self._buffer))
        room = self.body_inspection_bytes - len(self._body)
        if room > 0:
            self._body += self._buffer[: min(taken, room)]
        del self._buffer[:taken]
        self._body_length += taken
        return taken

    def _read_body(self) -> HttpRequest | NeedData:
        self._remaining -= self._take_body(self._remaining)
        if self._remaining:
            return NEED_DATA
        return self._finish(complete=True)

    def _read_line(self) -> bytes | None:
        end = self._buffer.find(b"\n")
        if end < 0:
            return None
        line = bytes(self._buffer[:end]).removesuffix(b"\r")
        del self._buffer[: end + 1]
        return line

    def _read_chunk_size(self) -> HttpRequest | NeedData | None:
        line = self._read_line()
        if line is None:
            if len(self._buffer) > self.max_head_bytes:
                self._anomalies.append("invalid_chunk_size")
                return self._finish(complete=False)
            return NEED_DATA
        size_text = line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            size = -1
        if size < 0 or not size_text:
            self._anomalies.append("invalid_chunk_size")
            return self._finish(complete=False)
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

    def _read_chunk_data_end(self) -> NeedData | None:
        line = self._read_line()
        if line is None:
            return NEED_DATA
        if line:
            self._anomalies.append("chunk_missing_crlf")
        self._state = _State.CHUNK_SIZE
        return None

    def _read_trailers(self) -> HttpRequest | NeedData:
        while (line := self._read_line()) is not None:
            if not line:
                return self._finish(complete=True)
            if self._head is not None and b":" in line:
                name, _, value = line.partition(b":")
                trailer = (name.strip().decode("latin-1"), value.strip().decode("latin-1"))
                self._head = replace(self._head, headers=(*self._head.headers, trailer))
        return NEED_DATA

    # -- endings -----------------------------------------------------------------------

    def _finish(self, *, complete: bool) -> HttpRequest:
        assert self._head is not None
        request = replace(
            self._head,
            body=bytes(self._body),
            body_length=self._body_length,
            complete=complete,
            anomalies=tuple(self._anomalies),
        )
        self._head = None
        self._body = bytearray()
        self._state = _State.HEAD
        self._message_ts = self._last_ts  # what is left in the buffer came with the last data
        return request

    def _discard(self, name: str, count: int, detail: str = "") -> Anomaly:
        del self._buffer[:count]
        self._message_ts = self._last_ts
        return Anomaly(ts=self._last_ts, flow=self.flow, name=name, detail=f"{count} bytes discarded{detail}")

    def _resync(self, bad_line: bytes) -> Anomaly:
        """Skip bytes that are no request line, up to the next line that is one."""
        found = _RESYNC_POINT.search(self._buffer, 1)
        if found is None:
            # Keep what follows the last line break: a request line may still be arriving.
            count = self._buffer.rfind(b"\n") + 1 or len(self._buffer)
        else:
            count = found.start()
        return self._discard("garbage_before_request", count, f", starting {_shorten(bad_line)!r}")


def _shorten(data: bytes, limit: int = 40) -> bytes:
    return data if len(data) <= limit else data[:limit] + b"..."
