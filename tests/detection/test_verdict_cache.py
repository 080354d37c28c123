"""The engine's verdict cache: bounded, and a repeated value outlives a stream of new ones."""

from __future__ import annotations

from oob_analyzer.detection import DetectionEngine, default_detectors
from oob_analyzer.detection.verdict_cache import VerdictCache
from tests.builders import http_request


def _lookup(cache: VerdictCache[str], key: str) -> str | None:
    found = cache.get(key)
    return found if found is not None else cache.recall(key)


def test_memory_is_bounded_by_size() -> None:
    cache: VerdictCache[str] = VerdictCache(10)
    for number in range(1000):
        cache.put(number, str(number))
        assert len(cache) <= 10
    assert _lookup(cache, "0") is None


def test_a_value_seen_again_survives_a_stream_of_values_seen_once() -> None:
    cache: VerdictCache[str] = VerdictCache(10)
    cache.put("user-agent", "verdict")
    for number in range(1000):
        cache.put(number, "unique")
        if number % 4 == 0:  # seen again within half the size: kept, whatever came between
            assert _lookup(cache, "user-agent") == "verdict"
    # Clearing one dict when full (what this replaced) forgot it every ten new values.


def test_a_value_not_seen_again_is_forgotten_after_two_generations() -> None:
    cache: VerdictCache[str] = VerdictCache(10)
    cache.put("once", "verdict")
    for number in range(10):
        cache.put(number, "unique")
    assert _lookup(cache, "once") is None


def test_size_zero_keeps_nothing() -> None:
    cache: VerdictCache[str] = VerdictCache(0)
    cache.put("key", "verdict")
    assert len(cache) == 0 and _lookup(cache, "key") is None


def test_an_engine_with_a_small_cache_gives_the_verdicts_of_one_without() -> None:
    requests = [http_request(f"/item/{number}?q=o%27reilly&page={number % 3}") for number in range(40)]
    requests += [http_request("/search?q=%27%20or%201%3D1--"), http_request("/a?next=//evil.example")] * 3
    cached, uncached = (
        DetectionEngine(default_detectors(), cache_size=4),
        DetectionEngine(default_detectors(), cache_size=0),
    )
    for request in requests * 2:
        assert cached.analyze(request) == uncached.analyze(request)
    assert any(cached.analyze(request) for request in requests)
