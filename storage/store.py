"""The attack store: writes batches of hits, anomalies and runs, and prunes old data.

The only module that writes the database (queries live in `storage.queries`). A session per
unit of work: `write` stores one batch in one transaction, so a batch is stored whole or
not at all, and its key is stored with it so that the same batch is never stored twice.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Delete, Engine, create_engine, delete, event, insert, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from oob_analyzer.detection.events import AttackHit
from storage.batches import AnomalySighting, KeyedAnomaly, KeyedHit, RunReport, WriteBatch
from storage.models import Anomaly, Attack, CaptureRun, Hit, WrittenBatch
from storage.schema import upgrade_schema

__all__ = ["AttackStore", "PruneCounts", "StorageError", "StorageUnavailableError", "ip_key"]

# A hit more than this long after its group's last hit starts a new attack.
ATTACK_QUIET_PERIOD = timedelta(hours=1)


class StorageError(Exception):
    """The database could not be opened, read or written."""


class StorageUnavailableError(StorageError):
    """The database cannot be reached now; the same write may succeed later."""


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
        try:
            # pre_ping: after an outage, pooled connections are dead; test before use.
            engine = create_engine(url, pool_pre_ping=True)
            if engine.dialect.name == "sqlite":
                event.listen(engine, "connect", _tune_sqlite)
            if upgrade:
                upgrade_schema(engine)
        except (SQLAlchemyError, ImportError) as exc:
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
        """Store a batch in one transaction; False when it was stored before (nothing is done)."""
        try:
            with Session(self.engine) as session, session.begin():
                if session.get(WrittenBatch, batch.batch_key) is not None:
                    return False
                session.add(WrittenBatch(batch_key=batch.batch_key, written_at=datetime.now(UTC)))
                self._write_hits(session, batch.hits)
                _write_anomalies(session, batch.anomalies)
                for report in batch.runs:
                    _write_run(session, report)
        except (OperationalError, DBAPIError) as exc:
            if isinstance(exc, OperationalError) or exc.connection_invalidated:
                raise StorageUnavailableError(f"database unavailable: {_first_line(exc)}") from exc
            raise StorageError(f"cannot write batch {batch.batch_key}: {_first_line(exc)}") from exc
        except SQLAlchemyError as exc:
            raise StorageError(f"cannot write batch {batch.batch_key}: {_first_line(exc)}") from exc
        return True

    def prune(self, older_than: datetime) -> PruneCounts:
        """Delete what was last seen before `older_than`: hits, whole attacks, anomalies, runs."""
        try:
            with Session(self.engine) as session, session.begin():
                stale_attacks = select(Attack.id).where(Attack.last_seen < older_than)
                hits = _delete(session, delete(Hit).where(Hit.ts < older_than))
                hits += _delete(session, delete(Hit).where(Hit.attack_id.in_(stale_attacks)))
                attacks = _delete(session, delete(Attack).where(Attack.last_seen < older_than))
                anomalies = _delete(session, delete(Anomaly).where(Anomaly.ts < older_than))
                runs = _delete(session, delete(CaptureRun).where(CaptureRun.finished < older_than))
                _delete(session, delete(WrittenBatch).where(WrittenBatch.written_at < older_than))
        except SQLAlchemyError as exc:
            raise StorageError(f"cannot prune: {_first_line(exc)}") from exc
        return PruneCounts(hits=hits, attacks=attacks, anomalies=anomalies, runs=runs)

    def _write_hits(self, session: Session, hits: Sequence[KeyedHit]) -> None:
        rows: list[tuple[Attack, dict[str, Any]]] = []
        open_attacks: dict[str, Attack] = {}
        for keyed in hits:
            hit = keyed.hit
            attack = _attack_for(session, open_attacks, hit)
            if keyed.sampled_out:
                attack.sampled_out += 1
            else:
                rows.append((attack, _hit_row(keyed)))
        if not rows:
            return
        session.flush()  # new attacks get their ids
        for attack, row in rows:
            row["attack_id"] = attack.id
        # One executemany, not an ORM object per hit: the writer's hot path.
        session.execute(insert(Hit), [row for _, row in rows])


def _delete(session: Session, statement: Delete) -> int:
    result = session.execute(statement)
    return cast(CursorResult[Any], result).rowcount


def _attack_for(session: Session, open_attacks: dict[str, Attack], hit: AttackHit) -> Attack:
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
            attack_type=clean_text(hit.attack_type),
            point=clean_text(hit.point),
            target=clean_text(hit.target),
            first_seen=seen,
            last_seen=seen,
            hit_count=0,
            sampled_out=0,
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


def _hit_row(keyed: KeyedHit) -> dict[str, Any]:
    hit = keyed.hit
    return {
        "hit_key": keyed.key,
        "ts": datetime.fromtimestamp(hit.ts, tz=UTC),
        "attack_type": clean_text(hit.attack_type),
        "src_ip": hit.src_ip,
        "src_ip_key": ip_key(hit.src_ip),
        "src_port": hit.src_port,
        "dst_ip": hit.dst_ip,
        "dst_port": hit.dst_port,
        "tunnel": clean_text(hit.tunnel),
        "application": clean_text(hit.application),
        "host": clean_text(hit.host),
        "method": clean_text(hit.method),
        "target": clean_text(hit.target),
        "point": clean_text(hit.point),
        "payload": clean_text(hit.payload),
        "rule": clean_text(hit.rule),
        "reason": clean_text(hit.reason),
        "request_excerpt": clean_text(hit.request_excerpt),
        "response_status": hit.response_status,
    }


def _write_anomalies(session: Session, anomalies: Sequence[KeyedAnomaly]) -> None:
    if not anomalies:
        return
    rows = []
    for keyed in anomalies:
        sighting = keyed.sighting
        rows.append(
            {
                "anomaly_key": keyed.key,
                "ts": datetime.fromtimestamp(sighting.ts, tz=UTC),
                "name": clean_text(sighting.name),
                "detail": clean_text(sighting.detail),
                "src_ip": sighting.src_ip,
                "src_port": sighting.src_port,
                "dst_ip": sighting.dst_ip,
                "dst_port": sighting.dst_port,
                "tunnel": clean_text(sighting.tunnel),
                "method": None if sighting.method is None else clean_text(sighting.method),
                "target": None if sighting.target is None else clean_text(sighting.target),
            }
        )
    session.execute(insert(Anomaly), rows)


def _write_run(session: Session, report: RunReport) -> None:
    run = session.scalars(select(CaptureRun).where(CaptureRun.run_key == report.run_key)).first()
    if run is None:
        run = CaptureRun(run_key=report.run_key)
        session.add(run)
    run.source = clean_text(report.source)
    run.started = datetime.fromtimestamp(report.started, tz=UTC)
    run.finished = datetime.fromtimestamp(report.finished, tz=UTC)
    run.status = report.status
    run.packets = report.packets
    run.requests = report.requests
    run.hits = report.hits
    run.anomalies = report.anomalies
    run.drops = json.dumps(report.drops, sort_keys=True)
    run.errors = json.dumps([clean_text(error) for error in report.errors])


def clean_text(text: str) -> str:
    """`text` as a database can hold it: NUL and lone surrogates written as escapes.

    PostgreSQL text cannot hold NUL and no UTF-8 codec takes a lone surrogate; attackers
    send both. The escape keeps the evidence visible instead of failing the whole batch.
    """
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def ip_key(address: str) -> str:
    """An address as its IP version and 32 hex digits, so that a CIDR block is a range of keys.

    The version comes first: an IPv6 block (even ::/0) holds no IPv4 source, as on the wire.
    """
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return "x" * 33  # not an address: sorts after every real one, matches no block
    return f"{parsed.version}{int(parsed):032x}"


def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")  # a query running beside the writer waits, not fails
    cursor.close()


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


def redacted(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except SQLAlchemyError:
        return "<unparseable URL>"
