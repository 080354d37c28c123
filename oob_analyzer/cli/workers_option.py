"""`--workers N|auto` for `replay`, `capture` and `listen`, and the run it chooses.

One worker is today's in-process path, with no extra process; more start worker processes
(`oob_analyzer.workers`) behind a symmetric flow hash, all recording through the one writer.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import click

from capture import PacketDecoder, RawPacket
from oob_analyzer.cli.detection_options import detection_engine
from oob_analyzer.detection import DetectionEngine
from oob_analyzer.pipeline import HitSink, RunSummary, analyze_packets
from oob_analyzer.workers import WorkerError, analyze_packets_in_workers

__all__ = ["WorkerCountType", "analyze", "engine_for", "workers_option"]

F = TypeVar("F", bound=Callable[..., Any])
_MAX_WORKERS = 256


class WorkerCountType(click.ParamType[int | None]):
    """A number of worker processes (1 to 256), or `auto` (None: the run decides)."""

    name = "N|auto"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int | None:
        if value is None or isinstance(value, int):
            return value
        text = str(value).strip().lower()
        if text == "auto":
            return None
        if text.isdigit() and 1 <= int(text) <= _MAX_WORKERS:
            return int(text)
        self.fail(f"{value!r} is not a number of workers from 1 to {_MAX_WORKERS}, or 'auto'", param, ctx)


def workers_option(*, files: bool) -> Callable[[F], F]:
    auto = (
        "one per core available to the process (sched_getaffinity), but 1 on a single core or when the "
        "capture files add up to less than 32 MiB: starting a worker takes seconds"
        if files
        else "one per core available to the process (sched_getaffinity)"
    )
    return click.option(
        "--workers",
        "workers",
        type=WorkerCountType(),
        metavar="N|auto",
        default="auto",
        show_default=True,
        help=f"Analyzing processes; flows are spread over them by a hash of both endpoints and the "
        f"tunnel, so each flow stays on one. 1: in this process, no extra one. auto: {auto}.",
    )


def engine_for(workers: int, config_path: Path | None) -> DetectionEngine | None:
    """The engine for an in-process run; for workers, only a check of the config file (each
    worker builds its own engine: a compiled engine does not cross processes)."""
    if workers == 1 or config_path is not None:
        return detection_engine(config_path)  # a bad config file is refused before the run starts
    return None


def analyze(
    packets: Iterable[RawPacket | None],
    *,
    workers: int,
    engine: DetectionEngine | None,
    config_path: Path | None,
    sink: HitSink,
    summary: RunSummary,
    decoder: PacketDecoder,
    live: bool,
) -> None:
    """`analyze_packets` in this process, or over `workers` processes; a dead worker is an error."""
    if workers == 1:
        engine = engine or detection_engine(config_path)
        analyze_packets(packets, engine=engine, sink=sink, summary=summary, decoder=decoder)
        return
    try:
        analyze_packets_in_workers(
            packets,
            workers=workers,
            engine_factory=functools.partial(detection_engine, config_path),
            sink=sink,
            summary=summary,
            decoder=decoder,
            live=live,
        )
    except WorkerError as exc:
        raise click.ClickException(f"{exc}; what was detected before is recorded") from exc
