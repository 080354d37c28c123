"""The store on SQLite and PostgreSQL: what goes in reads back whole, grouped, once."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage import (
    Anomaly,
    AnomalySighting,
    AttackStore,
    CaptureRun,
    HitFilter,
    HitQueries,
    RunReport,
    StorageError,
    WriteBatch,
)
from storage.batches import KeyedHit
from storage.store import PruneCounts
from tests.databases import postgres_schema
from tests.storage.hits import HIT, T0, hit

EVERYTHING = HitFilter()


@pytest.fixture
def queries(store: AttackStore) -> HitQueries:
    return HitQueries(store.engine)


def test_a_hit_reads_back_whole_with_its_time_in_utc(store: AttackStore, queries: HitQueries) -> None:
    store.record([HIT])
    (record,) = queries.list_hits(EVERYTHING, limit=10)
    assert record.time == datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
    assert record.as_dict() | {"id": 0, "attack_id": 0} == {
        "id": 0,
        "attack_id": 0,
        "time": "2026-11-02T10:00:00+00:00",
        "type": "sqli",
        "src_ip": "192.0.2.66",
        "src_port": 40001,
        "dst_ip": "198.51.100.20",
        "dst_port": 80,
        "tunnel": "vxlan:198.18.0.5>198.18.0.99:7",
        "application": "shop",
        "host": "shop.example.com",
        "method": "GET",
        "target": "/products?id=1%27",
        "point": "query.id",
        "payload": "1'",
        "rule": "libinjection-sqli",
        "reason": "SQL fingerprint s",
        "request_excerpt": "GET /products?id=1%27 HTTP/1.1\nHost: shop.example.com",
        "response_status": 500,
    }


def test_attacker_bytes_that_no_database_text_holds_are_kept_escaped(store: AttackStore, queries: HitQueries) -> None:
    # NUL is refused by PostgreSQL text, a lone surrogate by every UTF-8 codec.
    store.record([hit(payload="1'\x00--", target="/x?\udcff=1", request_excerpt="GET /\x00")])
    (record,) = queries.list_hits(EVERYTHING, limit=1)
    assert (record.payload, record.target, record.request_excerpt) == ("1'\\x00--", "/x?\\udcff=1", "GET /\\x00")


def test_hits_of_one_type_point_and_target_group_into_one_attack(store: AttackStore, queries: HitQueries) -> None:
    store.record([HIT, hit(ts=T0 + 60, src_ip="192.0.2.67")])
    store.record([hit(point="query.name")])
    attacks = queries.list_attacks(EVERYTHING, limit=10)
    assert [(a.point, a.hits, a.src_ip) for a in attacks] == [
        ("query.id", 2, "192.0.2.67"),
        ("query.name", 1, "192.0.2.66"),
    ]
    assert (attacks[0].first_seen.timestamp(), attacks[0].last_seen.timestamp()) == (T0, T0 + 60)


def test_a_hit_more_than_an_hour_after_the_last_starts_a_new_attack(store: AttackStore, queries: HitQueries) -> None:
    store.record([HIT, hit(ts=T0 + 3600)])
    store.record([hit(ts=T0 + 7201)])
    assert sorted(a.hits for a in queries.list_attacks(EVERYTHING, limit=10)) == [1, 2]


def test_newest_first_and_limited(store: AttackStore, queries: HitQueries) -> None:
    store.record([hit(ts=T0 + i, target=f"/t{i}") for i in range(5)])
    assert [h.target for h in queries.list_hits(EVERYTHING, limit=2)] == ["/t4", "/t3"]
    assert [a.target for a in queries.list_attacks(EVERYTHING, limit=2)] == ["/t4", "/t3"]


def test_a_batch_written_twice_is_stored_once(store: AttackStore, queries: HitQueries) -> None:
    batch = WriteBatch(batch_key="run1-b1", hits=(KeyedHit(key="run1-h1", hit=HIT), KeyedHit(key="run1-h2", hit=HIT)))
    assert store.write(batch) is True
    assert store.write(batch) is False  # the acknowledgement was lost; the journal replays it
    assert len(queries.list_hits(EVERYTHING, limit=None)) == 2
    assert [a.hits for a in queries.list_attacks(EVERYTHING, limit=None)] == [2]


def test_a_hit_key_is_unique_even_across_batches(store: AttackStore) -> None:
    store.write(WriteBatch(batch_key="b1", hits=(KeyedHit(key="h1", hit=HIT),)))
    with pytest.raises(StorageError, match="cannot write batch b2"):
        store.write(WriteBatch(batch_key="b2", hits=(KeyedHit(key="h1", hit=HIT),)))


def test_sampled_out_hits_count_in_their_attack_without_a_row(store: AttackStore, queries: HitQueries) -> None:
    keyed = [KeyedHit(key=f"h{i}", hit=hit(ts=T0 + i), sampled_out=i >= 2) for i in range(5)]
    store.write(WriteBatch(batch_key="b1", hits=tuple(keyed)))
    (attack,) = queries.list_attacks(EVERYTHING, limit=None)
    assert (attack.hits, attack.sampled_out) == (5, 3)
    assert len(queries.list_hits(EVERYTHING, limit=None)) == 2


def test_anomalies_are_stored_with_flow_time_and_request(store: AttackStore) -> None:
    sighting = AnomalySighting(
        ts=T0, name="content_length_and_chunked", src_ip="192.0.2.66", src_port=40001, dst_ip="198.51.100.20",
        dst_port=80, method="POST", target="/login",
    )  # fmt: skip
    store.record_anomalies([sighting, AnomalySighting(ts=T0 + 1, name="tcp_gap", detail="1460 bytes", src_ip="192.0.2.66",
                                                      src_port=40002, dst_ip="198.51.100.20", dst_port=80)])  # fmt: skip
    with Session(store.engine) as session:
        rows = session.scalars(select(Anomaly).order_by(Anomaly.ts)).all()
        assert [(r.name, r.ts.timestamp(), r.src_port, r.method, r.target, r.detail) for r in rows] == [
            ("content_length_and_chunked", T0, 40001, "POST", "/login", ""),
            ("tcp_gap", T0 + 1, 40002, None, None, "1460 bytes"),
        ]


def test_a_run_report_is_stored_and_rewritten_by_its_key(store: AttackStore) -> None:
    report = RunReport(
        run_key="r1", source="replay a.pcap", started=T0, finished=T0 + 5, status="interrupted",
        packets=10, requests=3, hits=1, anomalies=0, drops={"not_tcp": 2}, errors=("a.pcap: cut",),
    )  # fmt: skip
    store.write(WriteBatch(batch_key="b1", runs=(report,)))
    store.write(WriteBatch(batch_key="b2", runs=(RunReport(**{**_fields(report), "status": "completed"}),)))
    with Session(store.engine) as session:
        (run,) = session.scalars(select(CaptureRun)).all()
        assert (run.status, run.packets, json.loads(run.drops), json.loads(run.errors)) == (
            "completed",
            10,
            {"not_tcp": 2},
            ["a.pcap: cut"],
        )


def test_prune_deletes_what_is_older_and_keeps_the_rest(store: AttackStore, queries: HitQueries) -> None:
    now = datetime.now(UTC).timestamp()
    old, recent = now - 40 * 86400, now - 86400
    store.record([hit(ts=old, target="/old"), hit(ts=recent, target="/new")])
    store.record_anomalies([AnomalySighting(ts=old, name="tcp_gap", src_ip="192.0.2.1", src_port=1, dst_ip="192.0.2.2",
                                            dst_port=80)])  # fmt: skip
    counts = store.prune(datetime.now(UTC) - timedelta(days=30))
    assert (counts.hits, counts.attacks, counts.anomalies) == (1, 1, 1)
    assert [h.target for h in queries.list_hits(EVERYTHING, limit=None)] == ["/new"]
    assert [a.target for a in queries.list_attacks(EVERYTHING, limit=None)] == ["/new"]
    with Session(store.engine) as session:
        assert session.scalar(select(func.count(Anomaly.id))) == 0


def test_prune_takes_the_deleted_hits_off_an_attack_it_keeps(store: AttackStore, queries: HitQueries) -> None:
    cutoff = datetime.now(UTC) - timedelta(days=30)
    at = cutoff.timestamp()
    # One attack across the cutoff (hits closer than the quiet hour), its last hit sampled out.
    store.record([hit(ts=at - 1800), hit(ts=at - 600), hit(ts=at + 600), hit(ts=at + 2400)])
    sampled = KeyedHit(key="s1", hit=hit(ts=at + 3000), sampled_out=True)
    store.write(WriteBatch(batch_key="b-sampled", hits=(sampled,)))
    store.record([hit(ts=at + 86400, target="/recent")])  # wholly after the cutoff: untouched
    (before,) = queries.list_attacks(HitFilter(path="/products"), limit=None)
    assert (before.hits, before.sampled_out) == (5, 1)

    counts = store.prune(cutoff)

    assert (counts.hits, counts.attacks) == (2, 0)
    (kept,) = queries.list_attacks(HitFilter(path="/products"), limit=None)
    stored = queries.list_hits(HitFilter(path="/products"), limit=None)
    assert len(stored) == 2
    assert (kept.hits, kept.sampled_out) == (len(stored) + 1, 1)  # what is stored, and the sampled-out one
    assert (kept.first_seen, kept.last_seen) == (before.first_seen, before.last_seen)
    (recent,) = queries.list_attacks(HitFilter(path="/recent"), limit=None)
    assert recent.hits == 1


def test_an_unusable_database_url_is_a_storage_error() -> None:
    with pytest.raises(StorageError, match="cannot open database sqlite:////nonexistent-dir/x.db"):
        AttackStore.open("sqlite:////nonexistent-dir/x.db")


def test_a_password_never_shows_in_an_error() -> None:
    with pytest.raises(StorageError) as caught:
        AttackStore.open("postgresql+psycopg://u:s3cret@127.0.0.1:1/x")
    assert "s3cret" not in str(caught.value) and "***" in str(caught.value)


def _fields(report: RunReport) -> dict[str, object]:
    return {name: getattr(report, name) for name in report.__dataclass_fields__}


def test_a_prune_that_commits_while_a_writer_holds_the_attack_keeps_its_decrement(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The writer reads the attack, a prune deletes some of its hits and commits, then the
    writer adds its own: the count is what is stored, not the count the writer read plus its
    hits. On PostgreSQL, where the two can interleave (SQLite's lock makes them take turns)."""
    from storage import batch_rows  # noqa: PLC0415

    with postgres_schema() as url:
        store = AttackStore.open(url)
        try:
            cutoff = datetime.now(UTC) - timedelta(days=30)
            at = cutoff.timestamp()
            store.record([hit(ts=at - 1800), hit(ts=at - 600), hit(ts=at + 600)])  # one attack, across the cutoff
            apply_counts = batch_rows._AttackGroups.apply_counts
            pruned: list[PruneCounts] = []

            def prune_first(groups: batch_rows._AttackGroups) -> None:
                pruned.append(store.prune(cutoff))  # its own connection; commits before the writer
                apply_counts(groups)

            monkeypatch.setattr(batch_rows._AttackGroups, "apply_counts", prune_first)
            store.record([hit(ts=at + 1200)])
            monkeypatch.undo()
            assert pruned[0].hits == 2
            queries = HitQueries(store.engine)
            (kept,) = queries.list_attacks(HitFilter(path="/products"), limit=None)
            assert kept.hits == len(queries.list_hits(HitFilter(path="/products"), limit=None)) == 2
        finally:
            store.close()


def test_a_batch_adding_to_an_attack_a_prune_deleted_meanwhile_fails_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer reads the attack, a prune deletes it and commits, then the writer adds a
    sampled-out hit to it (no hit row whose foreign key would fail): the batch fails, rather
    than its count vanishing with an UPDATE of no row. On PostgreSQL, as above."""
    from storage import batch_rows  # noqa: PLC0415

    with postgres_schema() as url:
        store = AttackStore.open(url)
        try:
            cutoff = datetime.now(UTC) - timedelta(days=30)
            at = cutoff.timestamp()
            store.record([hit(ts=at - 1800), hit(ts=at - 600)])  # one attack, wholly before the cutoff
            apply_counts = batch_rows._AttackGroups.apply_counts

            def prune_first(groups: batch_rows._AttackGroups) -> None:
                store.prune(cutoff)
                apply_counts(groups)

            monkeypatch.setattr(batch_rows._AttackGroups, "apply_counts", prune_first)
            late = WriteBatch(batch_key="late", hits=(KeyedHit(key="late-h1", hit=hit(ts=at - 300), sampled_out=True),))
            with pytest.raises(StorageError, match="deleted"):
                store.write(late)
            monkeypatch.undo()
            assert HitQueries(store.engine).list_attacks(EVERYTHING, limit=None) == []
            assert store.write(late) is True  # the failed batch left no trace: it is written anew
        finally:
            store.close()
