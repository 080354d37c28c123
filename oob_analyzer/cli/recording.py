"""A recording run, for every command that analyzes traffic into the database.

`replay` uses it, and so can the live commands: `writer_options` adds the writer's
options, `recording_run` opens the store, puts the batched writer in front of it, turns
SIGTERM into the same clean stop as Ctrl-C, and on the way out writes everything detected
and the run's report, then prints the summary and any warning about the journal.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import click

import storage
from oob_analyzer.cli.exit_codes import ExitCode
from oob_analyzer.cli.options import default_journal_path, open_store
from oob_analyzer.pipeline import RunSummary

__all__ = ["RecordingRun", "recording_run", "writer_options"]

F = TypeVar("F", bound=Callable[..., Any])

_WRITER_OPTIONS = [
    click.option(
        "--journal",
        type=click.Path(path_type=Path, dir_okay=False),
        envvar="OOB_ANALYZER_JOURNAL",
        show_envvar=True,
        help="Where hits wait while the database is unreachable (default: one file per database "
        "under $XDG_STATE_HOME/oob-analyzer). The next run against the database writes them.",
    ),
    click.option(
        "--sample-identical",
        type=click.IntRange(min=1),
        metavar="N",
        help="Store only the first N identical hits (type, point, target, method, source) per hour; "
        "count the rest in their attack. Off by default: every hit is stored.",
    ),
    click.option(
        "--flush-interval",
        type=click.FloatRange(min=0.01),
        default=0.5,
        show_default=True,
        metavar="SECONDS",
        help="Longest time a detected hit waits in memory before it is written.",
    ),
]


def writer_options(function: F) -> F:
    """--journal, --sample-identical, --flush-interval: pass them on to `recording_run`."""
    for option in reversed(_WRITER_OPTIONS):
        function = option(function)
    return function


@dataclass(slots=True)
class RecordingRun:
    writer: storage.BatchedWriter
    summary: RunSummary = field(default_factory=RunSummary)


@contextmanager
def recording_run(
    db_url: str,
    *,
    source: str,
    journal: Path | None,
    sample_identical: int | None,
    flush_interval: float,
    summary_text: Callable[[RunSummary], str] = RunSummary.line,
) -> Iterator[RecordingRun]:
    """Yield the writer (the pipeline's sink) and the summary to fill; exits 130 when interrupted.

    At the end the summary is printed on stdout as `summary_text` renders it (one line by default).
    """
    started = time.time()
    status = "interrupted"
    with open_store(db_url) as store:
        run = RecordingRun(
            writer=storage.BatchedWriter(
                store,
                journal=storage.Journal(journal or default_journal_path(db_url)),
                flush_interval=flush_interval,
                sampler=storage.HitSampler(sample_identical) if sample_identical else None,
            )
        )
        try:
            with _sigterm_as_interrupt():
                yield run
            status = "completed"
        except KeyboardInterrupt:
            click.echo("interrupted: writing what was detected", err=True)
        except Exception:
            status = "failed"  # e.g. a worker process died: the report says so, the error goes on
            raise
        finally:
            run.writer.close(_run_report(run, source, started, status))
    _report(run)
    click.echo(summary_text(run.summary))
    if status == "interrupted":
        raise SystemExit(ExitCode.INTERRUPTED)


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


def _run_report(run: RecordingRun, source: str, started: float, status: str) -> storage.RunReport:
    summary = run.summary
    return storage.RunReport(
        run_key=run.writer.run_key,
        source=source,
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


def _report(run: RecordingRun) -> None:
    stats, journal = run.writer.stats, run.writer.journal
    for error in run.summary.errors:
        click.echo(f"warning: {error}", err=True)
    if journal.pending():
        click.echo(
            f"warning: the database is unreachable; {stats.journalled} items wait in {journal.path} "
            "and are written by the next run against this database",
            err=True,
        )
    if stats.rejected:
        click.echo(f"warning: the database refused {stats.rejected} items; kept in {journal.rejected_path}", err=True)
