"""`listen` for real: VXLAN and GENEVE datagrams over loopback to the command in a subprocess."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner

from capture import read_capture
from oob_analyzer.cli import main
from tests.builders import JUMBO_ATTACK, geneve_header, jumbo_connection, vxlan_header
from tests.paths import SAMPLES

COMMAND = [sys.executable, "-c", "from oob_analyzer.cli import main; main()"]


@contextmanager
def running(*args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """The command running, and the first line it wrote on stderr (where it listens)."""
    process = subprocess.Popen([*COMMAND, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        yield process, process.stderr.readline()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def stop(process: subprocess.Popen[str], sig: int = signal.SIGINT) -> tuple[str, str]:
    process.send_signal(sig)
    stdout, stderr = process.communicate(timeout=20)
    assert process.returncode == 0, stderr
    return stdout, stderr


def send(port: int, header: bytes, frames: list[bytes]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        for frame in frames:
            sender.sendto(header + frame, ("127.0.0.1", port))


def listed_hits(db_url: str) -> list[dict[str, object]]:
    result = CliRunner().invoke(main, ["hits", "list", "--format", "json", "--db", db_url])
    assert result.exit_code == 0, result.output
    hits: list[dict[str, object]] = json.loads(result.output)
    return hits


@pytest.mark.parametrize(
    ("kind", "header_for"),
    [
        ("vxlan", vxlan_header),
        ("geneve", lambda vni: geneve_header(vni, options=b"\x01\x02\x03\x04" * 4)),
    ],
)
@pytest.mark.parametrize("workers", ["1", "2"])
def test_listen_records_the_attacks_in_mirror_datagrams(
    kind: str, header_for: object, workers: str, tmp_path: Path
) -> None:
    db_url = f"sqlite:///{tmp_path / 'live.db'}"
    sample = [packet.data for packet in read_capture(SAMPLES / "mirror-http.pcap")]
    assert callable(header_for)
    options = ("--vni", "7", "--db", db_url, "--stats", "--workers", workers)
    with running("listen", f"--{kind}", "127.0.0.1:0", *options) as (process, line):
        assert line.startswith(f"listening for {kind} on 127.0.0.1:")
        port = int(line.rsplit(":", 1)[1])
        send(port, header_for(7), sample)
        send(port, header_for(7), jumbo_connection())
        send(port, header_for(8), jumbo_connection())  # another VNI: filtered out
        stdout, stderr = stop(process)
    assert stdout == f"{len(sample) + 2} packets, 10 requests, 6 hits\n"
    assert "  vni_filtered_out                                  2\n" in stderr
    hits = listed_hits(db_url)
    assert sorted((hit["type"], hit["point"]) for hit in hits) == [
        ("sqli", "body.form.username"),
        ("sqli", "query.id"),
        ("sqli", "query.id"),
        ("xss", "body.form.comment"),
        ("xss", "body.form.comment"),
        ("xss", "query.q"),
    ]
    jumbo = [hit for hit in hits if hit["src_ip"] == "10.1.0.5"]
    assert [hit["payload"] for hit in jumbo] == [JUMBO_ATTACK]  # read whole, not cut at 1526 bytes


def test_hits_are_recorded_while_running_even_when_the_mirror_goes_quiet(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'live.db'}"
    with running("listen", "--vxlan", "127.0.0.1:0", "--db", db_url) as (process, line):
        send(int(line.rsplit(":", 1)[1]), vxlan_header(1), jumbo_connection())
        deadline = time.monotonic() + 10
        while not (hits := listed_hits(db_url)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert [hit["payload"] for hit in hits] == [JUMBO_ATTACK]  # no further packet was needed
        stop(process)


def test_sigterm_also_flushes_and_exits_cleanly(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'live.db'}"
    with running("listen", "--vxlan", "127.0.0.1:0", "--db", db_url) as (process, line):
        send(int(line.rsplit(":", 1)[1]), vxlan_header(1), jumbo_connection())
        stdout, _stderr = stop(process, signal.SIGTERM)
    assert stdout == "2 packets, 1 requests, 1 hits\n"
    assert len(listed_hits(db_url)) == 1


def test_listen_needs_exactly_one_tunnel_and_a_usable_address() -> None:
    runner = CliRunner()
    neither = runner.invoke(main, ["listen"])
    assert neither.exit_code == 2 and "give exactly one of --vxlan" in neither.output
    bad = runner.invoke(main, ["listen", "--vxlan", "localhost:http"])
    assert bad.exit_code == 2 and "is not [ADDR:]PORT" in bad.output
    for port in ("127.0.0.1:\u00b2", "70000"):  # "²" passes str.isdigit() but not int()
        wrong = runner.invoke(main, ["listen", "--vxlan", port])
        assert wrong.exit_code == 2 and "is not [ADDR:]PORT with PORT from 0 to 65535" in wrong.output
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        busy = runner.invoke(main, ["listen", "--vxlan", f"127.0.0.1:{taken.getsockname()[1]}"])
    assert busy.exit_code == 1 and "cannot listen on 127.0.0.1:" in busy.output
