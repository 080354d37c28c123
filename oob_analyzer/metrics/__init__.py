"""Metrics: what a running sensor tells its monitoring (Prometheus), collected on demand.

`PipelineMetrics` reads the live pipeline objects into a `MetricsSample` (picklable, and
samples add up); `render` writes the Prometheus text format; `MetricsServer` serves it with
`/healthz` and `/ready` (`Health`).
"""

from oob_analyzer.metrics.collect import ENGINE_PREFIX, TRACKER_PREFIX, PipelineMetrics, tracker_counters
from oob_analyzer.metrics.exposition import CONTENT_TYPE, PREFIX, render
from oob_analyzer.metrics.sample import FAMILIES, MetricFamily, MetricsSample
from oob_analyzer.metrics.server import Health, MetricsServer

__all__ = [
    "CONTENT_TYPE",
    "ENGINE_PREFIX",
    "FAMILIES",
    "PREFIX",
    "TRACKER_PREFIX",
    "Health",
    "MetricFamily",
    "MetricsSample",
    "MetricsServer",
    "PipelineMetrics",
    "render",
    "tracker_counters",
]
