"""Per-request cost of each stage behind the mirror receiver, in one process, no sockets.

    .venv/bin/python benchmarks/mirror_stages.py [--requests 20000]

Parse (reassembly.HttpRequestParser), resolve the origin (capture.mirror_origin) and detect
(DetectionEngine with the default detectors), on the request mix of
benchmarks/mirror_throughput.py. The peer is detection itself: origin resolution is
overhead the mirror adds, so it is reported as a fraction of detection's cost.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from capture.mirror_origin import OriginResolver
from oob_analyzer.detection import DetectionEngine, default_detectors
from reassembly import NEED_DATA, FlowKey, HttpRequest, HttpRequestParser

MIX = [
    b"GET /products?id=42&sort=price HTTP/1.1\r\nHost: shop.example.com\r\nX-Forwarded-For: 203.0.113.7\r\n"
    b"X-Server-Addr: 10.0.0.20\r\nX-Server-Port: 443\r\nX-Request-ID: 0123456789abcdef\r\n\r\n",
    b"GET /products?id=1%27%20OR%20%271%27%3D%271 HTTP/1.1\r\nHost: shop.example.com-shadow:8443\r\n"
    b"X-Forwarded-For: 198.51.100.1, 203.0.113.7, 127.0.0.1\r\nX-Request-ID: 0123456789abcdef\r\n\r\n",
    b"POST /cart HTTP/1.1\r\nHost: shop.example.com\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    b"Content-Length: 30\r\nX-Real-IP: 203.0.113.9\r\n\r\nitem=1234&qty=2&note=gift+wrap",
    b"GET /account/orders?limit=20&offset=40 HTTP/1.1\r\nHost: shop.example.com\r\nUser-Agent: curl/8.5\r\n\r\n",
]


def best_of(repeats: int, stage: Callable[[], object]) -> tuple[float, object]:
    """The fastest of `repeats` runs (the machine is shared: the minimum is the least disturbed)."""
    timings, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = stage()
        timings.append(time.perf_counter() - started)
    return min(timings), result


def parse_all(stream: bytes) -> list[HttpRequest]:
    http = HttpRequestParser(FlowKey(client="127.0.0.1", client_port=50000, server="127.0.0.1", server_port=8445))
    http.receive_data(stream, 0.0)
    requests: list[HttpRequest] = []
    while (event := http.next_event()) is not NEED_DATA:
        assert isinstance(event, HttpRequest)
        requests.append(event)
    return requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    count = args.requests
    stream = b"".join(MIX[i % len(MIX)] for i in range(count))
    resolver = OriginResolver([ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("10.0.0.0/8")])
    engine = DetectionEngine(default_detectors())

    parse, requests = best_of(args.repeats, lambda: parse_all(stream))
    assert isinstance(requests, list)
    assert len(requests) == count
    resolve, resolved = best_of(args.repeats, lambda: [resolver.resolve(request) for request in requests])
    assert isinstance(resolved, list)
    detect, hits = best_of(args.repeats, lambda: sum(len(engine.analyze(request)) for request in resolved))

    per = {
        name: seconds / count * 1e6 for name, seconds in (("parse", parse), ("resolve", resolve), ("detect", detect))
    }
    print(f"{count} requests, {hits} hits, best of {args.repeats}")
    for name, micros in per.items():
        print(f"  {name:8} {micros:6.1f} us/request")
    print(f"  resolve / detect: {per['resolve'] / per['detect']:.2f}")
    print(f"  all three: {count / (parse + resolve + detect):,.0f} requests/s on one core")


if __name__ == "__main__":
    main()
