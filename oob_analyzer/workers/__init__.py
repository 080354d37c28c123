"""Every core: N worker processes behind a symmetric flow hash, one storage writer.

Where it sits: the CLI calls `analyze_packets_in_workers` instead of
`pipeline.analyze_packets` when a run has more than one worker. The reader and decoder stay
in this process; each worker runs the in-process path (connection tracker + detection
engine) on the flows the hash gives it; hits come back to the one `HitSink`.
"""

from oob_analyzer.workers.child import FlowWorker
from oob_analyzer.workers.flows import segment_from_tuple, segment_to_tuple, worker_for
from oob_analyzer.workers.messages import EngineFactory
from oob_analyzer.workers.pool import QUEUE_FULL_DROP, WorkerError, WorkerPool, start_worker_server, worker_limits
from oob_analyzer.workers.run import (
    SMALL_INPUT_BYTES,
    analyze_packets_in_workers,
    available_cores,
    choose_workers,
    reads_never_stall,
)

__all__ = [
    "QUEUE_FULL_DROP",
    "SMALL_INPUT_BYTES",
    "EngineFactory",
    "FlowWorker",
    "WorkerError",
    "WorkerPool",
    "analyze_packets_in_workers",
    "available_cores",
    "choose_workers",
    "reads_never_stall",
    "segment_from_tuple",
    "segment_to_tuple",
    "start_worker_server",
    "worker_for",
    "worker_limits",
]
