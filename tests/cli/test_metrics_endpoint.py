"""`--metrics` for real: `listen`, `replay`, `mirror-server`, `capture` processes scraped on 127.0.0.1.

`listen` writes to the real PostgreSQL through a proxy the test cuts, so `/ready` must say
the database is away; `replay` reads a capture from a pipe the test holds open, with
segments taken out or not, and the capture-loss estimate must say which.
"""

from __future__ import annotations

import dataclasses
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import make_url

from capture import TcpSegment, read_capture
from oob_analyzer.pipeline import RunSummary, extract_events
from reassembly import HttpResponse
from tests.builders import (
    conversation,
    jumbo_connection,
    pcap_file,
    segment_frame,
    tcp_connection_frames,
    vxlan_header,
)
from tests.cli.test_listen import listed_hits, send
from tests.databases import postgres_schema
from tests.metrics.promtext import Exposition, parse
from tests.mirror.command import mirror_server
from tests.mirror.command import send as mirror_send
from tests.paths import SAMPLES
from tests.storage.tcp_proxy import CuttableTcpProxy
from tests.system import require_root

COMMAND = [sys.executable, "-c", "from oob_analyzer.cli import main; main()"]
SAMPLE = SAMPLES / "mirror-http.pcap"


@contextmanager
def running(*args: str, stdin: int | None = None) -> Iterator[tuple[subprocess.Popen[str], int, list[str]]]:
    """The command, the port its metrics are on, and the other lines it wrote on stderr first."""
    process = subprocess.Popen(
        [*COMMAND, *args], stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stderr is not None
        first = process.stderr.readline()
        assert first.startswith("metrics on http://127.0.0.1:"), first + (process.stderr.read() or "")
        yield process, int(first.rsplit(":", 1)[1].split("/")[0]), []
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()  # and close the pipes


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def scrape_until(port: int, done: Callable[[Exposition], bool], what: str, timeout: float = 20) -> Exposition:
    deadline = time.monotonic() + timeout
    while True:
        status, text = get(port, "/metrics")
        assert status == 200
        metrics = parse(text)
        if done(metrics):
            return metrics
        assert time.monotonic() < deadline, f"waited {timeout} s for {what}; last scrape:\n{text}"
        time.sleep(0.1)


def wait_for_status(port: int, path: str, status: int, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while (answer := get(port, path))[0] != status:
        assert time.monotonic() < deadline, f"{path} still answers {answer}"
        time.sleep(0.1)
    return answer[1]


def test_listen_serves_its_counts_and_its_readiness_through_a_database_outage(tmp_path: Path) -> None:
    sample = [packet.data for packet in read_capture(SAMPLE)]
    responses = sum(isinstance(event, HttpResponse) for event in extract_events([SAMPLE], RunSummary()))
    with postgres_schema() as direct_url:
        url = make_url(direct_url)
        proxy = CuttableTcpProxy(url.host or "127.0.0.1", url.port or 5432)
        proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        # Two worker processes: the requests come from their results, the flows from their counters.
        args = ["listen", "--vxlan", "127.0.0.1:0", "--metrics", "127.0.0.1:0", "--db", proxied, "--workers", "2"]
        try:
            with running(*args, "--journal", str(tmp_path / "journal"), "--flush-interval", "0.1") as (
                process,
                port,
                _,
            ):
                assert process.stderr is not None
                banner = process.stderr.readline()
                assert banner.startswith("listening for vxlan on 127.0.0.1:")
                assert wait_for_status(port, "/healthz", 200) == "ok\n"
                assert wait_for_status(port, "/ready", 200) == "ok\n"
                send(int(banner.rsplit(":", 1)[1]), vxlan_header(7), sample)
                metrics = scrape_until(port, lambda m: m.value("oob_analyzer_requests_total") == 9, "9 requests")
                assert metrics.value("oob_analyzer_packets_total") == len(sample)
                # Each datagram is counted as the IP/UDP packet it arrived in (28 bytes) plus VXLAN (8).
                assert metrics.value("oob_analyzer_bytes_total") == sum(len(frame) + 36 for frame in sample)
                assert metrics.value("oob_analyzer_source_events_total", event="datagrams") == len(sample)
                assert metrics.value("oob_analyzer_responses_total") == responses
                flows = scrape_until(port, lambda m: m.value("oob_analyzer_flows_opened_total") > 0, "the flows")
                assert flows.value("oob_analyzer_flows_opened_total") == 3  # the sample's keep-alive connections
                metrics = scrape_until(
                    port,
                    lambda m: (
                        m.value("oob_analyzer_writer_items_total", outcome="written") > 0
                        and m.value("oob_analyzer_queue_depth", queue="writer") == 0
                    ),
                    "the hits to be written",
                )
                hits_by_type = {labels[0][1]: n for labels, n in metrics.family("oob_analyzer_hits_total").items()}
                assert hits_by_type == Counter(str(hit["type"]) for hit in listed_hits(direct_url))
                assert sum(hits_by_type.values()) == 5
                assert metrics.value("oob_analyzer_writer_database_down") == 0

                proxy.cut()
                send(int(banner.rsplit(":", 1)[1]), vxlan_header(7), jumbo_connection())
                reason = wait_for_status(port, "/ready", 503)
                assert reason.startswith("the database is unreachable: ") and "journal" in reason
                assert get(port, "/healthz")[0] == 200  # alive: it journals and goes on
                metrics = scrape_until(
                    port,
                    lambda m: m.value("oob_analyzer_writer_items_total", outcome="journalled") >= 1,
                    "the hit to be journalled",
                )
                assert metrics.value("oob_analyzer_writer_database_down") == 1

                proxy.restore()
                assert wait_for_status(port, "/ready", 200) == "ok\n"
                process.send_signal(signal.SIGINT)
                stdout, stderr = process.communicate(timeout=30)
                assert process.returncode == 0, stderr
        finally:
            proxy.close()
        assert stdout == f"{len(sample) + 2} packets, 10 requests, 6 hits\n"
        assert len(listed_hits(direct_url)) == 6  # the journalled hit was written once the database was back


def moved(item: TcpSegment, *, port: int, seconds: float) -> TcpSegment:
    """`item` on another client port, `seconds` later."""
    return dataclasses.replace(
        item,
        ts=item.ts + seconds,
        sport=port if item.sport == 40000 else item.sport,
        dport=port if item.dport == 40000 else item.dport,
    )


@pytest.mark.parametrize("removed", [False, True], ids=["whole", "segments-removed"])
def test_replay_estimates_capture_loss_from_the_acks_of_missing_segments(removed: bool, tmp_path: Path) -> None:
    first = conversation(requests=3)
    if removed:  # the second half of the first request and the first half of the last response
        data = [index for index, item in enumerate(first) if item.payload]
        gone = {data[1], data[-2]}
        lost = sum(len(first[index].payload) for index in gone)
        first = [item for index, item in enumerate(first) if index not in gone]
    # A later connection on other ports: its first segment, 1000 s on, evicts the first one if
    # it is still open (waiting for a hole to fill).
    later = [moved(item, port=41000, seconds=1000) for item in conversation(requests=1)]
    capture = pcap_file([(1_793_613_600 + item.ts, segment_frame(item)) for item in first + later])
    args = ["replay", "-", "--metrics", "127.0.0.1:0", "--db", f"sqlite:///{tmp_path / 'r.db'}"]
    with running(*args, stdin=subprocess.PIPE) as (process, port, _):
        assert process.stdin is not None
        process.stdin.buffer.write(capture)
        process.stdin.flush()  # and kept open: the process waits for more, its metrics served
        metrics = scrape_until(
            port,
            lambda m: m.value("oob_analyzer_packets_total") == len(first) + len(later),
            "every packet to be read",
        )
        assert get(port, "/ready")[0] == 200
        # Opened too: before the workers have their last batch (sent within 0.1 s of a stalled
        # read), none is active either.
        metrics = scrape_until(
            port,
            lambda m: m.value("oob_analyzer_flows_opened_total") == 2 and m.value("oob_analyzer_flows_active") == 0,
            "both connections to be done with",
        )
        ended = metrics.family("oob_analyzer_flows_ended_total")
        assert ended == (
            {(("reason", "idle"),): 1, (("reason", "closed"),): 1} if removed else {(("reason", "closed"),): 2}
        )
        assert metrics.family("oob_analyzer_flows_evicted_total") == ({(("reason", "idle"),): 1} if removed else {})
        assert metrics.value("oob_analyzer_capture_loss_acks_total") > 0
        acked = metrics.value("oob_analyzer_capture_loss_acked_bytes_total")
        if removed:
            assert metrics.value("oob_analyzer_capture_loss_gaps_total") == 2
            assert metrics.value("oob_analyzer_capture_loss_gap_bytes_total") == lost
            assert metrics.value("oob_analyzer_capture_loss_ratio") == pytest.approx(lost / acked)
            assert metrics.value("oob_analyzer_tcp_gap_bytes_total") > 0
        else:
            assert metrics.value("oob_analyzer_capture_loss_gaps_total") == 0
            assert metrics.value("oob_analyzer_capture_loss_ratio") == 0
        stdout, stderr = process.communicate(timeout=30)  # closes stdin: the end of the capture
    assert process.returncode == 0, stderr
    assert stdout == f"{len(first) + len(later)} packets, 4 requests, 0 hits\n"


NOT_JUDGED_CONFIG = """\
applications:
  - id: shop
    hosts: [shop.example.com]
    routes:
      - {location: /login, mode: off}
allowed_hosts: [shop.example.com]
"""


@pytest.mark.parametrize("workers", ["1", "2"])
def test_replay_serves_the_requests_not_judged_as_stats_prints_them(workers: str, tmp_path: Path) -> None:
    """The sample's two /login requests are off; one more request is for a host not allowed."""
    sample = [(packet.ts, packet.data) for packet in read_capture(SAMPLE)]
    elsewhere = b"GET /admin?id=1%27%20OR%201=1-- HTTP/1.1\r\nHost: api.example.com\r\n\r\n"
    frames = tcp_connection_frames(elsewhere, client="10.1.0.5", server="10.1.0.80", sport=42000)
    capture = pcap_file(sample + [(sample[-1][0] + 1 + n / 1000, frame) for n, frame in enumerate(frames)])
    config = tmp_path / "oob.yaml"
    config.write_text(NOT_JUDGED_CONFIG)
    args = ["replay", "-", "--metrics", "127.0.0.1:0", "--db", f"sqlite:///{tmp_path / 'r.db'}"]
    with running(*args, "--config", str(config), "--workers", workers, "--stats", stdin=subprocess.PIPE) as (
        process,
        port,
        _,
    ):
        assert process.stdin is not None
        process.stdin.buffer.write(capture)
        process.stdin.flush()  # and kept open: the run goes on, its metrics served
        expected = {(("reason", "not_monitored"),): 2, (("reason", "host_not_allowed"),): 1}
        scrape_until(
            port,
            lambda m: m.family("oob_analyzer_requests_not_judged_total") == expected,
            "the requests not judged",
        )
        stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert stdout == f"{len(sample) + len(frames)} packets, 10 requests, 4 hits\n"
    assert f"  {'requests_not_monitored':<40} {2:>10}\n" in stderr
    assert f"  {'requests_host_not_allowed':<40} {1:>10}\n" in stderr


def test_mirror_server_serves_its_queue_and_receiver_counts(sqlite_url: str, tmp_path: Path) -> None:
    config = tmp_path / "oob.yaml"
    config.write_text("allowed_hosts: [shop.example.com]\n")
    with mirror_server(sqlite_url, "--metrics", "127.0.0.1:0", "--config", str(config)) as mirror:
        assert mirror.process.stderr is not None
        first = mirror.process.stderr.readline()
        assert first.startswith("metrics on http://127.0.0.1:"), first
        port = int(first.rsplit(":", 1)[1].split("/")[0])
        assert wait_for_status(port, "/ready", 200) == "ok\n"
        headers = {"Host": "shop.example.com"}
        assert mirror_send(mirror.port, "GET", "/search?q=%3Cscript%3Ealert(1)%3C/script%3E", headers=headers) == 204
        assert mirror_send(mirror.port, "GET", "/", headers=headers) == 204
        elsewhere = {"Host": "api.example.com"}
        assert mirror_send(mirror.port, "GET", "/?q=%3Cscript%3Ealert(1)%3C/script%3E", headers=elsewhere) == 204
        metrics = scrape_until(port, lambda m: m.value("oob_analyzer_requests_total") == 3, "3 requests analyzed")
        assert metrics.value("oob_analyzer_mirror_receiver_total", event="requests") == 3
        assert metrics.value("oob_analyzer_hits_total", type="xss") == 1
        assert metrics.family("oob_analyzer_requests_not_judged_total") == {
            (("reason", "not_monitored"),): 0,
            (("reason", "host_not_allowed"),): 1,
        }
        assert metrics.value("oob_analyzer_queue_depth", queue="mirror_analysis") == 0
        status, _ = mirror.stop()
    assert status == 0


def test_capture_serves_its_counts_while_capturing_on_loopback(tmp_path: Path) -> None:
    require_root()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:  # a port nobody uses now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    args = ["capture", "-i", "lo", "--bpf", f"udp dst port {port}", "--vxlan-port", str(port)]
    with running(*args, "--metrics", "127.0.0.1:0", "--db", f"sqlite:///{tmp_path / 'c.db'}") as (
        process,
        metrics_port,
        _,
    ):
        assert process.stderr is not None
        assert process.stderr.readline() == "capturing on lo\n"
        assert wait_for_status(metrics_port, "/ready", 200) == "ok\n"
        frames = jumbo_connection()
        send(port, vxlan_header(7), frames)
        metrics = scrape_until(metrics_port, lambda m: m.value("oob_analyzer_requests_total") == 1, "the request")
        assert metrics.value("oob_analyzer_packets_total") == len(frames)
        assert metrics.value("oob_analyzer_source_events_total", event="frames") == len(frames)
        # No response comes: the hit waits for it 5 s of wall time on a quiet link, then is counted.
        hit = {(("type", "xss"),): 1}
        scrape_until(metrics_port, lambda m: m.family("oob_analyzer_hits_total") == hit, "the hit to be released")
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=20)
    assert process.returncode == 0, stderr
    assert stdout == f"{len(frames)} packets, 1 requests, 1 hits\n"
