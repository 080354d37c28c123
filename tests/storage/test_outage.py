"""The database goes away in the middle of a replay and comes back: no hit lost, none doubled.

The outage is real: PostgreSQL is reached through a TCP proxy that the test cuts (every
connection dropped, new ones refused) and restores, while the real pipeline replays
attack traffic into the batched writer.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from capture import RawPacket
from oob_analyzer.detection import DetectionEngine, default_detectors
from oob_analyzer.pipeline import RunSummary, analyze_packets
from oob_analyzer.response_wait import HitsAwaitingResponse
from storage import Attack, AttackStore, BatchedWriter, Hit, Journal
from tests.builders import ethernet_frame, ipv4_packet, raw_packet, tcp_header
from tests.databases import postgres_schema
from tests.storage.hits import hit
from tests.storage.tcp_proxy import CuttableTcpProxy
from tests.storage.throwaway_postgres import throwaway_postgres

ATTACKS = 600
ATTACK_REQUEST = b"GET /products?id=1%27%20OR%20%271%27%3D%271 HTTP/1.1\r\nHost: shop.example.com\r\n\r\n"


def attack_packets(proxy: CuttableTcpProxy, writer: BatchedWriter) -> Iterator[RawPacket]:
    """One attack request per connection; the database is cut a third of the way through."""
    for n in range(ATTACKS):
        if n == ATTACKS // 3:
            writer.flush()  # the first third is in the database before it goes away
            proxy.cut()
        if n == 2 * ATTACKS // 3:
            _wait_for(lambda: writer.stats.journalled > 0, "the writer to journal during the outage")
            proxy.restore()
        frame = ethernet_frame(ipv4_packet(tcp_header(sport=10000 + n) + ATTACK_REQUEST))
        yield raw_packet(frame, ts=1_793_613_600.0 + n / 100)


@dataclass(frozen=True)
class ProxiedPostgres:
    direct_url: str  # for the test's own checks
    proxied_url: str  # for the code under test
    proxy: CuttableTcpProxy


@pytest.fixture
def postgres() -> Iterator[ProxiedPostgres]:
    with postgres_schema() as direct_url:
        url = make_url(direct_url)
        proxy = CuttableTcpProxy(url.host or "127.0.0.1", url.port or 5432)
        proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        try:
            yield ProxiedPostgres(direct_url=direct_url, proxied_url=proxied, proxy=proxy)
        finally:
            proxy.close()


def test_a_database_outage_mid_replay_loses_and_doubles_nothing(postgres: ProxiedPostgres, tmp_path: Path) -> None:
    store = AttackStore.open(postgres.proxied_url)
    journal = Journal(tmp_path / "journal.jsonl")
    writer = BatchedWriter(store, journal=journal, batch_size=50, flush_interval=0.05, retry_interval=0.1)
    summary = RunSummary()
    engine = DetectionEngine(default_detectors())
    # No response is in this traffic: its hits go to the writer at once instead of waiting
    # for one (5 s of capture time, which here would outlast the outage), as before.
    immediately = HitsAwaitingResponse(max_wait=0.0)
    analyze_packets(
        attack_packets(postgres.proxy, writer), engine=engine, sink=writer, summary=summary, awaiting=immediately
    )
    writer.close()
    store.close()

    assert summary.hits == ATTACKS
    assert 0 < writer.stats.journalled <= 2 * ATTACKS // 3 and not journal.pending()
    check = create_engine(postgres.direct_url)
    with Session(check) as session:
        ports = session.scalars(select(Hit.src_port)).all()
        keys = session.scalar(select(func.count(func.distinct(Hit.hit_key))))
        attack_counts = session.scalars(select(Attack.hit_count)).all()
    check.dispose()
    assert sorted(ports) == [10000 + n for n in range(ATTACKS)]  # every hit, each once
    assert keys == ATTACKS
    assert attack_counts == [ATTACKS]


def _wait_for(condition: object, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_hits_journalled_when_a_run_ends_are_written_by_the_next_run(postgres: ProxiedPostgres, tmp_path: Path) -> None:
    journal_path = tmp_path / "journal.jsonl"
    store = AttackStore.open(postgres.proxied_url)
    postgres.proxy.cut()  # the database is away for the whole of the first run
    first = BatchedWriter(store, journal=Journal(journal_path), retry_interval=0.05)
    first.record([hit(src_port=port) for port in range(30)])
    first.close()
    store.close()
    assert Journal(journal_path).pending() and first.stats.journalled == 30

    store = AttackStore.open(postgres.direct_url)
    second = BatchedWriter(store, journal=Journal(journal_path))
    second.record([hit(src_port=30)])
    second.close()
    with Session(store.engine) as session:
        assert sorted(session.scalars(select(Hit.src_port))) == list(range(31))
    store.close()
    assert not Journal(journal_path).pending()


def test_a_postgres_server_stopped_and_started_mid_run_loses_and_doubles_nothing(tmp_path: Path) -> None:
    with throwaway_postgres() as server:
        store = AttackStore.open(server.url)
        journal = Journal(tmp_path / "journal.jsonl")
        writer = BatchedWriter(store, journal=journal, batch_size=50, flush_interval=0.05, retry_interval=0.1)
        writer.record([hit(src_port=port) for port in range(0, 100)])
        writer.flush()
        server.stop()  # a real shutdown: the server process is gone
        writer.record([hit(src_port=port) for port in range(100, 200)])
        writer.flush()
        assert writer.database_down and journal.pending()
        server.start()
        writer.record([hit(src_port=port) for port in range(200, 300)])
        writer.close()
        with Session(store.engine) as session:
            ports = session.scalars(select(Hit.src_port)).all()
            (attack_count,) = session.scalars(select(Attack.hit_count)).all()
        store.close()
        assert sorted(ports) == list(range(300))
        assert attack_count == 300 and not journal.pending()
