"""What the config file's judging costs on top of detection, per corpus request, one core.

The peer, measured in the same run: the bare `DetectionEngine` (no config). Ours: the
`SensorEngine` built from a config with ten applications (host wildcards, prefix, exact
and regex locations), allowed hosts and trusted proxies, every route `monitoring` so both
judge the same requests. Both engines are warmed by one pass, then timed over seven
alternating passes (CPU time, thread clock); the figure is the median of the seven
per-pass ratios, with their range. The machine is shared: read the ratio, not the
microseconds.

    .venv/bin/python benchmarks/config_overhead.py [CORPUS.jsonl]
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.detection_corpus import CORPUS, load_corpus
from oob_analyzer.config import build_engine, parse_config
from oob_analyzer.detection import DetectionEngine, default_detectors
from reassembly.events import HttpRequest

PASSES = 7


def config_text() -> str:
    applications = "\n".join(
        f"""  - id: app{n}
    hosts: [app{n}.example.com, "*.app{n}.example.org"]
    routes:
      - {{location: /static{n}/}}
      - {{location: "= /health{n}"}}
      - {{location: "~* \\\\.(png|css){n}$"}}"""
        for n in range(10)
    )
    catch_all = "  - id: other\n    routes:\n      - {location: /api/}\n      - {location: '~ ^/admin'}"
    return (
        f"applications:\n{applications}\n{catch_all}\n"
        "allowed_hosts: ['*']\ntrusted_proxies: [10.0.0.0/8, 192.168.0.0/16, 172.16.0.0/12]\n"
    )


def total_micros(requests: Sequence[HttpRequest], analyze: Callable[[HttpRequest], object]) -> float:
    start = time.thread_time_ns()
    for request in requests:
        analyze(request)
    return (time.thread_time_ns() - start) / 1000


def main(argv: Sequence[str]) -> None:
    corpus = Path(argv[1]) if len(argv) > 1 else CORPUS
    requests = [labelled.as_request() for labelled in load_corpus(corpus)]
    bare = DetectionEngine(default_detectors())
    configured = build_engine(parse_config(config_text()))
    for engine in (bare, configured):
        total_micros(requests, engine.analyze)  # warm the verdict caches alike
    peers: list[float] = []
    ours: list[float] = []
    for _ in range(PASSES):
        peers.append(total_micros(requests, bare.analyze))
        ours.append(total_micros(requests, configured.analyze))
    ratios = sorted(mine / peer for mine, peer in zip(ours, peers, strict=True))
    count = len(requests)
    print(f"corpus: {corpus} ({count} requests), {PASSES} warm passes each, median CPU time per request")
    print(f"peer, DetectionEngine alone:          {statistics.median(peers) / count:8.1f} us")
    print(f"ours, SensorEngine (config judging):  {statistics.median(ours) / count:8.1f} us")
    median = statistics.median(ratios)
    print(
        f"ratio ours / peer: median {median:.3f} (passes {ratios[0]:.3f}-{ratios[-1]:.3f}), {100 * (median - 1):+.1f} %"
    )


if __name__ == "__main__":
    main(sys.argv)
