"""What the dispatcher and the worker processes say to each other, one class per kind.

To a worker, through its bounded input queue and in order with its segments: a batch of
segments, a new engine, a request for its counters, the end. From a worker, through its own
pipe: that it is ready (its engine built), results (hits and anomaly sightings), counters,
the end, or why it stopped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from capture import PacketDecoder
from oob_analyzer.detection import AttackHit
from oob_analyzer.pipeline import RequestAnalyzer
from oob_analyzer.workers.flows import FramePart
from storage.batches import AnomalySighting

__all__ = [
    "CountersReply",
    "CountersRequest",
    "Crashed",
    "DecoderSettings",
    "EngineFactory",
    "Finish",
    "Finished",
    "Ready",
    "Reconfigure",
    "ReconfigureFailed",
    "Results",
    "SegmentBatch",
    "ToParent",
    "ToWorker",
]

# Builds the detection engine inside a worker (a compiled engine does not pickle): a
# module-level function, or a functools.partial of one over picklable arguments.
EngineFactory = Callable[[], RequestAnalyzer]


@dataclass(frozen=True, slots=True)
class DecoderSettings:
    """What a worker's decoder needs to decode the packed frames as the dispatcher's did."""

    vxlan_ports: frozenset[int]
    geneve_ports: frozenset[int]
    max_tunnel_depth: int

    @classmethod
    def of(cls, decoder: PacketDecoder) -> DecoderSettings:
        return cls(decoder.vxlan_ports, decoder.geneve_ports, decoder.max_tunnel_depth)

    def build(self) -> PacketDecoder:
        return PacketDecoder(
            vxlan_ports=self.vxlan_ports, geneve_ports=self.geneve_ports, max_tunnel_depth=self.max_tunnel_depth
        )


@dataclass(frozen=True, slots=True)
class SegmentBatch:
    """Runs of packed frames and segments decoded by the dispatcher, in capture order."""

    parts: list[FramePart]


@dataclass(frozen=True, slots=True)
class Reconfigure:
    """Build a new engine with `engine_factory` and judge every later request with it."""

    engine_factory: EngineFactory


@dataclass(frozen=True, slots=True)
class CountersRequest:
    sequence: int


@dataclass(frozen=True, slots=True)
class Finish:
    """No more segments. `close_connections`: hand back every message in progress first
    (the end of the input), or not (interrupted: as the in-process path does)."""

    close_connections: bool


ToWorker = SegmentBatch | Reconfigure | CountersRequest | Finish


@dataclass(frozen=True, slots=True)
class Ready:
    """The worker has built its engine: from now on it keeps up with its queue."""


@dataclass(frozen=True, slots=True)
class Results:
    hits: list[AttackHit]
    sightings: list[AnomalySighting]
    requests: int = 0  # parsed since the worker's last Results
    responses: int = 0


@dataclass(frozen=True, slots=True)
class CountersReply:
    sequence: int
    counters: Counter[str]


@dataclass(frozen=True, slots=True)
class Finished:
    counters: Counter[str]


@dataclass(frozen=True, slots=True)
class ReconfigureFailed:
    error: str


@dataclass(frozen=True, slots=True)
class Crashed:
    error: str  # the traceback


ToParent = Ready | Results | CountersReply | Finished | ReconfigureFailed | Crashed
