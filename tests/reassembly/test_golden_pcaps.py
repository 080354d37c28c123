"""Golden test: every shared reference capture, replayed, against the checked-in expectation.

Each capture must give exactly the requests, paired responses and anomalies written in
golden_pcaps.json. We must find every request tshark lists (tshark's view is a floor);
every one we find that tshark does not list is written there with its reason.
`python -m tests.reassembly.golden --update` rewrites the file from the current code,
keeping the reasons and marking new differences "TODO", which fails until explained.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.reassembly.golden import EXPECTATIONS, PCAPS, differences, manifest, observe, tshark_requests

# Each test runs against the compiled tracker and the pure-Python reference.
pytestmark = pytest.mark.usefixtures("either_tracker")

if not (PCAPS / "manifest.jsonl").exists():  # pragma: no cover - the shared captures are part of the set-up
    pytest.skip(f"shared captures not found at {PCAPS}", allow_module_level=True)

ENTRIES = {entry["path"]: entry for entry in manifest()}
EXPECTED: dict[str, Any] = json.loads(EXPECTATIONS.read_text())


def test_every_capture_has_an_expectation() -> None:
    assert sorted(EXPECTED) == sorted(ENTRIES)


@pytest.mark.parametrize("path", sorted(ENTRIES))
def test_capture_matches_its_golden_expectation(path: str) -> None:
    expected = EXPECTED[path]
    observed = observe(PCAPS / path)
    assert observed["errors"] == expected["errors"]
    assert observed["requests"] == expected["requests"]
    assert observed["responses_paired"] == expected["responses_paired"]
    assert observed["anomalies"] == expected["anomalies"]


@pytest.mark.parametrize("path", sorted(ENTRIES))
def test_every_difference_from_tshark_is_explained(path: str) -> None:
    expected = EXPECTED[path]
    missed, beyond = differences(expected["requests"], tshark_requests(ENTRIES[path]))
    assert [[d["method"], d["target"], d["count"]] for d in expected["tshark_only"]] == missed
    assert [[d["method"], d["target"], d["count"]] for d in expected["beyond_tshark"]] == beyond
    assert missed == [], "tshark finds requests that we do not"
    for difference in expected["beyond_tshark"]:
        assert difference["reason"] and not difference["reason"].startswith("TODO"), difference
