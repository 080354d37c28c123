"""SIGHUP reloads the config file of a running `listen`: real process, real VXLAN datagrams, real database."""

from __future__ import annotations

import queue
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

from tests.builders import tcp_connection_frames, vxlan_header
from tests.cli.test_listen import COMMAND, listed_hits, send
from tests.system import require_root

CONFIG = """\
applications:
  - id: {app}
    hosts: [api.example.com]
    routes:
      - location: /comments
        mode: {mode}
"""
INVALID = "applications:\n  - id: api-v3\n    hosts: [api.example.com]\n    route: []\n"


def comment(number: int) -> bytes:
    body = f"comment=%3Cscript%3Ealert({number})%3C/script%3E".encode()
    head = f"POST /comments HTTP/1.1\r\nHost: api.example.com\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"Content-Type: application/x-www-form-urlencoded\r\n\r\n" + body


def connection(number: int, *, split: int | None = None) -> list[bytes]:
    return tcp_connection_frames(
        comment(number), client="10.1.0.5", server="10.1.0.80", sport=42000 + number, split=split
    )


class Sensor:
    """A command in a subprocess; its stderr read line by line by a thread, so a test can wait for a line."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen([*COMMAND, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.stderr: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.put(line)

    def next_line(self, timeout: float = 20) -> str:
        line = self.lines.get(timeout=timeout)
        self.stderr.append(line)
        return line

    def stop(self) -> str:
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=20)
        self._reader.join(timeout=5)
        while not self.lines.empty():
            self.stderr.append(self.lines.get())
        assert self.process.returncode == 0, "".join(self.stderr)
        assert self.process.stdout is not None
        return self.process.stdout.read()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._reader.join(timeout=5)
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()


def wait_for_hits(db_url: str, count: int) -> list[dict[str, object]]:
    deadline = time.monotonic() + 15
    while len(hits := listed_hits(db_url)) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(hits) == count, hits
    return hits


def applications(hits: list[dict[str, object]]) -> list[tuple[str, object]]:
    return sorted((str(hit["payload"]), hit["application"]) for hit in hits)


def test_sighup_reloads_the_config_between_two_attacks_and_keeps_what_is_running(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'live.db'}"
    config = tmp_path / "oob.yaml"
    config.write_text(CONFIG.format(app="api-v1", mode="monitoring"))
    listener = Sensor("listen", "--vxlan", "127.0.0.1:0", "--db", db_url, "--config", str(config), "--stats")
    try:
        port = int(listener.next_line().rsplit(":", 1)[1])
        send(port, vxlan_header(1), connection(1))
        assert applications(wait_for_hits(db_url, 1)) == [("<script>alert(1)</script>", "api-v1")]

        # A connection opened under the old config, its request completed under the new one.
        first, rest = connection(2, split=40)[:2], connection(2, split=40)[2:]
        send(port, vxlan_header(1), first)
        time.sleep(0.5)
        config.write_text(CONFIG.format(app="api-v2", mode="monitoring") + "storage:\n  url: sqlite:///other.db\n")
        listener.process.send_signal(signal.SIGHUP)
        assert listener.next_line() == f"config reloaded from {config}\n"
        assert listener.next_line() == f"{config}: storage changed: applied only after a restart\n"
        send(port, vxlan_header(1), rest)
        assert applications(wait_for_hits(db_url, 2))[1] == ("<script>alert(2)</script>", "api-v2")

        # An invalid edit: said on stderr with its line; the running config stays.
        config.write_text(INVALID)
        listener.process.send_signal(signal.SIGHUP)
        assert listener.next_line() == (
            f"config not reloaded, the running config stays: {config}:4: unknown key 'route' in an "
            "applications entry (expected one of: hosts, id, mode, routes)\n"
        )
        send(port, vxlan_header(1), connection(3))
        assert applications(wait_for_hits(db_url, 3))[2] == ("<script>alert(3)</script>", "api-v2")

        # The route switched off: the next attack is counted, not judged.
        config.write_text(CONFIG.format(app="api-v2", mode="off"))
        listener.process.send_signal(signal.SIGHUP)
        assert listener.next_line() == f"config reloaded from {config}\n"
        send(port, vxlan_header(1), connection(4))
        stdout = listener.stop()
    finally:
        listener.kill()
    assert stdout == "9 packets, 4 requests, 3 hits\n"  # 2 + 3 (split) + 2 + 2
    assert f"  {'requests_not_monitored':<40} {1:>10}\n" in listener.stderr
    assert len(listed_hits(db_url)) == 3
    assert not (tmp_path / "other.db").exists()  # storage is not switched while running


def test_capture_takes_its_interface_from_the_config_and_reloads_on_sighup(tmp_path: Path) -> None:
    require_root()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:  # a port nobody uses now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    db_url = f"sqlite:///{tmp_path / 'capture.db'}"
    config = tmp_path / "oob.yaml"
    sources = f"sources:\n  interface: lo\n  bpf: udp dst port {port}\n"
    config.write_text(sources + CONFIG.format(app="api-v1", mode="monitoring"))
    sensor = Sensor("capture", "--vxlan-port", str(port), "--db", db_url, "--config", str(config))
    try:
        assert sensor.next_line() == "capturing on lo\n"
        send(port, vxlan_header(7), connection(1))
        assert applications(wait_for_hits(db_url, 1)) == [("<script>alert(1)</script>", "api-v1")]
        config.write_text(sources.replace("lo", "eth0") + CONFIG.format(app="api-v2", mode="monitoring"))
        sensor.process.send_signal(signal.SIGHUP)
        assert sensor.next_line() == f"config reloaded from {config}\n"
        assert sensor.next_line() == f"{config}: sources changed: applied only after a restart\n"
        send(port, vxlan_header(7), connection(2))
        assert applications(wait_for_hits(db_url, 2))[1] == ("<script>alert(2)</script>", "api-v2")
        stdout = sensor.stop()
    finally:
        sensor.kill()
    assert stdout == "4 packets, 2 requests, 2 hits\n"
