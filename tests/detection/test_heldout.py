"""The held-out set (tests/detection/heldout.py) in every common place of a request.

Attacks must be found in each placement and benign texts passed in each; the floor is the
issue's target (98 %), and every miss is listed in the failure message.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from urllib.parse import quote

from oob_analyzer.detection import DetectionEngine, default_detectors
from reassembly.events import HttpRequest
from tests.builders import http_request
from tests.detection.heldout import ATTACKS, BENIGN

HOST = ("Host", "shop.example.com")


def in_query(text: str) -> HttpRequest:
    return http_request(f"/search?q={quote(text, safe='')}&page=2")


def in_form(text: str) -> HttpRequest:
    body = f"comment={quote(text, safe='')}&rating=5".encode()
    headers = (HOST, ("Content-Type", "application/x-www-form-urlencoded"))
    return http_request("/review", method="POST", body=body, headers=headers)


def in_json(text: str) -> HttpRequest:
    body = json.dumps({"order": {"id": 7, "notes": [text]}}).encode()
    return http_request("/api/orders", method="POST", body=body, headers=(HOST, ("Content-Type", "application/json")))


def in_multipart(text: str) -> HttpRequest:
    body = ('--XyZ\r\nContent-Disposition: form-data; name="message"\r\n\r\n' + text + "\r\n--XyZ--\r\n").encode()
    headers = (HOST, ("Content-Type", "multipart/form-data; boundary=XyZ"))
    return http_request("/contact", method="POST", body=body, headers=headers)


def in_header(text: str) -> HttpRequest:
    return http_request("/", headers=(HOST, ("Referer", text.replace("\r", "%0d").replace("\n", "%0a"))))


PLACEMENTS: dict[str, Callable[[str], HttpRequest]] = {
    "query": in_query,
    "form": in_form,
    "json": in_json,
    "multipart": in_multipart,
    "header": in_header,
}


ENGINE = DetectionEngine(default_detectors())


def _flagged(text: str, place: Callable[[str], HttpRequest]) -> bool:
    return bool(ENGINE.analyze(place(text)))


def test_held_out_attacks_are_found_in_every_placement() -> None:
    missed = [
        (kind, name, payload)
        for kind, payload in ATTACKS
        for name, place in PLACEMENTS.items()
        if not _flagged(payload, place)
    ]
    total = len(ATTACKS) * len(PLACEMENTS)
    rate = 1 - len(missed) / total
    assert rate >= 0.98, f"found {total - len(missed)}/{total} ({rate:.1%}); missed: {missed}"


def test_held_out_benign_texts_are_passed_in_every_placement() -> None:
    flagged = [(name, text) for text in BENIGN for name, place in PLACEMENTS.items() if _flagged(text, place)]
    total = len(BENIGN) * len(PLACEMENTS)
    rate = 1 - len(flagged) / total
    assert rate >= 0.98, f"passed {total - len(flagged)}/{total} ({rate:.1%}); flagged: {flagged}"
