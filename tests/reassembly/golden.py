"""Golden expectations over the shared reference captures: what `extract` must find in each.

`observe(path)` replays one capture through the same pipeline `oob-analyzer extract` uses
and summarises it (requests as (method, target), responses paired, anomalies by name).
`python -m tests.reassembly.golden --update` rewrites `golden_pcaps.json` from the current
code, keeping every reason already written and marking new differences from tshark with
"TODO" so that the test fails until someone explains them.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from oob_analyzer.pipeline import RunSummary, extract_events
from reassembly import Anomaly, HttpRequest, HttpResponse
from tests.paths import SHARED

PCAPS = SHARED / "pcaps"
EXPECTATIONS = Path(__file__).with_name("golden_pcaps.json")
_CAPTURE_LAYER_TAGS = {
    "erspan",
    "gre",
    "geneve",
    "vxlan",
    "gtp",
    "pppoe",
    "llc-snap",
    "nflog",
    "sll",
    "sll2",
    "null-loopback",
    "ipv4-fragments",
    "teredo",
}


def manifest() -> list[dict[str, Any]]:
    return [json.loads(line) for line in (PCAPS / "manifest.jsonl").read_text().splitlines() if line.strip()]


def tshark_requests(entry: dict[str, Any]) -> Counter[tuple[str, str]]:
    return Counter((r["method"], r["uri"]) for r in entry["tshark"]["requests"] if r.get("transport") == "tcp")


def observe(path: Path) -> dict[str, Any]:
    summary = RunSummary()
    requests: Counter[tuple[str, str]] = Counter()
    anomalies: Counter[str] = Counter()
    paired = 0
    for event in extract_events([path], summary):
        if isinstance(event, HttpRequest):
            requests[(event.method, event.target)] += 1
            anomalies.update(event.anomalies)
        elif isinstance(event, HttpResponse):
            paired += event.request is not None and (event.status >= 200 or event.status == 101)
            anomalies.update(event.anomalies)
        elif isinstance(event, Anomaly):
            anomalies[event.name] += 1
    return {
        "requests": sorted([m, t, n] for (m, t), n in requests.items()),
        "responses_paired": paired,
        "anomalies": dict(sorted(anomalies.items())),
        "errors": summary.errors,
    }


def differences(ours: list[list[Any]], theirs: Counter[tuple[str, str]]) -> tuple[list[list[Any]], list[list[Any]]]:
    """(requests tshark lists that we do not find, requests we find that tshark does not list)."""
    found = Counter({(m, t): n for m, t, n in ours})
    missed = sorted([m, t, n] for (m, t), n in (theirs - found).items())
    beyond = sorted([m, t, n] for (m, t), n in (found - theirs).items())
    return missed, beyond


def _reasoned(items: list[list[Any]], old: list[dict[str, Any]], default: str) -> list[dict[str, Any]]:
    reasons = {(o["method"], o["target"]): o["reason"] for o in old}
    return [{"method": m, "target": t, "count": n, "reason": reasons.get((m, t), default)} for m, t, n in items]


def update() -> None:
    old = json.loads(EXPECTATIONS.read_text()) if EXPECTATIONS.exists() else {}
    new: dict[str, Any] = {}
    for entry in manifest():
        path = entry["path"]
        observed = observe(PCAPS / path)
        missed, beyond = differences(observed["requests"], tshark_requests(entry))
        previous = old.get(path, {})
        layer_tags = sorted(_CAPTURE_LAYER_TAGS & set(entry["tags"]))
        needs_capture_layer = previous.get("needs_capture_layer")
        reached_nothing = not observed["requests"] and entry["tshark"].get("responses")
        if needs_capture_layer is None and (missed or reached_nothing) and layer_tags:
            needs_capture_layer = f"the current decoder does not reach the TCP inside: {', '.join(layer_tags)}"
        default = f"capture layer (issue 3): {needs_capture_layer}" if needs_capture_layer else "TODO: explain"
        new[path] = {
            **observed,
            "needs_capture_layer": needs_capture_layer,
            "tshark_only": _reasoned(missed, previous.get("tshark_only", []), default),
            "beyond_tshark": _reasoned(beyond, previous.get("beyond_tshark", []), "TODO: explain"),
        }
    EXPECTATIONS.write_text(json.dumps(new, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    if sys.argv[1:] != ["--update"]:
        sys.exit("usage: python -m tests.reassembly.golden --update")
    update()
