"""`oob-analyzer replay`: analyze capture files and record the attacks found."""

from __future__ import annotations

from pathlib import Path

import click

from oob_analyzer.cli.exit_codes import ExitCode
from oob_analyzer.cli.options import db_option, open_store
from oob_analyzer.detection import DetectionEngine, default_detectors
from oob_analyzer.pipeline import replay_captures

__all__ = ["replay"]


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@db_option
def replay(files: tuple[Path, ...], db_url: str) -> None:
    """Analyze pcap/pcapng FILES and record every attack found in the database.

    Prints a one-line summary: packets read, HTTP requests parsed, hits recorded.
    Exits 3 when a file could not be read whole (what could be read is still analyzed).
    """
    with open_store(db_url) as store:
        summary = replay_captures(files, engine=DetectionEngine(default_detectors()), sink=store)
    for error in summary.errors:
        click.echo(f"warning: {error}", err=True)
    click.echo(summary.line())
    if summary.errors:
        raise SystemExit(ExitCode.INPUT_DAMAGED)
