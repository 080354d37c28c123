"""The mirror receiver over real loopback sockets: answers, keep-alive, origins, refusals, drops."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oob_analyzer.detection import AttackHit
from tests.mirror.conftest import CollectingSink, read_responses, running_mirror, wait_until, was_refused

SQLI_TARGET = "/products?id=1%27%20OR%20%271%27%3D%271"
NO_CONTENT = b"HTTP/1.1 204 No Content\r\n\r\n"


def request_bytes(target: str = SQLI_TARGET, *headers: str, host: str = "shop.example.com", body: bytes = b"") -> bytes:
    lines = [f"POST {target} HTTP/1.1" if body else f"GET {target} HTTP/1.1", f"Host: {host}", *headers]
    if body:
        lines += ["Content-Type: application/x-www-form-urlencoded", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def test_every_request_on_a_keep_alive_connection_is_answered_204_and_analyzed() -> None:
    sink = CollectingSink()
    with running_mirror(sink) as mirror:
        connection = http.client.HTTPConnection("127.0.0.1", mirror.port, timeout=5)
        statuses = []
        for target in (SQLI_TARGET, "/search?q=%3Cscript%3Ealert(1)%3C/script%3E", "/clean?x=1"):
            connection.request("GET", target, headers={"Host": "shop.example.com"})
            response = connection.getresponse()
            statuses.append((response.status, response.read()))
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        connection.request("POST", "/comments", body=b"comment=<img src=x onerror=alert(1)>", headers=form)
        statuses.append((connection.getresponse().status, b""))
        connection.close()
        summary = mirror.stop()
    assert statuses == [(204, b""), (204, b""), (204, b""), (204, b"")]
    assert [(hit.attack_type, hit.target, hit.point) for hit in sink.hits] == [
        ("sqli", SQLI_TARGET, "query.id"),
        ("xss", "/search?q=%3Cscript%3Ealert(1)%3C/script%3E", "query.q"),
        ("xss", "/comments", "body.form.comment"),
    ]
    assert summary.receiver.connections == 1
    assert (summary.receiver.requests, summary.analyzed, summary.hits, summary.receiver.dropped) == (4, 4, 3, 0)


def test_pipelined_requests_split_at_every_offset_are_each_answered_once() -> None:
    sink = CollectingSink()
    stream = request_bytes() + request_bytes("/ok") + request_bytes("/form", body=b"a=1' OR '1'='1")
    with running_mirror(sink) as mirror:
        for offset in (1, 17, len(stream) // 2, len(stream) - 1):
            with mirror.connect() as sock:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.sendall(stream[:offset])
                time.sleep(0.01)
                sock.sendall(stream[offset:])
                assert read_responses(sock, 3) == [NO_CONTENT] * 3
        summary = mirror.stop()
    assert summary.receiver.requests == 12 and summary.analyzed == 12
    assert [hit.target for hit in sink.hits] == [SQLI_TARGET, "/form"] * 4


def test_connection_close_and_http10_are_answered_then_closed() -> None:
    sink = CollectingSink()
    with running_mirror(sink) as mirror:
        for raw in (request_bytes("/a", "Connection: close"), b"GET /b HTTP/1.0\r\nHost: x\r\n\r\n"):
            with mirror.connect() as sock:
                sock.sendall(raw)
                received = b""
                while chunk := sock.recv(4096):  # the receiver closes: recv returns b""
                    received += chunk
                assert received == b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"
        mirror.stop()


def test_envoy_shadow_host_is_recorded_as_the_original_host() -> None:
    sink = CollectingSink()
    with running_mirror(sink, trusted=["127.0.0.0/8"]) as mirror:
        with mirror.connect() as sock:
            sock.sendall(
                request_bytes(
                    SQLI_TARGET,
                    "X-Forwarded-For: 203.0.113.7",
                    "X-Request-Id: 1f7e0c2a-0c5d-4d7e-9a39-2b8f0d3b9c11",
                    "X-Envoy-Internal: true",
                    host="api.example.com-shadow:8443",
                )
            )
            assert read_responses(sock, 1) == [NO_CONTENT]
        mirror.stop()
    [hit] = sink.hits
    assert (hit.host, hit.src_ip, hit.src_port, hit.attack_type) == ("api.example.com:8443", "203.0.113.7", 0, "sqli")
    assert hit.tunnel.startswith("http-mirror:127.0.0.1>127.0.0.1:")
    assert "X-Request-Id: 1f7e0c2a-0c5d-4d7e-9a39-2b8f0d3b9c11" in hit.request_excerpt
    assert "Host: api.example.com:8443\r\n" in hit.request_excerpt


def test_untrusted_peer_forwarded_for_is_ignored() -> None:
    sink = CollectingSink()
    with running_mirror(sink, trusted=["10.0.0.0/8"]) as mirror:
        with mirror.connect() as sock:
            sock.sendall(request_bytes(SQLI_TARGET, "X-Forwarded-For: 203.0.113.7", "X-Real-IP: 203.0.113.7"))
            assert read_responses(sock, 1) == [NO_CONTENT]
            peer_port = sock.getsockname()[1]
        mirror.stop()
    [hit] = sink.hits
    assert (hit.src_ip, hit.src_port) == ("127.0.0.1", peer_port)


def test_peers_outside_allow_are_refused_and_counted() -> None:
    sink = CollectingSink()
    with running_mirror(sink, allow=["192.0.2.0/24"]) as mirror:
        with mirror.connect() as sock:
            sock.sendall(request_bytes())
            assert was_refused(sock)
        summary = mirror.stop()
    assert (summary.receiver.refused, summary.receiver.requests, sink.hits) == (1, 0, [])


def test_request_cut_short_at_shutdown_is_still_analyzed() -> None:
    sink = CollectingSink()
    with running_mirror(sink) as mirror, mirror.connect() as sock:
        # One small send arrives whole on loopback: once the first request is answered,
        # the receiver holds the second one's beginning too.
        cut = request_bytes("/form", body=b"user=admin'--&pad=" + b"x" * 100)[:-50]
        sock.sendall(request_bytes("/ok") + cut)
        assert read_responses(sock, 1) == [NO_CONTENT]
        summary = mirror.stop()
    assert (summary.receiver.requests, summary.receiver.incomplete, summary.analyzed) == (1, 1, 2)
    assert [(hit.target, hit.point) for hit in sink.hits] == [("/form", "body.form.user")]


class BlockingSink:
    """A database that hangs: the first record() waits until released."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.hits: list[AttackHit] = []

    def record(self, hits: Sequence[AttackHit]) -> None:
        self.entered.set()
        assert self.release.wait(timeout=10)
        self.hits.extend(hits)


def test_full_queue_drops_and_counts_without_blocking_the_sender() -> None:
    sink = BlockingSink()
    with running_mirror(sink, queue_size=2) as mirror:
        with mirror.connect() as sock:
            sock.sendall(request_bytes())
            assert read_responses(sock, 1) == [NO_CONTENT]
            assert sink.entered.wait(timeout=5)  # the analysis thread is stuck in the sink
            started = time.monotonic()
            sock.sendall(b"".join(request_bytes(f"/p{i}?id=1%27%20OR%201=1--") for i in range(10)))
            assert read_responses(sock, 10) == [NO_CONTENT] * 10
            answered_in = time.monotonic() - started
            # Each answer leaves before its request is offered to the queue: wait for the offers.
            assert wait_until(lambda: mirror.service.live_stats.dropped == 8)
        sink.release.set()
        summary = mirror.stop()
    assert answered_in < 1.0
    assert (summary.receiver.requests, summary.receiver.dropped, summary.analyzed) == (11, 8, 3)
    assert [hit.target.split("?")[0] for hit in sink.hits] == ["/products", "/p0", "/p1"]


def test_queue_memory_budget_drops_big_requests_while_analysis_lags() -> None:
    sink = BlockingSink()
    with running_mirror(sink, queue_bytes=10_000) as mirror:
        with mirror.connect() as sock:
            sock.sendall(request_bytes())
            assert read_responses(sock, 1) == [NO_CONTENT]
            assert sink.entered.wait(timeout=5)
            big = request_bytes("/upload", body=b"data=" + b"A" * 20_000)
            small = request_bytes("/small?id=1%27%20OR%201=1--")
            sock.sendall(big + small)
            assert read_responses(sock, 2) == [NO_CONTENT] * 2
            assert wait_until(lambda: mirror.service.live_stats.dropped == 1)
        sink.release.set()
        summary = mirror.stop()
    assert (summary.receiver.requests, summary.receiver.dropped, summary.analyzed) == (3, 1, 2)
    assert [hit.target.split("?")[0] for hit in sink.hits] == ["/products", "/small"]


@settings(max_examples=25, deadline=None)
@given(garbage=st.binary(max_size=300))
def test_garbage_never_stops_the_receiver(garbage: bytes) -> None:
    sink = CollectingSink()
    with running_mirror(sink) as mirror:
        with mirror.connect() as sock:
            sock.sendall(garbage)
        with mirror.connect() as sock:  # the next sender is served as if nothing happened
            sock.sendall(request_bytes())
            assert read_responses(sock, 1) == [NO_CONTENT]
        summary = mirror.stop()
    assert summary.analyzed == summary.receiver.requests + summary.receiver.incomplete
    assert SQLI_TARGET in [hit.target for hit in sink.hits]


def test_connections_beyond_the_limit_are_refused_and_counted() -> None:
    sink = CollectingSink()
    with running_mirror(sink, max_connections=2) as mirror:
        first, second = mirror.connect(), mirror.connect()
        for sock in (first, second):
            sock.sendall(request_bytes("/ok"))
            assert read_responses(sock, 1) == [NO_CONTENT]
        with mirror.connect() as third:
            third.sendall(request_bytes("/ok"))
            assert was_refused(third)
        first.close()
        second.close()
        summary = mirror.stop()
    assert (summary.receiver.connections, summary.receiver.over_limit, summary.receiver.requests) == (2, 1, 2)


def test_ipv6_listener_and_peer() -> None:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    sink = CollectingSink()
    with running_mirror(sink, host="::1", trusted=["::1/128"]) as mirror:
        with mirror.connect("::1") as sock:
            sock.sendall(request_bytes(SQLI_TARGET, "X-Forwarded-For: 2001:db8::7", "X-Server-Addr: [2001:db8::80]"))
            assert read_responses(sock, 1) == [NO_CONTENT]
        mirror.stop()
    [hit] = sink.hits
    assert (hit.src_ip, hit.dst_ip, hit.tunnel) == ("2001:db8::7", "2001:db8::80", "http-mirror:::1>::1:0")


class FailingSink:
    """A database that has gone away."""

    def record(self, hits: Sequence[AttackHit]) -> None:
        raise RuntimeError("database is gone")


def test_a_failing_sink_stops_the_service_and_hands_back_the_hits() -> None:
    with running_mirror(FailingSink()) as mirror:
        with mirror.connect() as sock:
            sock.sendall(request_bytes())
            assert read_responses(sock, 1) == [NO_CONTENT]
        assert mirror.thread is not None
        mirror.thread.join(timeout=10)  # it stops by itself
        assert not mirror.thread.is_alive()
        summary = mirror.summary
    assert summary is not None
    assert summary.error == (
        "analysis stopped: RuntimeError: database is gone; 1 hits not recorded, 0 queued requests not analyzed"
    )
    assert [(hit.target, hit.attack_type) for hit in summary.unrecorded] == [(SQLI_TARGET, "sqli")]


def test_garbage_between_requests_is_named_in_the_summary() -> None:
    sink = CollectingSink()
    with running_mirror(sink) as mirror:
        with mirror.connect() as sock:
            sock.sendall(b"\x16\x03\x01 not http\r\n" + request_bytes())
            assert read_responses(sock, 1) == [NO_CONTENT]
        summary = mirror.stop()
    assert summary.receiver.anomalies == {"garbage_before_request": 1}
    assert summary.line().endswith("1 analyzed, 1 hits; stream anomalies: garbage_before_request 1")
