"""Hits for the storage tests: one realistic hit, and variations of it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from oob_analyzer.detection import AttackHit

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
    tunnel="vxlan:198.18.0.5>198.18.0.99:7",
    application="shop",
    request_excerpt="GET /products?id=1%27 HTTP/1.1\nHost: shop.example.com",
    response_status=500,
)


def hit(**changes: Any) -> AttackHit:
    return replace(HIT, **changes)
