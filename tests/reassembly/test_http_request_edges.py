"""Request parsing at the edges: lost bytes, protocol switches, encoded bodies, odd request lines."""

from __future__ import annotations

import gzip
import zlib

import brotli
import pytest

from reassembly import NEED_DATA, Anomaly, HttpRequest, HttpRequestParser, ProtocolSwitch, ReassemblyLimits
from tests.builders import FLOW

Event = HttpRequest | Anomaly | ProtocolSwitch


class Feed:
    """Drives one parser with data and gaps, collecting every event."""

    def __init__(self, limits: ReassemblyLimits | None = None) -> None:
        self.parser = HttpRequestParser(FLOW, limits=limits)
        self.events: list[Event] = []

    def data(self, data: bytes, ts: float = 1.0) -> Feed:
        self.parser.receive_data(data, ts)
        self._drain()
        return self

    def gap(self, size: int, ts: float = 2.0) -> Feed:
        self.parser.receive_gap(size, ts)
        self._drain()
        return self

    def close(self) -> list[Event]:
        if (unfinished := self.parser.close()) is not None:
            self.events.append(unfinished)
        return self.events

    def _drain(self) -> None:
        while (event := self.parser.next_event()) is not NEED_DATA:
            self.events.append(event)


def brief(events: list[Event]) -> list[tuple[object, ...]]:
    return [
        (e.method, e.target, e.body, e.body_length, e.complete, e.anomalies)
        if isinstance(e, HttpRequest)
        else (type(e).__name__, getattr(e, "name", getattr(e, "protocol", "")))
        for e in events
    ]


NEXT = b"GET /next HTTP/1.1\r\nHost: h\r\n\r\n"


def test_a_gap_inside_a_body_of_known_length_keeps_the_message_and_its_end() -> None:
    events = Feed().data(b"POST /p HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc").gap(4).data(b"xyz" + NEXT).close()
    assert brief(events) == [
        ("POST", "/p", b"abc", 10, False, ("tcp_gap",)),  # bytes after the gap are not glued on
        ("GET", "/next", b"", 0, True, ()),
    ]


def test_a_gap_past_the_end_of_a_body_resumes_at_the_next_request_line() -> None:
    events = (
        Feed().data(b"POST /p HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc").gap(50).data(b"ail of x\r\n" + NEXT).close()
    )
    assert brief(events) == [
        ("POST", "/p", b"abc", 10, False, ("tcp_gap",)),
        ("Anomaly", "garbage_before_request"),
        ("GET", "/next", b"", 0, True, ()),
    ]


def test_a_gap_inside_a_chunked_body_ends_the_message() -> None:
    head = b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel"
    events = Feed().data(head).gap(9).data(NEXT).close()
    assert brief(events) == [("POST", "/c", b"hel", 12, False, ("tcp_gap",)), ("GET", "/next", b"", 0, True, ())]


def test_a_gap_inside_a_head_keeps_the_request_line_and_the_fields_that_arrived() -> None:
    events = (
        Feed().data(b"GET /attack?id=1' HTTP/1.1\r\nHost: h\r\nUser-Ag").gap(30).data(b"ent: x\r\n\r\n" + NEXT).close()
    )
    assert brief(events) == [
        ("GET", "/attack?id=1'", b"", 0, False, ("tcp_gap",)),
        ("Anomaly", "tcp_gap"),
        ("Anomaly", "garbage_before_request"),
        ("GET", "/next", b"", 0, True, ()),
    ]
    assert events[0].headers == (("Host", "h"),)  # type: ignore[union-attr]


def test_a_gap_between_messages_is_a_connection_anomaly() -> None:
    events = Feed().data(NEXT).gap(100).data(NEXT).close()
    assert brief(events) == [
        ("GET", "/next", b"", 0, True, ()),
        ("Anomaly", "tcp_gap"),
        ("GET", "/next", b"", 0, True, ()),
    ]


def test_connect_on_a_one_sided_mirror_ends_http1_when_the_tunnel_starts() -> None:
    events = (
        Feed()
        .data(b"CONNECT abc:443 HTTP/1.1\r\nHost: abc:443\r\n\r\n")
        .data(b"\x16\x03\x01\x02\x00\x01 GET / HTTP/1.1\r\n\r\n")
        .close()
    )
    assert brief(events) == [("CONNECT", "abc:443", b"", 0, True, ()), ("ProtocolSwitch", "connect")]


def test_a_refused_connect_is_followed_by_more_http() -> None:
    events = Feed().data(b"CONNECT abc:443 HTTP/1.1\r\n\r\n").data(NEXT).close()
    assert brief(events) == [("CONNECT", "abc:443", b"", 0, True, ()), ("GET", "/next", b"", 0, True, ())]


def test_h2c_upgrade_then_the_http2_preface_ends_http1() -> None:
    upgrade = b"GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n\r\n"
    feed = Feed().data(upgrade)
    for byte in b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00":  # one byte at a time: "PR" is not yet decisive
        feed.data(bytes([byte]))
    assert brief(feed.close()) == [("GET", "/", b"", 0, True, ()), ("ProtocolSwitch", "h2c")]


@pytest.mark.parametrize(
    ("coding", "encode"),
    [("gzip", gzip.compress), ("deflate", zlib.compress), ("br", brotli.compress), ("gzip, br", None)],
)
def test_encoded_request_bodies_are_decoded(coding: str, encode: object) -> None:
    plain = b"q=1' OR '1'='1"
    body = brotli.compress(gzip.compress(plain)) if encode is None else encode(plain)  # type: ignore[operator]
    head = f"POST / HTTP/1.1\r\nContent-Encoding: {coding}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    (request,) = Feed().data(head + body).close()
    assert isinstance(request, HttpRequest)
    assert (request.body, request.decoded_body, request.anomalies) == (body, plain, ())


def test_a_decompression_bomb_is_cut_at_the_ratio_limit() -> None:
    bomb = gzip.compress(b"\0" * 10_000_000)
    head = f"POST / HTTP/1.1\r\nContent-Encoding: gzip\r\nContent-Length: {len(bomb)}\r\n\r\n".encode()
    limits = ReassemblyLimits(max_decompression_ratio=50)
    (request,) = Feed(limits).data(head + bomb).close()
    assert isinstance(request, HttpRequest) and request.decoded_body is not None
    assert len(request.decoded_body) == 50 * len(bomb)
    assert request.anomalies == ("decompression_limit_exceeded",)


def test_a_body_that_is_not_what_its_encoding_says_is_named() -> None:
    (request,) = Feed().data(b"POST / HTTP/1.1\r\nContent-Encoding: gzip\r\nContent-Length: 4\r\n\r\nnope").close()
    assert isinstance(request, HttpRequest)
    assert (request.body, request.decoded_body, request.anomalies) == (b"nope", None, ("invalid_content_encoding",))


@pytest.mark.parametrize(
    ("line", "method", "target", "version", "anomalies"),
    [
        (b"GET / HTTP/1.", "GET", "/", "HTTP/1.", ("invalid_http_version",)),
        (b"OPTIONS", "OPTIONS", "", "HTTP/0.9", ("http09_request_line", "missing_target")),
        (b"QUERY /search HTTP/1.1", "QUERY", "/search", "HTTP/1.1", ()),
        (b"GET  /two  spaces  HTTP/1.1", "GET", "/two  spaces", "HTTP/1.1", ("space_in_target",)),
    ],
)
def test_odd_request_lines(line: bytes, method: str, target: str, version: str, anomalies: tuple[str, ...]) -> None:
    (request,) = Feed().data(line + b"\r\n\r\n").close()
    assert isinstance(request, HttpRequest)
    assert (request.method, request.target, request.version, request.anomalies) == (method, target, version, anomalies)


def test_a_line_that_is_no_request_is_garbage() -> None:
    events = Feed().data(b"hello there\r\n\r\n" + NEXT).close()
    assert brief(events) == [("Anomaly", "garbage_before_request"), ("GET", "/next", b"", 0, True, ())]


@pytest.mark.parametrize(
    ("after_chunk", "anomaly"),
    [(b"3\r\nabcXXXX", "chunk_missing_crlf"), (b"0\r\nX-Trailer: ", "header_too_long")],
)
def test_an_endless_line_inside_a_chunked_body_is_not_buffered(after_chunk: bytes, anomaly: str) -> None:
    feed = Feed(ReassemblyLimits(max_head_bytes=1024))
    feed.data(b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + after_chunk)
    for _ in range(10):
        feed.data(b"a" * 500)
    (request, *rest) = feed.close()
    assert isinstance(request, HttpRequest) and request.complete is False and anomaly in request.anomalies
    # What follows is dropped in bounded pieces, each named, none taken for a request.
    assert rest and all(isinstance(e, Anomaly) and e.name == "header_too_long" for e in rest)


def test_after_an_upgrade_bytes_that_never_decide_are_the_new_protocol_within_the_head_limit() -> None:
    """A token with no end after an Upgrade waited forever, buffering without bound."""
    feed = Feed(ReassemblyLimits(max_head_bytes=1000)).data(b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n")
    for _ in range(5):
        feed.data(b"A" * 300)
    assert brief(feed.close()) == [("GET", "/ws", b"", 0, True, ()), ("ProtocolSwitch", "websocket")]
    assert feed.parser.tunnel_bytes == 1500  # counted, not kept
