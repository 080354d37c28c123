"""The attack store: writes batches of hits, anomalies and runs, and prunes old data.

With `storage.batch_rows` (the statements of one batch), the only code that writes the
database (queries live in `storage.queries`). `write` stores one batch in one transaction,
so a batch is stored whole or not at all, and its key is stored with it so that the same
batch is never stored twice.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    CursorResult,
    Delete,
    Engine,
    Table,
    bindparam,
    create_engine,
    delete,
    event,
    select,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from oob_analyzer.detection.events import AttackHit
from storage.batch_rows import claim_batch, write_anomalies, write_hits, write_run
from storage.batches import AnomalySighting, KeyedAnomaly, KeyedHit, WriteBatch
from storage.errors import StorageError, StorageUnavailableError
from storage.models import Anomaly, Attack, CaptureRun, Hit, WrittenBatch
from storage.schema import UnversionedDatabaseError, upgrade_schema

__all__ = ["AttackStore", "PruneCounts", "StorageError", "StorageUnavailableError"]


@dataclass(frozen=True, slots=True)
class PruneCounts:
    hits: int
    attacks: int
    anomalies: int
    runs: int


class AttackStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str, *, upgrade: bool = True) -> AttackStore:
        """Connect to the database at `url` and bring its schema up to date (unless told not to)."""
        engine: Engine | None = None
        try:
            # pre_ping: after an outage, pooled connections are dead; test before use.
            # connect_timeout: a database behind a dead network must not hang a run's shutdown.
            connect_args = {"connect_timeout": 10} if make_url(url).get_backend_name() == "postgresql" else {}
            engine = create_engine(url, pool_pre_ping=True, connect_args=connect_args)
            if engine.dialect.name == "sqlite":
                event.listen(engine, "connect", _tune_sqlite)
            if upgrade:
                upgrade_schema(engine)
        except (SQLAlchemyError, ImportError, UnversionedDatabaseError) as exc:
            if engine is not None:  # close what the failed attempt pooled, not leave it to the GC
                engine.dispose()
            raise StorageError(f"cannot open database {redacted(url)}: {_first_line(exc)}") from exc
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    def record(self, hits: Sequence[AttackHit]) -> None:
        """Store hits directly, each under a fresh key (the `HitSink` of a run without a writer)."""
        if hits:
            keyed = tuple(KeyedHit(key=uuid.uuid4().hex, hit=hit) for hit in hits)
            self.write(WriteBatch(batch_key=uuid.uuid4().hex, hits=keyed))

    def record_anomalies(self, sightings: Sequence[AnomalySighting]) -> None:
        """Store anomaly sightings directly, each under a fresh key."""
        if sightings:
            keyed = tuple(KeyedAnomaly(key=uuid.uuid4().hex, sighting=s) for s in sightings)
            self.write(WriteBatch(batch_key=uuid.uuid4().hex, anomalies=keyed))

    def write(self, batch: WriteBatch) -> bool:
        """Store a batch in one transaction; False when it was stored before (nothing is done).

        Core statements on one connection, not the ORM's unit of work: a replay's batches hold
        hundreds of attacks, and an ORM object per attack cost more than all the inserts.
        """
        try:
            with self.engine.begin() as connection:
                if not claim_batch(connection, batch.batch_key):
                    return False
                write_hits(connection, batch.hits)
                write_anomalies(connection, batch.anomalies)
                for report in batch.runs:
                    write_run(connection, report)
        except (OperationalError, DBAPIError) as exc:
            if isinstance(exc, OperationalError) or exc.connection_invalidated:
                raise StorageUnavailableError(f"database unavailable: {_first_line(exc)}") from exc
            raise StorageError(f"cannot write batch {batch.batch_key}: {_first_line(exc)}") from exc
        except SQLAlchemyError as exc:
            raise StorageError(f"cannot write batch {batch.batch_key}: {_first_line(exc)}") from exc
        return True

    def prune(self, older_than: datetime) -> PruneCounts:
        """Delete what was last seen before `older_than`: hits, whole attacks, anomalies, runs.

        An attack seen on both sides of `older_than` is kept, and its `hit_count` loses the
        hits deleted, so it still counts what is stored plus `sampled_out`. Those sampled-out
        hits stay counted until the attack goes: their times were never stored. `first_seen`
        still says when the attack began.
        """
        try:
            with Session(self.engine) as session, session.begin():
                stale_attacks = select(Attack.id).where(Attack.last_seen < older_than)
                hits = _delete(session, delete(Hit).where(Hit.attack_id.in_(stale_attacks)))
                hits += _delete_hits_of_kept_attacks(session, older_than)
                attacks = _delete(session, delete(Attack).where(Attack.last_seen < older_than))
                anomalies = _delete(session, delete(Anomaly).where(Anomaly.ts < older_than))
                runs = _delete(session, delete(CaptureRun).where(CaptureRun.finished < older_than))
                _delete(session, delete(WrittenBatch).where(WrittenBatch.written_at < older_than))
        except SQLAlchemyError as exc:
            raise StorageError(f"cannot prune: {_first_line(exc)}") from exc
        return PruneCounts(hits=hits, attacks=attacks, anomalies=anomalies, runs=runs)


def _delete(session: Session, statement: Delete) -> int:
    result = session.execute(statement)
    return cast(CursorResult[Any], result).rowcount


def _delete_hits_of_kept_attacks(session: Session, older_than: datetime) -> int:
    """Delete the hits before `older_than` and take them off their attacks' `hit_count`.

    RETURNING names the attack of each row this statement deleted, so a hit a writer adds
    meanwhile (a replay of an old capture does) is never taken off unless it was deleted. A
    writer adds to the count in SQL (`batch_rows._AttackGroups.apply_counts`), so it keeps this decrement
    even when it read the attack before this committed.
    """
    deleted = Counter(session.scalars(delete(Hit).where(Hit.ts < older_than).returning(Hit.attack_id)))
    if deleted:
        table = cast(Table, Attack.__table__)  # Core, not ORM: an executemany of `hit_count - n`
        lower = update(table).where(table.c.id == bindparam("attack"))
        lower = lower.values(hit_count=table.c.hit_count - bindparam("deleted"))
        session.execute(lower, [{"attack": attack, "deleted": count} for attack, count in deleted.items()])
    return deleted.total()


def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_SECONDS * 1000}")  # a query beside the writer waits
    _use_wal(cursor)  # readers do not block the writer
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


_SQLITE_BUSY_SECONDS = 10


def _use_wal(cursor: Any) -> None:
    """`PRAGMA journal_mode=WAL`, waiting for a writer as a busy timeout would.

    Switching a database to WAL needs its exclusive lock, and while another connection holds
    the write lock (a sensor creating the schema under BEGIN IMMEDIATE) SQLite answers
    "database is locked" at once, without its busy handler, since waiting could deadlock
    (https://sqlite.org/c3ref/busy_handler.html): sensors starting together on a new file
    failed so. The switch is tried again until the writer is done, within the busy timeout.
    """
    deadline = time.monotonic() + _SQLITE_BUSY_SECONDS
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


def redacted(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except SQLAlchemyError:
        return "<unparseable URL>"
