"""Replay with detection into SQLite: in process (--workers 1) against N worker processes, same run.

    python benchmarks/workers_replay.py [--connections 5000] [--workers 2] [--rounds 2]
    python benchmarks/workers_replay.py --pcap FILE

Generates a capture with `reassembly_generate.py` (unless given one), then alternates the
two modes `--rounds` times, each the whole pipeline as `replay` runs it (read, decode,
reassembly, detection, the batched writer into a fresh SQLite file), and prints per mode
the median wall time, the CPU seconds of every process involved (this one's, plus what the
workers report), and the ratio. Checks that both modes found the same requests and hits.

Then the dispatcher's cost per stage on the same capture (read, decode, hash + tuple,
pickle), which is what decides where decoding happens: a worker cannot be chosen before
the frame is decoded (tunnels, IP fragments), so shipping raw frames means decoding twice.

The machine this runs on is usually shared: wall times and their ratio say as much about
the neighbours as about us; run it on an idle machine for figures to quote.
"""

from __future__ import annotations

import argparse
import functools
import pickle
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.reassembly_generate import Impairments, packets, write_pcap
from capture import PacketDecoder
from oob_analyzer.detection import DetectionEngine, DetectionPolicy, default_detectors
from oob_analyzer.pipeline import RunSummary, analyze_packets, iter_packets
from oob_analyzer.workers import WorkerPool, analyze_packets_in_workers, segment_to_tuple, worker_for
from storage import AttackStore, BatchedWriter, Journal


def full_engine() -> DetectionEngine:
    return DetectionEngine(default_detectors(), policy=DetectionPolicy())


def run_once(pcap: Path, workers: int, scratch: Path, label: str) -> tuple[float, float, RunSummary]:
    """Wall seconds, CPU seconds of all processes, and the summary of one replay."""
    store = AttackStore.open(f"sqlite:///{scratch / f'{label}.db'}")
    writer = BatchedWriter(store, journal=Journal(scratch / f"{label}.journal"))
    summary = RunSummary()
    pools: list[WorkerPool] = []
    started, cpu = time.perf_counter(), time.process_time()
    if workers == 1:
        analyze_packets(iter_packets([pcap], summary), engine=full_engine(), sink=writer, summary=summary)
    else:
        analyze_packets_in_workers(
            iter_packets([pcap], summary),
            workers=workers,
            engine_factory=functools.partial(full_engine),
            sink=writer,
            summary=summary,
            pool_ready=pools,
        )
    writer.close()
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    store.close()
    if pools:
        cpu += pools[0].final_counters()["cpu_milliseconds"] / 1000
    return wall, cpu, summary


def dispatch_costs(pcap: Path, workers: int) -> None:
    timings: dict[str, float] = {}
    clock = time.process_time
    started = clock()
    frames = list(iter_packets([pcap], RunSummary()))
    timings["read"] = clock() - started
    decoder, segments = PacketDecoder(), []
    started = clock()
    for frame in frames:
        segment = decoder.decode(frame)
        if segment is not None:
            segments.append(segment)
    timings["decode"] = clock() - started
    started = clock()
    batches: list[list[object]] = [[] for _ in range(workers)]
    for segment in segments:
        batches[worker_for(segment, workers)].append(segment_to_tuple(segment))
    timings["hash + tuple"] = clock() - started
    started = clock()
    size = sum(len(pickle.dumps(batch[i : i + 512], -1)) for batch in batches for i in range(0, len(batch), 512))
    timings["pickle (batches of 512)"] = clock() - started
    started = clock()
    raw = sum(
        len(pickle.dumps([(f.ts, f.data, f.linktype, f.wire_length) for f in frames[i : i + 512]], -1))
        for i in range(0, len(frames), 512)
    )
    timings["pickle raw frames instead"] = clock() - started
    print(f"dispatcher CPU per stage, {len(frames)} frames ({size >> 20} MiB as segments, {raw >> 20} MiB raw):")
    for name, seconds in timings.items():
        print(f"  {name:28s} {seconds:6.2f} s  {seconds / len(frames) * 1e6:6.2f} us/frame")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pcap", type=Path)
    parser.add_argument("--connections", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="oob-workers-bench-") as scratch_name:
        scratch = Path(scratch_name)
        pcap = args.pcap
        if pcap is None:
            pcap = scratch / "bench.pcap"
            count = write_pcap(
                pcap, packets(args.connections, args.requests, Impairments(0.01, 0.02, 0.02), 1, scratch / "t.jsonl")
            )
            print(f"generated {pcap.name}: {count} packets, {pcap.stat().st_size >> 20} MiB")
        results: dict[int, list[tuple[float, float, RunSummary]]] = {1: [], args.workers: []}
        for round_ in range(args.rounds):
            for workers, runs in results.items():
                runs.append(run_once(pcap, workers, scratch, f"w{workers}r{round_}"))
        single, parallel = results[1][0][2], results[args.workers][0][2]
        same = (single.requests, single.hits, single.drops) == (parallel.requests, parallel.hits, parallel.drops)
        print(f"requests {single.requests}, hits {single.hits}; same results in both modes: {same}")
        print(f"{'':14s}  wall s (median of {args.rounds})  cpu s (all processes)")
        medians = {}
        for workers, runs in results.items():
            wall = statistics.median(run[0] for run in runs)
            cpu = statistics.median(run[1] for run in runs)
            medians[workers] = (wall, cpu)
            each = " ".join(f"{run[0]:.2f}" for run in runs)
            print(f"{'workers ' + str(workers):14s}  {wall:8.2f} {each:>16s}  {cpu:8.2f}")
        (wall1, cpu1), (wall_n, cpu_n) = medians[1], medians[args.workers]
        print(f"workers {args.workers} vs 1: {wall1 / wall_n:.2f}x faster (wall), {cpu_n / cpu1:.2f}x the CPU")
        dispatch_costs(pcap, args.workers)
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()
