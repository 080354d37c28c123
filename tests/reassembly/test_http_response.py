from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reassembly import NEED_DATA, Anomaly, HttpRequest, HttpResponse, HttpResponseParser, ProtocolSwitch
from tests.builders import FLOW, http_request

Event = HttpResponse | Anomaly | ProtocolSwitch

RESPONSES = (
    b"HTTP/1.1 100 Continue\r\n\r\n"
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
    b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"  # answers HEAD: no body
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n"
    b"HTTP/1.1 204 No Content\r\n\r\n"
    b"HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n"
    b"HTTP/1.0 200 OK\r\n\r\nuntil the connection closes"
)
METHODS = ["POST", "HEAD", "GET", "GET", "GET", "GET"]


def parse(chunks: list[bytes], requests: list[HttpRequest] | None = None) -> list[Event]:
    parser = HttpResponseParser(FLOW)
    for request in (
        requests if requests is not None else [http_request(f"/{i}", method=m) for i, m in enumerate(METHODS)]
    ):
        parser.expect(request)
    events: list[Event] = []
    for ts, chunk in enumerate(chunks):
        parser.receive_data(chunk, float(ts))
        while (event := parser.next_event()) is not NEED_DATA:
            events.append(event)
    if (unfinished := parser.close()) is not None:
        events.append(unfinished)
    return events


def summary(events: list[Event]) -> list[tuple[object, ...]]:
    return [
        (e.status, e.request.target if e.request else None, e.body, e.body_length, e.complete, e.anomalies)
        if isinstance(e, HttpResponse)
        else (type(e).__name__, getattr(e, "name", getattr(e, "protocol", "")))
        for e in events
    ]


EXPECTED = [
    (100, "/0", b"", 0, True, ()),
    (200, "/0", b"hello", 5, True, ()),
    (200, "/1", b"", 0, True, ()),
    (200, "/2", b"abc", 3, True, ()),
    (204, "/3", b"", 0, True, ()),
    (304, "/4", b"", 0, True, ()),
    (200, "/5", b"until the connection closes", 27, True, ()),
]


def test_responses_whole_are_framed_by_the_request_they_answer() -> None:
    assert summary(parse([RESPONSES])) == EXPECTED


def test_responses_one_byte_at_a_time() -> None:
    assert summary(parse([RESPONSES[i : i + 1] for i in range(len(RESPONSES))])) == EXPECTED


def test_responses_split_at_every_offset() -> None:
    for cut in range(1, len(RESPONSES)):
        assert summary(parse([RESPONSES[:cut], RESPONSES[cut:]])) == EXPECTED, cut


@given(st.lists(st.integers(1, len(RESPONSES) - 1), max_size=20))
def test_responses_any_split(cuts: list[int]) -> None:
    bounds = [0, *sorted(set(cuts)), len(RESPONSES)]
    assert summary(parse([RESPONSES[a:b] for a, b in pairwise(bounds)])) == EXPECTED


def test_trailers_are_kept_with_the_headers() -> None:
    chunked = parse([RESPONSES])[3]
    assert isinstance(chunked, HttpResponse) and chunked.headers[-1] == ("X-T", "1")


def test_a_response_without_a_request_is_still_parsed_and_named() -> None:
    (response,) = parse([b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno"], requests=[])
    assert summary([response]) == [(404, None, b"no", 2, True, ("response_without_request",))]


@pytest.mark.parametrize(
    ("method", "response", "protocol"),
    [
        ("CONNECT", b"HTTP/1.1 200 Connection established\r\n\r\n", "connect"),
        ("GET", b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", "websocket"),
    ],
)
def test_a_confirmed_switch_ends_http1_and_counts_what_follows(method: str, response: bytes, protocol: str) -> None:
    if method == "CONNECT":
        request = http_request("abc:443", method="CONNECT")
    else:
        request = http_request("/chat", headers=(("Upgrade", "websocket"), ("Connection", "Upgrade")))
    parser = HttpResponseParser(FLOW)
    parser.expect(request)
    tunnelled = b"\x16\x03\x01 tunnelled bytes HTTP/1.1 200 OK\r\n\r\n"
    parser.receive_data(response + tunnelled, 1.0)
    events = []
    while (event := parser.next_event()) is not NEED_DATA:
        events.append(event)
    first, switch = events
    assert isinstance(first, HttpResponse) and first.request is request
    assert isinstance(switch, ProtocolSwitch) and (switch.protocol, switch.confirmed) == (protocol, True)
    assert parser.tunnel_bytes == len(tunnelled)
    assert parser.close() is None


def test_mid_stream_pickup_waits_for_a_status_line() -> None:
    parser = HttpResponseParser(FLOW, midstream=True)
    parser.receive_data(b"end of some body\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0.0)
    events = []
    while (event := parser.next_event()) is not NEED_DATA:
        events.append(event)
    assert summary(events) == [
        ("Anomaly", "garbage_before_response"),
        (200, None, b"", 0, True, ("response_without_request",)),
    ]


def test_after_a_lost_response_the_next_one_answers_the_last_request_complete_before_it() -> None:
    parser = HttpResponseParser(FLOW)
    first, second, third = (http_request(f"/{i}") for i in range(3))
    parser.expect(first, 1.0)
    parser.expect(second, 3.0)
    parser.expect(third, 5.0)
    parser.receive_gap(60, 4.0)  # the response to /0 was lost
    parser.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 4.0)
    events = []
    while (event := parser.next_event()) is not NEED_DATA:
        events.append(event)
    assert summary(events) == [("Anomaly", "tcp_gap"), (200, "/1", b"", 0, True, ())]
    assert parser.requests_unanswered_after_gap == 1


@given(st.binary(max_size=300), st.integers(1, 50), st.sampled_from(["GET", "HEAD", "CONNECT"]))
def test_any_bytes_parse_without_raising_whole_or_in_pieces(data: bytes, step: int, method: str) -> None:
    requests = [http_request("/", method=method)]
    whole = parse([data], requests=list(requests))
    pieces = parse([data[i : i + step] for i in range(0, len(data), step)], requests=list(requests))
    assert all(isinstance(e, (HttpResponse, Anomaly, ProtocolSwitch)) for e in whole + pieces)
    assert sum(len(e.body) for e in whole if isinstance(e, HttpResponse)) <= len(data)


def test_after_a_lost_response_acknowledgements_decide_which_request_is_answered() -> None:
    parser = HttpResponseParser(FLOW)
    first, second = http_request("/0"), http_request("/1")
    # Both requests were handed out at the same moment (say, after a hole on the client side).
    parser.expect(first, 9.0, end_seq=1100)
    parser.expect(second, 9.0, end_seq=1200)
    parser.receive_gap(60, 4.0)  # the response to /0 was lost
    parser.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 4.0, ack=1200)
    events = []
    while (event := parser.next_event()) is not NEED_DATA:
        events.append(event)
    assert summary(events) == [("Anomaly", "tcp_gap"), (200, "/1", b"", 0, True, ())]
