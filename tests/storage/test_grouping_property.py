"""Grouping into attacks does not depend on how hits are cut into batches.

A reference model (one pass over the hits, in arrival order, with the rule as the issue
states it) against the store, for any hits and any cut into batches.
"""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from oob_analyzer.detection import AttackHit
from storage import AttackStore, HitFilter, HitQueries
from tests.storage.hits import T0, hit

QUIET = 3600.0

kinds = st.sampled_from([("sqli", "query.id", "/a"), ("sqli", "query.id", "/b"), ("xss", "query.q", "/a")])
offsets = st.integers(min_value=0, max_value=4 * 3600)
hit_lists = st.lists(st.tuples(kinds, offsets), min_size=1, max_size=40)


def reference_attacks(hits: list[AttackHit]) -> Counter[tuple[str, str, str, float, float, int]]:
    current: dict[tuple[str, str, str], list[float]] = {}  # kind -> [first, last, count]
    finished: list[tuple[tuple[str, str, str], list[float]]] = []
    for h in hits:
        kind = (h.attack_type, h.point, h.target)
        attack = current.get(kind)
        if attack is None or h.ts - attack[1] > QUIET:
            if attack is not None:
                finished.append((kind, attack))
            attack = current[kind] = [h.ts, h.ts, 0]
        attack[0], attack[1], attack[2] = min(attack[0], h.ts), max(attack[1], h.ts), attack[2] + 1
    finished += current.items()
    return Counter((*kind, first, last, int(count)) for kind, (first, last, count) in finished)


@settings(max_examples=40, deadline=None)
@given(hit_lists, st.lists(st.integers(min_value=1, max_value=10), min_size=1, max_size=10))
def test_attacks_are_the_same_however_the_hits_are_batched(
    specs: list[tuple[tuple[str, str, str], int]], cuts: list[int]
) -> None:
    hits = [hit(attack_type=t, point=p, target=target, ts=T0 + offset) for (t, p, target), offset in specs]
    store = AttackStore.open("sqlite://")
    start = 0
    for size in cuts * (len(hits) // sum(cuts) + 1):
        if start >= len(hits):
            break
        store.record(hits[start : start + size])
        start += size
    stored = Counter(
        (a.type, a.point, a.target, a.first_seen.timestamp(), a.last_seen.timestamp(), a.hits)
        for a in HitQueries(store.engine).list_attacks(HitFilter(), limit=None)
    )
    store.close()
    assert stored == reference_attacks(hits)
