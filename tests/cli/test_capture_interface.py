"""`capture` for real: a network namespace, a veth pair, an HTTP server inside, attacks sent
across, and the command capturing on the host's end of the pair."""

from __future__ import annotations

import contextlib
import json
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from oob_analyzer.cli import main
from tests.builders import JUMBO_ATTACK, jumbo_connection, vxlan_header
from tests.system import require_command, require_root

COMMAND = [sys.executable, "-c", "from oob_analyzer.cli import main; main()"]


@dataclass(frozen=True)
class Veth:
    namespace: str
    host_interface: str
    host_address: str
    inside_address: str


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@pytest.fixture
def veth() -> Iterator[Veth]:
    require_root()
    require_command("ip")
    tag = secrets.token_hex(3)
    subnet = f"10.{203}.{secrets.randbelow(256)}"
    pair = Veth(f"oob3-ns-{tag}", f"oob3-h{tag}", f"{subnet}.1", f"{subnet}.2")
    inside_interface = f"oob3-n{tag}"
    ip("netns", "add", pair.namespace)
    try:
        ip("link", "add", pair.host_interface, "type", "veth", "peer", "name", inside_interface)
        ip("link", "set", inside_interface, "netns", pair.namespace)
        ip("addr", "add", f"{pair.host_address}/30", "dev", pair.host_interface)
        ip("link", "set", pair.host_interface, "up")
        ip("-n", pair.namespace, "addr", "add", f"{pair.inside_address}/30", "dev", inside_interface)
        ip("-n", pair.namespace, "link", "set", inside_interface, "up")
        ip("-n", pair.namespace, "link", "set", "lo", "up")
        yield pair
    finally:
        subprocess.run(["ip", "link", "del", pair.host_interface], check=False, capture_output=True, timeout=10)
        subprocess.run(["ip", "netns", "del", pair.namespace], check=False, capture_output=True, timeout=10)


def wait_for_port(address: str, port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection((address, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"nothing listens on {address}:{port}")


@pytest.fixture
def http_server(veth: Veth, tmp_path: Path) -> Iterator[int]:
    port = 8080  # inside a namespace of our own: free
    (tmp_path / "www").mkdir()
    server = subprocess.Popen(
        [
            *("ip", "netns", "exec", veth.namespace),
            *(sys.executable, "-m", "http.server", str(port)),
            *("--bind", veth.inside_address, "--directory", str(tmp_path / "www")),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(veth.inside_address, port)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=10)


def send_attacks(address: str, port: int) -> None:
    base = f"http://{address}:{port}"
    requests = [
        urllib.request.Request(f"{base}/products?id=" + urllib.parse.quote("1' OR '1'='1")),
        urllib.request.Request(
            f"{base}/comments", data=urllib.parse.urlencode({"comment": "<img src=x onerror=alert(1)>"}).encode()
        ),
        urllib.request.Request(f"{base}/index.html"),  # an ordinary request
    ]
    for request in requests:
        with contextlib.suppress(urllib.error.HTTPError):  # 404 and 501 are fine: the request went out
            urllib.request.urlopen(request, timeout=5).close()


def test_capture_on_a_veth_records_the_attacks_sent_across(veth: Veth, http_server: int, tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'capture.db'}"
    args = ["capture", "--interface", veth.host_interface, "--bpf", f"tcp port {http_server}", "--stats"]
    process = subprocess.Popen(
        [*COMMAND, *args, "--db", db_url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stderr is not None
        assert process.stderr.readline() == f"capturing on {veth.host_interface}\n"
        send_attacks(veth.inside_address, http_server)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:  # not TCP: the filter drops it
            udp.sendto(b"not http", (veth.inside_address, 9))
        time.sleep(0.3)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stderr
    assert stdout.endswith(", 3 requests, 2 hits\n"), stdout
    # The filter kept ARP, UDP and ICMP away: every frame that reached the decoder was TCP.
    assert "not_ip" not in stderr and "not_tcp" not in stderr, stderr
    hits = json.loads(CliRunner().invoke(main, ["hits", "list", "--format", "json", "--db", db_url]).output)
    assert sorted((h["type"], h["point"], h["src_ip"], h["dst_ip"], h["dst_port"]) for h in hits) == [
        ("sqli", "query.id", veth.host_address, veth.inside_address, http_server),
        ("xss", "body.form.comment", veth.host_address, veth.inside_address, http_server),
    ]


def test_capture_on_a_missing_interface_is_a_clear_error() -> None:
    result = CliRunner().invoke(main, ["capture", "--interface", "oob3-absent0"])
    assert result.exit_code == 1
    assert "no network interface 'oob3-absent0'" in result.output


def test_capture_on_loopback_sees_each_mirror_datagram_once(tmp_path: Path) -> None:
    """VXLAN mirror traffic arriving on an interface is unwrapped; loopback does not double it."""
    require_root()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:  # a port nobody uses now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    db_url = f"sqlite:///{tmp_path / 'lo.db'}"
    args = ["capture", "-i", "lo", "--bpf", f"udp dst port {port}", "--vxlan-port", str(port)]
    process = subprocess.Popen(
        [*COMMAND, *args, "--db", db_url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stderr is not None
        assert process.stderr.readline() == "capturing on lo\n"
        frames = jumbo_connection()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for frame in frames:
                sender.sendto(vxlan_header(7) + frame, ("127.0.0.1", port))
        time.sleep(0.5)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stderr
    assert stdout == f"{len(frames)} packets, 1 requests, 1 hits\n"
    hits = json.loads(CliRunner().invoke(main, ["hits", "list", "--format", "json", "--db", db_url]).output)
    assert [hit["payload"] for hit in hits] == [JUMBO_ATTACK]
