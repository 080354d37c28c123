"""The HTTP endpoint a sensor's monitoring scrapes: `/metrics`, `/healthz`, `/ready`.

A stdlib `ThreadingHTTPServer` in a daemon thread, so it serves whatever the pipeline's
thread is doing (the asyncio mirror receiver included). `/metrics` calls `collect` per
scrape; `/healthz` is 200 while the analysis loop runs; `/ready` is 200 once the source is
open and the database reachable, otherwise 503 with the reason; anything else is 404.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from oob_analyzer.metrics.exposition import CONTENT_TYPE, render
from oob_analyzer.metrics.sample import MetricsSample

__all__ = ["Health", "MetricsServer"]

ReadinessCheck = Callable[[], str | None]  # why the sensor is not ready, or None


class Health:
    """What `/healthz` and `/ready` report; set by the command as its run goes."""

    def __init__(self) -> None:
        self._running = False
        self._source_open = False
        self._checks: list[ReadinessCheck] = []

    @contextmanager
    def running(self) -> Iterator[None]:
        """Around the analysis loop: alive inside, not outside."""
        self._running = True
        try:
            yield
        finally:
            self._running = False

    def source_opened(self) -> None:
        self._source_open = True

    def add_check(self, check: ReadinessCheck) -> None:
        self._checks.append(check)

    def liveness(self) -> str | None:
        return None if self._running else "the analysis loop is not running"

    def readiness(self) -> str | None:
        if not self._running:
            return "the analysis loop is not running"
        if not self._source_open:
            return "the source is not open yet"
        for check in self._checks:
            reason = check()
            if reason:
                return reason
        return None


class MetricsServer:
    """Serves the three paths on `host:port` (port 0: a free one, see `address`) until closed."""

    def __init__(self, host: str, port: int, *, collect: Callable[[], MetricsSample], health: Health) -> None:
        handler = _handler_class(collect, health)
        server_class = _ThreadingHTTPServerV6 if ":" in host else ThreadingHTTPServer
        self._server = server_class((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="oob-metrics", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


class _ThreadingHTTPServerV6(ThreadingHTTPServer):
    address_family = socket.AF_INET6


def _handler_class(collect: Callable[[], MetricsSample], health: Health) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        server_version = "oob-analyzer"

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, render(collect()), CONTENT_TYPE)
            elif path in ("/healthz", "/ready"):
                reason = health.liveness() if path == "/healthz" else health.readiness()
                self._send(503 if reason else 200, (reason or "ok") + "\n")
            else:
                self._send(404, "not found: try /metrics, /healthz or /ready\n")

        def _send(self, status: int, text: str, content_type: str = "text/plain; charset=utf-8") -> None:
            body = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Scrapes every few seconds would flood stderr: not logged."""

    return _Handler
