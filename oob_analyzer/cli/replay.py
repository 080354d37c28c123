"""`oob-analyzer replay`: analyze capture files and record the attacks found."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import click

from oob_analyzer.cli.exit_codes import ExitCode
from oob_analyzer.cli.options import db_option, default_journal_path, open_store
from oob_analyzer.detection import DetectionEngine, default_detectors
from oob_analyzer.pipeline import RunSummary, analyze_packets, iter_packets
from storage import BatchedWriter, HitSampler, Journal, RunReport, WriterStats

__all__ = ["replay"]


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@db_option
@click.option(
    "--journal",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="OOB_ANALYZER_JOURNAL",
    show_envvar=True,
    help="Where hits wait while the database is unreachable (default: one file per database "
    "under $XDG_STATE_HOME/oob-analyzer). The next run against the database writes them.",
)
@click.option(
    "--sample-identical",
    type=click.IntRange(min=1),
    metavar="N",
    help="Store only the first N identical hits (type, point, target, method, source) per hour; "
    "count the rest in their attack. Off by default: every hit is stored.",
)
@click.option(
    "--flush-interval",
    type=click.FloatRange(min=0.01),
    default=0.5,
    show_default=True,
    metavar="SECONDS",
    help="Longest time a detected hit waits in memory before it is written.",
)
def replay(
    files: tuple[Path, ...], db_url: str, journal: Path | None, sample_identical: int | None, flush_interval: float
) -> None:
    """Analyze pcap/pcapng FILES and record every attack found in the database.

    Prints a one-line summary: packets read, HTTP requests parsed, hits recorded.
    Exits 3 when a file could not be read whole (what could be read is still analyzed),
    130 when interrupted (SIGINT, SIGTERM): what was detected until then is written first.
    """
    summary = RunSummary()
    started = time.time()
    status = "interrupted"
    with open_store(db_url) as store:
        writer = BatchedWriter(
            store,
            journal=Journal(journal or default_journal_path(db_url)),
            flush_interval=flush_interval,
            sampler=HitSampler(sample_identical) if sample_identical else None,
        )
        try:
            with _sigterm_as_interrupt():
                analyze_packets(
                    iter_packets(files, summary),
                    engine=DetectionEngine(default_detectors()),
                    sink=writer,
                    summary=summary,
                )
            status = "completed"
        except KeyboardInterrupt:
            click.echo("interrupted: writing what was detected", err=True)
        finally:
            writer.close(_run_report(writer.run_key, files, started, status, summary))
    _report(summary, writer.stats, writer.journal)
    if status == "interrupted":
        raise SystemExit(ExitCode.INTERRUPTED)
    if summary.errors:
        raise SystemExit(ExitCode.INPUT_DAMAGED)


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM ends the run like Ctrl-C does: through `finally`, so the writer is closed."""

    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run_report(run_key: str, files: tuple[Path, ...], started: float, status: str, summary: RunSummary) -> RunReport:
    return RunReport(
        run_key=run_key,
        source="replay " + " ".join(str(path) for path in files),
        started=started,
        finished=time.time(),
        status=status,
        packets=summary.packets,
        requests=summary.requests,
        hits=summary.hits,
        anomalies=summary.anomalies,
        drops=dict(summary.drops),
        errors=tuple(summary.errors),
    )


def _report(summary: RunSummary, stats: WriterStats, journal: Journal) -> None:
    for error in summary.errors:
        click.echo(f"warning: {error}", err=True)
    if journal.pending():
        click.echo(
            f"warning: the database is unreachable; {stats.journalled} items wait in {journal.path} "
            "and are written by the next run against this database",
            err=True,
        )
    if stats.rejected:
        click.echo(f"warning: the database refused {stats.rejected} items; kept in {journal.rejected_path}", err=True)
    click.echo(summary.line())
