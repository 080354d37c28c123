"""Detection speed: median CPU cost of `DetectionEngine.analyze` per corpus request, one core.

Measured three ways, each over every request of the corpus in file order:
- cold: a fresh engine, one pass (the verdict cache starts empty and fills as it goes);
- warm: a second pass with the same engine (every repeated header value already judged);
- no cache: `cache_size=0`, every point of every request judged from scratch.
The peer, measured in the same run: libinjection alone (SQLi + XSS) over each request's raw
target and body, the least any libinjection-based WAF does. ModSecurity + CRS spends
1.1-2.1 ms of CPU per request on this machine (issue 5), for scale.

    .venv/bin/python benchmarks/detection_speed.py [CORPUS.jsonl]
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import libinjection

from benchmarks.detection_corpus import CORPUS, load_corpus
from oob_analyzer.detection import DetectionEngine, default_detectors
from reassembly.events import HttpRequest

TARGET_MICROSECONDS = 50.0


def per_request_micros(requests: Sequence[HttpRequest], analyze: Callable[[HttpRequest], object]) -> list[float]:
    costs = []
    clock = time.process_time_ns if sys.platform == "win32" else time.thread_time_ns
    for request in requests:
        start = clock()
        analyze(request)
        costs.append((clock() - start) / 1000)
    return costs


def libinjection_only(request: HttpRequest) -> bool:
    text = request.target + request.body.decode("latin-1")
    return bool(libinjection.is_sql_injection(text)["is_sqli"] or libinjection.is_xss(text)["is_xss"])


def main(argv: Sequence[str]) -> None:
    corpus = Path(argv[1]) if len(argv) > 1 else CORPUS
    requests = [labelled.as_request() for labelled in load_corpus(corpus)]
    engine = DetectionEngine(default_detectors())
    cold = per_request_micros(requests, engine.analyze)
    warm = per_request_micros(requests, engine.analyze)
    uncached = per_request_micros(requests, DetectionEngine(default_detectors(), cache_size=0).analyze)
    peer = per_request_micros(requests, libinjection_only)
    peer_median = statistics.median(peer)
    print(f"corpus: {corpus} ({len(requests)} requests), per-request CPU time (thread clock), microseconds")
    print(f"{'run':34} {'median':>8} {'p90':>8} {'max':>9} {'x peer':>7}")
    for name, costs in (
        ("oob-analyzer, cold cache", cold),
        ("oob-analyzer, warm cache", warm),
        ("oob-analyzer, no cache", uncached),
        ("peer: libinjection on target+body", peer),
    ):
        deciles = statistics.quantiles(costs, n=10)
        median = statistics.median(costs)
        print(f"{name:34} {median:8.1f} {deciles[8]:8.1f} {max(costs):9.1f} {median / peer_median:7.1f}")
    verdict = "met" if statistics.median(cold) <= TARGET_MICROSECONDS else "NOT met"
    print(f"target: median <= {TARGET_MICROSECONDS:.0f} us (cold cache): {verdict}")


if __name__ == "__main__":
    main(sys.argv)
