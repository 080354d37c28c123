"""The schema: attack hits and the attacks that group them (SQLAlchemy 2.0 declarative).

Last stage of the flow (capture -> reassembly -> detection -> storage). Every timestamp is
stored in UTC and read back timezone-aware, whatever the database.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, MetaData, String, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

__all__ = ["Attack", "Base", "Hit", "UtcDateTime"]

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
    hit_count: Mapped[int] = mapped_column(Integer)

    __table_args__ = (
        Index("ix_attacks_group_key_last_seen", "group_key", "last_seen"),
        Index("ix_attacks_last_seen", "last_seen"),
    )


class Hit(Base):
    """One malicious request, for one attack type."""

    __tablename__ = "hits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    attack_id: Mapped[int] = mapped_column(ForeignKey("attacks.id", ondelete="CASCADE"))
    ts: Mapped[datetime] = mapped_column(UtcDateTime)
    attack_type: Mapped[str] = mapped_column(String(32))
    src_ip: Mapped[str] = mapped_column(String(45))
    src_port: Mapped[int] = mapped_column(Integer)
    dst_ip: Mapped[str] = mapped_column(String(45))
    dst_port: Mapped[int] = mapped_column(Integer)
    host: Mapped[str] = mapped_column(Text)
    method: Mapped[str] = mapped_column(Text)
    target: Mapped[str] = mapped_column(Text)
    point: Mapped[str] = mapped_column(Text)
    payload: Mapped[str] = mapped_column(Text)
    rule: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)

    attack: Mapped[Attack] = relationship()

    __table_args__ = (
        Index("ix_hits_ts", "ts"),
        Index("ix_hits_attack_id", "attack_id"),
    )
