"""Scale-out for real: three `listen --reuse-port` processes share one UDP port, as sensors
behind a load balancer share its flows, and all write to one PostgreSQL.

Each mirrored connection arrives from its own outer source port (a mirror session, or a
load balancer's flow hash, keeps one connection on one outer 4-tuple); Linux gives each
outer 4-tuple to one of the sockets. The test checks what an operator relies on: every
attack recorded exactly once, every connection analyzed by one sensor only, every
sensor's run recorded, and the work really spread.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import struct
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.builders import geneve_header, ipv4_packet, keep_alive_connection, udp_datagram, vxlan_header
from tests.databases import postgres_schema

COMMAND = [sys.executable, "-c", "from oob_analyzer.cli import main; main()"]
SENSORS = 3
CONNECTIONS = 90
SERVER = "10.9.0.80"


@dataclass(frozen=True)
class MirroredConnection:
    client: str
    client_port: int
    frames: list[bytes]
    attacks: frozenset[tuple[str, str]]  # (attack type, target) expected from this connection
    benign_targets: frozenset[str]


def _response(body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


def mirrored_connection(number: int) -> MirroredConnection:
    """Four keep-alive exchanges: an SQL injection, a benign search, an XSS in a form body
    long enough to span segments, and a benign JSON post."""
    client, client_port = f"10.2.{number // 200}.{number % 200 + 1}", 40000 + number
    sqli_target = f"/c{number}/items?id=1%27%20OR%20%271%27%3D%271"
    search_target = f"/c{number}/search?q=running+shoes&page=2"
    form_target, json_target = f"/c{number}/comments", f"/c{number}/api/cart"
    form = (
        b"name=alice&note=" + b"x" * 3000 + b"&comment=%3Cscript%3Ealert(" + str(number).encode() + b")%3C%2Fscript%3E"
    )
    cart = b'{"item": "sku-%d", "quantity": 2, "gift": false}' % number
    host = b"Host: shop.example.com\r\nUser-Agent: Mozilla/5.0\r\n"
    exchanges = [
        (b"GET %s HTTP/1.1\r\n%s\r\n" % (sqli_target.encode(), host), _response(b"<p>none</p>")),
        (b"GET %s HTTP/1.1\r\n%s\r\n" % (search_target.encode(), host), _response(b"<p>shoes</p>" * 200)),
        (
            b"POST %s HTTP/1.1\r\n%sContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s"
            % (form_target.encode(), host, len(form), form),
            _response(b"saved"),
        ),
        (
            b"POST %s HTTP/1.1\r\n%sContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
            % (json_target.encode(), host, len(cart), cart),
            _response(b'{"ok": true}'),
        ),
    ]
    frames = keep_alive_connection(exchanges, client=client, client_port=client_port, server=SERVER)
    return MirroredConnection(
        client=client,
        client_port=client_port,
        frames=frames,
        attacks=frozenset({("sqli", sqli_target), ("xss", form_target)}),
        benign_targets=frozenset({search_target, json_target}),
    )


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def send_interleaved(port: int, connections: list[MirroredConnection]) -> int:
    """Each connection from its own UDP socket (its own outer source port), the connections'
    frames interleaved as a busy mirror interleaves them; returns the datagrams sent."""
    sent = 0
    with ExitStack() as stack:
        senders = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM)) for _ in connections]
        for sender in senders:
            sender.bind(("127.0.0.1", 0))
        for frames in itertools.zip_longest(*(c.frames for c in connections)):
            for sender, frame in zip(senders, frames, strict=True):
                if frame is not None:
                    sender.sendto(vxlan_header(42) + frame, ("127.0.0.1", port))
                    sent += 1
    return sent


@pytest.fixture
def shared_postgres(tmp_path: Path) -> Iterator[str]:
    """A fresh, empty schema: the sensors starting together create the tables between them."""
    with postgres_schema() as url:
        yield url


def start_sensors(port: int, db_url: str, state: Path) -> list[subprocess.Popen[str]]:
    environment = {**os.environ, "XDG_STATE_HOME": str(state)}  # the journal, should the database fail
    sensors = []
    for _ in range(SENSORS):
        sensor = subprocess.Popen(
            [*COMMAND, "listen", "--vxlan", f"127.0.0.1:{port}", "--reuse-port", "--db", db_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environment,
        )
        sensors.append(sensor)
        assert sensor.stderr is not None
        assert sensor.stderr.readline() == f"listening for vxlan on 127.0.0.1:{port}\n"  # bound: the next may bind
    return sensors


def stop_sensors(sensors: list[subprocess.Popen[str]]) -> list[str]:
    for sensor in sensors:
        sensor.send_signal(signal.SIGTERM)
    summaries = []
    for sensor in sensors:
        stdout, stderr = sensor.communicate(timeout=60)
        assert sensor.returncode == 0, stderr
        summaries.append(stdout)
    return summaries


def test_three_sensors_on_one_port_record_each_attack_once_and_never_split_a_flow(
    shared_postgres: str, tmp_path: Path
) -> None:
    port = free_udp_port()
    connections = [mirrored_connection(number) for number in range(CONNECTIONS)]
    sensors = start_sensors(port, shared_postgres, tmp_path)
    try:
        sent = send_interleaved(port, connections)
        summaries = stop_sensors(sensors)
    finally:
        for sensor in sensors:
            if sensor.poll() is None:
                sensor.kill()
                sensor.wait()

    engine = create_engine(shared_postgres)
    try:
        with engine.connect() as db:
            hits = db.execute(text("SELECT hit_key, src_ip, src_port, attack_type, target FROM hits")).all()
            runs = db.execute(text("SELECT run_key, status, packets, requests, hits FROM capture_runs")).all()
    finally:
        engine.dispose()

    # The three runs are recorded, and together they saw every datagram and every request.
    assert len(runs) == SENSORS
    assert {run.status for run in runs} == {"completed"}
    assert sum(run.packets for run in runs) == sent
    assert sum(run.requests for run in runs) == 4 * CONNECTIONS
    assert sum(int(summary.split()[0]) for summary in summaries) == sent
    # More than one sensor got traffic: the port really was shared.
    busy = [run for run in runs if run.packets > 0]
    assert len(busy) > 1, runs

    # Every attack exactly once; nothing from the benign requests.
    recorded = defaultdict(int)
    for hit in hits:
        recorded[(hit.src_ip, hit.src_port, hit.attack_type, hit.target)] += 1
    expected = {
        (c.client, c.client_port, attack_type, target) for c in connections for attack_type, target in c.attacks
    }
    assert set(recorded) == expected
    assert set(recorded.values()) == {1}
    benign = {target for c in connections for target in c.benign_targets}
    assert not [hit for hit in hits if hit.target in benign]

    # No connection split across sensors: all hits of one connection carry one run (the hit
    # key starts with the run's key), and that run is one of the three recorded.
    run_keys = {run.run_key for run in runs}
    runs_of_connection: dict[tuple[str, int], set[str]] = defaultdict(set)
    for hit in hits:
        run_key = hit.hit_key.split("-", 1)[0]
        assert run_key in run_keys
        runs_of_connection[(hit.src_ip, hit.src_port)].add(run_key)
    assert len(runs_of_connection) == CONNECTIONS
    assert all(len(keys) == 1 for keys in runs_of_connection.values())
    # The hits themselves were spread too, each run's count matching what it stored.
    per_run = defaultdict(int)
    for hit in hits:
        per_run[hit.hit_key.split("-", 1)[0]] += 1
    assert len(per_run) > 1
    assert {run.run_key: run.hits for run in runs if run.hits} == dict(per_run)


def test_without_reuse_port_a_second_listen_on_the_port_is_refused(tmp_path: Path) -> None:
    """Sharing is asked for, never an accident: a second sensor started by mistake on a
    port in use fails loudly instead of silently taking half the flows."""
    port = free_udp_port()
    db_url = f"sqlite:///{tmp_path / 'one.db'}"
    first = subprocess.Popen(
        [*COMMAND, "listen", "--vxlan", f"127.0.0.1:{port}", "--db", db_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert first.stderr is not None
        assert first.stderr.readline().startswith("listening for vxlan")
        second = subprocess.run(
            [*COMMAND, "listen", "--vxlan", f"127.0.0.1:{port}", "--reuse-port", "--db", db_url],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert second.returncode == 1
        assert f"cannot listen on 127.0.0.1:{port}" in second.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=30)


def aws_geneve_options() -> bytes:
    """The three TLVs a Gateway Load Balancer adds, in AWS's option class 0x0108 (RFC 8926
    section 3.5: class, type, length in 4-byte words): endpoint id, attachment id, flow cookie."""
    return (
        struct.pack("!HBB", 0x0108, 1, 2)
        + b"vpce-123"
        + struct.pack("!HBB", 0x0108, 2, 2)
        + b"attach-1"
        + struct.pack("!HBB", 0x0108, 3, 1)
        + b"\x12\x34\x56\x78"
    )


def test_mirrored_copies_through_a_gateway_load_balancer_are_unwrapped_twice(tmp_path: Path) -> None:
    """Traffic Mirroring to a GWLB endpoint: GENEVE (from the GWLB) around VXLAN (from the
    mirror session) around the original frame, as docs/scale-out.md describes."""
    port = free_udp_port()
    db_url = f"sqlite:///{tmp_path / 'gwlb.db'}"
    connection = mirrored_connection(7)
    sensor = subprocess.Popen(
        [*COMMAND, "listen", "--geneve", f"127.0.0.1:{port}", "--reuse-port", "--db", db_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert sensor.stderr is not None
        assert sensor.stderr.readline() == f"listening for geneve on 127.0.0.1:{port}\n"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as gwlb:
            for frame in connection.frames:
                mirrored = udp_datagram(vxlan_header(42) + frame, sport=51234, dport=4789)
                outer = ipv4_packet(mirrored, src="10.0.1.15", dst="10.0.2.9", proto=17)  # ENI -> GWLB endpoint
                gwlb.sendto(
                    geneve_header(0, protocol=0x0800, options=aws_geneve_options()) + outer, ("127.0.0.1", port)
                )
        (stdout,) = stop_sensors([sensor])
    finally:
        if sensor.poll() is None:
            sensor.kill()
            sensor.wait()
    assert stdout == f"{len(connection.frames)} packets, 4 requests, 2 hits\n"
    listed = subprocess.run(
        [*COMMAND, "hits", "list", "--format", "json", "--db", db_url], capture_output=True, text=True, check=True
    )
    hits = json.loads(listed.stdout)
    assert {(hit["type"], hit["target"]) for hit in hits} == set(connection.attacks)
    for hit in hits:
        kinds = [layer.split(":", 1)[0] for layer in hit["tunnel"].split("/")]
        assert kinds == ["geneve", "vxlan"], hit["tunnel"]
        assert "10.0.1.15>10.0.2.9" in hit["tunnel"]
