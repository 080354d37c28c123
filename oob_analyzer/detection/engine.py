"""The detection engine: runs the detectors over every point of a request.

Sans-I/O: an `HttpRequest` in, `AttackHit`s out, one per attack type found in the request
(the first point where that type matched is the one reported).
"""

from __future__ import annotations

from collections.abc import Sequence

from capture.packets import TunnelContext
from oob_analyzer.detection.detectors import Detector
from oob_analyzer.detection.events import AttackHit, Finding
from oob_analyzer.detection.points import extract_points
from reassembly.events import HttpRequest

__all__ = ["DetectionEngine", "describe_tunnel", "request_excerpt"]

REQUEST_EXCERPT_CHARS = 2048


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
        tunnel=describe_tunnel(flow.tunnel),
        request_excerpt=request_excerpt(request),
    )


def describe_tunnel(tunnel: TunnelContext) -> str:
    """The tunnel context as text: `kind:outer-endpoints:id`, outermost first, `/`-separated."""
    return "/".join(f"{kind}:{endpoints}:{ident}" for kind, endpoints, ident in tunnel)


def request_excerpt(request: HttpRequest, limit: int = REQUEST_EXCERPT_CHARS) -> str:
    """The request as on the wire (Latin-1), head then body, cut at `limit` characters."""
    head = "\r\n".join(
        [f"{request.method} {request.target} {request.version}", *(f"{k}: {v}" for k, v in request.headers)]
    )
    text = head + "\r\n\r\n" + request.body[:limit].decode("latin-1")
    return text[:limit]
