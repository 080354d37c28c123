"""SIGTERM and SIGINT in the middle of a run: what was detected is written before the exit.

A real process reads a capture from a FIFO the test writes, so the run is genuinely in
progress (blocked on its input) when the signal arrives; the flush interval is an hour, so
the hits can only reach the database through the shutdown path.
"""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from storage import CaptureRun, Hit
from tests.builders import ethernet_frame, ipv4_packet, tcp_header

ATTACKS = 20
REQUEST = b"GET /products?id=1%27%20OR%20%271%27%3D%271 HTTP/1.1\r\nHost: shop.example.com\r\n\r\n"


def pcap_bytes(count: int) -> bytes:
    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    records = []
    for n in range(count):
        frame = ethernet_frame(ipv4_packet(tcp_header(sport=20000 + n) + REQUEST))
        records.append(struct.pack("<IIII", 1_793_613_600 + n, 0, len(frame), len(frame)) + frame)
    return header + b"".join(records)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_mid_run_writes_every_hit_detected(tmp_path: Path, signum: int) -> None:
    fifo = tmp_path / "live.pcap"
    os.mkfifo(fifo)
    db = tmp_path / "hits.db"
    command = Path(sys.executable).parent / "oob-analyzer"
    process = subprocess.Popen(
        [command, "replay", str(fifo), "--db", f"sqlite:///{db}", "--journal", str(tmp_path / "j"),
         "--flush-interval", "3600"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        with fifo.open("wb") as feed:  # opens once the process reads: it is past its start-up
            feed.write(pcap_bytes(ATTACKS))
            feed.flush()
            time.sleep(1.0)  # the process parses the packets, then blocks waiting for more
            process.send_signal(signum)
            stdout, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    assert "interrupted: writing what was detected" in stderr
    assert stdout == f"{ATTACKS} packets, {ATTACKS} requests, {ATTACKS} hits\n"
    engine = create_engine(f"sqlite:///{db}")
    with Session(engine) as session:
        ports = sorted(session.scalars(select(Hit.src_port)))
        (run,) = session.scalars(select(CaptureRun)).all()
        assert (run.status, run.packets, run.hits, json.loads(run.errors)) == ("interrupted", ATTACKS, ATTACKS, [])
    engine.dispose()
    assert ports == [20000 + n for n in range(ATTACKS)]
