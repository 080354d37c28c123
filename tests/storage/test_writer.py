"""The batched writer: everything recorded is stored once, on time, or kept in the journal."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from storage import AnomalySighting, AttackStore, BatchedWriter, HitFilter, HitQueries, HitSampler, Journal, WriteBatch
from storage.batches import KeyedHit
from tests.storage.hits import HIT, T0, hit

EVERYTHING = HitFilter()


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal(tmp_path / "journal.jsonl")


def stored_ports(store: AttackStore) -> list[int]:
    return sorted(h.src_port for h in HitQueries(store.engine).list_hits(EVERYTHING, limit=None))


def test_close_stores_everything_recorded_in_batches(store: AttackStore, journal: Journal) -> None:
    writer = BatchedWriter(store, journal=journal, batch_size=7)
    for n in range(50):
        writer.record([hit(src_port=n, ts=T0 + n)])
    writer.record_anomalies([AnomalySighting(ts=T0, name="tcp_gap", src_ip="192.0.2.1", src_port=1, dst_ip="192.0.2.2",
                                             dst_port=80)])  # fmt: skip
    writer.close()
    assert stored_ports(store) == list(range(50))
    assert (writer.stats.written, writer.stats.journalled) == (51, 0)
    assert not journal.pending()


def test_a_quiet_stream_is_written_after_the_flush_interval_without_closing(
    store: AttackStore, journal: Journal
) -> None:
    writer = BatchedWriter(store, journal=journal, batch_size=1000, flush_interval=0.05)
    writer.record([HIT])
    deadline = time.monotonic() + 5
    while not stored_ports(store) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert stored_ports(store) == [HIT.src_port]
    writer.close()


def test_a_journal_left_by_an_earlier_run_is_written_once(store: AttackStore, journal: Journal) -> None:
    # The earlier run wrote batch b1, lost the acknowledgement and journalled it; b2 never arrived.
    b1 = WriteBatch(batch_key="old-b1", hits=(KeyedHit(key="old-h1", hit=hit(src_port=1)),))
    b2 = WriteBatch(batch_key="old-b2", hits=(KeyedHit(key="old-h2", hit=hit(src_port=2)),))
    store.write(b1)
    journal.append(b1)
    journal.append(b2)
    writer = BatchedWriter(store, journal=journal)
    writer.record([hit(src_port=3)])
    writer.close()
    assert stored_ports(store) == [1, 2, 3]
    assert writer.stats.replayed_duplicates == 1 and not journal.pending()


def test_what_the_database_refuses_is_set_aside_not_dropped(store: AttackStore, journal: Journal) -> None:
    store.write(WriteBatch(batch_key="b0", hits=(KeyedHit(key="clash", hit=HIT),)))
    journal.append(WriteBatch(batch_key="b1", hits=(KeyedHit(key="clash", hit=HIT),)))
    writer = BatchedWriter(store, journal=journal)
    writer.close()
    assert writer.stats.rejected == 1
    (entry,) = [json.loads(line) for line in journal.rejected_path.read_text().splitlines()]
    assert "b1" in entry["entry"] and "cannot write batch b1" in entry["reason"]


def test_a_torn_journal_line_is_set_aside(store: AttackStore, journal: Journal) -> None:
    journal.append(WriteBatch(batch_key="b1", hits=(KeyedHit(key="h1", hit=HIT),)))
    with journal.path.open("a") as out:
        out.write('{"format": 1, "batch_key": "b2", "hits": [{"ke')  # the crash came mid-write
    writer = BatchedWriter(store, journal=journal)
    writer.close()
    assert stored_ports(store) == [HIT.src_port]
    assert "unreadable journal line" in journal.rejected_path.read_text()


def test_sampling_keeps_the_first_n_identical_hits_an_hour_and_counts_the_rest(
    store: AttackStore, journal: Journal
) -> None:
    writer = BatchedWriter(store, journal=journal, sampler=HitSampler(2))
    writer.record([hit(ts=T0 + n) for n in range(10)])  # one scanner, one payload
    writer.record([hit(ts=T0 + 20, src_ip="192.0.2.99")])  # another source: another kind
    writer.record([hit(ts=T0 + 3700), hit(ts=T0 + 3701), hit(ts=T0 + 3702)])  # the next hour
    writer.close()
    queries = HitQueries(store.engine)
    kept = sorted(h.time.timestamp() - T0 for h in queries.list_hits(EVERYTHING, limit=None))
    assert kept == [0, 1, 20, 3700, 3701]
    # T0+3700 is more than an hour after T0+20: a new attack.
    assert [(a.hits, a.sampled_out) for a in queries.list_attacks(EVERYTHING, limit=None)] == [(3, 1), (11, 8)]
    assert writer.stats.sampled_out == 9
