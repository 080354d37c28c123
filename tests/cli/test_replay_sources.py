"""Every capture source through the real command line: tunnels, gzip, stdin, directories."""

from __future__ import annotations

import gzip
import json
import struct
from collections.abc import Sequence
from pathlib import Path

from click.testing import CliRunner, Result

from capture import read_capture
from oob_analyzer.cli import main
from oob_analyzer.detection import AttackHit, DetectionEngine, default_detectors
from oob_analyzer.pipeline import replay_captures
from tests.builders import pcap_file
from tests.paths import SAMPLES

PLAIN = SAMPLES / "mirror-http.pcap"
VXLAN = SAMPLES / "mirror-http-vxlan.pcap"
HIT_FIELDS = ("type", "src_ip", "src_port", "dst_ip", "dst_port", "method", "target", "point", "payload", "time")


def run(*args: str, input: bytes | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def hits(db_url: str) -> list[tuple[object, ...]]:
    listed = json.loads(run("hits", "list", "--format", "json", "--db", db_url).output)
    return sorted(tuple(hit[field] for field in HIT_FIELDS) for hit in listed)


def replayed(tmp_path: Path, name: str, *sources: str, input: bytes | None = None) -> list[tuple[object, ...]]:
    db_url = f"sqlite:///{tmp_path / name}.db"
    result = run("replay", *sources, "--db", db_url, input=input)
    assert result.exit_code == 0, result.output
    assert result.stdout == "55 packets, 9 requests, 5 hits\n"
    return hits(db_url)


def test_the_vxlan_mirror_sample_gives_the_same_hits_as_the_plain_one(tmp_path: Path) -> None:
    plain = replayed(tmp_path, "plain", str(PLAIN))
    assert len(plain) == 5
    assert replayed(tmp_path, "vxlan", str(VXLAN)) == plain


def test_the_tunnel_context_comes_with_every_request() -> None:
    lines = run("extract", str(VXLAN)).stdout.splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 9
    assert {json.dumps(r["tunnel"]) for r in records} == {json.dumps([["vxlan", "198.18.0.5>198.18.0.99", 7]])}
    assert "tunnel" not in json.loads(run("extract", str(PLAIN)).stdout.splitlines()[0])


def test_gzip_from_standard_input(tmp_path: Path) -> None:
    compressed = gzip.compress(VXLAN.read_bytes())
    assert replayed(tmp_path, "stdin", "-", input=compressed) == replayed(tmp_path, "file", str(VXLAN))


def test_pcapng_from_standard_input_merged_with_a_file(tmp_path: Path) -> None:
    # stdin cannot seek: the pcapng reader reads front to back, and the merge keeps it open.
    pcapng = (SAMPLES / "mirror-http.pcapng").read_bytes()
    db_url = f"sqlite:///{tmp_path / 'merged.db'}"
    result = run("replay", "-", str(VXLAN), "--db", db_url, input=pcapng)
    assert result.stdout == "110 packets, 18 requests, 10 hits\n"  # the same traffic twice: plain and tunnelled


def test_a_directory_of_rotated_files_merges_back_into_one_capture(tmp_path: Path) -> None:
    packets = list(read_capture(PLAIN))
    rotated = tmp_path / "rotated"
    rotated.mkdir()
    # Every other packet in each file: the connections only make sense merged in time order.
    (rotated / "even.pcap").write_bytes(pcap_file([(p.ts, p.data) for p in packets[::2]]))
    (rotated / "odd.pcap.gz").write_bytes(gzip.compress(pcap_file([(p.ts, p.data) for p in packets[1::2]])))
    assert replayed(tmp_path, "rotated", str(rotated)) == replayed(tmp_path, "whole", str(PLAIN))


def with_vxlan_port(port: int, tmp_path: Path) -> Path:
    moved = []
    for packet in read_capture(VXLAN):
        data = bytearray(packet.data)
        struct.pack_into("!H", data, 14 + 20 + 2, port)  # outer UDP destination port
        moved.append((packet.ts, bytes(data)))
    path = tmp_path / f"vxlan-{port}.pcap"
    path.write_bytes(pcap_file(moved))
    return path


def test_vxlan_port_option_and_stats(tmp_path: Path) -> None:
    capture = with_vxlan_port(8472, tmp_path)
    default = run("replay", str(capture), "--db", f"sqlite:///{tmp_path / 'a.db'}", "--stats")
    assert default.stdout == "55 packets, 0 requests, 0 hits\n"
    assert "  not_tcp                                          55\n" in default.stderr
    configured = run("replay", str(capture), "--vxlan-port", "8472", "--db", f"sqlite:///{tmp_path / 'b.db'}")
    assert configured.stdout == "55 packets, 9 requests, 5 hits\n"


def test_an_unreadable_source_among_good_ones_is_reported(tmp_path: Path) -> None:
    garbage = tmp_path / "notes.pcap"
    garbage.write_bytes(b"hello")
    result = run("replay", str(PLAIN), str(garbage), "--db", f"sqlite:///{tmp_path / 'x.db'}")
    assert result.exit_code == 3
    assert result.stdout == "55 packets, 9 requests, 5 hits\n"
    assert f"warning: {garbage}: not a pcap or pcapng file (starts with b'hell')" in result.stderr


class CollectedHits:
    def __init__(self) -> None:
        self.hits: list[AttackHit] = []

    def record(self, hits: Sequence[AttackHit]) -> None:
        self.hits.extend(hits)


def test_every_hit_from_the_vxlan_sample_carries_its_tunnel() -> None:
    sink = CollectedHits()
    summary = replay_captures([VXLAN], engine=DetectionEngine(default_detectors()), sink=sink)
    assert summary.hits == 5
    assert {hit.tunnel for hit in sink.hits} == {"vxlan:198.18.0.5>198.18.0.99:7"}
