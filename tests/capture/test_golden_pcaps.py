"""Golden tests over ../shared/pcaps: every capture decodes; link types and tunnels exactly.

Decoding is this package's job, so the expectation per capture is what the decoder must
find: how many TCP segments, through which tunnels (the context every flow key carries),
how many cut by the snap length, and why the rest were passed over. tshark's requests (the
manifest) are a floor for the requests found through the whole pipeline: every one it
lists must be found, with the same addresses, ports, method and target.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from capture import CaptureError, PacketDecoder, TcpSegment, TunnelContext, read_capture
from oob_analyzer.pipeline import RunSummary, extract_requests
from tests.paths import SHARED

PCAPS = SHARED / "pcaps"
MANIFEST_PATH = PCAPS / "manifest.jsonl"


def load_manifest() -> dict[str, dict[str, Any]]:
    if not MANIFEST_PATH.exists():
        return {}
    return {entry["path"]: entry for entry in map(json.loads, MANIFEST_PATH.read_text().splitlines())}


MANIFEST = load_manifest()
pytestmark = pytest.mark.skipif(not MANIFEST, reason=f"{MANIFEST_PATH} is not there")


@dataclass(frozen=True)
class Golden:
    segments: int
    tunnels: frozenset[TunnelContext] = frozenset({()})
    truncated: int = 0
    passed_over: dict[str, int] = field(default_factory=dict)
    anomalies: dict[str, int] = field(default_factory=dict)
    requests_floor: bool = True  # tshark's requests are all found
    why: str = ""  # where we differ from tshark, and why


def tunnel(kind: str, endpoints: str, ident: int) -> TunnelContext:
    return ((kind, endpoints, ident),)


GOLDEN = {
    # Link layers
    "lwerdna-filesamples/simple-http-sll2.pcap": Golden(segments=24),
    "suricata-verify/sv-log4shell-sll.pcap": Golden(segments=422, passed_over={"not_ip": 4}),
    "suricata-verify/sv-http-ipv6.pcap": Golden(segments=14),  # NULL/loopback, IPv6
    "suricata-verify/sv-http-gap-simple.pcap": Golden(segments=31),  # NULL/loopback, IPv4
    "pcapplusplus/pcpp-raw-ip.pcap": Golden(segments=92, passed_over={"not_tcp": 8}),
    "zeek/smuggle-te-cl-desync.pcap": Golden(segments=8),  # raw IP
    "zeek/nflog-http.pcap": Golden(segments=13),
    "zeek/snap-tcp.pcap": Golden(segments=8),  # 802.3 with an LLC/SNAP header
    "zeek/http-qinqinq.pcap": Golden(segments=14),  # three stacked VLAN tags
    "pcapplusplus/pcpp-qinq-pppoe-rst.pcap": Golden(segments=10),
    "suricata-verify/sv-vlan-ipv6.pcap": Golden(segments=7),
    "zeek/http-zeek-image-pcapng.pcapng": Golden(segments=17),
    "zeek/pcapng-multi-interface.pcapng": Golden(segments=0, passed_over={"not_tcp": 6}),
    "derived/snaplen128-http-post-large.pcap": Golden(
        segments=38,
        truncated=10,
        requests_floor=False,
        why="every cut segment is decoded and marked truncated; the request parser does not yet "
        "emit a request whose head was cut by the snap length (reassembly's side)",
    ),
    # Fragments
    "zeek/ipv4-fragmented-4.pcap": Golden(
        segments=3,
        passed_over={"ip_fragment_held": 3},
        anomalies={"ip_fragment_overlap": 1},
        why="fragments 3 and 5 overlap with different bytes: reassembled, first bytes kept, counted",
    ),
    # Tunnels
    "zeek/vxlan-encapsulated-http.pcap": Golden(
        segments=12, tunnels=frozenset({tunnel("vxlan", "10.1.200.131>10.1.1.172", 1)})
    ),
    "suricata-verify/sv-vxlan-tcp-ssh.pcap": Golden(
        segments=82,
        tunnels=frozenset({tunnel("vxlan", "172.31.0.238>172.31.17.188", 5569041)}),
        passed_over={"not_tcp": 18},
    ),
    "zeek/geneve-many-options.pcap": Golden(
        segments=10, tunnels=frozenset({tunnel("geneve", "192.168.33.179>192.168.179.33", 786734)})
    ),
    "zeek/gre-over-udp.pcap": Golden(
        segments=10, tunnels=frozenset({tunnel("gre", "192.168.0.107>192.168.5.1", 0)}), passed_over={"not_tcp": 4}
    ),
    "zeek/gre-teb-http-fragmented.pcap": Golden(
        segments=106,
        # each direction of the inner connections comes with its own GRE key
        tunnels=frozenset(
            {tunnel("gre", "10.200.0.3>10.200.0.224", 0), tunnel("gre", "10.200.0.3>10.200.0.224", 0x02000000)}
        ),
        passed_over={"not_tcp": 132, "not_ip": 10, "ip_fragment_held": 39},
        why="the outer GRE packets are IP-fragmented: reassembled before the tunnel is decoded",
    ),
    "suricata-verify/sv-erspan2-http.pcap": Golden(
        segments=2,
        tunnels=frozenset(
            {tunnel("erspan", "122.80.143.46>131.203.98.243", 6), tunnel("erspan", "152.108.163.74>131.203.98.243", 2)}
        ),
    ),
    "derived/erspan3-http-pipelined.pcap": Golden(
        segments=49, tunnels=frozenset({tunnel("erspan", "192.0.2.10>192.0.2.20", 42)})
    ),
    "zeek/erspan3-dot1q-icmp.pcap": Golden(segments=0, tunnels=frozenset(), passed_over={"not_tcp": 2}),
    "zeek/gtp-http-fragmented.pcap": Golden(
        segments=78,
        tunnels=frozenset(
            {
                tunnel("gtp", "207.233.125.40>167.55.105.244", 48942),
                tunnel("gtp", "167.55.105.244>207.233.125.40", 2655042127),
            }
        ),
        passed_over={"ip_fragment_held": 42},
    ),
}


def decode_all(path: Path) -> tuple[list[TcpSegment], PacketDecoder, int]:
    decoder = PacketDecoder()
    segments, count = [], 0
    for packet in read_capture(path):
        count += 1
        segment = decoder.decode(packet)
        if segment is not None:
            segments.append(segment)
    return segments, decoder, count


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_every_capture_decodes_and_accounts_for_every_packet(name: str) -> None:
    try:
        segments, decoder, count = decode_all(PCAPS / name)
    except CaptureError as exc:  # a reader error is ours and named; none of these is damaged
        pytest.fail(str(exc))
    assert count == MANIFEST[name]["packets"]
    assert len(segments) + sum(decoder.stats.values()) == count
    assert not [reason for reason in decoder.stats if reason.startswith("unsupported_linktype")]


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_link_types_and_tunnels(name: str) -> None:
    golden = GOLDEN[name]
    segments, decoder, _count = decode_all(PCAPS / name)
    assert len(segments) == golden.segments
    assert {segment.tunnel for segment in segments} == (golden.tunnels if segments else frozenset())
    assert sum(segment.truncated for segment in segments) == golden.truncated
    assert dict(decoder.stats) == golden.passed_over
    assert dict(decoder.anomalies) == golden.anomalies


def request_key(record: dict[str, Any]) -> tuple[object, ...]:
    return (record["src"], record["sport"], record["dst"], record["dport"], record["method"], record["uri"])


@pytest.mark.parametrize("name", sorted(name for name, golden in GOLDEN.items() if golden.requests_floor))
def test_tshark_requests_are_a_floor(name: str) -> None:
    summary = RunSummary()
    # tshark cuts a target at a raw space (sv-erspan2-http's `wget+ http://...`); we keep
    # the whole target, so compare up to the first space.
    found = Counter(
        (r.flow.client, r.flow.client_port, r.flow.server, r.flow.server_port, r.method, r.target.split(" ")[0])
        for r in extract_requests([PCAPS / name], summary)
    )
    expected = Counter(request_key(r) for r in MANIFEST[name]["tshark"]["requests"] if r["transport"] == "tcp")
    assert expected - found == Counter()
    assert summary.errors == []
