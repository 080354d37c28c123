"""Queries on SQLite and PostgreSQL: every filter, the attack detail and the counts."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from storage import AttackStore, HitFilter, HitQueries
from tests.storage.hits import T0, hit


@pytest.fixture
def queries(db_url: str) -> Iterator[HitQueries]:
    store = AttackStore.open(db_url)
    store.record(
        [
            hit(ts=T0, src_ip="192.0.2.66", host="Shop.example.com", target="/products?id=1"),
            hit(
                ts=T0 + 1800,
                src_ip="192.0.2.200",
                host="api.example.com",
                attack_type="xss",
                point="query.q",
                target="/search?q=x",
            ),
            hit(ts=T0 + 3600, src_ip="198.51.100.7", application="blog", host="blog.example.com", target="/50%_off"),
            hit(ts=T0 + 7200, src_ip="2001:db8::66", host="api.example.com", target="/api/v1/items"),
        ]
    )
    store.close()
    store = AttackStore.open(db_url)
    yield HitQueries(store.engine)
    store.close()


def at(offset: float) -> datetime:
    return datetime.fromtimestamp(T0 + offset, tz=UTC)


@pytest.mark.parametrize(
    ("where", "sources"),
    [
        (HitFilter(), ["2001:db8::66", "198.51.100.7", "192.0.2.200", "192.0.2.66"]),
        (HitFilter(since=at(1800)), ["2001:db8::66", "198.51.100.7", "192.0.2.200"]),
        (HitFilter(until=at(1800)), ["192.0.2.66"]),
        (HitFilter(since=at(1), until=at(7200)), ["198.51.100.7", "192.0.2.200"]),
        (HitFilter(types=("xss",)), ["192.0.2.200"]),
        (HitFilter(src=ipaddress.ip_network("192.0.2.0/25")), ["192.0.2.66"]),
        (HitFilter(src=ipaddress.ip_network("192.0.2.0/24")), ["192.0.2.200", "192.0.2.66"]),
        (HitFilter(src=ipaddress.ip_network("198.51.100.7/32")), ["198.51.100.7"]),
        (HitFilter(src=ipaddress.ip_network("2001:db8::/32")), ["2001:db8::66"]),
        (HitFilter(src=ipaddress.ip_network("::/0")), ["2001:db8::66"]),
        (HitFilter(host="shop.EXAMPLE.com"), ["192.0.2.66"]),
        (HitFilter(application="blog"), ["198.51.100.7"]),
        (HitFilter(path="/api/"), ["2001:db8::66"]),
        (HitFilter(path="/50%"), ["198.51.100.7"]),  # % is literal, not a wildcard
        (HitFilter(path="/%"), []),
        (HitFilter(types=("sqli",), src=ipaddress.ip_network("192.0.2.0/24")), ["192.0.2.66"]),
    ],
)
def test_filters(queries: HitQueries, where: HitFilter, sources: list[str]) -> None:
    assert [h.src_ip for h in queries.list_hits(where, limit=None)] == sources


def test_an_attack_matches_when_one_of_its_hits_does(queries: HitQueries) -> None:
    only_v6 = HitFilter(src=ipaddress.ip_network("2001:db8::/32"))
    assert [(a.target, a.src_ip) for a in queries.list_attacks(only_v6, limit=None)] == [
        ("/api/v1/items", "2001:db8::66")
    ]
    assert len(queries.list_attacks(HitFilter(), limit=None)) == 4


def test_attack_detail_holds_the_hits_with_their_excerpts(queries: HitQueries) -> None:
    (attack,) = queries.list_attacks(HitFilter(types=("xss",)), limit=None)
    detail = queries.attack_detail(attack.id, hit_limit=10)
    assert detail is not None
    assert [(h.target, h.request_excerpt) for h in detail.hits] == [("/search?q=x", hit().request_excerpt)]
    assert queries.attack_detail(10_000, hit_limit=10) is None


def test_stats_count_by_type_source_host_and_hour(queries: HitQueries) -> None:
    stats = queries.stats(HitFilter(), top=2)
    assert stats.total == 4
    assert stats.by_type == (("sqli", 3), ("xss", 1))
    assert len(stats.by_source) == 2  # --top
    assert stats.by_hour == (("2026-11-02T10:00Z", 2), ("2026-11-02T11:00Z", 1), ("2026-11-02T12:00Z", 1))
