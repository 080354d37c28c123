"""What detection emits: a `Finding` per detector match, an `AttackHit` per request and type.

Third stage of the flow (capture -> reassembly -> detection -> storage); storage consumes
`AttackHit`s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

__all__ = ["AttackHit", "Finding"]


class Finding(NamedTuple):
    """A detector's verdict on one point of a request.

    Internal to detection (the engine turns findings into `AttackHit` events), and made by
    the dozen per attack request: a NamedTuple, immutable like a frozen dataclass, whose
    construction costs about half as much (it showed in the detection profile).
    """

    attack_type: str
    point: str
    payload: str
    rule: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AttackHit:
    """A malicious request: one per request and attack type, with where it came from."""

    ts: float
    src_ip: str
    src_port: int
    dst_ip: str
    dst_port: int
    host: str
    method: str
    target: str
    attack_type: str
    point: str
    payload: str
    rule: str
    reason: str
    tunnel: str = ""  # the outer layers the request came through, e.g. "vxlan:198.18.0.5>198.18.0.99:7"
    application: str = ""
    request_excerpt: str = ""  # the request as on the wire, bounded
    response_status: int | None = None
