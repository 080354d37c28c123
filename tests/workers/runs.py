"""Run the same packets in process and over worker processes, and keep what each found."""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from capture import RawPacket
from oob_analyzer.detection import AttackHit, DetectionEngine, DetectionPolicy, default_detectors
from oob_analyzer.detection.detectors import Log4ShellDetector, SqlInjectionDetector
from oob_analyzer.detection.policy import PolicyScope
from oob_analyzer.pipeline import RunSummary, analyze_packets, iter_packets, single_capture_file
from oob_analyzer.workers import EngineFactory, WorkerPool, analyze_packets_in_workers, reads_never_stall
from reassembly import HttpRequest
from storage.batches import AnomalySighting


@dataclass
class ListSink:
    hits: list[AttackHit] = field(default_factory=list)
    sightings: list[AnomalySighting] = field(default_factory=list)

    def record(self, hits: Sequence[AttackHit]) -> None:
        self.hits.extend(hits)

    def record_anomalies(self, sightings: Sequence[AnomalySighting]) -> None:
        self.sightings.extend(sightings)

    def found(self) -> tuple[list[str], list[str]]:
        """Hits and sightings in a stable order: the workers' results arrive interleaved."""
        return sorted(map(repr, self.hits)), sorted(map(repr, self.sightings))


def small_engine(disabled: frozenset[str] = frozenset()) -> DetectionEngine:
    """Two detectors only: builds in milliseconds where the full set compiles for seconds."""
    policy = DetectionPolicy(everywhere=PolicyScope(disabled=disabled))
    return DetectionEngine([SqlInjectionDetector(), Log4ShellDetector()], policy=policy)


SMALL_ENGINE: EngineFactory = functools.partial(small_engine)


def run_in_process(paths: Iterable[Path], engine: DetectionEngine) -> tuple[RunSummary, ListSink]:
    summary, sink = RunSummary(), ListSink()
    analyze_packets(iter_packets(paths, summary), engine=engine, sink=sink, summary=summary)
    return summary, sink


def run_in_workers(paths: Sequence[Path], workers: int, engine_factory: EngineFactory) -> tuple[RunSummary, ListSink]:
    """As `replay` runs: from regular files, the dispatcher without a lock per packet, and
    one plain pcap through the dispatcher's record path."""
    summary = RunSummary()
    packets = iter_packets(paths, summary)
    regular_files = reads_never_stall(paths)
    return run_packets_in_workers(
        packets,
        workers,
        engine_factory,
        summary=summary,
        regular_files=regular_files,
        record_file=single_capture_file(paths),
    )


def run_packets_in_workers(
    packets: Iterable[RawPacket | None],
    workers: int,
    engine_factory: EngineFactory,
    *,
    summary: RunSummary | None = None,
    pool_ready: list[WorkerPool] | None = None,
    regular_files: bool = False,
    record_file: Path | None = None,
) -> tuple[RunSummary, ListSink]:
    summary, sink = summary or RunSummary(), ListSink()
    analyze_packets_in_workers(
        packets,
        workers=workers,
        engine_factory=engine_factory,
        sink=sink,
        summary=summary,
        pool_ready=pool_ready,
        regular_files=regular_files,
        record_file=record_file,
    )
    return summary, sink


def full_engine() -> DetectionEngine:
    """What `replay` judges with, without a config file."""
    return DetectionEngine(default_detectors(), policy=DetectionPolicy())


FULL_ENGINE: EngineFactory = functools.partial(full_engine)


class SlowEngine(DetectionEngine):
    """Takes `delay` seconds a request: a worker that cannot keep up."""

    def __init__(self, delay: float) -> None:
        super().__init__([SqlInjectionDetector()])
        self.delay = delay

    def analyze(self, request: HttpRequest, *, application: str = "") -> list[AttackHit]:
        time.sleep(self.delay)
        return super().analyze(request, application=application)


def slow_start_engine(seconds: float) -> DetectionEngine:
    """Built in `seconds`, as the full engine on a busy machine."""
    time.sleep(seconds)
    return small_engine()


def slow_start_engine_marked(seconds: float, built: Path) -> DetectionEngine:
    """`slow_start_engine`, and the file `built` created once it is built."""
    engine = slow_start_engine(seconds)
    built.touch()
    return engine


def failing_engine() -> DetectionEngine:
    raise RuntimeError("the engine cannot be built")


def slow_failing_engine() -> DetectionEngine:
    """Fails once the dispatcher has long sent everything (it does not wait for the engines)."""
    time.sleep(0.5)
    raise RuntimeError("the engine cannot be built")
