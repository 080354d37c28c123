"""The end of a replay judges by capture time, as every packet before it, never by the clock.

A response that only ends with the capture (a body delimited by the connection's close, the
capture stopping first) completes in `RequestStream.finish()`. Its request's hits waited for
it; however long the replay took in wall time, they must leave with its status, on the
packet-by-packet path, on the record path and in a worker process alike.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from capture import PacketDecoder
from oob_analyzer.detection import DetectionEngine, default_detectors
from oob_analyzer.pipeline import (
    RequestStream,
    RunSummary,
    analyze_event_runs,
    analyze_packets,
    file_event_runs,
    iter_packets,
)
from oob_analyzer.response_wait import HitsAwaitingResponse
from oob_analyzer.workers.child import FlowWorker
from oob_analyzer.workers.flows import segment_to_tuple
from tests.builders import CLIENT, SERVER, ethernet_frame, ipv4_packet, pcap_file, tcp_header
from tests.workers.runs import ListSink

REQUEST = b"GET /items?id=1'+OR+'1'='1 HTTP/1.1\r\nHost: shop.example.com\r\n\r\n"
# No Content-Length, no chunking: the body ends when the connection does, here after the capture.
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nstill sending"


def _frame(payload: bytes, *, from_client: bool, seq: int, ack: int, flags: int) -> bytes:
    if from_client:
        header = tcp_header(sport=40000, dport=80, seq=seq, ack=ack, flags=flags)
        return ethernet_frame(ipv4_packet(header + payload, src=CLIENT, dst=SERVER))
    header = tcp_header(sport=80, dport=40000, seq=seq, ack=ack, flags=flags)
    return ethernet_frame(ipv4_packet(header + payload, src=SERVER, dst=CLIENT))


def _capture(where: Path) -> Path:
    frames = [
        _frame(b"", from_client=True, seq=100, ack=0, flags=0x02),
        _frame(b"", from_client=False, seq=500, ack=101, flags=0x12),
        _frame(REQUEST, from_client=True, seq=101, ack=501, flags=0x18),
        _frame(RESPONSE, from_client=False, seq=501, ack=101 + len(REQUEST), flags=0x18),
    ]
    path = where / "cut-before-close.pcap"
    path.write_bytes(pcap_file([(1.0 + i / 100, frame) for i, frame in enumerate(frames)]))
    return path


class SlowClock:
    """Wall time that moves ten seconds each time it is read: a very slow replay."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 10.0
        return self.now


@pytest.mark.parametrize("record_path", [False, True], ids=["packet by packet", "record path"])
def test_hits_whose_response_ends_with_the_capture_carry_its_status(tmp_path: Path, record_path: bool) -> None:
    path, summary, stream, sink = _capture(tmp_path), RunSummary(), RequestStream(), ListSink()
    awaiting = HitsAwaitingResponse(clock=SlowClock())
    engine = DetectionEngine(default_detectors())
    if record_path:
        runs = file_event_runs(stream, [path], summary)
        assert runs is not None
        analyze_event_runs(runs, engine=engine, sink=sink, summary=summary, stream=stream, awaiting=awaiting)
    else:
        packets = iter_packets([path], summary)
        analyze_packets(packets, engine=engine, sink=sink, summary=summary, stream=stream, awaiting=awaiting)
    assert (summary.requests, summary.responses) == (1, 1)
    assert sink.hits, "the request is an SQL injection"
    assert {hit.response_status for hit in sink.hits} == {200}


def test_a_worker_ends_by_capture_time_too(tmp_path: Path) -> None:
    worker = FlowWorker(DetectionEngine(default_detectors()))
    worker.waiting = HitsAwaitingResponse(clock=SlowClock())
    decoder = PacketDecoder()
    segments = [decoder.decode(packet) for packet in iter_packets([_capture(tmp_path)], RunSummary())]
    worker.analyze([segment_to_tuple(segment) for segment in segments if segment is not None])
    results = worker.finish(close_connections=True)
    assert results is not None and results.hits
    assert {hit.response_status for hit in results.hits} == {200}
