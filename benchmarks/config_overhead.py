"""What the config file's judging costs on top of detection, per corpus request, one core.

The peer, measured in the same run: the bare `DetectionEngine` (no config). Ours: the
`SensorEngine` built from a config with ten applications (host wildcards, prefix, exact
and regex locations), allowed hosts and trusted proxies, every route `monitoring` so both
judge the same requests. Both engines are warmed by one pass, then timed over three
alternating passes; the figure is the ratio of the total CPU times (thread clock). The
machine is shared: repeat it and read the ratio, not the microseconds.

    .venv/bin/python benchmarks/config_overhead.py [CORPUS.jsonl]
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.detection_corpus import CORPUS, load_corpus
from oob_analyzer.config import build_engine, parse_config
from oob_analyzer.detection import DetectionEngine, default_detectors
from reassembly.events import HttpRequest


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
    peer = ours = 0.0
    for _ in range(3):
        peer += total_micros(requests, bare.analyze)
        ours += total_micros(requests, configured.analyze)
    count = 3 * len(requests)
    print(f"corpus: {corpus} ({len(requests)} requests), 3 warm passes each, CPU time per request")
    print(f"peer, DetectionEngine alone:          {peer / count:8.1f} us")
    print(f"ours, SensorEngine (config judging):  {ours / count:8.1f} us")
    print(f"ratio ours / peer: {ours / peer:.3f}  (config judging adds {100 * (ours / peer - 1):+.1f} %)")


if __name__ == "__main__":
    main(sys.argv)
