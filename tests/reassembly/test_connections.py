from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from capture import TcpSegment
from reassembly import (
    Anomaly,
    ConnectionTracker,
    HttpRequest,
    HttpResponse,
    ProtocolSwitch,
    ReassemblyEvent,
    ReassemblyLimits,
)
from tests.builders import CLIENT, SERVER, segment

# Each test runs against the compiled tracker and the pure-Python reference.
pytestmark = pytest.mark.usefixtures("either_tracker")

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


RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def handshake(client_isn: int = 100, server_isn: int = 900) -> list[TcpSegment]:
    return [segment(seq=client_isn, flags=SYN), segment(seq=server_isn, flags=SYN | ACK, from_client=False)]


def test_responses_are_paired_with_pipelined_requests_and_come_after_them() -> None:
    second = b"HEAD /b HTTP/1.1\r\nHost: h\r\n\r\n"
    _, events = feed(
        [
            *handshake(),
            segment(REQUEST + second, seq=101),
            segment(RESPONSE, seq=901, from_client=False, ack=101 + len(REQUEST + second)),
            segment(
                b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n",
                seq=901 + len(RESPONSE),
                from_client=False,
                ack=101 + len(REQUEST + second),
            ),
        ]
    )
    first_request, second_request, first_response, second_response = events
    assert isinstance(first_response, HttpResponse) and first_response.request is first_request
    assert isinstance(second_response, HttpResponse) and second_response.request is second_request
    assert (first_response.body, second_response.body_length) == (b"ok", 0)  # HEAD: no body


def test_the_connection_closes_after_both_fins_and_a_close_delimited_body_ends_there() -> None:
    tracker, events = feed(
        [
            *handshake(),
            segment(REQUEST, seq=101),
            segment(b"HTTP/1.0 200 OK\r\n\r\nall of it", seq=901, from_client=False, ack=101 + len(REQUEST)),
            segment(seq=101 + len(REQUEST), flags=FIN | ACK),
            segment(seq=901 + 28, flags=FIN | ACK, from_client=False, ack=102 + len(REQUEST)),
        ]
    )
    request, response = events
    assert isinstance(response, HttpResponse) and (response.body, response.complete) == (b"all of it", True)
    assert response.request is request
    assert tracker.tracked_connections == 0 and tracker.stats["connections_closed"] == 1


def test_one_sided_flow_closes_on_the_client_fin() -> None:
    tracker, events = feed([segment(seq=100, flags=SYN), segment(REQUEST, seq=101), segment(seq=129, flags=FIN | ACK)])
    assert [e.target for e in events if isinstance(e, HttpRequest)] == ["/a"]
    assert tracker.tracked_connections == 0


def test_a_fin_before_the_last_data_waits_for_it() -> None:
    tracker, events = feed([segment(seq=100, flags=SYN), segment(seq=101 + len(REQUEST), flags=FIN | ACK)])
    assert (events, tracker.tracked_connections) == ([], 1)
    _, late = feed(
        [segment(seq=100, flags=SYN), segment(seq=101 + len(REQUEST), flags=FIN | ACK), segment(REQUEST, seq=101)]
    )
    assert [e.target for e in late if isinstance(e, HttpRequest)] == ["/a"]


def test_a_conflicting_retransmission_is_an_anomaly_and_the_first_copy_wins() -> None:
    _, events = feed(
        [
            segment(seq=100, flags=SYN),
            segment(b"GET /a HTTP/1.1\r\n", seq=101),
            segment(b"GET /b HTTP/1.1\r\n", seq=101),
            segment(b"Host: h\r\n\r\n", seq=118),
        ]
    )
    anomaly, request = events
    assert isinstance(anomaly, Anomaly) and anomaly.name == "overlap_conflict"
    assert isinstance(request, HttpRequest) and request.target == "/a"


def test_a_hole_that_overflows_the_flow_buffer_is_a_gap_and_parsing_goes_on() -> None:
    limits = ReassemblyLimits(max_pending_bytes_per_direction=64)
    tracker = ConnectionTracker(limits)
    events: list[ReassemblyEvent] = []
    started = b"POST /p HTTP/1.1\r\nContent-Length: 10\r\n\r\nab"
    for item in [segment(seq=100, flags=SYN), segment(started, seq=101)]:
        events += tracker.receive_segment(item)
    # 40 bytes lost, then the rest of the body and two requests arrive: more than 64 bytes held.
    after = 101 + len(started) + 40
    events += tracker.receive_segment(segment(REQUEST + REQUEST + REQUEST, seq=after))
    posted, *following = events
    assert isinstance(posted, HttpRequest) and (posted.complete, posted.anomalies) == (False, ("tcp_gap",))
    assert [e.target for e in following if isinstance(e, HttpRequest)] == ["/a", "/a", "/a"]
    assert tracker.stats["gaps_forced_by_flow_buffer_limit"] == 1
    assert tracker.stats["bytes_lost_in_gaps"] == 40
    assert tracker.pending_bytes == 0


def test_a_syn_flood_is_bounded_by_the_flow_table() -> None:
    tracker = ConnectionTracker(ReassemblyLimits(max_flows=100))
    for port in range(1000, 3000):
        tracker.receive_segment(
            TcpSegment(ts=1.0, src=CLIENT, dst=SERVER, sport=port, dport=80, seq=port, ack=0, flags=SYN, payload=b"")
        )
    assert tracker.tracked_connections == 100
    assert tracker.stats["connections_evicted_table_full"] == 1900


def test_idle_connections_are_closed_and_hand_back_their_message() -> None:
    tracker = ConnectionTracker(ReassemblyLimits(idle_timeout=60.0))
    tracker.receive_segment(segment(seq=100, flags=SYN, ts=0.0))
    tracker.receive_segment(segment(b"POST /slow HTTP/1.1\r\nContent-Length: 99\r\n\r\n", seq=101, ts=1.0))
    events = tracker.receive_segment(
        TcpSegment(ts=100.0, src=CLIENT, dst=SERVER, sport=5, dport=80, seq=1, ack=0, flags=SYN, payload=b"")
    )
    (request,) = events
    assert isinstance(request, HttpRequest) and (request.target, request.complete) == ("/slow", False)
    assert tracker.stats["connections_evicted_idle"] == 1


def test_the_total_buffer_bound_holds_across_connections() -> None:
    tracker = ConnectionTracker(ReassemblyLimits(max_pending_bytes_total=1000, max_pending_bytes_per_direction=800))
    for port in range(1000, 1050):
        tracker.receive_segment(
            TcpSegment(ts=1.0, src=CLIENT, dst=SERVER, sport=port, dport=80, seq=1, ack=0, flags=SYN, payload=b"")
        )
        tracker.receive_segment(
            TcpSegment(
                ts=1.0, src=CLIENT, dst=SERVER, sport=port, dport=80, seq=500, ack=0, flags=ACK, payload=b"x" * 300
            )
        )
        assert tracker.pending_bytes <= 1000
    assert tracker.stats["gaps_forced_by_total_buffer_limit"] > 0


STREAM = (
    b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\n"
    b"POST /2 HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
    b"PUT /3 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    b"GET /4?q=%27 HTTP/1.1\r\n\r\n"
)


@st.composite
def reordered_segments(draw: st.DrawFn) -> list[TcpSegment]:
    cuts = sorted(draw(st.sets(st.integers(1, len(STREAM) - 1), max_size=15)))
    bounds = [0, *cuts, len(STREAM)]
    pieces = [(a, STREAM[a:b]) for a, b in pairwise(bounds)]
    pieces += draw(st.lists(st.sampled_from(pieces), max_size=6))  # duplicates
    for _ in range(draw(st.integers(0, 3))):  # overlaps that carry the same bytes
        start = draw(st.integers(0, len(STREAM) - 2))
        end = draw(st.integers(start + 1, min(len(STREAM), start + 60)))
        pieces.append((start, STREAM[start:end]))
    ordered = draw(st.permutations(pieces))
    isn = draw(st.sampled_from([100, 2**32 - 40]))  # also across the sequence wrap
    return [segment(seq=isn, flags=SYN), *(segment(data, seq=(isn + 1 + at) % 2**32) for at, data in ordered)]


@given(reordered_segments())
def test_any_order_duplication_and_overlap_give_the_requests_of_in_order_delivery(segments: list[TcpSegment]) -> None:
    tracker, events = feed(segments)
    events += tracker.close_all()
    requests = [(e.method, e.target, e.body, e.complete, e.anomalies) for e in events if isinstance(e, HttpRequest)]
    assert requests == [
        ("GET", "/1", b"", True, ()),
        ("POST", "/2", b"hello", True, ()),
        ("PUT", "/3", b"abc", True, ()),
        ("GET", "/4?q=%27", b"", True, ()),
    ]
    assert not [e for e in events if isinstance(e, Anomaly)]


def test_a_connection_that_starts_with_no_request_is_not_parsed_as_http() -> None:
    tracker, events = feed(
        [
            *handshake(),
            segment(b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1 GET / HTTP/1.1\r\n\r\n", seq=101),
            segment(b"\x16\x03\x03 HTTP/1.1 200 OK\r\n\r\n", seq=901, from_client=False),
        ]
    )
    assert events == [] and tracker.stats["connections_not_http"] == 1


def test_a_response_before_the_request_body_ends_is_paired_with_that_request() -> None:
    head = b"POST /upload HTTP/1.1\r\nContent-Length: 100000\r\n\r\n"
    tracker, events = feed(
        [
            *handshake(),
            segment(head + b"x" * 1000, seq=101),
            segment(b"HTTP/1.1 413 Too Large\r\nContent-Length: 0\r\n\r\n", seq=901, from_client=False),
        ]
    )
    (response,) = events
    events += tracker.close_all()
    request = events[-1]
    assert isinstance(response, HttpResponse) and response.request is not None and response.status == 413
    assert isinstance(request, HttpRequest) and (request.index, request.body_length) == (response.request.index, 1000)
    assert response.anomalies == ()


def test_plain_http_through_a_connect_tunnel_is_still_parsed() -> None:
    connect = b"CONNECT abc:443 HTTP/1.1\r\n\r\n\n"  # a stray LF after the head, as in suricata-verify
    established = b"HTTP/1.1 200 OK\r\n\r\n"
    _, events = feed(
        [
            *handshake(),
            segment(connect, seq=101),
            segment(established, seq=901, from_client=False, ack=101 + len(connect)),
            segment(REQUEST, seq=101 + len(connect)),
            segment(RESPONSE, seq=901 + len(established), from_client=False, ack=101 + len(connect + REQUEST)),
        ]
    )
    assert [(type(e).__name__, getattr(e, "target", None)) for e in events] == [
        ("HttpRequest", "abc:443"),
        ("HttpResponse", None),
        ("HttpRequest", "/a"),
        ("HttpResponse", None),
    ]


def test_tls_through_a_connect_tunnel_ends_http1_on_both_sides() -> None:
    connect = b"CONNECT abc:443 HTTP/1.1\r\n\r\n"
    established = b"HTTP/1.1 200 OK\r\n\r\n"
    tracker, events = feed(
        [
            *handshake(),
            segment(connect, seq=101),
            segment(established, seq=901, from_client=False, ack=101 + len(connect)),
            segment(b"\x16\x03\x01\x00\x10 hello", seq=101 + len(connect)),
            segment(
                b"\x16\x03\x03\x00\x10 HTTP/1.1 200 OK\r\n\r\n",
                seq=901 + len(established),
                from_client=False,
                ack=101 + len(connect) + len(b"\x16\x03\x01\x00\x10 hello"),
            ),
        ]
    )
    switches = [e for e in events if isinstance(e, ProtocolSwitch)]
    assert [(s.protocol, s.confirmed) for s in switches] == [("connect", False), ("connect", True)]
    assert [type(e).__name__ for e in events if not isinstance(e, ProtocolSwitch)] == ["HttpRequest", "HttpResponse"]
    assert tracker.stats["protocol_switches_confirmed"] == 1
    tracker.close_all()
    tunnelled = b"\x16\x03\x01\x00\x10 hello" + b"\x16\x03\x03\x00\x10 HTTP/1.1 200 OK\r\n\r\n"
    assert tracker.stats["bytes_not_parsed_after_protocol_switch"] == len(tunnelled)


def test_a_retransmission_after_the_close_does_not_report_the_request_twice() -> None:
    tracker, events = feed(
        [
            segment(seq=100, flags=SYN),
            segment(REQUEST, seq=101),
            segment(seq=101 + len(REQUEST), flags=FIN | ACK),
            segment(REQUEST, seq=101, ts=2.0),
        ]
    )
    events += tracker.close_all()
    assert [e.target for e in events if isinstance(e, HttpRequest)] == ["/a"]
    assert tracker.stats["segments_after_close"] == 1


def test_a_response_to_a_request_the_mirror_lost_is_not_paired_with_the_next_one() -> None:
    lost = b"GET /lost HTTP/1.1\r\n\r\n"
    tracker, events = feed(
        [
            *handshake(),
            # The request at 101 never reaches the mirror; the server acknowledges it all the same.
            segment(RESPONSE, seq=901, from_client=False, ack=101 + len(lost)),
            segment(REQUEST, seq=101 + len(lost)),
            segment(RESPONSE, seq=901 + len(RESPONSE), from_client=False, ack=101 + len(lost + REQUEST)),
        ]
    )
    events += tracker.close_all()  # the hole is given up at the latest here
    gap, request, unpaired, paired = events
    assert isinstance(gap, Anomaly) and gap.name == "tcp_gap"
    assert isinstance(unpaired, HttpResponse) and unpaired.request is None
    assert unpaired.anomalies == ("response_to_unseen_request",)
    assert isinstance(paired, HttpResponse) and paired.request is request


@given(
    st.lists(
        st.tuples(st.booleans(), st.integers(0, 2**32 - 1), st.integers(0, 0x3F), st.binary(max_size=40)),
        max_size=30,
    )
)
def test_any_segments_are_taken_without_raising_and_nothing_is_left_behind(
    raw: list[tuple[bool, int, int, bytes]],
) -> None:
    tracker = ConnectionTracker(ReassemblyLimits(max_pending_bytes_per_direction=64, max_flows=4))
    events: list[ReassemblyEvent] = []
    for from_client, seq, flags, payload in raw:
        events += tracker.receive_segment(
            segment(payload or b"GET / HTTP/1.1\r\n\r\n", seq=seq, flags=flags, from_client=from_client, ack=seq)
        )
    events += tracker.close_all()
    assert all(isinstance(e, ReassemblyEvent) for e in events)
    assert (tracker.tracked_connections, tracker.pending_bytes) == (0, 0)


def test_a_connection_whose_first_segment_was_lost_is_still_parsed() -> None:
    first, rest = b"POST /p HTTP/1.1\r\nContent-Length: 300\r\n\r\n", b"\x00\x01" * 150 + REQUEST
    tracker, events = feed([segment(seq=100, flags=SYN), segment(rest, seq=101 + len(first))])
    events += tracker.close_all()
    assert [e.target for e in events if isinstance(e, HttpRequest)] == ["/a"]
    assert tracker.stats["connections_not_http"] == 0


def test_a_reset_at_the_wrong_sequence_number_is_named_and_does_not_end_the_connection() -> None:
    tracker, events = feed(
        [
            segment(seq=100, flags=SYN),
            segment(b"GET /a HTTP/1.1\r\n", seq=101),
            segment(seq=2**31, flags=TcpSegment.RST),  # injected: nowhere near the stream
            segment(b"Host: h\r\n\r\n", seq=118),
        ]
    )
    anomaly, request = events
    assert isinstance(anomaly, Anomaly) and anomaly.name == "rst_out_of_window"
    assert isinstance(request, HttpRequest) and request.target == "/a"
    assert tracker.stats["resets_out_of_window"] == 1


def test_a_response_that_overtook_the_end_of_its_request_comes_out_right_after_that_end() -> None:
    # Client and server paths to the tap differ: the response (acknowledging the whole request)
    # reaches the mirror before the request's last segment, and must wait for it, no longer.
    head = b"POST /form HTTP/1.1\r\nHost: h\r\nContent-Length: 20\r\n\r\n"
    body = b"name=abc&value=12345"
    request_end = 101 + len(head + body)
    response = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nsaved"
    tracker, events = feed(
        [
            *handshake(),
            segment(head, seq=101, ack=901, ts=1.0),
            segment(response[:20], seq=901, from_client=False, ack=request_end, ts=1.1),
            segment(response[20:], seq=921, from_client=False, ack=request_end, ts=1.1),
        ]
    )
    assert events == []  # the response waits for the request's last bytes
    assert tracker.pending_bytes == len(response)
    arrived = tracker.receive_segment(segment(body, seq=101 + len(head), ack=901 + len(response), ts=1.2))
    assert [type(e).__name__ for e in arrived] == ["HttpRequest", "HttpResponse"]
    request, answer = arrived
    assert isinstance(request, HttpRequest) and isinstance(answer, HttpResponse)
    assert answer.request is not None and answer.request.index == request.index and answer.body == b"saved"
    assert (tracker.pending_bytes, tracker.tracked_connections) == (0, 1)
    # A later server segment goes straight through: nothing is held in front of it any more.
    second = b"GET /next HTTP/1.1\r\nHost: h\r\n\r\n"
    after = tracker.receive_segment(segment(second, seq=request_end, ack=901 + len(response), ts=1.3))
    after += tracker.receive_segment(
        segment(RESPONSE, seq=901 + len(response), from_client=False, ack=request_end + len(second), ts=1.4)
    )
    assert [type(e).__name__ for e in after] == ["HttpRequest", "HttpResponse"]
    assert tracker.close_all() == []
    assert tracker.stats["responses_released_before_their_request"] == 0


def test_a_response_cut_by_the_end_of_http_is_followed_by_its_protocol_switch_at_close() -> None:
    # The server starts a response, then the client's first bytes are TLS: both sides leave
    # HTTP/1 with the response unfinished. Finishing it at close announces the switch.
    started = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial"
    hello = b"\x16\x03\x01\x00\x10 hello"
    tracker, events = feed(
        [
            *handshake(),
            segment(started, seq=901, from_client=False, ack=101, ts=1.0),
            segment(hello, seq=101, ack=901 + len(started), ts=1.1),
        ]
    )
    assert events == []
    closing = tracker.close_all()
    assert [type(e).__name__ for e in closing] == ["HttpResponse", "ProtocolSwitch"]
    response, switch = closing
    assert isinstance(response, HttpResponse) and "message_incomplete" in response.anomalies
    assert isinstance(switch, ProtocolSwitch) and switch.confirmed and switch.protocol == "unknown"
    assert tracker.stats["protocol_switches_confirmed"] == 1
    assert tracker.stats["connections_not_http"] == 1
