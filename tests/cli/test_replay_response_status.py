"""A hit carries the status of its request's response, through the real replay and queries."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from click.testing import CliRunner

from capture import CaptureError, read_captures
from oob_analyzer.cli import main
from tests.builders import pcap_file
from tests.paths import SAMPLES

SERVER = "198.51.100.20"
# (method, target, status) of the sample's attacks, as its server answered them
EXPECTED = [
    ("GET", "/products?id=1%27%20OR%20%271%27%3D%271", 200),
    ("GET", "/products?id=1+UNION+SELECT+username,password+FROM+users--", 200),
    ("GET", "/search?q=%3Cscript%3Ealert(document.cookie)%3C/script%3E", 200),
    ("POST", "/comments", 200),
    ("POST", "/login", 302),
]


def fail_on_error(exc: CaptureError) -> None:
    raise exc


def invoke(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_hits_carry_the_response_status_into_the_database(db_url: str) -> None:
    assert invoke("replay", str(SAMPLES / "mirror-http.pcap"), "--db", db_url) == "55 packets, 9 requests, 5 hits\n"
    listed = json.loads(invoke("hits", "list", "--format", "json", "--db", db_url))
    assert sorted((h["method"], h["target"], h["response_status"]) for h in listed) == sorted(EXPECTED)
    exported = [json.loads(line) for line in invoke("export", "--format", "jsonl", "--db", db_url).splitlines()]
    assert sorted((h["target"], h["response_status"]) for h in exported) == sorted((t, s) for _, t, s in EXPECTED)
    rows = list(csv.DictReader(io.StringIO(invoke("export", "--format", "csv", "--db", db_url))))
    assert sorted(row["response_status"] for row in rows) == ["200"] * 4 + ["302"]


def test_without_the_server_side_hits_are_recorded_without_a_status(tmp_path: Path, sqlite_url: str) -> None:
    # The same conversations as a one-sided mirror sees them: the client's frames only.
    client_only = [
        (packet.ts, packet.data)
        for packet in read_captures([SAMPLES / "mirror-http.pcap"], on_error=fail_on_error)
        if packet.data[26:30] != bytes(int(part) for part in SERVER.split("."))  # IPv4 source address
    ]
    capture = tmp_path / "client-only.pcap"
    capture.write_bytes(pcap_file(client_only))
    assert invoke("replay", str(capture), "--db", sqlite_url).endswith("9 requests, 5 hits\n")
    listed = json.loads(invoke("hits", "list", "--format", "json", "--db", sqlite_url))
    assert sorted((h["method"], h["target"]) for h in listed) == sorted((m, t) for m, t, _ in EXPECTED)
    assert {h["response_status"] for h in listed} == {None}
