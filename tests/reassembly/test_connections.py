from __future__ import annotations

from capture import TcpSegment
from reassembly import ConnectionTracker, HttpRequest, HttpResponse, ReassemblyEvent
from tests.builders import CLIENT, SERVER, segment

SYN, ACK, PSH, FIN = TcpSegment.SYN, TcpSegment.ACK, TcpSegment.PSH, TcpSegment.FIN
REQUEST = b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n"


def feed(segments: list[TcpSegment]) -> tuple[ConnectionTracker, list[ReassemblyEvent]]:
    tracker = ConnectionTracker()
    events: list[ReassemblyEvent] = []
    for item in segments:
        events += tracker.receive_segment(item)
    return tracker, events


def test_handshake_decides_the_client_and_requests_carry_the_flow() -> None:
    _, events = feed(
        [
            segment(seq=100, flags=SYN),
            segment(seq=900, flags=SYN | ACK, from_client=False),
            segment(REQUEST, seq=101, ts=2.0),
            segment(b"HTTP/1.1 200 OK\r\n\r\n", seq=901, from_client=False),
        ]
    )
    (request,) = events
    assert isinstance(request, HttpRequest)
    assert (request.flow.client, request.flow.client_port, request.flow.server, request.flow.server_port) == (
        CLIENT,
        40000,
        SERVER,
        80,
    )
    assert (request.target, request.ts) == ("/a", 2.0)


def test_segments_out_of_order_and_a_late_fin() -> None:
    first, second = REQUEST[:10], REQUEST[10:]
    _, events = feed(
        [
            segment(seq=100, flags=SYN),
            segment(second, seq=111),
            segment(seq=111 + len(second), flags=FIN | ACK),
            segment(first, seq=101),
        ]
    )
    assert [e.target for e in events if isinstance(e, HttpRequest)] == ["/a"]


def test_pickup_mid_stream_from_a_request() -> None:
    tracker, events = feed([segment(b"some body bytes", seq=5000), segment(REQUEST, seq=7000)])
    assert [e.target for e in events if isinstance(e, HttpRequest)] == ["/a"]
    # The body bytes decide nothing (they look like neither side); the request line does.
    assert tracker.stats == {
        "segment_before_connection_known": 1,
        "connections": 1,
        "connections_picked_up_midstream": 1,
    }


def test_pickup_mid_stream_from_a_response_orients_the_connection() -> None:
    _, events = feed(
        [
            segment(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", seq=900, from_client=False),
            segment(REQUEST, seq=300),
        ]
    )
    response, request = events
    assert isinstance(request, HttpRequest) and request.flow.client == CLIENT
    # The response came first, so it answers a request the capture started too late for.
    assert isinstance(response, HttpResponse) and (response.status, response.request) == (200, None)


def test_a_request_in_progress_at_the_end_is_handed_back_incomplete() -> None:
    tracker, events = feed(
        [segment(seq=100, flags=SYN), segment(b"POST /p HTTP/1.1\r\nContent-Length: 9\r\n\r\nabc", seq=101)]
    )
    assert events == []
    (request,) = tracker.close_all()
    assert isinstance(request, HttpRequest)
    assert (request.body, request.complete) == (b"abc", False)
