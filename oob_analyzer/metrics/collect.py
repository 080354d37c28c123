"""Collecting a `MetricsSample` from the live pipeline objects, when asked (a scrape).

Nothing here runs per packet: the pipeline keeps the plain counters it always kept
(`RunSummary`, the decoder's and the tracker's `stats`, the writer's `WriterStats`), and
`PipelineMetrics.collect()` reads them from the scraping thread. Reading a counter while the
pipeline thread updates it is safe under the GIL except for a dict growing while copied,
which `_snapshot` retries.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import storage
from oob_analyzer.config.engine import HOST_NOT_ALLOWED, NOT_MONITORED
from oob_analyzer.metrics.sample import MetricsSample
from oob_analyzer.mirror_pipeline import MirrorService
from oob_analyzer.pipeline import RequestStream, RunSummary
from reassembly import ConnectionTracker

__all__ = ["ENGINE_PREFIX", "TRACKER_PREFIX", "PipelineMetrics", "tracker_counters"]

TRACKER_PREFIX = "tracker."  # counters keys that are a connection tracker's `stats`
ENGINE_PREFIX = "engine."  # counters keys that are a `SensorEngine`'s (requests not judged, by reason)
# The engine's counters of requests not judged -> the reason label of `requests_not_judged`.
_NOT_JUDGED = {NOT_MONITORED: "not_monitored", HOST_NOT_ALLOWED: "host_not_allowed"}

Series = tuple[str, Mapping[str, str], float]

_FLOW_ENDINGS = {
    "connections_closed": "closed",
    "connections_reused": "reused",
    "connections_open_at_end": "open_at_end",
    "connections_evicted_idle": "idle",
    "connections_evicted_table_full": "table_full",
}
_EVICTIONS = frozenset({"idle", "table_full"})


@dataclass(slots=True)
class PipelineMetrics:
    """The live objects of one run to read metrics from; any may be absent."""

    summary: RunSummary | None = None
    stream: RequestStream | None = None
    writer: storage.BatchedWriter | None = None
    source_stats: Counter[str] | None = None
    mirror: MirrorService | None = None
    # The engine judging in this process: its `counters` (requests not judged, by reason).
    engine_counters: Mapping[str, int] | None = None
    # Worker processes' reassembly and engine counters, summed (`WorkerPool.counters`); with
    # workers the `stream` here only decodes, its tracker stays empty, and there is no engine.
    workers: Callable[[], Mapping[str, int]] | None = None

    def collect(self) -> MetricsSample:
        series: list[Series] = []
        if self.summary is not None:
            series += _from_summary(self.summary)
        if self.stream is not None:
            series += _from_decoder(self.stream)
            series += _from_tracker(tracker_counters(self.stream.tracker))
        if self.engine_counters is not None:
            series += _not_judged(_snapshot(self.engine_counters))
        if self.workers is not None:
            counters = self.workers()
            series += _from_tracker(counters)
            series += _not_judged({key.removeprefix(ENGINE_PREFIX): n for key, n in counters.items()})
        if self.source_stats is not None:
            series += [("source_events", {"event": name}, n) for name, n in _snapshot(self.source_stats).items()]
        if self.writer is not None:
            series += _from_writer(self.writer)
        if self.mirror is not None:
            series += _from_mirror(self.mirror)
        return MetricsSample.of(series)


def _from_summary(summary: RunSummary) -> Iterator[Series]:
    yield "packets", {}, summary.packets
    yield "bytes", {}, summary.bytes
    yield "requests", {}, summary.requests
    yield "responses", {}, summary.responses
    for attack_type, count in _snapshot(summary.hits_by_type).items():
        yield "hits", {"type": attack_type}, count
    for name, count in _snapshot(summary.anomalies_by_name).items():
        yield "anomalies", {"name": name}, count


def _not_judged(engine_counters: Mapping[str, int]) -> Iterator[Series]:
    for name, reason in _NOT_JUDGED.items():  # both, zero too: a counter exists from the start
        yield "requests_not_judged", {"reason": reason}, engine_counters.get(name, 0)


def _from_decoder(stream: RequestStream) -> Iterator[Series]:
    decoder = stream.decoder
    for reason, count in _snapshot(decoder.stats).items():
        yield "decode_drops", {"reason": reason}, count
    for name, count in _snapshot(lambda: decoder.anomalies).items():
        yield "decode_anomalies", {"name": name}, count


def tracker_counters(tracker: ConnectionTracker) -> Counter[str]:
    """A connection tracker's counters as one picklable sample that adds up across trackers:
    its `stats` under `tracker.` names, the connections and bytes it holds, the loss estimate."""
    counters = Counter({TRACKER_PREFIX + name: n for name, n in _snapshot(tracker.stats).items()})
    loss = tracker.capture_loss
    counters.update(
        {
            "tracked_connections": tracker.tracked_connections,
            "pending_bytes": tracker.pending_bytes,
            "capture_loss_acks": loss.ack_events,
            "capture_loss_acked_bytes": loss.ack_bytes,
            "capture_loss_gaps": loss.gap_events,
            "capture_loss_gap_bytes": loss.gap_bytes,
        }
    )
    return counters


def _from_tracker(counters: Mapping[str, int]) -> Iterator[Series]:
    for key, count in counters.items():
        if not key.startswith(TRACKER_PREFIX):
            continue
        name = key.removeprefix(TRACKER_PREFIX)
        yield _tracker_series(name, count)
        ending = _FLOW_ENDINGS.get(name)
        if ending in _EVICTIONS:
            yield "flows_evicted", {"reason": ending}, count
    yield "flows_active", {}, counters.get("tracked_connections", 0)
    yield "reassembly_pending_bytes", {}, counters.get("pending_bytes", 0)
    for name in ("capture_loss_acks", "capture_loss_acked_bytes", "capture_loss_gaps", "capture_loss_gap_bytes"):
        yield name, {}, counters.get(name, 0)


def _tracker_series(name: str, count: int) -> Series:
    if name == "connections":
        return "flows_opened", {}, count
    if name in _FLOW_ENDINGS:
        return "flows_ended", {"reason": _FLOW_ENDINGS[name]}, count
    if name.startswith("gaps_"):
        return "tcp_gaps", {"reason": name.removeprefix("gaps_")}, count
    if name == "bytes_lost_in_gaps":
        return "tcp_gap_bytes", {}, count
    return "reassembly_events", {"name": name}, count


def _from_writer(writer: storage.BatchedWriter) -> Iterator[Series]:
    stats = writer.stats
    waiting, lag = writer.backlog()
    yield "queue_depth", {"queue": "writer"}, waiting
    yield "writer_lag_seconds", {}, lag
    yield "writer_database_down", {}, float(writer.database_down)
    yield "writer_items", {"outcome": "written"}, stats.written
    yield "writer_items", {"outcome": "journalled"}, stats.journalled
    yield "writer_items", {"outcome": "rejected"}, stats.rejected


def _from_mirror(mirror: MirrorService) -> Iterator[Series]:
    receiver = mirror.live_stats
    for event in ("connections", "refused", "over_limit", "requests", "incomplete", "dropped"):
        yield "mirror_receiver", {"event": event}, getattr(receiver, event)
    for name, count in _snapshot(receiver.anomalies).items():
        yield "anomalies", {"name": name}, count
    analysis = mirror.analysis
    if analysis is not None:
        yield "queue_depth", {"queue": "mirror_analysis"}, analysis.queue_depth
        yield "requests", {}, analysis.analyzed
        for attack_type, count in _snapshot(analysis.hits_by_type).items():
            yield "hits", {"type": attack_type}, count


def _snapshot(counter: Mapping[str, int] | Callable[[], Mapping[str, int]]) -> dict[str, int]:
    """A copy of a counter another thread is updating (a dict copy is atomic unless it grows)."""
    for _ in range(5):
        try:
            return dict(counter() if callable(counter) else counter)
        except RuntimeError:  # changed size during the copy: try again
            continue
    return {}
