"""What `--workers auto` means, on this process's real CPU affinity and real files."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from capture import STDIN
from oob_analyzer.workers import SMALL_INPUT_BYTES, available_cores, choose_workers, reads_never_stall
from tests.paths import SAMPLES
from tests.system import unavailable


@pytest.fixture
def two_cores() -> Iterator[None]:
    allowed = os.sched_getaffinity(0)
    if len(allowed) < 2:
        unavailable("needs two cores")
    os.sched_setaffinity(0, sorted(allowed)[:2])
    try:
        yield
    finally:
        os.sched_setaffinity(0, allowed)


@pytest.fixture
def one_core() -> Iterator[None]:
    allowed = os.sched_getaffinity(0)
    os.sched_setaffinity(0, sorted(allowed)[:1])
    try:
        yield
    finally:
        os.sched_setaffinity(0, allowed)


def large_capture(tmp_path: Path) -> Path:
    path = tmp_path / "large.pcap"
    with path.open("wb") as file:
        file.truncate(SMALL_INPUT_BYTES)  # sparse: the size is what counts
    return path


@pytest.mark.usefixtures("two_cores")
def test_auto_is_one_worker_per_core_for_large_or_unknown_input(tmp_path: Path) -> None:
    assert available_cores() == 2
    assert choose_workers(None, [large_capture(tmp_path)]) == 2
    assert choose_workers(None, [STDIN]) == 2
    assert choose_workers(None, live=True) == 2


@pytest.mark.usefixtures("two_cores")
def test_auto_stays_in_process_for_small_captures(tmp_path: Path) -> None:
    assert choose_workers(None, [SAMPLES]) == 1  # a directory: its captures, summed
    assert choose_workers(None, [SAMPLES / "mirror-http.pcap", tmp_path / "missing.pcap"]) == 1


@pytest.mark.usefixtures("one_core")
def test_auto_on_one_core_is_in_process(tmp_path: Path) -> None:
    assert choose_workers(None, [large_capture(tmp_path)]) == 1
    assert choose_workers(None, live=True) == 1


def test_a_number_given_is_kept(tmp_path: Path) -> None:
    assert choose_workers(3, [SAMPLES]) == 3
    assert choose_workers(1, [large_capture(tmp_path)]) == 1


def test_only_regular_files_never_stall_a_read(tmp_path: Path) -> None:
    """They alone let the dispatcher go without its lock per packet (no stalled read to flush around)."""
    files, fifos = tmp_path / "files", tmp_path / "fifos"
    files.mkdir()
    fifos.mkdir()
    capture = files / "a.pcap"
    capture.write_bytes((SAMPLES / "mirror-http.pcap").read_bytes())
    fifo = fifos / "live.pcap"
    os.mkfifo(fifo)
    assert reads_never_stall([capture]) and reads_never_stall([files])
    assert not reads_never_stall([fifo]) and not reads_never_stall([capture, fifo]) and not reads_never_stall([fifos])
    assert not reads_never_stall([tmp_path / "missing.pcap"]) and not reads_never_stall([])
    ask = [sys.executable, "-c", "from capture import STDIN; from oob_analyzer.workers import reads_never_stall as r; "
           "print(r([STDIN]))"]  # fmt: skip
    with capture.open("rb") as redirected:
        assert subprocess.run(ask, stdin=redirected, capture_output=True, text=True, check=True).stdout == "True\n"
    piped = subprocess.run(ask, input=b"", capture_output=True, check=True)
    assert piped.stdout == b"False\n"
