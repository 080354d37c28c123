"""`replay`'s progress bar on a real terminal (a pty), none on a pipe, and its summary table."""

from __future__ import annotations

import gzip
import os
import pty
import select
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from capture import capture_size
from oob_analyzer.cli.progress import render_progress, summary_table
from oob_analyzer.pipeline import RunSummary
from tests.paths import SAMPLES

COMMAND = [sys.executable, "-c", "from oob_analyzer.cli import main; main()"]
SAMPLE = SAMPLES / "mirror-http.pcap"


def read_until(fd: int, wanted: bytes, timeout: float = 20) -> bytes:
    """What the terminal showed until `wanted` appeared in it."""
    seen = b""
    deadline = time.monotonic() + timeout
    while wanted not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"{wanted!r} never appeared; the terminal showed {seen!r}"
        if select.select([fd], [], [], left)[0]:
            try:
                seen += os.read(fd, 65536)
            except OSError:  # EIO: the other end closed
                break
    return seen


def test_on_a_terminal_the_bar_runs_on_stderr_and_a_table_ends_the_run(tmp_path: Path) -> None:
    controller, terminal = pty.openpty()
    reader, writer = os.pipe()  # standard input: a capture the test hands over in two parts
    db_url = f"sqlite:///{tmp_path / 'p.db'}"
    process = subprocess.Popen(
        [*COMMAND, "replay", "-", "--db", db_url], stdin=reader, stdout=terminal, stderr=terminal
    )
    os.close(terminal)
    os.close(reader)
    try:
        capture = SAMPLE.read_bytes()
        os.write(writer, capture)  # every packet; the process waits for more
        # Packets are counted as read; requests and hits once analyzed (by worker processes:
        # standard input counts as a large source), so the bar shows them a moment later.
        bar = read_until(controller, b"MB/s  9 requests  5 hits")
        assert b"\r\x1b[K55 packets" in bar
        assert b"ETA ?" in bar  # standard input: its size is unknown
        os.close(writer)
        writer = -1
        shown = read_until(controller, b"requests/s")
        assert process.wait(timeout=20) == 0
    finally:
        if writer >= 0:
            os.close(writer)
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(controller)
    end = shown.decode().replace("\r\n", "\n")
    assert "\x1b[K55 packets, 9 requests, 5 hits\n" in end  # the bar cleared, then the table
    for row in ("packets", "bytes", "requests", "responses", "hits", "  sqli", "  xss", "anomalies", "elapsed"):
        assert f"\n{row} " in end, row


def test_on_a_pipe_there_is_no_bar_and_only_the_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [*COMMAND, "replay", str(SAMPLE), "--db", f"sqlite:///{tmp_path / 'p.db'}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout == "55 packets, 9 requests, 5 hits\n"
    assert result.stderr == ""


def test_the_bar_estimates_what_is_left_from_the_size_read() -> None:
    summary = RunSummary(packets=1000, bytes=484_000, requests=40, hits=3)
    # 484 000 + 16 bytes of record header per packet = 500 000 of 1 000 000 bytes in 10 s.
    assert render_progress(summary, 10.0, 1_000_000) == ("1,000 packets  0.0 MB/s  40 requests  3 hits   50%  ETA 0:10")
    assert render_progress(summary, 10.0, None).endswith("0.5 MB read  ETA ?")


def test_the_table_lists_hits_anomalies_and_counters_by_count() -> None:
    summary = RunSummary(
        packets=10,
        bytes=2_000_000,
        requests=4,
        responses=3,
        hits=3,
        anomalies=1,
        hits_by_type=Counter(xss=1, sqli=2),
        anomalies_by_name=Counter(tcp_gap=1),
        drops=Counter(not_tcp=5, connections=2),
    )
    table = summary_table(summary, 2.0).splitlines()
    assert table[0] == "10 packets, 4 requests, 3 hits"
    rows = [line.split() for line in table[2:]]
    assert rows[4:7] == [["hits", "3"], ["sqli", "2"], ["xss", "1"]]
    assert ["not_tcp", "5"] in rows and rows.index(["not_tcp", "5"]) < rows.index(["connections", "2"])
    assert ["rate", "5", "packets/s,", "1.0", "MB/s"] in rows


def test_the_size_is_known_for_plain_files_only(tmp_path: Path) -> None:
    plain = tmp_path / "a.pcap"
    plain.write_bytes(SAMPLE.read_bytes())
    assert capture_size([plain, plain]) == 2 * plain.stat().st_size
    assert capture_size([tmp_path]) == plain.stat().st_size  # a directory: the captures in it
    zipped = tmp_path / "b.pcap.gz"
    zipped.write_bytes(gzip.compress(SAMPLE.read_bytes()))
    assert capture_size([plain, zipped]) is None
    assert capture_size([Path("-")]) is None
    fifo = tmp_path / "live.pcap"
    os.mkfifo(fifo)
    assert capture_size([fifo]) is None  # not opened: that would wait for a writer and eat its bytes
    assert capture_size([tmp_path / "missing.pcap"]) is None
