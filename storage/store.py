"""The attack store: records hits, groups them into attacks, and answers queries.

The only module that reads or writes the database. A session per unit of work: `record`
writes one batch in one transaction, so a batch is stored whole or not at all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, create_engine, event, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from oob_analyzer.detection.events import AttackHit
from storage.models import Attack, Base, Hit

__all__ = ["AttackRecord", "AttackStore", "HitRecord", "StorageError"]

# A hit more than this long after its group's last hit starts a new attack.
ATTACK_QUIET_PERIOD = timedelta(hours=1)


class StorageError(Exception):
    """The database could not be opened, read or written."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HitRecord:
    id: int
    time: datetime
    type: str
    src_ip: str
    src_port: int
    dst_ip: str
    dst_port: int
    host: str
    method: str
    target: str
    point: str
    payload: str
    rule: str
    reason: str
    attack_id: int

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "time": self.time.isoformat()}


@dataclass(frozen=True, slots=True, kw_only=True)
class AttackRecord:
    """An attack with the fields of its latest hit."""

    id: int
    type: str
    point: str
    target: str
    first_seen: datetime
    last_seen: datetime
    hits: int
    src_ip: str
    src_port: int
    dst_ip: str
    dst_port: int
    host: str
    method: str
    payload: str
    rule: str

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "first_seen": self.first_seen.isoformat(), "last_seen": self.last_seen.isoformat()}


class AttackStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str) -> AttackStore:
        """Connect to the database at `url` and create the schema if it is missing."""
        try:
            engine = create_engine(url)
            if engine.dialect.name == "sqlite":
                event.listen(engine, "connect", _tune_sqlite)
            Base.metadata.create_all(engine)
        except (SQLAlchemyError, ImportError) as exc:
            raise StorageError(f"cannot open database {_redacted(url)}: {exc}") from exc
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    def record(self, hits: Sequence[AttackHit]) -> None:
        """Store a batch of hits in one transaction, grouping each into its attack."""
        if not hits:
            return
        try:
            with Session(self.engine) as session, session.begin():
                open_attacks: dict[str, Attack] = {}
                for hit in hits:
                    attack = self._attack_for(session, open_attacks, hit)
                    session.add(_hit_row(hit, attack))
        except SQLAlchemyError as exc:
            raise StorageError(f"cannot write {len(hits)} hits: {exc}") from exc

    def list_hits(self, *, limit: int) -> list[HitRecord]:
        query = select(Hit).order_by(Hit.ts.desc(), Hit.id.desc()).limit(limit)
        with Session(self.engine) as session:
            return [_hit_record(row) for row in session.scalars(query)]

    def list_attacks(self, *, limit: int) -> list[AttackRecord]:
        latest = select(Hit.attack_id, func.max(Hit.id).label("hit_id")).group_by(Hit.attack_id).subquery()
        query = (
            select(Attack, Hit)
            .join(latest, latest.c.attack_id == Attack.id)
            .join(Hit, Hit.id == latest.c.hit_id)
            .order_by(Attack.last_seen.desc(), Attack.id.desc())
            .limit(limit)
        )
        with Session(self.engine) as session:
            return [_attack_record(attack, hit) for attack, hit in session.execute(query)]

    def _attack_for(self, session: Session, open_attacks: dict[str, Attack], hit: AttackHit) -> Attack:
        key = _group_key(hit)
        seen = datetime.fromtimestamp(hit.ts, tz=UTC)
        attack = open_attacks.get(key)
        if attack is None:
            attack = session.scalars(
                select(Attack).where(Attack.group_key == key).order_by(Attack.last_seen.desc()).limit(1)
            ).first()
        if attack is None or seen - attack.last_seen > ATTACK_QUIET_PERIOD:
            attack = Attack(
                group_key=key,
                attack_type=hit.attack_type,
                point=hit.point,
                target=hit.target,
                first_seen=seen,
                last_seen=seen,
                hit_count=0,
            )
            session.add(attack)
        attack.hit_count += 1
        attack.first_seen = min(attack.first_seen, seen)
        attack.last_seen = max(attack.last_seen, seen)
        open_attacks[key] = attack
        return attack


def _group_key(hit: AttackHit) -> str:
    text = "\x00".join((hit.attack_type, hit.point, hit.target))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _hit_row(hit: AttackHit, attack: Attack) -> Hit:
    return Hit(
        attack=attack,
        ts=datetime.fromtimestamp(hit.ts, tz=UTC),
        attack_type=hit.attack_type,
        src_ip=hit.src_ip,
        src_port=hit.src_port,
        dst_ip=hit.dst_ip,
        dst_port=hit.dst_port,
        host=hit.host,
        method=hit.method,
        target=hit.target,
        point=hit.point,
        payload=hit.payload,
        rule=hit.rule,
        reason=hit.reason,
    )


def _hit_record(row: Hit) -> HitRecord:
    return HitRecord(
        id=row.id,
        time=row.ts,
        type=row.attack_type,
        src_ip=row.src_ip,
        src_port=row.src_port,
        dst_ip=row.dst_ip,
        dst_port=row.dst_port,
        host=row.host,
        method=row.method,
        target=row.target,
        point=row.point,
        payload=row.payload,
        rule=row.rule,
        reason=row.reason,
        attack_id=row.attack_id,
    )


def _attack_record(attack: Attack, latest: Hit) -> AttackRecord:
    return AttackRecord(
        id=attack.id,
        type=attack.attack_type,
        point=attack.point,
        target=attack.target,
        first_seen=attack.first_seen,
        last_seen=attack.last_seen,
        hits=attack.hit_count,
        src_ip=latest.src_ip,
        src_port=latest.src_port,
        dst_ip=latest.dst_ip,
        dst_port=latest.dst_port,
        host=latest.host,
        method=latest.method,
        payload=latest.payload,
        rule=latest.rule,
    )


def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _redacted(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except SQLAlchemyError:
        return "<unparseable URL>"
