"""Worker processes find exactly what the in-process path finds, on real and generated captures.

Same requests, same hits, same anomaly sightings, same counters (packets, decode drops and
anomalies, connection tracking): any flow split over two workers would show, since each
half would be picked up mid-stream or not at all.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.reassembly_generate import Impairments, packets, write_pcap
from capture import RawPacket
from oob_analyzer.pipeline import RunSummary
from tests.builders import (
    CLIENT,
    SERVER,
    ethernet_frame,
    ipv4_fragments,
    ipv4_packet,
    outer_ipv4_udp,
    pcap_file,
    tcp_header,
    vxlan_header,
)
from tests.paths import SAMPLES, SHARED
from tests.workers.runs import FULL_ENGINE, ListSink, full_engine, run_in_process, run_in_workers


def assert_same_run(single: tuple[RunSummary, ListSink], parallel: tuple[RunSummary, ListSink]) -> None:
    (summary, sink), (parallel_summary, parallel_sink) = single, parallel
    assert parallel_summary == summary
    assert parallel_sink.found() == sink.found()
    assert (len(sink.hits), len(sink.sightings)) == (summary.hits, summary.anomalies)


def test_shared_reference_captures(tmp_path: Path) -> None:
    """Every reference pcap (tunnels, fragments, gaps, smuggling, pipelining...) in one run."""
    sources = [SHARED / "pcaps", SAMPLES]
    single = run_in_process(sources, full_engine())
    assert single[0].requests > 1000 and single[0].hits > 10 and single[0].anomalies > 10
    assert_same_run(single, run_in_workers(sources, 3, FULL_ENGINE))


def test_generated_capture_with_loss_retransmission_and_reordering(tmp_path: Path) -> None:
    pcap = tmp_path / "generated.pcap"
    write_pcap(pcap, packets(400, 4, Impairments(0.02, 0.02, 0.02), 5, tmp_path / "truth.jsonl"))
    single = run_in_process([pcap], full_engine())
    assert single[0].requests > 1500
    assert single[0].drops["connections"] == 400
    assert_same_run(single, run_in_workers([pcap], 2, FULL_ENGINE))


def vxlan_sessions(tmp_path: Path, sessions: int) -> Path:
    """The same inner connection (client:40000 -> server:80) mirrored through `sessions` VNIs:
    an SQL injection each, with a different id, and the server's answer."""
    records: list[tuple[float, bytes]] = []
    for vni in range(1, sessions + 1):
        request = f"GET /item?id={vni}%27%20OR%20%271%27%3D%271 HTTP/1.1\r\nHost: shop.example.com\r\n\r\n".encode()
        response = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
        to_server = ethernet_frame(ipv4_packet(tcp_header(seq=1, ack=1) + request, src=CLIENT, dst=SERVER))
        to_client = ethernet_frame(
            ipv4_packet(
                tcp_header(sport=80, dport=40000, seq=1, ack=1 + len(request)) + response, src=SERVER, dst=CLIENT
            )
        )
        ts = float(vni)
        records.append((ts, outer_ipv4_udp(vxlan_header(vni) + to_server)))
        records.append((ts + 0.1, outer_ipv4_udp(vxlan_header(vni) + to_client)))  # one mirror session
    path = tmp_path / "vxlan.pcap"
    path.write_bytes(pcap_file(records))
    return path


@pytest.mark.parametrize("workers", [2, 5])
def test_one_inner_flow_in_many_vxlan_sessions(tmp_path: Path, workers: int) -> None:
    """Each session is its own flow, kept whole on one worker: every request is paired with
    its response (a response on another worker would be a connection of its own)."""
    path = vxlan_sessions(tmp_path, 24)
    single = run_in_process([path], full_engine())
    assert single[0].requests == 24 and single[0].hits == 24
    parallel = run_in_workers([path], workers, FULL_ENGINE)
    assert_same_run(single, parallel)
    assert parallel[0].drops["connections"] == 24  # one per session, none for a stray answer
    assert sorted({hit.tunnel for hit in parallel[1].hits}) == sorted(
        {f"vxlan:198.18.0.5>198.18.0.99:{vni}" for vni in range(1, 25)}
    )


def fragmented_requests(tmp_path: Path, connections: int) -> Path:
    """Connections whose request crosses in IPv4 fragments (put together by the dispatcher, as
    a segment) and whose answer does not (packed as a frame): the two must meet on one worker."""
    records: list[tuple[float, bytes]] = []
    for number in range(connections):
        port = 40000 + number
        request = f"GET /item?id={number}%27%20OR%20%271%27%3D%271 HTTP/1.1\r\nHost: a.example\r\n\r\n".encode()
        response = b"HTTP/1.1 500 Oops\r\nContent-Length: 2\r\n\r\nno"
        packet = ipv4_packet(tcp_header(sport=port, seq=1, ack=1) + request, src=CLIENT, dst=SERVER)
        ts = float(number)
        records += [(ts, ethernet_frame(fragment)) for fragment in ipv4_fragments(packet, size=48, ident=number)]
        answer = tcp_header(sport=80, dport=port, seq=1, ack=1 + len(request)) + response
        records.append((ts + 0.1, ethernet_frame(ipv4_packet(answer, src=SERVER, dst=CLIENT))))
    path = tmp_path / "fragments.pcap"
    path.write_bytes(pcap_file(records))
    return path


@pytest.mark.parametrize("workers", [2, 3])
def test_fragmented_requests_meet_their_packed_answers(tmp_path: Path, workers: int) -> None:
    path = fragmented_requests(tmp_path, 40)
    single = run_in_process([path], full_engine())
    assert single[0].requests == 40 and single[0].responses == 40 and single[0].hits == 40
    parallel = run_in_workers([path], workers, FULL_ENGINE)
    assert_same_run(single, parallel)
    assert {hit.response_status for hit in parallel[1].hits} == {500}  # each answer met its request


def test_a_live_source_idling_between_packets(tmp_path: Path) -> None:
    """A live source yields None when it waited in vain; the results are the same."""
    path = vxlan_sessions(tmp_path, 6)
    single = run_in_process([path], full_engine())
    summary = RunSummary()
    from oob_analyzer.pipeline import iter_packets  # noqa: PLC0415

    def with_idle() -> list[RawPacket | None]:
        mixed: list[RawPacket | None] = []
        for packet in iter_packets([path], summary):
            mixed += [None, packet]
        return mixed

    from tests.workers.runs import run_packets_in_workers  # noqa: PLC0415

    parallel = run_packets_in_workers(with_idle(), 2, FULL_ENGINE, summary=summary)
    assert_same_run(single, parallel)


def test_a_capture_cut_inside_a_record(tmp_path: Path) -> None:
    """The dispatcher's record path stops at the cut record; the packets before it are
    analyzed, and the damage is reported, as in process."""
    whole = tmp_path / "whole.pcap"
    write_pcap(whole, packets(300, 4, Impairments(0.0, 0.0, 0.0), 7, tmp_path / "truth.jsonl"))
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 3])
    single = run_in_process([cut], full_engine())
    assert single[0].errors and single[0].requests > 500
    assert_same_run(single, run_in_workers([cut], 2, FULL_ENGINE))
