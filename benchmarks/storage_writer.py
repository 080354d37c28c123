"""Writer throughput: hits/s through `BatchedWriter` into SQLite and PostgreSQL.

Goal: at least 20,000 hits/s into SQLite. The peer, measured in the same run on the same
rows, is the database's own floor: a plain DB-API `executemany` of the hit rows, in batches
of the writer's size, into a table of the same columns and the same indexes (unique hit
key, time, source, type), with no grouping into attacks, no batch keys and no thread. The ratio says what the
writer's grouping into attacks, idempotency keys and batching cost on top.

Two shapes of traffic: "few attacks" (100 attacks, batches of the writer's 5,000 items), and
"many attacks", as a replay of the full-pipeline capture makes them (1,546 hits in 639 attacks,
cut into batches of a few hundred by the flush interval): about 2.5 hits per attack, batches of 500.

    .venv/bin/python benchmarks/storage_writer.py [--hits 100000] [--postgres URL | --no-postgres]
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from oob_analyzer.detection import AttackHit
from storage import AttackStore, BatchedWriter, Journal
from storage.batch_rows import ip_key

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
T0 = 1_793_613_600.0
BATCH = 5000  # the writer's default batch size


def make_hits(count: int) -> list[AttackHit]:
    rng = random.Random(6)
    targets = [f"/api/v1/items/{n}?id=1%27" for n in range(50)]
    return [
        AttackHit(
            ts=T0 + n / 100,
            src_ip=f"192.0.{rng.randrange(256)}.{rng.randrange(256)}",
            src_port=1024 + n % 60000,
            dst_ip="198.51.100.20",
            dst_port=80,
            host="shop.example.com",
            method="GET",
            target=targets[n % len(targets)],
            attack_type="sqli" if n % 3 else "xss",
            point="query.id",
            payload="1' OR '1'='1",
            rule="libinjection-sqli",
            reason="SQL fingerprint s&sos",
            request_excerpt="GET /api/v1/items HTTP/1.1\r\nHost: shop.example.com\r\nUser-Agent: sqlmap/1.7\r\n\r\n",
        )
        for n in range(count)
    ]


def writer_rate(url: str, hits: list[AttackHit], journal_dir: Path, *, batch_size: int = BATCH) -> float:
    store = AttackStore.open(url)
    journal = Journal(journal_dir / f"journal-{uuid.uuid4().hex}.jsonl")
    writer = BatchedWriter(store, journal=journal, batch_size=batch_size)
    started = time.perf_counter()
    for start in range(0, len(hits), 20):  # the pipeline hands over a few hits at a time
        writer.record(hits[start : start + 20])
    writer.close()
    elapsed = time.perf_counter() - started
    store.close()
    if writer.stats.written != len(hits) or writer.stats.journalled:
        raise SystemExit(f"the writer did not store every hit directly: {writer.stats}")
    return len(hits) / elapsed


_PEER_COLUMNS = "hit_key, ts, attack_type, src_ip, src_ip_key, src_port, dst_ip, dst_port, host, method, target, point, payload, rule, reason, request_excerpt"  # noqa: E501


MANY_ATTACKS_BATCH = 500


def many_attacks(hits: list[AttackHit]) -> list[AttackHit]:
    """The same hits spread over about one attack per 2.5 hits: a target per five hits, two types each."""
    targets = max(1, len(hits) // 5)
    return [replace(hit, target=f"/api/v2/items/{n % targets}?id=1%27") for n, hit in enumerate(hits)]


def _peer_rows(hits: list[AttackHit]) -> list[tuple[object, ...]]:
    return [
        (f"peer-h{n}", h.ts, h.attack_type, h.src_ip, ip_key(h.src_ip), h.src_port, h.dst_ip, h.dst_port, h.host,
         h.method, h.target, h.point, h.payload, h.rule, h.reason, h.request_excerpt)
        for n, h in enumerate(hits)
    ]  # fmt: skip


def _create_peer_indexes(execute: Callable[[str], object]) -> None:
    execute("CREATE UNIQUE INDEX peer_hit_key ON peer (hit_key)")
    execute("CREATE INDEX peer_ts ON peer (ts)")
    execute("CREATE INDEX peer_src ON peer (src_ip_key, ts)")
    execute("CREATE INDEX peer_type ON peer (attack_type, ts)")


def sqlite_peer_rate(path: Path, hits: list[AttackHit]) -> float:
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute(f"CREATE TABLE peer (id INTEGER PRIMARY KEY, {_PEER_COLUMNS})")
    _create_peer_indexes(connection.execute)
    started = time.perf_counter()
    rows = _peer_rows(hits)
    marks = ", ".join("?" * 16)
    for start in range(0, len(rows), BATCH):
        with connection:
            connection.executemany(f"INSERT INTO peer ({_PEER_COLUMNS}) VALUES ({marks})", rows[start : start + BATCH])
    elapsed = time.perf_counter() - started
    connection.close()
    return len(hits) / elapsed


def postgres_rates(base_url: str, hits: list[AttackHit], journal_dir: Path) -> tuple[float, float, float]:
    schema = f"oob6_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = f"{base_url}{'&' if '?' in base_url else '?'}options=-csearch_path%3D{schema}"
        rate = writer_rate(url, hits, journal_dir)
        many = writer_rate(url, many_attacks(hits), journal_dir, batch_size=MANY_ATTACKS_BATCH)
        engine = create_engine(url)
        columns = ", ".join(f"{c.strip()} text" for c in _PEER_COLUMNS.split(","))
        with engine.begin() as connection:
            connection.exec_driver_sql(f"CREATE TABLE peer (id serial PRIMARY KEY, {columns})")
            _create_peer_indexes(connection.exec_driver_sql)
        rows = [tuple(str(v) for v in row) for row in _peer_rows(hits)]
        marks = ", ".join(["%s"] * 16)
        started = time.perf_counter()
        raw = engine.raw_connection()
        cursor = raw.cursor()
        for start in range(0, len(rows), BATCH):
            cursor.executemany(f"INSERT INTO peer ({_PEER_COLUMNS}) VALUES ({marks})", rows[start : start + BATCH])
            raw.commit()
        peer = len(rows) / (time.perf_counter() - started)
        raw.close()
        engine.dispose()
        return rate, many, peer
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hits", type=int, default=100_000)
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    hits = make_hits(args.hits)
    with tempfile.TemporaryDirectory(prefix="oob6-bench-") as tmp:
        work = Path(tmp)
        rate = writer_rate(f"sqlite:///{work / 'writer.db'}", hits, work)
        peer = sqlite_peer_rate(work / "peer.db", hits)
        many = writer_rate(
            f"sqlite:///{work / 'writer-many.db'}", many_attacks(hits), work, batch_size=MANY_ATTACKS_BATCH
        )
        verdict = "meets" if rate >= 20_000 else "MISSES"
        print(f"sqlite     writer {rate:>9,.0f} hits/s   raw executemany {peer:>9,.0f} rows/s   "
              f"ratio {rate / peer:.2f}   ({verdict} the 20,000 hits/s goal)")  # fmt: skip
        print(f"sqlite     writer {many:>9,.0f} hits/s   with many attacks in batches of {MANY_ATTACKS_BATCH}")
        if not args.no_postgres:
            pg_rate, pg_many, pg_peer = postgres_rates(args.postgres, hits, work)
            print(f"postgresql writer {pg_rate:>9,.0f} hits/s   raw executemany {pg_peer:>9,.0f} rows/s   "
                  f"ratio {pg_rate / pg_peer:.2f}")  # fmt: skip
            print(f"postgresql writer {pg_many:>9,.0f} hits/s   with many attacks in batches of {MANY_ATTACKS_BATCH}")


if __name__ == "__main__":
    main()
