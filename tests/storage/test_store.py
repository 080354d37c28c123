from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from oob_analyzer.detection import AttackHit
from storage import AttackStore, StorageError

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC).timestamp()
HIT = AttackHit(
    ts=T0,
    src_ip="192.0.2.66",
    src_port=40001,
    dst_ip="198.51.100.20",
    dst_port=80,
    host="shop.example.com",
    method="GET",
    target="/products?id=1%27",
    attack_type="sqli",
    point="query.id",
    payload="1'",
    rule="libinjection-sqli",
    reason="SQL fingerprint s",
)


@pytest.fixture
def store(sqlite_url: str) -> AttackStore:
    return AttackStore.open(sqlite_url)


def test_a_hit_reads_back_whole_with_its_time_in_utc(store: AttackStore) -> None:
    store.record([HIT])
    (record,) = store.list_hits(limit=10)
    assert record.time == datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
    assert (record.type, record.src_ip, record.src_port, record.target, record.point, record.payload, record.rule) == (
        "sqli",
        "192.0.2.66",
        40001,
        "/products?id=1%27",
        "query.id",
        "1'",
        "libinjection-sqli",
    )


def test_hits_of_one_type_point_and_target_group_into_one_attack(store: AttackStore) -> None:
    later = replace(HIT, ts=T0 + 60, src_ip="192.0.2.67")
    other_point = replace(HIT, point="query.name")
    store.record([HIT, later])
    store.record([other_point])
    attacks = store.list_attacks(limit=10)
    assert [(a.point, a.hits, a.src_ip) for a in attacks] == [
        ("query.id", 2, "192.0.2.67"),
        ("query.name", 1, "192.0.2.66"),
    ]
    grouped = attacks[0]
    assert (grouped.first_seen.timestamp(), grouped.last_seen.timestamp()) == (T0, T0 + 60)


def test_a_hit_more_than_an_hour_after_the_last_starts_a_new_attack(store: AttackStore) -> None:
    store.record([HIT, replace(HIT, ts=T0 + 3600)])
    store.record([replace(HIT, ts=T0 + 7201)])
    assert sorted(a.hits for a in store.list_attacks(limit=10)) == [1, 2]


def test_newest_first_and_limited(store: AttackStore) -> None:
    store.record([replace(HIT, ts=T0 + i, target=f"/t{i}") for i in range(5)])
    assert [h.target for h in store.list_hits(limit=2)] == ["/t4", "/t3"]
    assert [a.target for a in store.list_attacks(limit=2)] == ["/t4", "/t3"]


def test_an_unusable_database_url_is_a_storage_error(tmp_path: object) -> None:
    with pytest.raises(StorageError, match="cannot open database sqlite:////nonexistent-dir/x.db"):
        AttackStore.open("sqlite:////nonexistent-dir/x.db")
