"""Real captures (../shared/pcaps: 69 files, ~1,300 HTTP requests of ordinary and odd traffic:
UPnP/SOAP, intranet browsing, uploads, a Nikto scan, a smuggling probe) replayed through the
pipeline: the only hits must be the real attacks in them. Every false positive found
here was a rule too eager for real traffic (Referer to an intranet host, `*/*` in Accept,
SOAP documents as XSS), so this pins them.
"""

from __future__ import annotations

import pytest

from oob_analyzer.detection import DetectionEngine, default_detectors
from oob_analyzer.pipeline import RunSummary, extract_requests
from tests.paths import SHARED

PCAPS = sorted(p for p in (SHARED / "pcaps").rglob("*") if p.suffix in {".pcap", ".pcapng", ".cap"})


@pytest.mark.skipif(not PCAPS, reason="the shared captures are not next to the project")
def test_real_captures_give_only_the_real_attacks() -> None:
    engine = DetectionEngine(default_detectors())
    summary = RunSummary()
    hits = [hit for request in extract_requests(PCAPS, summary) for hit in engine.analyze(request)]
    assert summary.requests > 1000
    assert sorted((hit.attack_type, hit.rule) for hit in hits) == sorted(
        [
            # zeek/smuggle-te-cl-desync.pcap: a TE/CL request-smuggling probe
            ("protocol", "protocol-content_length_and_chunked"),
            # suricata-verify/sv-http-not09.pcap: "GET /" with bare LFs and a header line without
            # a colon, crafted to confuse parsers
            ("protocol", "protocol-header_without_colon"),
            # suricata-verify/sv-erspan2-http.pcap (inside ERSPAN II): a Mirai-style
            # "/shell?cd /tmp;rm -rf *;wget ...;sh" probe, sent to two hosts
            ("rce", "rce-separator-command"),
            ("rce", "rce-separator-command"),
            # suricata-verify/sv-log4shell-sll.pcap (Linux cooked capture): Log4Shell in a login
            # form, its JNDI lookup aimed at a private address
            ("log4shell", "log4shell-jndi"),
            ("ssrf", "ssrf-internal-address"),
            # suricata-verify/sv-vlan-ipv6.pcap: a Nikto scan
            ("scanner", "scanner-tool"),
        ]
    )
