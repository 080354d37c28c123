"""The compiled connection tracker (reassembly/_fasttrack*.c) against the pure-Python reference.

The compiled tracker must never disagree: for the same segments it must hand back the same
events (same types, order and field values, `repr` included), the same stats and the same
capture-loss counts, whatever the limits. Fed: every shared and sample capture (with the
default limits and with tight ones), the benchmark's generated captures with loss,
retransmission and reordering, and hypothesis-built connections: request and response
streams (the edge cases of the parser tests among them, and garbage) cut at random, then
segments dropped, duplicated, overlapped with other bytes, reordered, cut short, with
acknowledgements right or wrong, FIN and RST anywhere, ports reused, time jumping.
"""

from __future__ import annotations

import gzip
import random
import zlib
from collections.abc import Iterable
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.reassembly_generate import Connection, Impairments
from capture import PacketDecoder, RawPacket, TcpSegment, read_captures
from reassembly import ConnectionTracker, HttpRequest, ReassemblyEvent, ReassemblyLimits
from tests.paths import SAMPLES, SHARED

pytestmark = pytest.mark.skipif(not ConnectionTracker().compiled, reason="reassembly._fasttrack is not built")

SYN, ACK, PSH, FIN, RST = TcpSegment.SYN, TcpSegment.ACK, TcpSegment.PSH, TcpSegment.FIN, TcpSegment.RST
CAPTURES = sorted(
    p
    for root in (SHARED / "pcaps", SAMPLES)
    if root.exists()
    for p in root.rglob("*")
    if p.suffix in {".pcap", ".pcapng"}
)
TIGHT = ReassemblyLimits(
    max_flows=3,
    idle_timeout=0.5,
    max_pending_bytes_per_direction=2000,
    max_pending_bytes_total=5000,
    overlap_check_bytes=16,
    max_head_bytes=200,
    body_inspection_bytes=50,
    max_decoded_body_bytes=100,
)
ODD = ReassemblyLimits(max_flows=1, overlap_check_bytes=0, body_inspection_bytes=0, max_head_bytes=0)
Outcome = tuple[list[ReassemblyEvent], dict[str, int], object, list[tuple[int, int]]]


def run(segments: Iterable[TcpSegment], limits: ReassemblyLimits | None, *, compiled: bool) -> Outcome:
    tracker = ConnectionTracker(limits, compiled=compiled)
    assert tracker.compiled is compiled
    events: list[ReassemblyEvent] = []
    sizes: list[tuple[int, int]] = []
    for segment in segments:
        events += tracker.receive_segment(segment)
        sizes.append((tracker.tracked_connections, tracker.pending_bytes))
    events += tracker.close_all()
    sizes.append((tracker.tracked_connections, tracker.pending_bytes))
    return events, dict(tracker.stats), tracker.capture_loss, sizes


def assert_same(segments: list[TcpSegment], limits: ReassemblyLimits | None = None) -> list[ReassemblyEvent]:
    """Both trackers over `segments`: identical events, stats, capture loss, sizes along the way."""
    reference = run(segments, limits, compiled=False)
    compiled = run(segments, limits, compiled=True)
    expected, got = reference[0], compiled[0]
    for index, (want, have) in enumerate(zip(expected, got, strict=False)):
        assert type(want) is type(have) and want == have and repr(want) == repr(have), index
    assert len(expected) == len(got)
    assert compiled[1] == reference[1]
    assert list(compiled[1]) == list(reference[1])  # the same keys, in the same order
    assert compiled[2:] == reference[2:]
    return expected


def decoded(path: Path) -> list[TcpSegment]:
    decoder = PacketDecoder()
    return [s for s in (decoder.decode(p) for p in read_captures([path], on_error=lambda exc: None)) if s is not None]


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: str(p.relative_to(p.parents[1])))
@pytest.mark.parametrize("limits", [None, TIGHT, ODD], ids=["default", "tight", "odd"])
def test_every_capture(path: Path, limits: ReassemblyLimits | None) -> None:
    assert_same(decoded(path), limits)


def test_the_captures_hold_http() -> None:
    """The captures above are no empty comparison: they hold requests, responses and anomalies."""
    kinds = {type(e).__name__ for path in CAPTURES for e in run(decoded(path), None, compiled=True)[0]}
    assert {"HttpRequest", "HttpResponse", "Anomaly", "ProtocolSwitch"} <= kinds


def generated(connections: int, impairments: Impairments, seed: int) -> list[TcpSegment]:
    rng = random.Random(seed)
    decoder = PacketDecoder()
    frames = []
    for number in range(connections):
        frames += Connection(number, 1_700_000_000 + number * 0.002, 4, impairments, rng).packets
    frames.sort(key=lambda item: item[0])
    packets = (RawPacket(ts=ts, data=data, linktype=1, wire_length=len(data)) for ts, data in frames)
    return [s for s in (decoder.decode(p) for p in packets) if s is not None]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(
    "impairments",
    [Impairments(0.0, 0.0, 0.0), Impairments(0.01, 0.02, 0.02), Impairments(0.1, 0.2, 0.3)],
    ids=["clean", "benchmark", "heavy"],
)
def test_generated_captures(seed: int, impairments: Impairments) -> None:
    segments = generated(40, impairments, seed)
    events = assert_same(segments)
    assert_same(segments, TIGHT)
    assert sum(type(e).__name__ == "HttpRequest" for e in events) > 100


# -- hypothesis-built connections ---------------------------------------------------------

REQUESTS = [
    b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n",
    b"POST /p HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789",
    b"PUT /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;x=1\r\nhello\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n",
    b"POST /z HTTP/1.1\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(gzip.compress(b"q=1' OR 1=1"))
    + gzip.compress(b"q=1' OR 1=1"),
    b"POST /d HTTP/1.1\r\nContent-Encoding: deflate, br\r\nContent-Length: 4\r\n\r\nnope",
    b"POST /d HTTP/1.1\r\nContent-Encoding: deflate\r\nContent-Length: %d\r\n\r\n" % len(zlib.compress(b"x" * 500))
    + zlib.compress(b"x" * 500),
    b"GET / HTTP/1.\r\n\r\n",
    b"OPTIONS\r\n\r\n",
    b"GET  /two  spaces  HTTP/1.1\r\nA : b\r\n folded\r\nno colon\r\n\r\n",
    b"GET /lf HTTP/1.1\nHost: h\n\n",
    b"\r\n\r\nGET /after-crlf HTTP/1.1\r\n\r\n",
    b"POST /both HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: gzip, chunked\r\n\r\n1\r\na\r\n0\r\n\r\n",
    b"POST /te HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
    b"POST /cl HTTP/1.1\r\nContent-Length: 3, 3\r\nContent-Length: 4\r\n\r\nabc",
    b"POST /bad HTTP/1.1\r\nContent-Length: x\r\n\r\n",
    b"POST /huge HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
    b"POST /chunk HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"POST /chunk HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXX\r\n0\r\n\r\n",
    b"CONNECT abc:443 HTTP/1.1\r\nHost: abc:443\r\n\r\n",
    b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    b"hello there\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00",
    b"GET /shell?cd+/tmp;wget+ http://x HTTP/1.1\r\n\r\n",
    b"DELETE /x HTTP/1.1\r\nContent-Length: 2\r\n\r\nab",
    b"X" * 300 + b"\r\n",
    b"GET /up HTTP/1.1\r\nUpgrade: h2c\r\n\r\n" + b"A" * 250,
]
RESPONSES = [
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    b"HTTP/1.1 100 Continue\r\n\r\n",
    b"HTTP/1.1 204 No Content\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwxyz\r\n0\r\nTrailer: t\r\n\r\n",
    b"HTTP/1.0 200\r\nServer: s\r\n\r\nuntil close",
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello",
    b"HTTP/1.1 200 Connection established\r\n\r\n",
    b"HTTP/1.1 304 Not Modified\r\n\r\n",
    b"HTTP/1.1 413 Too Large\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1  404  Not  Found\r\nContent-Length: 2\r\n\r\nno",
    b"garbage HTTP/1.1 200 x\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 3\r\n\r\nabc",
]

CLIENT, SERVER = "10.0.0.1", "10.0.0.2"


@st.composite
def streams(draw: st.DrawFn, corpus: list[bytes]) -> bytes:
    parts = draw(st.lists(st.sampled_from(corpus), max_size=6))
    if draw(st.booleans()):
        parts.insert(draw(st.integers(0, len(parts))), draw(st.binary(max_size=40)))
    return b"".join(parts)


def impaired(template: TcpSegment, body: bytes, seq: int, when: float, *, truncated: bool = False) -> TcpSegment:
    """`template`'s endpoints, acknowledgement and flags around other bytes."""
    return TcpSegment(
        ts=when,
        src=template.src,
        dst=template.dst,
        sport=template.sport,
        dport=template.dport,
        seq=seq % 2**32,
        ack=template.ack,
        flags=template.flags,
        payload=body,
        truncated=truncated,
    )


@st.composite
def directions(draw: st.DrawFn, data: bytes, isn: int, peer_isn: int, *, from_client: bool) -> list[TcpSegment]:
    """One direction's bytes as impaired segments, in the order they are sent."""
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(data) - 1)), max_size=12)))) if data else []
    bounds = [0, *[c for c in cuts if 0 < c < len(data)], len(data)]
    src, dst, sport, dport = (CLIENT, SERVER, 40000, 80) if from_client else (SERVER, CLIENT, 80, 40000)
    out: list[TcpSegment] = []
    clock = 0.0
    for start, end in pairwise(bounds):
        clock += draw(st.sampled_from([0.001, 0.01, 0.3, 2.0]))
        fate = draw(st.sampled_from(["send"] * 6 + ["drop", "duplicate", "conflict", "overlap", "late", "truncated"]))
        if fate == "drop":
            continue
        payload, seq = data[start:end], isn + 1 + start
        # Right (somewhere in the peer's bytes, ahead of them or behind) or anything at all.
        ack = draw(st.integers(0, 2**32 - 1)) if draw(st.booleans()) else peer_isn + 1 + draw(st.integers(-5, 400))
        flags = draw(st.sampled_from([ACK | PSH, ACK, PSH, ACK | PSH | FIN]))
        when = clock + (draw(st.sampled_from([0.0, 0.05, 1.0])) if fate == "late" else 0.0)
        template = TcpSegment(
            ts=when, src=src, dst=dst, sport=sport, dport=dport, seq=0, ack=ack % 2**32, flags=flags, payload=b""
        )
        if fate == "truncated":
            out.append(impaired(template, payload[: max(1, len(payload) // 2)], seq, when, truncated=True))
        else:
            out.append(impaired(template, payload, seq, when))
        if fate == "duplicate":
            out.append(impaired(template, payload, seq, when + 0.002))
        elif fate == "conflict":
            out.append(impaired(template, bytes(b ^ 0x20 for b in payload), seq, when + 0.002))
        elif fate == "overlap" and start > 0:
            back = draw(st.integers(1, min(start, 50)))
            body = data[start - back : end] if draw(st.booleans()) else b"Z" * (end - start + back)
            out.append(impaired(template, body, seq - back, when + 0.002))
    return out


@st.composite
def connections(draw: st.DrawFn) -> list[TcpSegment]:
    client_isn = draw(st.sampled_from([1000, 2**32 - 20, draw(st.integers(0, 2**32 - 1))]))
    server_isn = draw(st.integers(0, 2**32 - 1))
    request_bytes, response_bytes = draw(streams(REQUESTS)), draw(streams(RESPONSES))
    timeline = draw(directions(request_bytes, client_isn, server_isn, from_client=True))
    timeline += draw(directions(response_bytes, server_isn, client_isn, from_client=False))
    handshake = draw(st.sampled_from(["full", "none", "synack-only"]))
    segments = sorted(timeline, key=lambda item: item.ts)
    if draw(st.booleans()):  # a mirror's reordering beyond the timeline's
        segments = draw(st.permutations(segments))
    opening = []
    if handshake in ("full",):
        opening.append(
            TcpSegment(
                ts=0.0, src=CLIENT, dst=SERVER, sport=40000, dport=80, seq=client_isn, ack=0, flags=SYN, payload=b""
            )
        )
    if handshake in ("full", "synack-only"):
        opening.append(
            TcpSegment(
                ts=0.0,
                src=SERVER,
                dst=CLIENT,
                sport=80,
                dport=40000,
                seq=server_isn,
                ack=(client_isn + 1) % 2**32,
                flags=SYN | ACK,
                payload=b"",
            )
        )
    ending = []
    last = max((s.ts for s in segments), default=0.0)
    for kind in draw(
        st.lists(st.sampled_from(["fin-client", "fin-server", "rst", "rst-far", "syn-again"]), max_size=3)
    ):
        client = kind in ("fin-client", "rst", "syn-again")
        seq = (client_isn + 1 + len(request_bytes)) if client else (server_isn + 1 + len(response_bytes))
        flags = {"fin-client": FIN | ACK, "fin-server": FIN | ACK, "rst": RST, "rst-far": RST, "syn-again": SYN}[kind]
        if kind == "rst-far":
            seq += 1 << 20
        if kind == "syn-again":
            seq += 77
        src, dst, sport, dport = (CLIENT, SERVER, 40000, 80) if client else (SERVER, CLIENT, 80, 40000)
        last += 0.01
        ending.append(
            TcpSegment(
                ts=last, src=src, dst=dst, sport=sport, dport=dport, seq=seq % 2**32, ack=0, flags=flags, payload=b""
            )
        )
    return opening + segments + ending


LIMITS = st.sampled_from(
    [
        None,
        TIGHT,
        ODD,
        ReassemblyLimits(max_pending_bytes_per_direction=30, max_pending_bytes_total=50, overlap_check_bytes=4),
        ReassemblyLimits(max_head_bytes=40, body_inspection_bytes=3, idle_timeout=1.0),
    ]
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(connections(), min_size=1, max_size=3), LIMITS, st.booleans())
def test_hypothesis_connections(
    conns: list[list[TcpSegment]], limits: ReassemblyLimits | None, interleave: bool
) -> None:
    segments: list[TcpSegment] = []
    if interleave:  # the same ports each time: reuse, late segments of a closed one, eviction
        for conn in conns:
            segments += conn
    else:
        offset = 0.0
        for index, conn in enumerate(conns):  # other ports, overlapping in time: the table fills
            segments += [
                TcpSegment(
                    ts=s.ts + offset,
                    src=s.src,
                    dst=s.dst,
                    sport=s.sport + index * (s.sport != 80),
                    dport=s.dport + index * (s.dport != 80),
                    seq=s.seq,
                    ack=s.ack,
                    flags=s.flags,
                    payload=s.payload,
                    truncated=s.truncated,
                )
                for s in conn
            ]
            offset += 0.5
    assert_same(segments, limits)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400), st.integers(1, 50), st.booleans(), st.booleans())
def test_any_bytes_whole_or_byte_by_byte(data: bytes, step: int, handshake: bool, from_client: bool) -> None:
    """Random bytes either way, in steps, after a handshake or mid-stream: same outcome, no error."""
    src, dst, sport, dport = (CLIENT, SERVER, 40000, 80) if from_client else (SERVER, CLIENT, 80, 40000)
    segments = []
    if handshake:
        segments.append(
            TcpSegment(ts=0.0, src=src, dst=dst, sport=sport, dport=dport, seq=99, ack=0, flags=SYN, payload=b"")
        )
    prefix = b"GET / HTTP/1.1\r\n" if from_client else b"HTTP/1.1 200 OK\r\n"
    stream = prefix + data
    for at in range(0, len(stream), step):
        segments.append(
            TcpSegment(
                ts=1.0 + at,
                src=src,
                dst=dst,
                sport=sport,
                dport=dport,
                seq=100 + at,
                ack=0,
                flags=ACK,
                payload=stream[at : at + step],
            )
        )
    assert_same(segments)
    assert_same(segments, TIGHT)


def test_a_segment_that_is_not_one_is_refused_clearly() -> None:
    tracker = ConnectionTracker()
    with pytest.raises(TypeError, match="TcpSegment"):
        tracker.receive_segment(b"GET / HTTP/1.1\r\n\r\n")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="32-bit"):
        tracker.receive_segment(
            TcpSegment(ts=0.0, src=CLIENT, dst=SERVER, sport=1, dport=80, seq=2**32, ack=0, flags=SYN, payload=b"")
        )
    assert tracker.tracked_connections == 0


def test_requests_past_the_unanswered_limit_are_forgotten_alike() -> None:
    request = b"GET /p HTTP/1.1\r\nHost: h\r\n\r\n"
    pipelined = request * 1005
    segments = [
        TcpSegment(ts=0.0, src=CLIENT, dst=SERVER, sport=40000, dport=80, seq=0, ack=0, flags=SYN, payload=b""),
        TcpSegment(ts=1.0, src=CLIENT, dst=SERVER, sport=40000, dport=80, seq=1, ack=0, flags=ACK, payload=pipelined),
        TcpSegment(ts=2.0, src=SERVER, dst=CLIENT, sport=80, dport=40000, seq=5, ack=0, flags=0, payload=RESPONSES[0]),
    ]
    assert_same(segments)
    assert run(segments, None, compiled=True)[1]["requests_forgotten_unanswered_limit"] == 5


def pipelined(requests: list[bytes], *, port: int = 40000) -> list[TcpSegment]:
    """`requests` sent back to back on one connection, each in its own segment."""
    segments = [TcpSegment(ts=0.0, src=CLIENT, dst=SERVER, sport=port, dport=80, seq=0, ack=0, flags=SYN, payload=b"")]
    seq = 1
    for number, request in enumerate(requests):
        segments.append(
            TcpSegment(
                ts=1.0 + number,
                src=CLIENT,
                dst=SERVER,
                sport=port,
                dport=80,
                seq=seq,
                ack=0,
                flags=ACK,
                payload=request,
            )
        )
        seq += len(request)
    return segments


def test_header_fields_that_recur_are_read_alike_every_time() -> None:
    """The compiled parser keeps the fields of lines it has read (sharing them is invisible):
    a line read again must give the same field, and a line that named an anomaly must name it
    again; a fold onto a kept field, or a line a byte longer or shorter, must not touch it."""
    at_limit = b"X-Long: " + b"v" * (160 - 8)
    requests = [
        b"GET /1 HTTP/1.1\r\nHost: h\r\n" + at_limit + b"\r\nX-Longer: " + b"w" * 200 + b"\r\n\r\n",
        b"GET /2 HTTP/1.1\r\nHost: h\r\n folded\r\n" + at_limit + b"v\r\n" + at_limit[:-1] + b"\r\n\r\n",
        b"GET /3 HTTP/1.1\r\nHost : h\r\nHost: h\r\n" + at_limit + b"\r\n\r\n",
        b"GET /4 HTTP/1.1\r\nHost : h\r\nHost: h\r\nX-Longer: " + b"w" * 200 + b"\r\n\r\n",
        b"GET /5 HTTP/1.1\r\nHost: h\r\n" + b"".join(b"X-%d: %d\r\n" % (n, n) for n in range(150)) + b"\r\n",
        b"GET /6 HTTP/1.1\r\nHost: h\r\n" + b"".join(b"X-%d: %d\r\n" % (n, n) for n in range(150)) + b" fold\r\n\r\n",
        b"GET /7 HTTP/1.1\r\nHost: h\r\n: empty name\r\n: empty name\r\nHost:h\r\n\r\n",
    ]
    events = assert_same(pipelined(requests))
    messages = [e for e in events if isinstance(e, HttpRequest)]
    assert [m.target for m in messages] == [f"/{n}" for n in range(1, 8)]
    first, second, third, fourth, fifth, sixth, seventh = messages
    assert first.headers[:2] == (("Host", "h"), ("X-Long", "v" * 152))
    assert second.headers == (("Host", "h folded"), ("X-Long", "v" * 153), ("X-Long", "v" * 151))
    assert second.anomalies == ("obs_fold",)
    assert third.headers[:2] == fourth.headers[:2] == (("Host", "h"), ("Host", "h"))
    assert third.anomalies == fourth.anomalies == ("whitespace_before_colon",)
    assert len(fifth.headers) == 151 and fifth.headers[-1] == ("X-149", "149") and not fifth.anomalies
    assert sixth.headers[-1] == ("X-149", "149 fold") and fifth.headers[-1] == ("X-149", "149")
    assert seventh.headers == (("Host", "h"), ("", "empty name"), ("", "empty name"), ("Host", "h"))


def test_more_distinct_header_lines_than_the_parser_keeps_read_alike() -> None:
    """Thousands of distinct lines, each seen twice and far apart: what the compiled parser
    kept is replaced many times over, and every field still comes out as the reference's."""
    lines = [b"X-Id-%d: value %d" % (n % 37, n) for n in range(6000)]
    requests = [b"GET /%d HTTP/1.1\r\n%s\r\n%s\r\n\r\n" % (n, lines[n], lines[n - 3000]) for n in range(6000)]
    events = assert_same(pipelined(requests))
    assert sum(isinstance(e, HttpRequest) for e in events) == 6000


def test_connections_that_follow_each_other_start_from_clean_buffers() -> None:
    """The compiled tracker hands the memory of a closed connection's buffers to the next ones:
    nothing of what they held may show through (heads cut at the close, bodies of every size,
    bytes kept for overlap checks, then a retransmission that must be compared with them)."""
    segments: list[TcpSegment] = []
    rng = random.Random(7)
    for number in range(300):
        size = rng.choice([0, 10, 700, 1500, 3000, 9000, 20000])
        body = bytes([65 + number % 26]) * size
        request = b"POST /%d HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s" % (number, size, body)
        cut = b"POST /cut-%d HTTP/1.1\r\nContent-Length: 90\r\n\r\n%s" % (number, body[:50])  # cut by the close
        opened = pipelined([request[i : i + 1400] for i in range(0, len(request), 1400)] + [cut], port=1000 + number)
        for segment in opened:
            segments.append(segment)
        last = segments[-1]
        retransmitted = TcpSegment(
            ts=last.ts,
            src=CLIENT,
            dst=SERVER,
            sport=last.sport,
            dport=80,
            seq=last.seq - 5,
            ack=0,
            flags=ACK,
            payload=b"XXXXX" + last.payload,
        )
        fin = TcpSegment(
            ts=last.ts,
            src=CLIENT,
            dst=SERVER,
            sport=last.sport,
            dport=80,
            seq=last.seq + len(last.payload),
            ack=0,
            flags=FIN | ACK,
            payload=b"",
        )
        segments += [retransmitted, fin]
    events = assert_same(segments)
    assert sum(isinstance(e, HttpRequest) and e.complete for e in events) == 300
    assert sum(isinstance(e, HttpRequest) and not e.complete for e in events) == 300


@pytest.mark.parametrize(
    "head",
    [
        b"GET /a HTTP/1.1\nHost: h\r\n\r\n",  # a bare LF inside, CRLF at the end
        b"GET /b HTTP/1.1\r\nHost: h\nX: y\r\n\r\n",
        b"GET /c HTTP/1.1\r\nHost: h\r\n\n",
        b"GET /d HTTP/1.1\r\nHost: h\n\r\n",
        b"GET /e HTTP/1.1\nHost: h\n\n",
        b"GET /f HTTP/1.1\r\nHost: h\r\n\r\n",  # none
    ],
)
def test_bare_line_feeds_anywhere_in_a_head_are_named(head: bytes) -> None:
    events = assert_same(pipelined([head]))
    request = next(e for e in events if isinstance(e, HttpRequest))
    assert ("bare_lf" in request.anomalies) == (head[-4:] != b"\r\n\r\n" or b"\n" in head.replace(b"\r\n", b""))
