"""Detectors: small plug-ins, each judging one request point for one attack type.

`default_detectors()` is the one explicit list of what runs; nothing registers itself.
"""

from __future__ import annotations

from typing import Protocol

import libinjection

from oob_analyzer.detection.events import Finding
from oob_analyzer.detection.points import RequestPoint

__all__ = ["Detector", "SqlInjectionDetector", "XssDetector", "default_detectors"]

_MAX_PAYLOAD_CHARS = 256


class Detector(Protocol):
    attack_type: str

    def inspect(self, point: RequestPoint) -> Finding | None: ...


class SqlInjectionDetector:
    """SQL injection, by libinjection's tokenizer and fingerprint set."""

    attack_type = "sqli"

    def inspect(self, point: RequestPoint) -> Finding | None:
        verdict = libinjection.is_sql_injection(point.value)
        if not verdict["is_sqli"]:
            return None
        return _finding(
            self.attack_type, point, rule="libinjection-sqli", reason=f"SQL fingerprint {verdict['fingerprint']}"
        )


class XssDetector:
    """Cross-site scripting, by libinjection's HTML5 tokenizer."""

    attack_type = "xss"

    def inspect(self, point: RequestPoint) -> Finding | None:
        if not libinjection.is_xss(point.value)["is_xss"]:
            return None
        return _finding(self.attack_type, point, rule="libinjection-xss", reason="HTML/JS injection context")


def default_detectors() -> list[Detector]:
    return [SqlInjectionDetector(), XssDetector()]


def _finding(attack_type: str, point: RequestPoint, *, rule: str, reason: str) -> Finding:
    return Finding(
        attack_type=attack_type,
        point=point.name,
        payload=point.value[:_MAX_PAYLOAD_CHARS],
        rule=rule,
        reason=reason,
    )
