"""`replay`'s progress bar and its closing summary table.

The bar is one line on stderr, redrawn a few times a second by a thread that reads the
run's `RunSummary` (no per-packet cost): packets, MB/s, requests, hits, and an ETA from the
bytes read against the sources' size (unknown for standard input and gzip files). It is
drawn only when stderr is a terminal, so it never mixes into piped output. The summary
table replaces the one-line summary when stdout is a terminal; a pipe or file gets only
the line, which scripts read.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from oob_analyzer.cli.tables import printable
from oob_analyzer.pipeline import RunSummary

__all__ = ["progress_bar", "render_progress", "summary_table"]

_RECORD_OVERHEAD = 16  # a pcap record header per packet (pcapng blocks are larger: an estimate)
_CLEAR_LINE = "\r\x1b[K"


def render_progress(summary: RunSummary, elapsed: float, total_bytes: int | None) -> str:
    """The bar's text: counts, rate, and how long is left when the total size is known."""
    read = summary.bytes + _RECORD_OVERHEAD * summary.packets
    rate = summary.bytes / elapsed / 1e6 if elapsed > 0 else 0.0
    text = f"{summary.packets:,} packets  {rate:.1f} MB/s  {summary.requests:,} requests  {summary.hits:,} hits"
    if not total_bytes:
        return f"{text}  {read / 1e6:,.1f} MB read  ETA ?"
    done = min(read / total_bytes, 1.0)
    left = elapsed * (1 - done) / done if done > 0 else None
    return f"{text}  {done:4.0%}  ETA {_clock(left)}"


@contextmanager
def progress_bar(
    summary: RunSummary, *, total_bytes: int | None, stream: TextIO, interval: float = 0.25
) -> Iterator[None]:
    """Redraw the bar on `stream` every `interval` seconds until the block ends, then clear it."""
    stop = threading.Event()
    started = time.monotonic()

    def draw() -> None:
        while not stop.wait(interval):
            stream.write(_CLEAR_LINE + render_progress(summary, time.monotonic() - started, total_bytes))
            stream.flush()

    thread = threading.Thread(target=draw, name="oob-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        stream.write(_CLEAR_LINE)
        stream.flush()


def summary_table(summary: RunSummary, elapsed: float) -> str:
    """The one-line summary, then every count of the run, aligned; counters by decreasing count."""
    seconds = max(elapsed, 1e-9)
    rows: list[tuple[str, str]] = [
        ("packets", f"{summary.packets:,}"),
        ("bytes", f"{summary.bytes:,}"),
        ("requests", f"{summary.requests:,}"),
        ("responses", f"{summary.responses:,}"),
        ("hits", f"{summary.hits:,}"),
        *_counter_rows("  ", summary.hits_by_type),
        ("anomalies", f"{summary.anomalies:,}"),
        *_counter_rows("  ", summary.anomalies_by_name),
        ("counters (drops by reason, connections)", ""),
        *_counter_rows("  ", summary.drops),
        ("elapsed", f"{elapsed:.2f} s"),
        ("rate", f"{summary.packets / seconds:,.0f} packets/s, {summary.bytes / seconds / 1e6:.1f} MB/s"),
        ("", f"{summary.requests / seconds:,.0f} requests/s"),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [summary.line(), ""] + [f"{printable(name):<{width}}  {value}".rstrip() for name, value in rows]
    return "\n".join(lines)


def _counter_rows(indent: str, counter: Counter[str]) -> list[tuple[str, str]]:
    return [
        (indent + name, f"{count:,}") for name, count in sorted(counter.items(), key=lambda item: (-item[1], item[0]))
    ]


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"
