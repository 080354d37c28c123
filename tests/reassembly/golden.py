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
    """(requests tshark lists that we do not find, requests we find that tshark does not list).

    Our targets are compared as tshark shows them: cut at the first raw space (tshark takes
    what follows for the version; we keep the whole target and name it `space_in_target`).
    """
    found: Counter[tuple[str, str]] = Counter()
    for m, t, n in ours:
        found[(m, t.split(" ", 1)[0])] += n
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
        new[path] = {
            **observed,
            "tshark_only": _reasoned(missed, previous.get("tshark_only", []), "TODO: explain"),
            "beyond_tshark": _reasoned(beyond, previous.get("beyond_tshark", []), "TODO: explain"),
        }
    EXPECTATIONS.write_text(json.dumps(new, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    if sys.argv[1:] != ["--update"]:
        sys.exit("usage: python -m tests.reassembly.golden --update")
    update()
