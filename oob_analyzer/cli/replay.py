"""`oob-analyzer replay`: analyze captures and record the attacks found."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import click

from capture import capture_size
from oob_analyzer.cli.config_options import config_option, from_config, recording_settings, sensor_config
from oob_analyzer.cli.exit_codes import ExitCode
from oob_analyzer.cli.monitoring import metrics_option, serving_metrics
from oob_analyzer.cli.options import db_option
from oob_analyzer.cli.progress import progress_bar, summary_table
from oob_analyzer.cli.recording import recording_run, writer_options
from oob_analyzer.cli.sources import (
    decoder_options,
    echo_stats,
    given_sources,
    make_decoder,
    sources_argument,
    stats_option,
)
from oob_analyzer.cli.workers_option import analyze, engine_for, preparing_run, worker_count, workers_option
from oob_analyzer.metrics import PipelineMetrics
from oob_analyzer.pipeline import RequestStream, RunSummary, file_event_runs, iter_packets, single_capture_file
from oob_analyzer.workers import reads_never_stall

__all__ = ["replay"]


@click.command()
@sources_argument
@db_option
@writer_options
@decoder_options
@config_option
@stats_option
@metrics_option
@click.option(
    "--progress/--no-progress",
    default=True,
    show_default=True,
    help="Show the progress bar on stderr (only ever drawn when stderr is a terminal).",
)
@workers_option(files=True)
def replay(
    *,
    sources: tuple[Path, ...],
    db_url: str,
    journal: Path | None,
    sample_identical: int | None,
    flush_interval: float,
    vxlan_ports: tuple[int, ...],
    geneve_ports: tuple[int, ...],
    config_path: Path | None,
    stats: bool,
    metrics_address: tuple[str, int] | None,
    progress: bool,
    workers: int | None,
) -> None:
    """Analyze captures and record every attack found in the database.

    A SOURCE is a pcap or pcapng file (gzip-compressed or not), a directory (every capture
    in it, recursively), or - for standard input. Several sources are merged in timestamp
    order. Mirror tunnels (VXLAN, GENEVE, GRE, ERSPAN) are unwrapped on the way. Without a
    SOURCE, the --config file's sources.files are read.

    On a terminal, a progress bar (packets, MB/s, requests, hits, ETA) runs on stderr and
    a table of the run's counts ends it. Otherwise it prints only a one-line summary:
    packets read, HTTP requests parsed, hits recorded.
    Exits 3 when a source could not be read whole (what could be read is still analyzed),
    130 when interrupted (SIGINT, SIGTERM): what was detected until then is written first.
    """
    started = time.monotonic()
    config = sensor_config(config_path)
    sources = given_sources(sources, config.sources.files)
    stream = RequestStream(make_decoder(vxlan_ports, geneve_ports), config.reassembly)
    count = worker_count(workers, config, sources, live=False)
    metrics_address = from_config("metrics_address", metrics_address, config.metrics)
    source = "replay " + " ".join(str(path) for path in sources)
    writing = recording_settings(
        config, db_url=db_url, journal=journal, sample_identical=sample_identical, flush_interval=flush_interval
    )
    with (
        preparing_run(count) as analysis_started,
        recording_run(source=source, summary_text=_summary_text(started), **writing) as run,
    ):
        engine = engine_for(count, config)  # None with workers: each builds its own
        metrics = PipelineMetrics(summary=run.summary, stream=stream, writer=run.writer)
        with serving_metrics(metrics_address, metrics) as health, ExitStack() as bar:
            if progress and sys.stderr.isatty():
                bar.enter_context(progress_bar(run.summary, total_bytes=capture_size(sources), stream=sys.stderr))
            health.source_opened()  # files open as the merge reaches them; unreadable ones are reported
            with health.running():
                packets = iter_packets(sources, run.summary)
                # In this process, a plain pcap is read, decoded and tracked in C a run of records at a time.
                runs = file_event_runs(stream, sources, run.summary) if count == 1 else None
                analyze(
                    packets,
                    workers=count,
                    config=config,
                    engine=engine,
                    stream=stream,
                    sink=run.writer,
                    summary=run.summary,
                    live=False,
                    regular_files=count > 1 and reads_never_stall(sources),
                    record_file=single_capture_file(sources) if count > 1 else None,
                    metrics=metrics,
                    event_runs=runs,
                    started=analysis_started,
                )
    if stats:
        echo_stats(run.summary)
    if run.summary.errors:
        raise SystemExit(ExitCode.INPUT_DAMAGED)


def _summary_text(started: float) -> Callable[[RunSummary], str]:
    """The table on a terminal; the one line that scripts read otherwise."""

    def text(summary: RunSummary) -> str:
        if sys.stdout.isatty():
            return summary_table(summary, time.monotonic() - started)
        return summary.line()

    return text
