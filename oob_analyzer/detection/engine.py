"""The detection engine: runs the detectors over every point of a request.

Sans-I/O: an `HttpRequest` in, `AttackHit`s out, one per attack type found in the request
(the first point where that type matched is the one reported).
"""

from __future__ import annotations

from collections.abc import Sequence

from oob_analyzer.detection.detectors import Detector
from oob_analyzer.detection.events import AttackHit, Finding
from oob_analyzer.detection.points import extract_points
from reassembly.events import HttpRequest

__all__ = ["DetectionEngine"]


class DetectionEngine:
    def __init__(self, detectors: Sequence[Detector]) -> None:
        self.detectors = tuple(detectors)

    def analyze(self, request: HttpRequest) -> list[AttackHit]:
        found: dict[str, Finding] = {}
        for point in extract_points(request):
            for detector in self.detectors:
                if detector.attack_type in found:
                    continue
                finding = detector.inspect(point)
                if finding is not None:
                    found[finding.attack_type] = finding
        return [_hit(request, finding) for finding in found.values()]


def _hit(request: HttpRequest, finding: Finding) -> AttackHit:
    flow = request.flow
    return AttackHit(
        ts=request.ts,
        src_ip=flow.client,
        src_port=flow.client_port,
        dst_ip=flow.server,
        dst_port=flow.server_port,
        host=request.host,
        method=request.method,
        target=request.target,
        attack_type=finding.attack_type,
        point=finding.point,
        payload=finding.payload,
        rule=finding.rule,
        reason=finding.reason,
    )
