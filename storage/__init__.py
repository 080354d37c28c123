"""Storage: hits, attacks, anomalies and capture runs in SQLite (default) or PostgreSQL.

`AttackStore` writes, `HitQueries` reads, `BatchedWriter` stands between the pipeline and
the store so that nothing detected is lost when the database is slow or away.
"""

from storage.batches import AnomalySighting, RunReport, WriteBatch
from storage.journal import Journal
from storage.models import Anomaly, Attack, Base, CaptureRun, Hit
from storage.queries import (
    AnomalyFilter,
    AnomalyRecord,
    AttackDetail,
    AttackRecord,
    HitFilter,
    HitQueries,
    HitRecord,
    HitStats,
)
from storage.sampling import HitSampler
from storage.schema import current_revision, head_revision, upgrade_schema
from storage.store import AttackStore, PruneCounts, StorageError, StorageUnavailableError
from storage.writer import BatchedWriter, WriterStats

__all__ = [
    "Anomaly",
    "AnomalyFilter",
    "AnomalyRecord",
    "AnomalySighting",
    "Attack",
    "AttackDetail",
    "AttackRecord",
    "AttackStore",
    "Base",
    "BatchedWriter",
    "CaptureRun",
    "Hit",
    "HitFilter",
    "HitQueries",
    "HitRecord",
    "HitSampler",
    "HitStats",
    "Journal",
    "PruneCounts",
    "RunReport",
    "StorageError",
    "StorageUnavailableError",
    "WriteBatch",
    "WriterStats",
    "current_revision",
    "head_revision",
    "upgrade_schema",
]
