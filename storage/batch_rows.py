"""The rows of one write batch, stored by Core statements on the batch's connection.

`AttackStore.write` (storage.store) opens the transaction and calls these in order: claim the
batch key, then hits (grouped into attacks), anomalies and run reports. Core and a few
driver-level statements, not the ORM's unit of work: a replay's batches hold hundreds of
attacks, and an ORM object per attack cost more than all the inserts. SQLite and PostgreSQL.
"""

from __future__ import annotations

import hashlib
import json
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    Connection,
    Table,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from oob_analyzer.detection.events import AttackHit
from storage.batches import KeyedAnomaly, KeyedHit, RunReport
from storage.errors import StorageError
from storage.models import Anomaly, Attack, CaptureRun, Hit, WrittenBatch

__all__ = ["claim_batch", "clean_text", "ip_key", "write_anomalies", "write_hits", "write_run"]

# A hit more than this long after its group's last hit starts a new attack.
ATTACK_QUIET_PERIOD = timedelta(hours=1)

_ATTACKS = cast(Table, Attack.__table__)
_ANOMALIES = cast(Table, Anomaly.__table__)
_RUNS = cast(Table, CaptureRun.__table__)
_WRITTEN_BATCHES = cast(Table, WrittenBatch.__table__)


def claim_batch(connection: Connection, batch_key: str) -> bool:
    """Record the batch as written, in its own transaction; False when it was written before.

    One `INSERT .. ON CONFLICT DO NOTHING` instead of a read then an insert: one round trip,
    and a second writer of the same batch waits for the first and then skips it.
    """
    statement = _CLAIM_BATCH.get(connection.dialect.name)
    if statement is None:  # a database without ON CONFLICT: read, then insert
        found = connection.execute(
            select(_WRITTEN_BATCHES.c.batch_key).where(_WRITTEN_BATCHES.c.batch_key == batch_key)
        )
        if found.first() is not None:
            return False
        statement = insert(_WRITTEN_BATCHES).execution_options(preserve_rowcount=True)
    result = connection.execute(statement, {"batch_key": batch_key, "written_at": datetime.now(UTC)})
    return result.rowcount == 1


_CLAIM_BATCH = {
    dialect: module.insert(_WRITTEN_BATCHES)
    .on_conflict_do_nothing(index_elements=["batch_key"])
    .execution_options(preserve_rowcount=True)  # SQLAlchemy keeps an INSERT's rowcount only if asked
    for dialect, module in (("postgresql", postgresql), ("sqlite", sqlite))
}


def write_hits(connection: Connection, hits: Sequence[KeyedHit]) -> None:
    if not hits:
        return
    rows: list[tuple[_AttackTally, tuple[Any, ...]]] = []
    group_keys = [_group_key(keyed.hit) for keyed in hits]
    groups = _AttackGroups(connection, set(group_keys))
    for keyed, group_key in zip(hits, group_keys, strict=True):
        seen = datetime.fromtimestamp(keyed.hit.ts, tz=UTC)
        attack = groups.attack_for(keyed.hit, group_key, seen, sampled_out=keyed.sampled_out)
        if not keyed.sampled_out:
            rows.append((attack, _hit_row(keyed, seen)))
    groups.apply_counts()  # attacks are written, new ones get their ids
    if rows:
        _insert_hits(connection, [(*row, attack.id) for attack, row in rows])


@dataclass(slots=True, kw_only=True)
class _AttackTally:
    """An attack that a batch adds hits to: stored before (`stored` holds its times as read) or new."""

    id: int | None
    group_key: str
    first_seen: datetime
    last_seen: datetime
    stored: tuple[datetime, datetime] | None = None
    first_hit: AttackHit | None = None  # of a new attack: its type, point and target
    hits: int = 0
    sampled_out: int = 0


class _AttackGroups:
    """The attack each hit of a batch belongs to: the group's latest, or a new one after a quiet hour.

    Counters are tallied here and written once per batch, in a few executemany statements:
    the new attacks inserted (their ids returned in order), the stored ones added to.
    """

    def __init__(self, connection: Connection, group_keys: set[str]) -> None:
        self.connection = connection
        self.current: dict[str, _AttackTally] = {
            key: _AttackTally(id=id_, group_key=key, first_seen=first, last_seen=last, stored=(first, last))
            for id_, key, first, last in _latest_attacks(connection, group_keys)
        }
        self.stored = list(self.current.values())
        self.new: list[_AttackTally] = []

    def attack_for(self, hit: AttackHit, key: str, seen: datetime, *, sampled_out: bool) -> _AttackTally:
        attack = self.current.get(key)
        if attack is None or seen - attack.last_seen > ATTACK_QUIET_PERIOD:
            attack = _AttackTally(id=None, group_key=key, first_seen=seen, last_seen=seen, first_hit=hit)
            self.current[key] = attack
            self.new.append(attack)
        attack.hits += 1
        attack.sampled_out += sampled_out
        if seen < attack.first_seen:
            attack.first_seen = seen
        elif seen > attack.last_seen:
            attack.last_seen = seen
        return attack

    def apply_counts(self) -> None:
        if self.new:
            ids = _insert_attacks(self.connection, [_new_attack_row(attack) for attack in self.new])
            for attack, id_ in zip(self.new, ids, strict=True):
                attack.id = id_
        # Added in SQL (`SET hit_count = hit_count + n`), not set to what was read: a prune's
        # decrement committed in between is kept. A time is set only when it changed.
        updates: dict[tuple[bool, bool], list[tuple[Any, ...]]] = {}
        for attack in self.stored:
            if attack.hits and attack.stored is not None:
                first, last = attack.first_seen != attack.stored[0], attack.last_seen != attack.stored[1]
                times = (attack.first_seen,) * first + (attack.last_seen,) * last
                updates.setdefault((first, last), []).append((attack.hits, attack.sampled_out, *times, attack.id))
        for (first, last), rows in updates.items():
            if _add_to_attacks(self.connection, rows, first=first, last=last) != len(rows):
                raise StorageError("an attack was deleted (pruned?) while hits were added to it")


def _latest_attacks(connection: Connection, group_keys: set[str]) -> list[tuple[Any, ...]]:
    """The latest attack of each group: id, group key, first and last seen.

    Driver-level: SQLAlchemy's expansion of an IN of hundreds of keys, and its result
    handling, cost more than the query. The times still go through `UtcDateTime`.
    """
    dialect = connection.dialect
    to_python = _ATTACKS.c.last_seen.type.dialect_impl(dialect).result_processor(dialect, None)
    marks = ", ".join(["?" if dialect.paramstyle == "qmark" else "%s"] * len(group_keys))
    sql = (
        "SELECT attacks.id, attacks.group_key, attacks.first_seen, attacks.last_seen FROM attacks JOIN"
        f" (SELECT group_key, max(last_seen) AS last_seen FROM attacks WHERE group_key IN ({marks})"
        " GROUP BY group_key) AS latest"
        " ON attacks.group_key = latest.group_key AND attacks.last_seen = latest.last_seen"
    )
    rows = connection.exec_driver_sql(sql, tuple(group_keys)).all()
    if to_python is None:
        return [tuple(row) for row in rows]
    return [(id_, key, to_python(first), to_python(last)) for id_, key, first, last in rows]


def _new_attack_row(attack: _AttackTally) -> dict[str, Any]:
    hit = attack.first_hit
    assert hit is not None
    return {
        "group_key": attack.group_key,
        "attack_type": clean_text(hit.attack_type),
        "point": clean_text(hit.point),
        "target": clean_text(hit.target),
        "first_seen": attack.first_seen,
        "last_seen": attack.last_seen,
        "hit_count": attack.hits,
        "sampled_out": attack.sampled_out,
    }


def _insert_attacks(connection: Connection, rows: list[dict[str, Any]]) -> list[int]:
    """Insert attacks, returning their ids in the order of `rows`.

    SQLite: a driver-level insert per row, its id from the cursor. SQLAlchemy sends one
    statement per row there too (SQLite does not promise RETURNING's order), at three times
    the cost, and this needs no RETURNING (SQLite < 3.35 has none). Elsewhere one executemany
    (PostgreSQL batches it into multi-row INSERTs and sorts the ids it returns).
    """
    if connection.dialect.name != "sqlite":
        return list(connection.execute(_INSERT_ATTACKS, rows).scalars())
    to_db = _ATTACKS.c.first_seen.type.dialect_impl(connection.dialect).bind_processor(connection.dialect)
    cursor = connection.connection.cursor()
    ids = []
    for row in rows:
        values = [*row.values()]
        if to_db is not None:
            values[4:6] = to_db(values[4]), to_db(values[5])
        cursor.execute(_INSERT_ATTACK_SQL, values)
        ids.append(cursor.lastrowid)
    cursor.close()
    return ids


_INSERT_ATTACKS = insert(_ATTACKS).returning(_ATTACKS.c.id, sort_by_parameter_order=True)
# The columns in the order `_new_attack_row` gives them.
_INSERT_ATTACK_SQL = (
    "INSERT INTO attacks (group_key, attack_type, point, target, first_seen, last_seen, hit_count, sampled_out)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


def _add_to_attacks(connection: Connection, rows: list[tuple[Any, ...]], *, first: bool, last: bool) -> int:
    """Add hits to stored attacks (and set their first or last time); the number of rows updated.

    (hits, sampled out, [first seen], [last seen], id) per row, as one driver-level executemany
    (the Core one's per-row parameter handling cost as much again as the hits' insert).
    """
    dialect = connection.dialect
    to_db = _ATTACKS.c.first_seen.type.dialect_impl(dialect).bind_processor(dialect)
    if to_db is not None and (first or last):
        rows = [(hits, sampled, *map(to_db, times), id_) for hits, sampled, *times, id_ in rows]
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    assignments = [f"hit_count = hit_count + {mark}", f"sampled_out = sampled_out + {mark}"]
    if first:
        assignments.append(f"first_seen = {mark}")
    if last:
        assignments.append(f"last_seen = {mark}")
    sql = f"UPDATE attacks SET {', '.join(assignments)} WHERE id = {mark}"
    return connection.exec_driver_sql(sql, rows).rowcount


def _group_key(hit: AttackHit) -> str:
    text = "\x00".join((hit.attack_type, hit.point, hit.target))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


# The columns of a hit row, in the order `_hit_row` gives them, then the attack's id.
_HIT_COLUMNS = (
    "hit_key", "ts", "attack_type", "src_ip", "src_ip_key", "src_port", "dst_ip", "dst_port", "tunnel",
    "application", "host", "method", "target", "point", "payload", "rule", "reason", "request_excerpt",
    "response_status", "attack_id",
)  # fmt: skip


def _hit_row(keyed: KeyedHit, seen: datetime) -> tuple[Any, ...]:
    hit = keyed.hit
    return (
        keyed.key,
        seen,
        clean_text(hit.attack_type),
        hit.src_ip,
        ip_key(hit.src_ip),
        hit.src_port,
        hit.dst_ip,
        hit.dst_port,
        clean_text(hit.tunnel),
        clean_text(hit.application),
        clean_text(hit.host),
        clean_text(hit.method),
        clean_text(hit.target),
        clean_text(hit.point),
        clean_text(hit.payload),
        clean_text(hit.rule),
        clean_text(hit.reason),
        clean_text(hit.request_excerpt),
        hit.response_status,
    )


def _insert_hits(connection: Connection, rows: list[tuple[Any, ...]]) -> None:
    """One driver-level executemany: SQLAlchemy's per-row parameter handling cost more than
    the database's insert (measured with benchmarks/storage_writer.py). The time column still
    goes through `UtcDateTime`'s own bind processing, so it is stored exactly as elsewhere.
    """
    dialect = connection.dialect
    to_db = Hit.__table__.c.ts.type.dialect_impl(dialect).bind_processor(dialect)
    if to_db is not None:
        rows = [(row[0], to_db(row[1]), *row[2:]) for row in rows]
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    columns = ", ".join(_HIT_COLUMNS)
    marks = ", ".join([mark] * len(_HIT_COLUMNS))
    connection.exec_driver_sql(f"INSERT INTO hits ({columns}) VALUES ({marks})", rows)


def write_anomalies(connection: Connection, anomalies: Sequence[KeyedAnomaly]) -> None:
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
                "src_ip_key": ip_key(sighting.src_ip),
                "src_port": sighting.src_port,
                "dst_ip": sighting.dst_ip,
                "dst_port": sighting.dst_port,
                "tunnel": clean_text(sighting.tunnel),
                "method": None if sighting.method is None else clean_text(sighting.method),
                "target": None if sighting.target is None else clean_text(sighting.target),
            }
        )
    connection.execute(insert(_ANOMALIES), rows)


def write_run(connection: Connection, report: RunReport) -> None:
    """Store a run's report, or rewrite the one stored under its key."""
    values = {
        "source": clean_text(report.source),
        "started": datetime.fromtimestamp(report.started, tz=UTC),
        "finished": datetime.fromtimestamp(report.finished, tz=UTC),
        "status": report.status,
        "packets": report.packets,
        "requests": report.requests,
        "hits": report.hits,
        "anomalies": report.anomalies,
        "drops": json.dumps(report.drops, sort_keys=True),
        "errors": json.dumps([clean_text(error) for error in report.errors]),
    }
    rewritten = connection.execute(update(_RUNS).where(_RUNS.c.run_key == report.run_key).values(values))
    if rewritten.rowcount == 0:
        connection.execute(insert(_RUNS).values(run_key=report.run_key, **values))


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
    inet_pton rather than `ipaddress`: this runs for every hit and is five times faster.
    """
    try:
        return "4" + socket.inet_pton(socket.AF_INET, address).hex().zfill(32)
    except OSError:
        pass
    try:
        return "6" + socket.inet_pton(socket.AF_INET6, address).hex()
    except OSError:
        return "x" * 33  # not an address: sorts after every real one, matches no block
