"""`oob-analyzer replay`: analyze captures and record the attacks found."""

from __future__ import annotations

from pathlib import Path

import click

from oob_analyzer.cli.detection_options import config_option
from oob_analyzer.cli.exit_codes import ExitCode
from oob_analyzer.cli.options import db_option
from oob_analyzer.cli.recording import recording_run, writer_options
from oob_analyzer.cli.sources import decoder_options, echo_stats, make_decoder, sources_argument, stats_option
from oob_analyzer.cli.workers_option import analyze, engine_for, workers_option
from oob_analyzer.pipeline import iter_packets
from oob_analyzer.workers import choose_workers

__all__ = ["replay"]


@click.command()
@sources_argument
@db_option
@writer_options
@decoder_options
@config_option
@stats_option
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
    workers: int | None,
) -> None:
    """Analyze captures and record every attack found in the database.

    A SOURCE is a pcap or pcapng file (gzip-compressed or not), a directory (every capture
    in it, recursively), or - for standard input. Several sources are merged in timestamp
    order. Mirror tunnels (VXLAN, GENEVE, GRE, ERSPAN) are unwrapped on the way.

    Prints a one-line summary: packets read, HTTP requests parsed, hits recorded.
    Exits 3 when a source could not be read whole (what could be read is still analyzed),
    130 when interrupted (SIGINT, SIGTERM): what was detected until then is written first.
    """
    decoder = make_decoder(vxlan_ports, geneve_ports)
    count = choose_workers(workers, sources)
    engine = engine_for(count, config_path)
    source = "replay " + " ".join(str(path) for path in sources)
    with recording_run(
        db_url, source=source, journal=journal, sample_identical=sample_identical, flush_interval=flush_interval
    ) as run:
        packets = iter_packets(sources, run.summary)
        analyze(
            packets,
            workers=count,
            engine=engine,
            config_path=config_path,
            sink=run.writer,
            summary=run.summary,
            decoder=decoder,
            live=False,
        )
    if stats:
        echo_stats(run.summary)
    if run.summary.errors:
        raise SystemExit(ExitCode.INPUT_DAMAGED)
