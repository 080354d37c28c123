"""`oob-analyzer replay`: analyze capture files and record the attacks found."""

from __future__ import annotations

from pathlib import Path

import click

from oob_analyzer.cli.exit_codes import ExitCode
from oob_analyzer.cli.options import db_option
from oob_analyzer.cli.recording import recording_run, writer_options
from oob_analyzer.detection import DetectionEngine, default_detectors
from oob_analyzer.pipeline import analyze_packets, iter_packets

__all__ = ["replay"]


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@db_option
@writer_options
def replay(
    files: tuple[Path, ...], db_url: str, journal: Path | None, sample_identical: int | None, flush_interval: float
) -> None:
    """Analyze pcap/pcapng FILES and record every attack found in the database.

    Prints a one-line summary: packets read, HTTP requests parsed, hits recorded.
    Exits 3 when a file could not be read whole (what could be read is still analyzed),
    130 when interrupted (SIGINT, SIGTERM): what was detected until then is written first.
    """
    source = "replay " + " ".join(str(path) for path in files)
    with recording_run(
        db_url, source=source, journal=journal, sample_identical=sample_identical, flush_interval=flush_interval
    ) as run:
        engine = DetectionEngine(default_detectors())
        analyze_packets(iter_packets(files, run.summary), engine=engine, sink=run.writer, summary=run.summary)
    if run.summary.errors:
        raise SystemExit(ExitCode.INPUT_DAMAGED)
