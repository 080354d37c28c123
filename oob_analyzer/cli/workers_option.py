"""`--workers N|auto` for `replay`, `capture` and `listen`, and the run it chooses.

One worker is today's in-process path, with no extra process; more start worker processes
(`oob_analyzer.workers`) behind a symmetric flow hash, all recording through the one writer.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from capture import RawPacket
from oob_analyzer.cli.config_options import from_config
from oob_analyzer.config import ConfigReloader, SensorConfig, SensorEngine, build_engine
from oob_analyzer.gc_policy import quiet_start_up
from oob_analyzer.metrics import PipelineMetrics
from oob_analyzer.pipeline import EventRun, HitSink, RequestStream, RunSummary, analyze_event_runs, analyze_packets
from oob_analyzer.workers import (
    WorkerError,
    WorkerPool,
    analyze_packets_in_workers,
    choose_workers,
    start_worker_server,
)

__all__ = ["WorkerCountType", "analyze", "engine_for", "preparing_run", "worker_count", "workers_option"]

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


def worker_count(requested: int | None, config: SensorConfig, sources: Sequence[Path] = (), *, live: bool) -> int:
    """The run's workers: `--workers` if given, else the config file's `workers`, else auto."""
    configured = config.workers if isinstance(config.workers, int) else None
    return choose_workers(from_config("workers", requested, configured), sources, live=live)


def engine_for(workers: int, config: SensorConfig) -> SensorEngine | None:
    """The engine this process judges with: one when it analyzes alone; none when workers do
    (each builds its own from the config: a compiled engine does not cross processes)."""
    return build_engine(config) if workers == 1 else None


@contextmanager
def preparing_run(workers: int) -> Iterator[Callable[[], None]]:
    """What readies this process, and the workers' fork server, before the store opens.

    With workers, the fork server starts at once: its imports (a fifth of a second of CPU)
    run on another core while this process opens the store, instead of after it, when the
    first worker starts. In every case the garbage collector keeps quiet through start-up
    (`gc_policy.quiet_start_up`); the function yielded is to be called once the analysis
    starts (`analyze`'s `started`).
    """
    if workers > 1:
        start_worker_server()
    with quiet_start_up() as analysis_started:
        yield analysis_started


def analyze(
    packets: Iterable[RawPacket | None],
    *,
    workers: int,
    config: SensorConfig,
    engine: SensorEngine | None,
    stream: RequestStream,
    sink: HitSink,
    summary: RunSummary,
    live: bool,
    regular_files: bool = False,
    record_file: Path | None = None,
    metrics: PipelineMetrics | None = None,
    reloader: ConfigReloader | None = None,
    started: Callable[[], None] | None = None,
    event_runs: Iterable[EventRun] | None = None,
) -> None:
    """`analyze_packets` in this process, or over `workers` processes; a dead worker is an error.

    `engine` is `engine_for(workers, config)`: this process's engine, or None with workers,
    where `stream` only decodes (each worker has its own tracker and builds its own engine
    from `config`: a compiled engine does not cross processes); `metrics` reads the workers'
    reassembly counters, and a config `reloader` reconfigures every worker. `regular_files`:
    the packets come from regular files only (`reads_never_stall`), dispatched without a lock;
    `record_file`, the one file they come from, which the dispatcher reads itself when it can.
    `started` is called when the analysis is ready for the first packet (workers on a live
    source: every one has built its engine). `event_runs`: the same input through `stream`'s
    record path (`pipeline.file_event_runs`), taken instead of `packets` in this process.
    """
    if workers == 1:
        if engine is None:
            raise ValueError("analyzing in this process needs its engine: engine_for(1, config)")
        if metrics is not None:
            metrics.engine_counters = engine.counters  # kept across reloads
        if started is not None:
            started()
        try:
            if event_runs is not None:
                analyze_event_runs(event_runs, engine=engine, sink=sink, summary=summary, stream=stream)
            else:
                analyze_packets(packets, engine=engine, sink=sink, summary=summary, stream=stream)
        finally:
            summary.drops.update(engine.counters)  # requests not judged, by reason
        return
    pools: list[WorkerPool] = []
    if metrics is not None:
        metrics.workers = functools.partial(_running_counters, pools)
    if reloader is not None:
        reloader.listeners.append(functools.partial(_reconfigure, pools))
    try:
        analyze_packets_in_workers(
            packets,
            workers=workers,
            engine_factory=functools.partial(build_engine, config),
            sink=sink,
            summary=summary,
            decoder=stream.decoder,
            limits=config.reassembly,
            live=live,
            regular_files=regular_files,
            record_file=record_file,
            pool_ready=pools,
            on_ready=started,
        )
    except WorkerError as exc:
        raise click.ClickException(f"{exc}; what was detected before is recorded") from exc
    finally:
        pools.clear()  # the run is over: its counters are in the summary now


def _running_counters(pools: list[WorkerPool]) -> Counter[str]:
    """The workers' counters for a metrics scrape; none while starting, stopping or failing."""
    if not pools:
        return Counter()
    try:
        return pools[0].counters()
    except (TimeoutError, WorkerError):
        return Counter()


def _reconfigure(pools: list[WorkerPool], config: SensorConfig) -> None:
    if pools:
        pools[0].reconfigure(functools.partial(build_engine, config))
