"""A mirror service running in-process on loopback, for tests that talk to it over sockets."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from capture.http_mirror import ReceiverSettings
from oob_analyzer.detection import AttackHit, DetectionEngine, default_detectors
from oob_analyzer.mirror_pipeline import MirrorService, MirrorSettings, MirrorSummary
from oob_analyzer.pipeline import HitSink


class CollectingSink:
    """A HitSink that keeps the hits in memory, in the order recorded."""

    def __init__(self) -> None:
        self.hits: list[AttackHit] = []

    def record(self, hits: Sequence[AttackHit]) -> None:
        self.hits.extend(hits)


@dataclass
class RunningMirror:
    port: int
    service: MirrorService
    summary: MirrorSummary | None = None
    thread: threading.Thread | None = field(default=None, repr=False)

    def connect(self, host: str = "127.0.0.1") -> socket.socket:
        return socket.create_connection((host, self.port), timeout=5)

    def stop(self) -> MirrorSummary:
        self.service.request_stop()
        assert self.thread is not None
        self.thread.join(timeout=10)
        assert not self.thread.is_alive(), "the mirror service did not stop"
        assert self.summary is not None
        return self.summary


@contextmanager
def running_mirror(
    sink: HitSink,
    *,
    trusted: Sequence[str] = (),
    allow: Sequence[str] = (),
    queue_size: int = 100,
    queue_bytes: int = 1 << 20,
    host: str = "127.0.0.1",
    max_connections: int = 64,
) -> Iterator[RunningMirror]:
    settings = MirrorSettings(
        receiver=ReceiverSettings(
            host=host,
            port=0,
            allow=tuple(ipaddress.ip_network(n) for n in allow),
            max_connections=max_connections,
        ),
        trusted=tuple(ipaddress.ip_network(n) for n in trusted),
        queue_size=queue_size,
        queue_bytes=queue_bytes,
    )
    service = MirrorService(settings, engine=DetectionEngine(default_detectors()), sink=sink)
    ready = threading.Event()
    running = RunningMirror(port=0, service=service)

    def on_ready(host: str, port: int) -> None:
        running.port = port
        ready.set()

    def serve() -> None:
        running.summary = service.run(on_ready=on_ready, stop_signals=())

    running.thread = threading.Thread(target=serve, name="test-mirror")
    running.thread.start()
    try:
        assert ready.wait(timeout=10), "the mirror service did not start"
        yield running
    finally:
        if running.thread.is_alive():
            running.stop()


def read_responses(sock: socket.socket, count: int) -> list[bytes]:
    """`count` complete 204 responses (status line + headers) from `sock`."""
    data = b""
    while data.count(b"\r\n\r\n") < count:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return [part + b"\r\n\r\n" for part in data.split(b"\r\n\r\n")[:-1]]


def was_refused(sock: socket.socket) -> bool:
    """True when the receiver ended the connection without a byte of answer (a reset or a close)."""
    try:
        return sock.recv(4096) == b""
    except ConnectionResetError:
        return True


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True
