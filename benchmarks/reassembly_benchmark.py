"""Reassembly fidelity and speed on a large generated capture, against tshark in the same run.

    python benchmarks/reassembly_benchmark.py [--connections 20000] [--loss 0.01] ...
    python benchmarks/reassembly_benchmark.py --pcap FILE --truth FILE.truth.jsonl

Generates a capture with `reassembly_generate.py` (unless given one), then:
1. fidelity: every request that loss did not touch must come out complete, with its body
   length, and, when its response was not touched either, paired with that response;
2. speed: capture + reassembly + HTTP parsing (no detection), timed, against
   `tshark -r FILE -Y http.request` with and without `-o tcp.reassemble_out_of_order:TRUE`.
   The capture is read once before anything is timed, so that every contender finds it in
   the page cache (the first one timed no longer pays for the disk alone).
Prints both times and the ratios; exits 1 if a request loss did not touch was not recovered.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.reassembly_generate import Impairments, packets, write_pcap
from oob_analyzer.pipeline import RunSummary, extract_events
from reassembly import HttpRequest, HttpResponse

Key = tuple[str, int, str, str]
Found = tuple[bool, int]  # complete, body length


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def warm_page_cache(path: Path) -> int:
    """Read the whole capture, untimed, and return its size: with a file given by --pcap (or
    written long before), ours ran first and alone on a cold cache."""
    size = 0
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            size += len(chunk)
    return size


def run_ours(pcap: Path) -> tuple[float, float, dict[Key, Found], dict[Key, int], RunSummary]:
    """Wall and CPU seconds, each request found (complete, body length), each paired response's
    status, and the summary. Only those few fields are kept, as a consumer keeping up with a
    mirror would: holding every message would time the garbage collector, not the parsing."""
    summary = RunSummary()
    requests: dict[Key, Found] = {}
    responses: dict[Key, int] = {}
    started, cpu = time.perf_counter(), _cpu(resource.RUSAGE_SELF)
    for event in extract_events([pcap], summary):
        if isinstance(event, HttpRequest):
            requests[(event.flow.client, event.flow.client_port, event.method, event.target)] = (
                event.complete,
                event.body_length,
            )
        elif isinstance(event, HttpResponse) and event.request is not None:
            request = event.request
            responses[(event.flow.client, event.flow.client_port, request.method, request.target)] = event.status
    return time.perf_counter() - started, _cpu(resource.RUSAGE_SELF) - cpu, requests, responses, summary


def run_tshark(pcap: Path, *extra: str) -> tuple[float, float, int]:
    """Wall and CPU seconds of one tshark run, and the requests it lists."""
    command = ["tshark", "-n", "-r", str(pcap), *extra, "-Y", "http.request", "-T", "fields", "-e", "frame.number"]
    started, cpu = time.perf_counter(), _cpu(resource.RUSAGE_CHILDREN)
    result = subprocess.run(command, capture_output=True, check=True, text=True)
    return time.perf_counter() - started, _cpu(resource.RUSAGE_CHILDREN) - cpu, len(result.stdout.splitlines())


def check_fidelity(truth: list[dict[str, Any]], requests: dict[Key, Found], responses: dict[Key, int]) -> list[str]:
    problems: list[str] = []
    untouched = [t for t in truth if not t["request_lost_bytes"]]
    both = [t for t in untouched if not t["response_lost_bytes"]]
    recovered = paired = 0
    for item in untouched:
        key = (item["client"], item["sport"], item["method"], item["target"])
        request = requests.get(key)
        if request != (True, item["body_length"]):
            problems.append(f"request not recovered: {item} -> {request}")
            continue
        recovered += 1
        if not item["response_lost_bytes"]:
            status = responses.get(key)
            if status != item["status"]:
                problems.append(f"response not paired: {item} -> {status}")
            else:
                paired += 1
    touched = len(truth) - len(untouched)
    touched_found = sum(
        1 for t in truth if t["request_lost_bytes"] and (t["client"], t["sport"], t["method"], t["target"]) in requests
    )
    print(f"requests in ground truth:            {len(truth)}")
    print(f"  untouched by loss, recovered:      {recovered}/{len(untouched)}")
    print(f"  responses untouched too, paired:   {paired}/{len(both)}")
    print(f"  touched by loss, still reported:   {touched_found}/{touched} (kept incomplete, tcp_gap)")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pcap", type=Path)
    parser.add_argument("--truth", type=Path)
    parser.add_argument("--connections", type=int, default=20000)
    parser.add_argument("--requests", type=int, default=5)
    parser.add_argument("--loss", type=float, default=0.01)
    parser.add_argument("--retransmit", type=float, default=0.02)
    parser.add_argument("--reorder", type=float, default=0.02)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="oob4-bench-") as scratch:
        pcap, truth_path = args.pcap, args.truth
        if pcap is None or truth_path is None:
            pcap, truth_path = Path(scratch) / "bench.pcap", Path(scratch) / "bench.truth.jsonl"
            impairments = Impairments(args.loss, args.retransmit, args.reorder)
            count = write_pcap(pcap, packets(args.connections, args.requests, impairments, args.seed, truth_path))
            print(f"generated {pcap.name}: {count} packets, {pcap.stat().st_size >> 20} MiB, {impairments}")
        truth = [json.loads(line) for line in truth_path.read_text().splitlines()]
        print(f"read {warm_page_cache(pcap) >> 20} MiB once before timing: the page cache is warm for every contender")
        ours, ours_cpu, requests, responses, summary = run_ours(pcap)
        problems = check_fidelity(truth, requests, responses)
        # CPU time as well as wall time: on a shared machine the wall clock says more about the neighbours.
        print(f"{'':38s}   wall s    cpu s  requests")
        print(f"{'oob-analyzer (capture+reassembly+HTTP)':38s} {ours:8.2f} {ours_cpu:8.2f}  {summary.requests}")
        if shutil.which("tshark") is None:
            print("tshark not found: no speed comparison")
        else:
            for label, extra in (("", ()), (" + out-of-order", ("-o", "tcp.reassemble_out_of_order:TRUE"))):
                theirs, theirs_cpu, found = run_tshark(pcap, *extra)
                print(
                    f"{'tshark -Y http.request' + label:38s} {theirs:8.2f} {theirs_cpu:8.2f}  {found}"
                    f"   ours faster by {theirs / ours:.2f}x wall, {theirs_cpu / ours_cpu:.2f}x cpu"
                )
    for problem in problems[:10]:
        print(problem)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
