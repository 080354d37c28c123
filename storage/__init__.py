"""Storage: hits, attacks, anomalies and capture runs in SQLite (default) or PostgreSQL.

`AttackStore` writes, `HitQueries` reads, `BatchedWriter` stands between the pipeline and
the store so that nothing detected is lost when the database is slow or away.

Each name is imported from its module when first asked for (PEP 562): SQLAlchemy and Alembic
take a third of a second to import, which a command that never opens a database (`--help`,
`detect`, `extract`) should not pay, and a run that only writes should not pay for the queries.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from storage.batches import AnomalySighting, RunReport, WriteBatch
    from storage.errors import StorageError, StorageUnavailableError
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
    from storage.store import AttackStore, PruneCounts
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


_MODULE_OF = {
    "AnomalySighting": "batches",
    "RunReport": "batches",
    "WriteBatch": "batches",
    "Journal": "journal",
    "Anomaly": "models",
    "Attack": "models",
    "Base": "models",
    "CaptureRun": "models",
    "Hit": "models",
    "AnomalyFilter": "queries",
    "AnomalyRecord": "queries",
    "AttackDetail": "queries",
    "AttackRecord": "queries",
    "HitFilter": "queries",
    "HitQueries": "queries",
    "HitRecord": "queries",
    "HitStats": "queries",
    "HitSampler": "sampling",
    "current_revision": "schema",
    "head_revision": "schema",
    "upgrade_schema": "schema",
    "AttackStore": "store",
    "PruneCounts": "store",
    "StorageError": "errors",
    "StorageUnavailableError": "errors",
    "BatchedWriter": "writer",
    "WriterStats": "writer",
}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'storage' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"storage.{module}"), name)
    globals()[name] = value  # asked once: later lookups find it without this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
