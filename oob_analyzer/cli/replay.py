"""`oob-analyzer replay`: analyze captures and record the attacks found."""

from __future__ import annotations

from pathlib import Path

import click

from oob_analyzer.cli.exit_codes import ExitCode
from oob_analyzer.cli.options import db_option, open_store
from oob_analyzer.cli.sources import decoder_options, echo_stats, make_decoder, sources_argument, stats_option
from oob_analyzer.detection import DetectionEngine, default_detectors
from oob_analyzer.pipeline import replay_captures

__all__ = ["replay"]


@click.command()
@sources_argument
@db_option
@decoder_options
@stats_option
def replay(
    sources: tuple[Path, ...], db_url: str, vxlan_ports: tuple[int, ...], geneve_ports: tuple[int, ...], stats: bool
) -> None:
    """Analyze captures and record every attack found in the database.

    A SOURCE is a pcap or pcapng file (gzip-compressed or not), a directory (every capture
    in it, recursively), or - for standard input. Several sources are merged in timestamp
    order. Mirror tunnels (VXLAN, GENEVE, GRE, ERSPAN) are unwrapped on the way.

    Prints a one-line summary: packets read, HTTP requests parsed, hits recorded.
    Exits 3 when a source could not be read whole (what could be read is still analyzed).
    """
    decoder = make_decoder(vxlan_ports, geneve_ports)
    with open_store(db_url) as store:
        summary = replay_captures(sources, engine=DetectionEngine(default_detectors()), sink=store, decoder=decoder)
    for error in summary.errors:
        click.echo(f"warning: {error}", err=True)
    click.echo(summary.line())
    if stats:
        echo_stats(summary)
    if summary.errors:
        raise SystemExit(ExitCode.INPUT_DAMAGED)
