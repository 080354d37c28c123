"""Reading the store: hits and attacks by filter, one attack with its hits, counts.

Every filter applies to hits; an attack matches when at least one of its hits does. Results
are plain frozen records, detached from any session.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, and_, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql import Executable

from storage.batch_rows import ip_key
from storage.models import Anomaly, Attack, Hit
from storage.store import StorageError

__all__ = [
    "AnomalyFilter",
    "AnomalyRecord",
    "AttackDetail",
    "AttackRecord",
    "HitFilter",
    "HitQueries",
    "HitRecord",
    "HitStats",
]

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True, kw_only=True)
class HitFilter:
    since: datetime | None = None
    until: datetime | None = None
    types: tuple[str, ...] = ()
    src: IpNetwork | None = None
    host: str | None = None
    application: str | None = None
    path: str | None = None  # a prefix of the request target

    def conditions(self) -> list[ColumnElement[bool]]:
        found: list[ColumnElement[bool]] = []
        if self.since is not None:
            found.append(Hit.ts >= self.since)
        if self.until is not None:
            found.append(Hit.ts < self.until)
        if self.types:
            found.append(Hit.attack_type.in_(self.types))
        if self.src is not None:
            found.append(Hit.src_ip_key.between(*_network_range(self.src)))
        if self.host is not None:
            found.append(func.lower(Hit.host) == self.host.lower())
        if self.application is not None:
            found.append(Hit.application == self.application)
        if self.path is not None:
            found.append(Hit.target.startswith(self.path, autoescape=True))
        return found


@dataclass(frozen=True, slots=True, kw_only=True)
class AnomalyFilter:
    since: datetime | None = None
    until: datetime | None = None
    names: tuple[str, ...] = ()
    src: IpNetwork | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        found: list[ColumnElement[bool]] = []
        if self.since is not None:
            found.append(Anomaly.ts >= self.since)
        if self.until is not None:
            found.append(Anomaly.ts < self.until)
        if self.names:
            found.append(Anomaly.name.in_(self.names))
        if self.src is not None:
            found.append(Anomaly.src_ip_key.between(*_network_range(self.src)))
        return found


@dataclass(frozen=True, slots=True, kw_only=True)
class AnomalyRecord:
    id: int
    time: datetime
    name: str
    detail: str
    src_ip: str
    src_port: int
    dst_ip: str
    dst_port: int
    tunnel: str
    method: str | None
    target: str | None

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "time": self.time.isoformat()}


@dataclass(frozen=True, slots=True, kw_only=True)
class HitRecord:
    id: int
    time: datetime
    type: str
    src_ip: str
    src_port: int
    dst_ip: str
    dst_port: int
    tunnel: str
    application: str
    host: str
    method: str
    target: str
    point: str
    payload: str
    rule: str
    reason: str
    request_excerpt: str
    response_status: int | None
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
    sampled_out: int
    src_ip: str
    src_port: int
    dst_ip: str
    dst_port: int
    host: str
    application: str
    method: str
    payload: str
    rule: str

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "first_seen": self.first_seen.isoformat(), "last_seen": self.last_seen.isoformat()}


@dataclass(frozen=True, slots=True, kw_only=True)
class AttackDetail:
    attack: AttackRecord
    hits: tuple[HitRecord, ...]

    def as_dict(self) -> dict[str, Any]:
        return {**self.attack.as_dict(), "hit_list": [hit.as_dict() for hit in self.hits]}


@dataclass(frozen=True, slots=True, kw_only=True)
class HitStats:
    total: int
    by_type: tuple[tuple[str, int], ...]
    by_source: tuple[tuple[str, int], ...]
    by_host: tuple[tuple[str, int], ...]
    by_hour: tuple[tuple[str, int], ...]  # "YYYY-MM-DDTHH:00Z", oldest first

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "by_type": dict(self.by_type),
            "by_source": dict(self.by_source),
            "by_host": dict(self.by_host),
            "by_hour": dict(self.by_hour),
        }


class HitQueries:
    """The read side of an `AttackStore`'s database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def list_hits(self, where: HitFilter, *, limit: int | None) -> list[HitRecord]:
        return list(self.iter_hits(where, limit=limit))

    def iter_hits(self, where: HitFilter, *, limit: int | None = None) -> Iterator[HitRecord]:
        """Matching hits, newest first, streamed in chunks (for exports of any size)."""
        query = select(Hit).where(*where.conditions()).order_by(Hit.ts.desc(), Hit.id.desc()).limit(limit)
        try:
            with Session(self.engine) as session:
                for row in session.scalars(query.execution_options(yield_per=1000)):
                    yield _hit_record(row)
        except SQLAlchemyError as exc:
            raise StorageError(f"cannot read hits: {exc}") from exc

    def list_attacks(self, where: HitFilter, *, limit: int | None) -> list[AttackRecord]:
        conditions = where.conditions()
        if conditions:
            matching = select(Hit.attack_id).where(*conditions).distinct()
            chosen = select(Attack).where(Attack.id.in_(matching))
        else:
            # No filter: the newest attacks by their own index, without grouping every hit.
            chosen = select(Attack)
        chosen = chosen.order_by(Attack.last_seen.desc(), Attack.id.desc()).limit(limit)
        try:
            with Session(self.engine) as session:
                attacks = list(session.scalars(chosen))
                latest = _latest_hits(session, [attack.id for attack in attacks], conditions)
                return [_attack_record(attack, latest.get(attack.id)) for attack in attacks]
        except SQLAlchemyError as exc:
            raise StorageError(f"cannot read attacks: {exc}") from exc

    def list_anomalies(self, where: AnomalyFilter, *, limit: int | None) -> list[AnomalyRecord]:
        query = select(Anomaly).where(*where.conditions()).order_by(Anomaly.ts.desc(), Anomaly.id.desc()).limit(limit)
        return [_anomaly_record(row) for (row,) in self._execute(query)]

    def attack_detail(self, attack_id: int, *, hit_limit: int | None) -> AttackDetail | None:
        hits = self.list_hits_of(attack_id, limit=hit_limit)
        query = select(Attack).where(Attack.id == attack_id)
        try:
            with Session(self.engine) as session:
                attack = session.scalars(query).first()
                if attack is None:
                    return None
                latest = session.scalars(select(Hit).where(Hit.attack_id == attack_id).order_by(Hit.id.desc())).first()
                record = _attack_record(attack, latest)
        except SQLAlchemyError as exc:
            raise StorageError(f"cannot read attack {attack_id}: {exc}") from exc
        return AttackDetail(attack=record, hits=tuple(hits))

    def list_hits_of(self, attack_id: int, *, limit: int | None) -> list[HitRecord]:
        query = select(Hit).where(Hit.attack_id == attack_id).order_by(Hit.ts.desc(), Hit.id.desc()).limit(limit)
        return [_hit_record(row) for (row,) in self._execute(query)]

    def stats(self, where: HitFilter, *, top: int) -> HitStats:
        conditions = where.conditions()
        total = self._execute(select(func.count(Hit.id)).where(*conditions))[0][0]
        by_hour = self._count_by(_hour_bucket(self.engine.dialect.name), conditions, top=None)
        return HitStats(
            total=total,
            by_type=self._count_by(Hit.attack_type, conditions, top=top),
            by_source=self._count_by(Hit.src_ip, conditions, top=top),
            by_host=self._count_by(Hit.host, conditions, top=top),
            by_hour=tuple(sorted(by_hour)),
        )

    def _count_by(
        self,
        column: ColumnElement[Any] | InstrumentedAttribute[str],
        conditions: list[ColumnElement[bool]],
        *,
        top: int | None,
    ) -> tuple[tuple[str, int], ...]:
        count = func.count(Hit.id).label("n")
        query = select(column, count).where(and_(True, *conditions)).group_by(column).order_by(count.desc(), column)
        return tuple((str(key), int(n)) for key, n in self._execute(query.limit(top)))

    def _execute(self, query: Executable) -> list[Any]:
        try:
            with Session(self.engine) as session:
                return list(session.execute(query).all())
        except SQLAlchemyError as exc:
            raise StorageError(f"cannot read the database: {exc}") from exc


def _latest_hits(session: Session, attack_ids: list[int], conditions: list[ColumnElement[bool]]) -> dict[int, Hit]:
    """The latest matching hit of each attack, in one query."""
    if not attack_ids:
        return {}
    newest = select(func.max(Hit.id)).where(Hit.attack_id.in_(attack_ids), *conditions).group_by(Hit.attack_id)
    return {hit.attack_id: hit for hit in session.scalars(select(Hit).where(Hit.id.in_(newest)))}


def _hour_bucket(dialect: str) -> ColumnElement[Any]:
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", Hit.ts), 'YYYY-MM-DD"T"HH24":00Z"')
    return func.strftime("%Y-%m-%dT%H:00Z", Hit.ts)


def _network_range(network: IpNetwork) -> tuple[str, str]:
    return ip_key(str(network.network_address)), ip_key(str(network.broadcast_address))


def _anomaly_record(row: Anomaly) -> AnomalyRecord:
    return AnomalyRecord(
        id=row.id,
        time=row.ts,
        name=row.name,
        detail=row.detail,
        src_ip=row.src_ip,
        src_port=row.src_port,
        dst_ip=row.dst_ip,
        dst_port=row.dst_port,
        tunnel=row.tunnel,
        method=row.method,
        target=row.target,
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
        tunnel=row.tunnel,
        application=row.application,
        host=row.host,
        method=row.method,
        target=row.target,
        point=row.point,
        payload=row.payload,
        rule=row.rule,
        reason=row.reason,
        request_excerpt=row.request_excerpt,
        response_status=row.response_status,
        attack_id=row.attack_id,
    )


def _attack_record(attack: Attack, latest: Hit | None) -> AttackRecord:
    # An attack all of whose hits were sampled out or pruned has no latest hit to show.
    return AttackRecord(
        id=attack.id,
        type=attack.attack_type,
        point=attack.point,
        target=attack.target,
        first_seen=attack.first_seen,
        last_seen=attack.last_seen,
        hits=attack.hit_count,
        sampled_out=attack.sampled_out,
        src_ip=latest.src_ip if latest else "",
        src_port=latest.src_port if latest else 0,
        dst_ip=latest.dst_ip if latest else "",
        dst_port=latest.dst_port if latest else 0,
        host=latest.host if latest else "",
        application=latest.application if latest else "",
        method=latest.method if latest else "",
        payload=latest.payload if latest else "",
        rule=latest.rule if latest else "",
    )
