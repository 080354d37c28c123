"""`oob-analyzer extract` on real captures: each request with its response and anomalies."""

from __future__ import annotations

import json
from typing import Any

from click.testing import CliRunner

from oob_analyzer.cli import main
from tests.paths import SHARED

PCAPS = SHARED / "pcaps"


def extract(relative: str) -> list[dict[str, Any]]:
    result = CliRunner().invoke(main, ["extract", str(PCAPS / relative)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    # Split on "\n" only: Latin-1 header bytes such as \x85 are line breaks to str.splitlines().
    return [json.loads(line) for line in result.output.split("\n") if line]


def test_smuggling_shaped_requests_carry_their_anomalies() -> None:
    first, smuggled = extract("zeek/smuggle-te-cl-desync.pcap")
    assert (first["method"], first["anomalies"]) == ("POST", ["content_length_and_chunked"])
    assert smuggled["target"] == "/smuggled-te-cl"


def test_each_request_is_printed_with_its_response() -> None:
    records = extract("zeek/http-pipelined-requests.pcap")
    assert len(records) == 5
    assert all(record["response"] is not None and record["response"]["status"] == 200 for record in records)


def test_an_upgrade_is_answered_by_101() -> None:
    (upgrade,) = extract("zeek/http-websocket.pcap")
    assert upgrade["response"]["status"] == 101


def test_a_request_cut_short_by_the_end_of_the_capture_is_incomplete_and_still_paired() -> None:
    _, upload = extract("zeek/http-putty-upload.pcap")
    assert (upload["method"], upload["complete"], upload["anomalies"]) == ("POST", False, ["message_incomplete"])
    assert upload["response"] is not None
