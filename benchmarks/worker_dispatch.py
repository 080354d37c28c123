"""The parent's CPU per packet when worker processes analyze: read, decode, route, encode, send.

    python benchmarks/worker_dispatch.py --pcap FILE [--workers 2] [--rounds 3]

(`python benchmarks/full_pipeline.py --keep DIR` writes a capture to use: DIR/full.pcap.)

1. Stages, in this process, streamed as the dispatcher runs: the loop cut short after each
   stage (read the file; `route_packet`: the compiled decode, the flow's worker and the frame
   packed into its buffer; the batch bookkeeping; the lock and clock the dispatcher takes per
   packet for the stalled-source flusher; encode each full batch as the worker queue does,
   `ForkingPickler.dumps` of the message), so that each difference is a stage's cost; and,
   for the record, what the workers pay to get `RawPacket`s back from the batches.
2. The real dispatcher (`analyze_packets_in_workers`) with N real worker processes that
   reassemble but judge nothing (`NoVerdicts`), so the parent is not held up by detection:
   this process's CPU per packet (its feeder threads pickle the batches, its collector
   thread reads the results), median of `--rounds`, and the workers' CPU.

CPU time (`time.process_time`), not wall time: the machine is usually shared, and even so
the stage differences move by a few tenths of a microsecond from run to run there; for a
before/after comparison of one stage, count instructions (valgrind --tool=callgrind) instead.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from collections.abc import Sequence
from inspect import signature
from multiprocessing.reduction import ForkingPickler
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from capture import PacketDecoder, RawPacket
from capture._fastdecode import route_packet, unpack_frames
from oob_analyzer.detection import AttackHit
from oob_analyzer.pipeline import RunSummary, iter_packets
from oob_analyzer.workers import analyze_packets_in_workers, messages
from reassembly import HttpRequest
from storage.batches import AnomalySighting

_BATCH = 512


class NoVerdicts:
    """An engine that judges nothing: the workers only reassemble and parse."""

    def analyze(self, request: HttpRequest) -> list[AttackHit]:
        return []


class _NullSink:
    def record(self, hits: Sequence[AttackHit]) -> None:
        pass

    def record_anomalies(self, sightings: Sequence[AnomalySighting]) -> None:
        pass


def stage_costs(pcap: Path, workers: int, rounds: int) -> tuple[int, dict[str, float]]:
    """CPU seconds of the parent's path cut short after each stage (streamed, as the dispatcher
    runs, garbage collector on), least of `rounds`; the differences are the stages' costs."""
    stages = ("read", "route + pack (compiled decode)", "batches", "lock + clock per packet", "encode batches")
    cumulative: dict[str, float] = {}
    count = 0
    for depth, stage in enumerate(stages, start=1):
        runs = []
        for _ in range(rounds):
            started = time.process_time()
            count = _dispatch_until(pcap, workers, depth)
            runs.append(time.process_time() - started)
        cumulative[stage] = min(runs)
    costs, previous = {}, 0.0
    for stage, seconds in cumulative.items():
        costs[stage], previous = seconds - previous, seconds
    costs["whole path, in one thread"] = previous
    costs["worker: batches back to packets"] = min(_worker_unpack(pcap, workers) for _ in range(rounds))
    return count, costs


def _dispatch_until(pcap: Path, workers: int, depth: int) -> int:
    """The dispatcher's loop, its stages after `depth` left out; the packets it went through.
    (Frames the compiled decoder hands back, decoded in Python, are left out: none here.)"""
    decoder, lock, clock = PacketDecoder(), threading.Lock(), time.monotonic
    frame_decoder = decoder.frame_decoder
    assert frame_decoder is not None, "build the extension: pip install -e ."
    frames = [bytearray() for _ in range(workers)]
    counts = [0] * workers
    count = 0
    for packet in iter_packets([pcap], RunSummary()):
        count += 1
        if depth >= 4:
            with lock:
                clock()
        if depth < 2:
            continue
        index = route_packet(frame_decoder, packet, frames)
        if index < 0:
            continue
        if depth < 3:  # packed, not batched: only the memory kept bounded
            if len(frames[index]) >= 1 << 20:
                frames[index] = bytearray()
            continue
        counts[index] += 1
        if counts[index] >= _BATCH:
            if depth >= 5:
                ForkingPickler.dumps(messages.SegmentBatch([frames[index]]))
            frames[index], counts[index] = bytearray(), 0
    return count


def _worker_unpack(pcap: Path, workers: int) -> float:
    """CPU seconds the workers spend, all told, turning the batches back into `RawPacket`s
    (which they then decode and track in one C call each)."""
    decoder = PacketDecoder()
    frame_decoder = decoder.frame_decoder
    assert frame_decoder is not None
    frames = [bytearray() for _ in range(workers)]
    counts = [0] * workers
    spent = 0.0
    for packet in iter_packets([pcap], RunSummary()):
        index = route_packet(frame_decoder, packet, frames)
        if index < 0:
            continue
        counts[index] += 1
        if counts[index] >= _BATCH:
            data = ForkingPickler.dumps(messages.SegmentBatch([frames[index]]))
            frames[index], counts[index] = bytearray(), 0
            started = time.process_time()
            message = ForkingPickler.loads(data)
            for part in message.parts:
                unpack_frames(part, RawPacket, "worker")
            spent += time.process_time() - started
    return spent


def parent_cpu(pcap: Path, workers: int) -> tuple[float, float, RunSummary]:
    """This process's CPU seconds for a whole run with `workers` processes, and theirs."""
    summary = RunSummary()
    pools: list[Any] = []
    started = time.process_time()
    as_replay = {"regular_files": True} if "regular_files" in signature(analyze_packets_in_workers).parameters else {}
    analyze_packets_in_workers(
        iter_packets([pcap], summary),
        workers=workers,
        engine_factory=NoVerdicts,
        sink=_NullSink(),
        summary=summary,
        live=False,
        pool_ready=pools,
        **as_replay,  # as `replay` dispatches from a file (an older dispatcher has no such option)
    )
    parent = time.process_time() - started
    return parent, pools[0].final_counters()["cpu_milliseconds"] / 1000, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pcap", type=Path, required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    count, timings = stage_costs(args.pcap, args.workers, args.rounds)
    print(f"{count} packets; the parent's path in one thread, stage by stage (CPU, least of {args.rounds}):")
    for name, seconds in timings.items():
        print(f"  {name:36s} {seconds:6.2f} s  {seconds / count * 1e6:6.2f} us/packet")
    runs = [parent_cpu(args.pcap, args.workers) for _ in range(args.rounds)]
    summary = runs[0][2]
    print(
        f"whole dispatcher, {args.workers} workers judging nothing: {summary.packets} packets, "
        f"{summary.requests} requests"
    )
    parents = [run[0] for run in runs]
    print(
        f"  parent CPU {statistics.median(parents):.2f} s (runs: {' '.join(f'{p:.2f}' for p in parents)}), "
        f"{statistics.median(parents) / summary.packets * 1e6:.2f} us/packet; "
        f"workers' CPU {statistics.median(run[1] for run in runs):.2f} s"
    )


if __name__ == "__main__":
    main()
