"""The engine's per-point and per-header-field loops in C (`_inspect_loops.c`) against its Python loops.

`judge_points` and `judge_headers` must give the same hits as the Python loops (`_cached`,
`_judge_header`, `analyze`'s header loop), and leave the three verdict caches holding the same
keys and verdicts, in the same order, in the same generation, after the same requests: with
no cache, with a cache that rolls over at every second value, and with the default one.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.detection_corpus import load_corpus
from benchmarks.detection_speed import generated_requests
from oob_analyzer.detection import DetectionEngine, default_detectors, point_inspector
from oob_analyzer.detection import engine as engine_module
from oob_analyzer.detection.events import Finding
from oob_analyzer.detection.points import header_points, query_points
from oob_analyzer.detection.request_point import RequestPoint
from oob_analyzer.detection.verdict_cache import VerdictCache
from reassembly.events import HttpRequest
from tests.builders import http_request
from tests.detection.heldout import ATTACKS, BENIGN
from tests.detection.test_heldout import PLACEMENTS

_CACHES = ("_verdicts", "_header_verdicts", "_part_verdicts")
_CACHE_SIZES = (0, 2, 4096)


def _engines(cache_size: int) -> tuple[DetectionEngine, DetectionEngine]:
    """An engine with the compiled loops and one with the Python loops (the same inspector)."""
    compiled = DetectionEngine(default_detectors(), cache_size=cache_size)
    assert compiled._loops is not None, "the _inspect extension is not built (pip install -e .)"
    python = DetectionEngine(default_detectors(), cache_size=cache_size)
    python._loops = None
    return compiled, python


def _generations(cache: VerdictCache[tuple[Finding, ...]]) -> tuple[list[object], list[object]]:
    return list(cache.items()), list(cache._old.items())


def _assert_same_caches(compiled: DetectionEngine, python: DetectionEngine) -> None:
    for name in _CACHES:
        assert _generations(getattr(compiled, name)) == _generations(getattr(python, name)), name


def _corpus_requests() -> list[HttpRequest]:
    return [labelled.as_request() for labelled in load_corpus()]


def _heldout_requests() -> list[HttpRequest]:
    texts = [text for _, text in ATTACKS] + list(BENIGN)
    return [place(text) for text in texts for place in PLACEMENTS.values()]


def _token(claims: dict[str, str]) -> str:
    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = part(b'{"alg":"HS256"}')
    return f"{header}.{part(json.dumps(claims).encode())}.{part(b'signature')}"


def _repeating_requests() -> Iterator[HttpRequest]:
    """Header fields, cookies and token claims that come back, among values seen once."""
    for number in range(300):
        claims = {"sub": f"user{number % 7}", "note": "' or 1=1 --" if number % 11 == 0 else "hello"}
        headers = (
            ("Host", "shop.example.com"),
            ("User-Agent", f"agent/{number % 5}"),
            ("Cookie", f"session={number}; theme=dark; q=<script>alert({number % 3})</script>"),
            ("Authorization", f"Bearer {_token(claims)}"),
            ("X-Long", "a" * 600 + str(number % 2)),  # longer than a cached value: judged every time
        )
        yield http_request(f"/p/{number % 9}?id={number % 4}&x=%27{number % 3}", headers=headers)


@pytest.mark.parametrize("cache_size", _CACHE_SIZES)
def test_the_same_hits_and_caches_as_the_python_loops(cache_size: int) -> None:
    compiled, python = _engines(cache_size)
    requests = _corpus_requests() + generated_requests(1500) + _heldout_requests() + list(_repeating_requests())
    attacked = 0
    for request in requests:
        hits = compiled.analyze(request)
        assert hits == python.analyze(request), request.target
        attacked += bool(hits)
    assert attacked > 600
    _assert_same_caches(compiled, python)
    if cache_size:
        assert all(len(getattr(compiled, name)) > 0 for name in _CACHES)


@settings(max_examples=150, deadline=None)
@given(
    target=st.text(alphabet="/?&=%'\"<>;()aZ09._-+#", max_size=40),
    headers=st.lists(
        st.tuples(
            st.sampled_from(["Cookie", "Referer", "User-Agent", "Authorization", "Accept", "X-Forwarded-For"]),
            st.text(alphabet="=;, '\"<>()%&/\\aZ09eyJ.-_\x00\xe9", max_size=30),
        ),
        max_size=5,
    ),
    body=st.binary(max_size=60),
)
def test_the_same_hits_and_caches_on_any_request(target: str, headers: list[tuple[str, str]], body: bytes) -> None:
    request = http_request("/" + target, method="POST", body=body, headers=(("Host", "h"), *headers))
    for cache_size in _CACHE_SIZES:
        compiled, python = _engines(cache_size)
        for _ in range(2):  # the second time through the caches
            assert compiled.analyze(request) == python.analyze(request)
        _assert_same_caches(compiled, python)


class _Refused(Exception):
    pass


def _refuse_attacks(engine: DetectionEngine) -> None:
    """Make the engine's detector loop raise on a point that holds an attack."""
    inspect = engine._inspect_suspects

    def refusing(point: RequestPoint, variants: list[str]) -> list[Finding]:
        findings = inspect(point, variants)
        if findings:
            raise _Refused(point.name)
        return findings

    engine._inspect_suspects = refusing  # type: ignore[method-assign]


@pytest.mark.parametrize("cache_size", _CACHE_SIZES)
def test_a_raising_detector_loop_propagates_and_leaves_the_caches_as_python_does(cache_size: int) -> None:
    compiled, python = _engines(cache_size)
    requests = list(_repeating_requests())[:40] + _heldout_requests()[:40]
    for engine in (compiled, python):
        _refuse_attacks(engine)
    refused = 0
    for request in requests:
        outcomes = []
        for engine in (compiled, python):
            try:
                outcomes.append(engine.analyze(request))
            except _Refused as error:
                outcomes.append(str(error))
        assert outcomes[0] == outcomes[1], request.target
        refused += isinstance(outcomes[0], str)
        _assert_same_caches(compiled, python)
    assert refused > 10
    # Consistent: a VerdictCache the Python code can go on with.
    for name in _CACHES:
        cache = getattr(compiled, name)
        assert len(cache) == len(dict(cache)) + len(cache._old) <= cache_size


def test_wrong_arguments_raise_type_errors() -> None:
    compiled, _ = _engines(16)
    loops = compiled._loops
    assert loops is not None
    cache: VerdictCache[tuple[Finding, ...]] = VerdictCache(16)
    inspect = compiled._inspect_suspects
    point = RequestPoint("query.q", "<script>alert(1)</script>", "query")
    wrong_calls = [
        lambda: loops.judge_points([("query.q", "x")], cache, inspect),  # type: ignore[list-item]
        lambda: loops.judge_points([("query.q", b"x", "query")], cache, inspect),  # type: ignore[list-item]
        lambda: loops.judge_points(42, cache, inspect),  # type: ignore[arg-type]
        lambda: loops.judge_points([point], [], inspect),  # type: ignore[arg-type]
        lambda: loops.judge_points([point], cache, 42),  # type: ignore[arg-type]
        lambda: loops.judge_points([point], cache),  # type: ignore[call-arg]
        lambda: loops.judge_headers([["Referer", "x"]], cache, cache, header_points, inspect),  # type: ignore[list-item]
        lambda: loops.judge_headers([("Referer", 1)], cache, cache, header_points, inspect),  # type: ignore[list-item]
        lambda: loops.judge_headers([("Referer", "x")], cache, cache, lambda name, value: 1, inspect),
        lambda: loops.judge_headers([("Referer", "x")], cache, cache, lambda name, value: [(1,)], inspect),
        lambda: loops.judge_points([point], cache, lambda point, variants: 1),
        lambda: loops.judge_part("query", b"q=1", query_points, cache, cache, inspect),  # type: ignore[arg-type]
        lambda: loops.judge_part("query", "q=1", query_points, [], cache, inspect),  # type: ignore[arg-type]
        lambda: loops.judge_part("query", "q=1", lambda text: 1, cache, cache, inspect),
        lambda: loops.judge_part("query", "q=1", query_points, cache, cache),  # type: ignore[call-arg]
    ]
    for call in wrong_calls:
        with pytest.raises(TypeError):
            call()
    with pytest.raises(AttributeError, match="size"):  # a dict, but not a VerdictCache
        loops.judge_points([point], {}, inspect)  # type: ignore[arg-type]
    assert not cache and not cache._old
    assert loops.judge_points([point], cache, inspect)  # and it still works
    assert list(cache) == [point]


def test_an_error_from_the_point_builders_propagates() -> None:
    compiled, _ = _engines(16)
    loops = compiled._loops
    assert loops is not None
    cache: VerdictCache[tuple[Finding, ...]] = VerdictCache(16)

    def broken(name: str, value: str = "") -> list[RequestPoint]:
        raise _Refused(name)

    with pytest.raises(_Refused, match="Referer"):
        loops.judge_headers([("Referer", "x")], cache, cache, broken, compiled._inspect_suspects)
    with pytest.raises(_Refused, match="q=1"):
        loops.judge_part("query", "q=1", broken, cache, cache, compiled._inspect_suspects)
    assert not cache
    assert loops.judge_part("query", "q=%27%20or%201=1--", query_points, cache, cache, compiled._inspect_suspects)
    assert ("query", "q=%27%20or%201=1--") in cache


def test_the_python_loops_without_the_inspector(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(point_inspector, "PointInspector", None)
    engine = DetectionEngine(default_detectors())
    assert engine._loops is None
    hits = engine.analyze(http_request("/?q=%3Cscript%3Ealert(1)%3C/script%3E", headers=(("Cookie", "a=' or 1=1 --"),)))
    assert sorted(hit.attack_type for hit in hits) == ["sqli", "xss"]


def test_an_extension_built_before_the_loops_gets_the_python_loops(monkeypatch: pytest.MonkeyPatch) -> None:
    inspector = point_inspector.build_point_inspector(default_detectors())
    assert inspector is not None

    class Stale:  # what an in-place build older than judge_part offers
        suspect_variants = inspector.suspect_variants

    monkeypatch.setattr(engine_module, "build_point_inspector", lambda detectors: Stale())
    engine = DetectionEngine(default_detectors())
    assert engine._inspector is not None and engine._loops is None
    assert [hit.attack_type for hit in engine.analyze(http_request("/?q=%3Cscript%3Ealert(1)%3C/script%3E"))] == ["xss"]


class _OldAsProperty(VerdictCache[tuple[Finding, ...]]):
    """A VerdictCache whose `_old` is a property: getattr finds it before the instance dict's stale entry."""

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.__dict__["_old"] = {"stale": ()}  # shadowed by the property: never what getattr returns

    @property  # type: ignore[override]
    def _old(self) -> dict[object, tuple[Finding, ...]]:
        return self.__dict__["_real_old"]  # type: ignore[no-any-return]

    @_old.setter
    def _old(self, old: dict[object, tuple[Finding, ...]]) -> None:
        self.__dict__["_real_old"] = old


def test_the_loops_read_a_cache_attribute_as_getattr_does() -> None:
    """The loops read a VerdictCache's `_old` from its instance dict only where getattr would."""
    compiled, python = _engines(8)
    for engine in (compiled, python):
        engine._verdicts = _OldAsProperty(8)
        engine._part_verdicts = VerdictCache(0)  # every query's points judged: a call of points_of each
    values = ["a", "b", "c", "d", "e", "a", "b", "<script>alert(1)</script>", "f", "c"]
    for index, value in enumerate(values):
        request = http_request(f"/p?q={value}")
        assert compiled.analyze(request) == python.analyze(request)
        assert _generations(compiled._verdicts) == _generations(python._verdicts), value
        if index == 5:  # "a" again, after a roll-over: recalled from the property's dict
            assert RequestPoint("query.q", "a", "query") in compiled._verdicts
    for engine in (compiled, python):
        assert engine._verdicts.__dict__["_old"] == {"stale": ()}
