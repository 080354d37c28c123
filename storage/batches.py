"""What the store writes: batches of keyed hits, anomaly sightings and run reports.

Each item carries the idempotency key it was given when it was detected, and a batch has
a key of its own, so a batch replayed from the journal (after the database acknowledged it
but the acknowledgement was lost) is recognised and not written twice. Batches turn into
plain JSON and back for the journal.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from oob_analyzer.detection.engine import describe_tunnel
from oob_analyzer.detection.events import AttackHit
from reassembly.events import Anomaly as AnomalyEvent
from reassembly.events import HttpRequest

__all__ = ["AnomalySighting", "KeyedAnomaly", "KeyedHit", "RunReport", "WriteBatch"]

JOURNAL_FORMAT = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class AnomalySighting:
    """One anomaly, from a reassembly `Anomaly` event or named on a request."""

    ts: float
    name: str
    src_ip: str
    src_port: int
    dst_ip: str
    dst_port: int
    tunnel: str = ""
    detail: str = ""
    method: str | None = None
    target: str | None = None

    @classmethod
    def from_event(cls, event: AnomalyEvent) -> AnomalySighting:
        flow = event.flow
        return cls(
            ts=event.ts,
            name=event.name,
            detail=event.detail,
            src_ip=flow.client,
            src_port=flow.client_port,
            dst_ip=flow.server,
            dst_port=flow.server_port,
            tunnel=describe_tunnel(flow.tunnel),
        )

    @classmethod
    def from_request(cls, request: HttpRequest) -> list[AnomalySighting]:
        flow = request.flow
        tunnel = describe_tunnel(flow.tunnel)
        return [
            cls(
                ts=request.ts,
                name=name,
                src_ip=flow.client,
                src_port=flow.client_port,
                dst_ip=flow.server,
                dst_port=flow.server_port,
                tunnel=tunnel,
                method=request.method,
                target=request.target,
            )
            for name in request.anomalies
        ]


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyedHit:
    key: str
    hit: AttackHit
    sampled_out: bool = False  # counted in its attack, but no row of its own


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyedAnomaly:
    key: str
    sighting: AnomalySighting


@dataclass(frozen=True, slots=True, kw_only=True)
class RunReport:
    """A capture run and its counters, written (or rewritten, by key) when it ends."""

    run_key: str
    source: str
    started: float
    finished: float
    status: str  # completed | interrupted | failed
    packets: int
    requests: int
    hits: int
    anomalies: int
    drops: dict[str, int] = field(default_factory=dict)
    errors: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class WriteBatch:
    batch_key: str
    hits: tuple[KeyedHit, ...] = ()
    anomalies: tuple[KeyedAnomaly, ...] = ()
    runs: tuple[RunReport, ...] = ()

    def __len__(self) -> int:
        return len(self.hits) + len(self.anomalies) + len(self.runs)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": JOURNAL_FORMAT,
            "batch_key": self.batch_key,
            "hits": [{"key": h.key, "sampled_out": h.sampled_out, **asdict(h.hit)} for h in self.hits],
            "anomalies": [{"key": a.key, **asdict(a.sighting)} for a in self.anomalies],
            "runs": [{**asdict(r), "errors": list(r.errors)} for r in self.runs],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WriteBatch:
        if data.get("format") != JOURNAL_FORMAT:
            raise ValueError(f"journal entry of unknown format {data.get('format')!r}")
        hits = tuple(
            KeyedHit(key=h.pop("key"), sampled_out=h.pop("sampled_out"), hit=AttackHit(**h)) for h in data["hits"]
        )
        anomalies = tuple(KeyedAnomaly(key=a.pop("key"), sighting=AnomalySighting(**a)) for a in data["anomalies"])
        runs = tuple(RunReport(**{**r, "errors": tuple(r["errors"])}) for r in data["runs"])
        return cls(batch_key=data["batch_key"], hits=hits, anomalies=anomalies, runs=runs)
