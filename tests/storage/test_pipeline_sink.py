"""The pipeline hands the writer hits and anomalies; a run stores both, with the run's report."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from oob_analyzer.detection import DetectionEngine, default_detectors
from oob_analyzer.pipeline import RunSummary, analyze_packets
from storage import Anomaly, AttackStore, BatchedWriter, CaptureRun, Hit, Journal, RunReport
from tests.builders import ethernet_frame, ipv4_packet, raw_packet, tcp_header

SMUGGLING = (
    b"POST /login HTTP/1.1\r\nHost: shop.example.com\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"0\r\n\r\n"
)
# Junk that is no request line, then a request: reassembly resynchronises on the request line.
# (A first byte that can start no request, such as a TLS record's, marks the connection not HTTP.)
GARBAGE_THEN_ATTACK = b"junk\r\nGET /search?q=%3Cscript%3Ealert(1)%3C/script%3E HTTP/1.1\r\nHost: x\r\n\r\n"


def test_a_run_stores_its_hits_anomalies_and_report(db_url: str, tmp_path: Path) -> None:
    packets = [
        raw_packet(ethernet_frame(ipv4_packet(tcp_header(sport=41000) + SMUGGLING)), ts=1_793_613_600.0),
        # With its SYN, so reassembly knows where the stream starts and sees the garbage as such.
        raw_packet(ethernet_frame(ipv4_packet(tcp_header(sport=41001, seq=0, flags=0x02))), ts=1_793_613_601.0),
        raw_packet(
            ethernet_frame(ipv4_packet(tcp_header(sport=41001, seq=1) + GARBAGE_THEN_ATTACK)), ts=1_793_613_601.1
        ),
    ]
    store = AttackStore.open(db_url)
    writer = BatchedWriter(store, journal=Journal(tmp_path / "journal"))
    summary = RunSummary(packets=len(packets))
    analyze_packets(packets, engine=DetectionEngine(default_detectors()), sink=writer, summary=summary)
    writer.close(
        RunReport(run_key=writer.run_key, source="test", started=0.0, finished=1.0, status="completed",
                  packets=summary.packets, requests=summary.requests, hits=summary.hits, anomalies=summary.anomalies)
    )  # fmt: skip
    with Session(store.engine) as session:
        anomalies = session.scalars(select(Anomaly).order_by(Anomaly.src_port)).all()
        hits = session.scalars(select(Hit).order_by(Hit.src_port)).all()
        (run,) = session.scalars(select(CaptureRun)).all()
        assert [(a.name, a.src_port, a.target) for a in anomalies] == [
            ("content_length_and_chunked", 41000, "/login"),
            ("garbage_before_request", 41001, None),
        ]
        assert "bytes discarded" in anomalies[1].detail
        # The smuggling-shaped request is itself a hit: detection reports protocol anomalies.
        assert [(h.attack_type, h.src_port) for h in hits] == [("protocol", 41000), ("xss", 41001)]
        assert (run.requests, run.hits, run.anomalies) == (2, 2, 2)
    store.close()
