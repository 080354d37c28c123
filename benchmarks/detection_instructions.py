"""Detection cost in instructions per request (callgrind), steady where CPU time is not.

On a shared machine `detection_speed.py`'s medians move by a third from run to run, more than
most single changes save. Callgrind counts the instructions each `DetectionEngine.analyze`
call executes, the same on a busy machine as on an idle one: this runs the measurement under
valgrind, with one callgrind dump per request (`--dump-before` a marker call between
requests), and prints the median and mean instructions per request.

    python benchmarks/detection_instructions.py [CORPUS.jsonl | --traffic generated]
        [--no-cache] [--requests N]

Cold cache by default (a fresh engine, one pass, as `detection_speed.py`'s cold run);
`--no-cache` judges every point from scratch. Needs valgrind; about 2.5 minutes for the
corpus. Compare before and after a change in the same way (e.g. a `git worktree` of each).
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.detection_corpus import CORPUS
from benchmarks.detection_speed import GENERATED, load_requests
from oob_analyzer.detection import DetectionEngine, default_detectors

# The C function behind time.thread_time_ns: called once between two requests, it marks
# where callgrind starts a new dump (CPython's name for it, in Modules/timemodule.c).
_MARKER = "time_thread_time_ns"
_TOTAL = re.compile(r"^(?:summary|totals):\s+(\d+)", re.MULTILINE)


def run_marked(source: str, cache_size: int, count: int | None) -> None:
    """The child under valgrind: analyze each request, a marker call before the first and after each."""
    requests = load_requests(source)[:count]
    engine = DetectionEngine(default_detectors(), cache_size=cache_size)
    mark = time.thread_time_ns
    mark()
    for request in requests:
        engine.analyze(request)
        mark()


def instructions_per_request(source: str, cache_size: int, count: int | None) -> list[int]:
    with tempfile.TemporaryDirectory(prefix="oob-callgrind-") as scratch:
        out = Path(scratch) / "callgrind.out"
        command = [
            "valgrind",
            "--tool=callgrind",
            f"--dump-before={_MARKER}",
            f"--callgrind-out-file={out}",
            sys.executable,
            __file__,
            "--child",
            source,
            "--cache-size",
            str(cache_size),
        ]
        if count is not None:
            command += ["--requests", str(count)]
        subprocess.run(command, check=True, capture_output=True)
        dumps = sorted(Path(scratch).glob("callgrind.out.*"), key=lambda path: int(path.suffix[1:]))
        totals = [int(match.group(1)) for dump in dumps if (match := _TOTAL.search(dump.read_text()))]
    return totals[1:]  # the first dump is start-up up to the first marker; then one per request


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", nargs="?", default=str(CORPUS))
    parser.add_argument("--traffic", choices=[GENERATED], help="generated benign traffic instead of the corpus")
    parser.add_argument("--no-cache", action="store_true", help="cache_size=0: every point judged from scratch")
    parser.add_argument("--requests", type=int, help="only the first N requests")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--cache-size", type=int, default=4096, help=argparse.SUPPRESS)
    args = parser.parse_args()
    source = GENERATED if args.traffic else args.corpus
    if args.child:
        run_marked(source, args.cache_size, args.requests)
        return
    cache_size = 0 if args.no_cache else 4096
    costs = instructions_per_request(source, cache_size, args.requests)
    label = "no cache" if args.no_cache else "cold cache"
    print(
        f"{source} ({len(costs)} requests), {label}: median {statistics.median(costs):,.0f}"
        f" instructions per request, mean {statistics.fmean(costs):,.0f}"
    )


if __name__ == "__main__":
    main()
