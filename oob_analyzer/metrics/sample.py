"""A metrics sample: the values of every metric at one moment, as plain picklable data.

Collected on demand from the live pipeline (`oob_analyzer.metrics.collect`), rendered by
`oob_analyzer.metrics.exposition`. Samples add up (`a + b`), so that worker processes can
send theirs to a parent that sums them: counters and most gauges add; a gauge whose family
says `combine="max"` (a lag, a flag) keeps the larger value.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["FAMILIES", "Labels", "MetricFamily", "MetricsSample"]

Labels = tuple[tuple[str, str], ...]
SeriesKey = tuple[str, Labels]


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricFamily:
    """One metric's name (without the `oob_analyzer_` prefix or `_total`), kind and help."""

    name: str
    kind: Literal["counter", "gauge"]
    help: str
    label: str | None = None  # the one label a labelled family's series carry
    combine: Literal["sum", "max"] = "sum"


_FAMILY_LIST = (
    MetricFamily(name="packets", kind="counter", help="Packets read from the sources."),
    MetricFamily(name="bytes", kind="counter", help="Bytes of the packets read, as captured."),
    MetricFamily(
        name="decode_drops", kind="counter", help="Frames the decoder passed over, by reason.", label="reason"
    ),
    MetricFamily(name="decode_anomalies", kind="counter", help="Frames odd but decoded, by anomaly.", label="name"),
    MetricFamily(name="source_events", kind="counter", help="What the live source counted, by event.", label="event"),
    MetricFamily(name="flows_opened", kind="counter", help="TCP connections tracked."),
    MetricFamily(
        name="flows_ended", kind="counter", help="TCP connections no longer tracked, by reason.", label="reason"
    ),
    MetricFamily(
        name="flows_evicted",
        kind="counter",
        help="TCP connections evicted before they closed, by reason.",
        label="reason",
    ),
    MetricFamily(name="flows_active", kind="gauge", help="TCP connections tracked now."),
    MetricFamily(name="reassembly_pending_bytes", kind="gauge", help="Out-of-order bytes waiting for a hole to fill."),
    MetricFamily(name="tcp_gaps", kind="counter", help="Holes in TCP streams given up on, by reason.", label="reason"),
    MetricFamily(name="tcp_gap_bytes", kind="counter", help="Bytes lost in the TCP holes given up on."),
    MetricFamily(name="reassembly_events", kind="counter", help="Other reassembly counters, by name.", label="name"),
    MetricFamily(name="requests", kind="counter", help="HTTP requests parsed."),
    MetricFamily(name="responses", kind="counter", help="HTTP responses parsed."),
    MetricFamily(name="hits", kind="counter", help="Attack hits detected, by attack type.", label="type"),
    MetricFamily(
        name="requests_not_judged",
        kind="counter",
        help="HTTP requests the config file leaves unjudged, by reason (a route's mode off, a host not allowed).",
        label="reason",
    ),
    MetricFamily(
        name="anomalies",
        kind="counter",
        help="Anomalies recorded (on requests and connections), by name.",
        label="name",
    ),
    MetricFamily(name="capture_loss_acks", kind="counter", help="Acknowledgements that advanced, seen in TCP."),
    MetricFamily(name="capture_loss_acked_bytes", kind="counter", help="Bytes those acknowledgements covered."),
    MetricFamily(name="capture_loss_gaps", kind="counter", help="Ranges of acknowledged bytes the capture never saw."),
    MetricFamily(name="capture_loss_gap_bytes", kind="counter", help="Acknowledged bytes the capture never saw."),
    MetricFamily(name="queue_depth", kind="gauge", help="Items waiting in a queue, by queue.", label="queue"),
    MetricFamily(
        name="writer_items", kind="counter", help="Items the storage writer handled, by outcome.", label="outcome"
    ),
    MetricFamily(
        name="writer_lag_seconds",
        kind="gauge",
        help="Age of the oldest item neither stored nor journalled yet.",
        combine="max",
    ),
    MetricFamily(
        name="writer_database_down",
        kind="gauge",
        help="1 while the database is unreachable and items go to the journal.",
        combine="max",
    ),
    MetricFamily(
        name="mirror_receiver", kind="counter", help="What the HTTP mirror receiver counted, by event.", label="event"
    ),
)
FAMILIES: Mapping[str, MetricFamily] = {family.name: family for family in _FAMILY_LIST}


@dataclass(frozen=True, slots=True)
class MetricsSample:
    """Series (family name, sorted labels) -> value. Build with `MetricsSample.of`."""

    values: Mapping[SeriesKey, float] = field(default_factory=dict)

    @classmethod
    def of(cls, series: Iterable[tuple[str, Mapping[str, str], float]]) -> MetricsSample:
        """From (family, labels, value) triples; a family not in `FAMILIES` is a programming error."""
        values: dict[SeriesKey, float] = {}
        for name, labels, value in series:
            if name not in FAMILIES:
                raise KeyError(f"unknown metric family {name!r}")
            key = (name, tuple(sorted(labels.items())))
            values[key] = values.get(key, 0.0) + value
        return cls(values)

    def get(self, name: str, **labels: str) -> float:
        return self.values.get((name, tuple(sorted(labels.items()))), 0.0)

    def total(self, name: str) -> float:
        """The family's value summed over its labels."""
        return sum(value for (family, _), value in self.values.items() if family == name)

    def __iter__(self) -> Iterator[tuple[SeriesKey, float]]:
        return iter(self.values.items())

    def __add__(self, other: MetricsSample) -> MetricsSample:
        values = dict(self.values)
        for key, value in other.values.items():
            if key not in values:
                values[key] = value
            elif FAMILIES[key[0]].combine == "max":
                values[key] = max(values[key], value)
            else:
                values[key] += value
        return MetricsSample(values)
