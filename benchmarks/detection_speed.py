"""Detection speed: median CPU cost of `DetectionEngine.analyze` per corpus request, one core.

Measured three ways, each over every request of the corpus in file order:
- cold: a fresh engine, one pass (the verdict cache starts empty and fills as it goes);
- warm: a second pass with the same engine (every repeated header value already judged);
- no cache: `cache_size=0`, every point of every request judged from scratch.
The peer, measured in the same run: libinjection alone (SQLi + XSS) over each request's raw
target and body, the least any libinjection-based WAF does. ModSecurity + CRS spends
1.1-2.1 ms of CPU per request on this machine (issue 5), for scale.

    .venv/bin/python benchmarks/detection_speed.py [CORPUS.jsonl] [--runs N] [--traffic generated]

`--traffic generated` measures the same on generated benign traffic instead of the corpus:
the requests `benchmarks/benign_traffic.py` makes for the full-pipeline benchmark (browsers,
API clients, forms, JSON, cookies, bearer JWTs), parsed from their wire bytes by the real
request parser, `GENERATED_REQUESTS` of them from a fixed seed. That is what a mirror sees
most of the time (about 97 % of the full pipeline's requests), so its cost is the one the
pipeline pays per request.

On a shared machine one run's medians move by a third from run to run. `--runs N` repeats
the whole measurement in N fresh processes (each cold pass is a new process's first, as in
a single run) and prints, per measurement, the median of the N medians and the median over
requests of each request's least cost in the N runs (interference only ever adds time).
"""

from __future__ import annotations

import json
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import libinjection

from benchmarks.benign_traffic import make_benign_request
from benchmarks.detection_corpus import CORPUS, load_corpus
from oob_analyzer.detection import DetectionEngine, default_detectors
from reassembly.events import FlowKey, HttpRequest
from reassembly.http_message import NEED_DATA
from reassembly.http_request import HttpRequestParser

TARGET_MICROSECONDS = 50.0  # issue 5, over the corpus
GENERATED_TARGET_MICROSECONDS = 25.0  # issue 8's share for detection, per generated benign request
GENERATED_REQUESTS = 4000
GENERATED = "generated"  # the `--traffic` value that stands for generated benign traffic
_RUNS = ("oob-analyzer, cold cache", "oob-analyzer, warm cache", "oob-analyzer, no cache")
_PEER = "peer: libinjection on target+body"


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


def generated_requests(count: int = GENERATED_REQUESTS, seed: int = 5) -> list[HttpRequest]:
    """`count` generated benign requests, parsed from the wire by the real parser (a few per connection)."""
    rng = random.Random(seed)
    requests: list[HttpRequest] = []
    while len(requests) < count:
        client_port = 40000 + len(requests) % 20000
        flow = FlowKey(client="192.0.2.1", client_port=client_port, server="198.51.100.1", server_port=80)
        parser = HttpRequestParser(flow)
        for index in range(rng.randrange(1, 8)):
            wire, *_ = make_benign_request(rng, index)
            parser.receive_data(wire, float(len(requests)))
            while (event := parser.next_event()) is not NEED_DATA:
                if isinstance(event, HttpRequest):
                    requests.append(event)
    return requests[:count]


def load_requests(source: str) -> list[HttpRequest]:
    if source == GENERATED:
        return generated_requests()
    return [labelled.as_request() for labelled in load_corpus(Path(source))]


def measure(source: str) -> dict[str, list[float]]:
    """Per-request costs (µs) of every measurement, in corpus (or generation) order."""
    requests = load_requests(source)
    engine = DetectionEngine(default_detectors())
    cold = per_request_micros(requests, engine.analyze)
    warm = per_request_micros(requests, engine.analyze)
    uncached = per_request_micros(requests, DetectionEngine(default_detectors(), cache_size=0).analyze)
    peer = per_request_micros(requests, libinjection_only)
    return dict(zip((*_RUNS, _PEER), (cold, warm, uncached, peer), strict=True))


def print_single(corpus: str, costs: dict[str, list[float]]) -> None:
    print(f"corpus: {corpus} ({len(costs[_PEER])} requests), per-request CPU time (thread clock), microseconds")
    print(f"{'run':34} {'median':>8} {'mean':>8} {'p90':>8} {'max':>9} {'x peer':>7}")
    peer_median = statistics.median(costs[_PEER])
    for name, values in costs.items():
        deciles = statistics.quantiles(values, n=10)
        median = statistics.median(values)
        mean = statistics.fmean(values)
        print(f"{name:34} {median:8.1f} {mean:8.1f} {deciles[8]:8.1f} {max(values):9.1f} {median / peer_median:7.1f}")
    print_verdict(corpus, statistics.median(costs[_RUNS[0]]))


def print_repeated(corpus: str, runs: list[dict[str, list[float]]]) -> None:
    print(f"corpus: {corpus} ({len(runs[0][_PEER])} requests), {len(runs)} runs in fresh processes, microseconds")
    print(
        f"{'run':34} {'median of medians':>18} {'x peer':>7} {'median of least':>16} {'x peer':>7}"
        f" {'mean of least':>14}"
    )
    medians = {name: statistics.median(statistics.median(run[name]) for run in runs) for name in runs[0]}
    leasts = {name: list(map(min, zip(*(run[name] for run in runs), strict=True))) for name in runs[0]}
    least = {name: statistics.median(values) for name, values in leasts.items()}
    for name in runs[0]:
        print(
            f"{name:34} {medians[name]:18.1f} {medians[name] / medians[_PEER]:7.1f}"
            f" {least[name]:16.1f} {least[name] / least[_PEER]:7.1f} {statistics.fmean(leasts[name]):14.1f}"
        )
    spread = sorted(round(statistics.median(run[_RUNS[0]]), 1) for run in runs)
    print(f"cold medians of the runs: {spread}")
    print_verdict(corpus, medians[_RUNS[0]])


def print_verdict(source: str, cold_median: float) -> None:
    target = GENERATED_TARGET_MICROSECONDS if source == GENERATED else TARGET_MICROSECONDS
    verdict = "met" if cold_median <= target else "NOT met"
    print(f"target: median <= {target:.0f} us (cold cache): {verdict}")


def main(argv: Sequence[str]) -> None:
    args = list(argv[1:])
    runs = 1
    if "--runs" in args:
        at = args.index("--runs")
        runs = int(args[at + 1])
        del args[at : at + 2]
    if "--traffic" in args:
        at = args.index("--traffic")
        if args[at + 1] != GENERATED:
            raise SystemExit(f"--traffic: only {GENERATED!r} is known, not {args[at + 1]!r}")
        args[at : at + 2] = [GENERATED]
    as_json = "--json" in args  # one run's costs, for the parent of `--runs`
    args = [arg for arg in args if arg != "--json"]
    corpus = args[0] if args else str(CORPUS)
    if as_json:
        print(json.dumps(measure(corpus)))
    elif runs == 1:
        print_single(corpus, measure(corpus))
    else:
        command = [sys.executable, __file__, corpus, "--json"]
        outputs = [subprocess.run(command, capture_output=True, text=True, check=True).stdout for _ in range(runs)]
        print_repeated(corpus, [json.loads(output) for output in outputs])


if __name__ == "__main__":
    main(sys.argv)
