"""The schema: hits, the attacks that group them, anomalies and capture runs (SQLAlchemy 2.0).

Last stage of the flow (capture -> reassembly -> detection -> storage). Every timestamp is
stored in UTC and read back timezone-aware, whatever the database. The schema is versioned
by the Alembic migrations in `storage/migrations`: a change here needs a new revision there.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, MetaData, String, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

__all__ = ["Anomaly", "Attack", "Base", "CaptureRun", "Hit", "UtcDateTime", "WrittenBatch"]

_NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime stored in UTC; SQLite, which keeps no zone, reads back UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: store timezone-aware times only")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=_NAMING_CONVENTION)


class Attack(Base):
    """Hits of one attack type at one point of one target, close together in time."""

    __tablename__ = "attacks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # sha256 of (type, point, target): targets are too long to index directly everywhere.
    group_key: Mapped[str] = mapped_column(String(64))
    attack_type: Mapped[str] = mapped_column(String(32))
    point: Mapped[str] = mapped_column(Text)
    target: Mapped[str] = mapped_column(Text)
    first_seen: Mapped[datetime] = mapped_column(UtcDateTime)
    last_seen: Mapped[datetime] = mapped_column(UtcDateTime)
    # Every hit counts, stored or not; `sampled_out` of them were counted without a row.
    hit_count: Mapped[int] = mapped_column(Integer)
    sampled_out: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (
        Index("ix_attacks_group_key_last_seen", "group_key", "last_seen"),
        Index("ix_attacks_last_seen", "last_seen"),
    )


class Hit(Base):
    """One malicious request, for one attack type."""

    __tablename__ = "hits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Idempotency key given when the hit was detected: a batch replayed from the journal
    # after a lost acknowledgement cannot store the hit twice.
    hit_key: Mapped[str] = mapped_column(String(64), unique=True)
    attack_id: Mapped[int] = mapped_column(ForeignKey("attacks.id", ondelete="CASCADE"))
    ts: Mapped[datetime] = mapped_column(UtcDateTime)
    attack_type: Mapped[str] = mapped_column(String(32))
    src_ip: Mapped[str] = mapped_column(String(45))
    # The address as version + 32 hex digits (`storage.batch_rows.ip_key`): CIDR filters become range scans.
    src_ip_key: Mapped[str] = mapped_column(String(33))
    src_port: Mapped[int] = mapped_column(Integer)
    dst_ip: Mapped[str] = mapped_column(String(45))
    dst_port: Mapped[int] = mapped_column(Integer)
    tunnel: Mapped[str] = mapped_column(Text, default="")
    application: Mapped[str] = mapped_column(Text, default="")
    host: Mapped[str] = mapped_column(Text)
    method: Mapped[str] = mapped_column(Text)
    target: Mapped[str] = mapped_column(Text)
    point: Mapped[str] = mapped_column(Text)
    payload: Mapped[str] = mapped_column(Text)
    rule: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    request_excerpt: Mapped[str] = mapped_column(Text, default="")
    response_status: Mapped[int | None] = mapped_column(Integer, nullable=True)

    attack: Mapped[Attack] = relationship()

    __table_args__ = (
        Index("ix_hits_ts", "ts"),
        Index("ix_hits_attack_id", "attack_id"),
        Index("ix_hits_src_ip_key_ts", "src_ip_key", "ts"),
        Index("ix_hits_attack_type_ts", "attack_type", "ts"),
    )


class Anomaly(Base):
    """Something odd seen on a connection or in a request: a signal in itself."""

    __tablename__ = "anomalies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    anomaly_key: Mapped[str] = mapped_column(String(64), unique=True)
    ts: Mapped[datetime] = mapped_column(UtcDateTime)
    name: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(Text, default="")
    src_ip: Mapped[str] = mapped_column(String(45))
    src_ip_key: Mapped[str] = mapped_column(String(33))
    src_port: Mapped[int] = mapped_column(Integer)
    dst_ip: Mapped[str] = mapped_column(String(45))
    dst_port: Mapped[int] = mapped_column(Integer)
    tunnel: Mapped[str] = mapped_column(Text, default="")
    # The request the anomaly was found in, when it belongs to one.
    method: Mapped[str | None] = mapped_column(Text, nullable=True)
    target: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (
        Index("ix_anomalies_ts", "ts"),
        Index("ix_anomalies_name_ts", "name", "ts"),
    )


class CaptureRun(Base):
    """One run of the analyzer over a source, with its counters."""

    __tablename__ = "capture_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_key: Mapped[str] = mapped_column(String(64), unique=True)
    source: Mapped[str] = mapped_column(Text)
    started: Mapped[datetime] = mapped_column(UtcDateTime)
    finished: Mapped[datetime] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(16))  # completed | interrupted | failed
    packets: Mapped[int] = mapped_column(Integer)
    requests: Mapped[int] = mapped_column(Integer)
    hits: Mapped[int] = mapped_column(Integer)
    anomalies: Mapped[int] = mapped_column(Integer)
    drops: Mapped[str] = mapped_column(Text)  # JSON object: reason -> count
    errors: Mapped[str] = mapped_column(Text)  # JSON array of messages

    __table_args__ = (Index("ix_capture_runs_started", "started"),)


class WrittenBatch(Base):
    """A batch of the writer that is stored: replaying it again (from the journal) is a no-op."""

    __tablename__ = "written_batches"

    batch_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    written_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (Index("ix_written_batches_written_at", "written_at"),)
