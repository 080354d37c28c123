"""`oob-analyzer replay`: analyze captures and record the attacks found."""

from __future__ import annotations

from pathlib import Path

import click

from oob_analyzer.cli.config_options import config_option, recording_settings, sensor_config
from oob_analyzer.cli.exit_codes import ExitCode
from oob_analyzer.cli.options import db_option
from oob_analyzer.cli.recording import recording_run, writer_options
from oob_analyzer.cli.sources import (
    decoder_options,
    echo_stats,
    given_sources,
    make_decoder,
    sources_argument,
    stats_option,
)
from oob_analyzer.config import build_engine
from oob_analyzer.pipeline import analyze_packets, iter_packets

__all__ = ["replay"]


@click.command()
@sources_argument
@db_option
@writer_options
@decoder_options
@config_option
@stats_option
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
) -> None:
    """Analyze captures and record every attack found in the database.

    A SOURCE is a pcap or pcapng file (gzip-compressed or not), a directory (every capture
    in it, recursively), or - for standard input. Several sources are merged in timestamp
    order. Mirror tunnels (VXLAN, GENEVE, GRE, ERSPAN) are unwrapped on the way. Without a
    SOURCE, the --config file's sources.files are read.

    Prints a one-line summary: packets read, HTTP requests parsed, hits recorded.
    Exits 3 when a source could not be read whole (what could be read is still analyzed),
    130 when interrupted (SIGINT, SIGTERM): what was detected until then is written first.
    """
    config = sensor_config(config_path)
    sources = given_sources(sources, config.sources.files)
    decoder = make_decoder(vxlan_ports, geneve_ports)
    engine = build_engine(config)
    source = "replay " + " ".join(str(path) for path in sources)
    writing = recording_settings(
        config, db_url=db_url, journal=journal, sample_identical=sample_identical, flush_interval=flush_interval
    )
    with recording_run(source=source, **writing) as run:
        packets = iter_packets(sources, run.summary)
        analyze_packets(
            packets, engine=engine, sink=run.writer, summary=run.summary, decoder=decoder, limits=config.reassembly
        )
        run.summary.drops.update(engine.counters)  # requests not judged, by reason
    if stats:
        echo_stats(run.summary)
    if run.summary.errors:
        raise SystemExit(ExitCode.INPUT_DAMAGED)
