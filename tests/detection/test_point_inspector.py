"""The compiled PointInspector against the engine's Python path.

The inspector may leave a point or a decoded variant out of the detector loop only where no
detector finds anything in it: `_inspect_point` gives the same findings, in the same order,
with it and without it. It must leave out nearly every benign point (else it is only
overhead), and the engine's hits must be the same with it and without it.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable

import libinjection
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.detection_corpus import load_corpus
from benchmarks.detection_speed import generated_requests
from oob_analyzer.detection import (
    DetectionEngine,
    decoders,
    default_detectors,
    detectors,
    extract_points,
    point_inspector,
)
from oob_analyzer.detection import engine as engine_module
from oob_analyzer.detection.decoders import decoded_variants
from oob_analyzer.detection.detectors import SignatureDetector, SqlInjectionDetector, XssDetector
from oob_analyzer.detection.request_point import RequestPoint
from reassembly.events import HttpRequest
from tests.builders import http_request
from tests.detection.heldout import ATTACKS, BENIGN

_KINDS = (
    "query",
    "body.form",
    "json",
    "json_key",
    "multipart",
    "header",
    "cookie",
    "jwt",
    "path",
    "path_segment",
    "name",
    "xml",
    "xml_value",
    "body",
    "graphql",
)
_NAMES = ("query.q", "query.next", "body.form.redirect_uri", "json.returnTo", "header.accept", "header.user-agent")
# The characters each decoder and detector keys on, and some that are none of them.
_ALPHABET = "%+\\&'\"<>=/*-#$;(){}:@!|`~^ uUxX0129aAzZ.,_\x00\t\n\xc0\xc1\xe9\u20ac\U0001f600\ud800\u0661"


@pytest.fixture(scope="module")
def compiled_engine() -> DetectionEngine:
    engine = DetectionEngine(default_detectors(), cache_size=0)
    assert engine._inspector is not None, "the _inspect extension is not built (pip install -e .)"
    return engine


@pytest.fixture(scope="module")
def python_engine() -> DetectionEngine:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(point_inspector, "PointInspector", None)  # as when the extension is not built
        engine = DetectionEngine(default_detectors(), cache_size=0)
    assert engine._inspector is None
    return engine


def _points(requests: Iterable[HttpRequest]) -> list[RequestPoint]:
    return [point for request in requests for point in extract_points(request)]


def _corpus_requests() -> list[HttpRequest]:
    return [labelled.as_request() for labelled in load_corpus()]


def _own_points() -> list[RequestPoint]:
    texts = [text for _, text in ATTACKS] + list(BENIGN)
    return [RequestPoint(name, text, kind) for text in texts for kind in _KINDS for name in _NAMES[:2]]


def _unsound(compiled: DetectionEngine, python: DetectionEngine, points: Iterable[RequestPoint]) -> list[RequestPoint]:
    """The points whose findings differ with and without the inspector, or whose suspect
    variants are not decoded variants in decoding order."""
    inspector = compiled._inspector
    assert inspector is not None
    unsound = []
    for point in points:
        suspects = inspector.suspect_variants(point)
        variants = iter(decoded_variants(point.value))
        in_order = suspects is None or (suspects and all(each in variants for each in suspects))
        if not in_order or compiled._inspect_point(point) != python._inspect_point(point):
            unsound.append(point)
    return unsound


def _check_variants(compiled: DetectionEngine, values: Iterable[str]) -> None:
    inspector = compiled._inspector
    assert inspector is not None
    differing = [value for value in values if inspector.decoded_variants(value) != decoded_variants(value)]
    assert not differing, differing[:3]


def test_the_same_findings_with_and_without_it_on_the_corpus(
    compiled_engine: DetectionEngine, python_engine: DetectionEngine
) -> None:
    points = _points(_corpus_requests())
    assert len(points) > 5000
    assert not _unsound(compiled_engine, python_engine, points)
    _check_variants(compiled_engine, (point.value for point in points))


def test_the_same_findings_with_and_without_it_on_generated_traffic(
    compiled_engine: DetectionEngine, python_engine: DetectionEngine
) -> None:
    points = _points(generated_requests(1500))
    assert not _unsound(compiled_engine, python_engine, points)
    _check_variants(compiled_engine, (point.value for point in points))


def test_the_same_findings_with_and_without_it_on_the_held_out_set(
    compiled_engine: DetectionEngine, python_engine: DetectionEngine
) -> None:
    points = _own_points()
    assert not _unsound(compiled_engine, python_engine, points)
    _check_variants(compiled_engine, (point.value for point in points))
    inspector = compiled_engine._inspector
    assert inspector is not None
    assert sum(inspector.suspect_variants(point) is not None for point in points) > len(ATTACKS)


def test_few_generated_benign_points_are_deferred(compiled_engine: DetectionEngine) -> None:
    inspector = compiled_engine._inspector
    assert inspector is not None
    points = _points(generated_requests(1500))
    deferred = [point for point in points if inspector.suspect_variants(point) is not None]
    rate = len(deferred) / len(points)
    print(f"{len(deferred)} of {len(points)} generated benign points left to the detectors ({rate:.2%})")
    assert rate < 0.01, deferred[:5]


def test_each_default_detector_is_heard(compiled_engine: DetectionEngine) -> None:
    """A finding of each kind of check keeps the point for the detectors (none is silently skipped)."""
    inspector = compiled_engine._inspector
    assert inspector is not None
    deferred = {
        "sqli": RequestPoint("query.id", "1' or '1'='1", "query"),
        "xss": RequestPoint("query.q", "<img src=x onerror=alert(1)>", "query"),
        "signature": RequestPoint("query.q", "x; cat /etc/passwd", "query"),
        "log4shell": RequestPoint("header.x-api-version", "${jndi:ldap://x/a}", "header"),
        "redirect": RequestPoint("query.next", "//evil.example", "query"),
        "anomaly": RequestPoint("anomaly", "obs_fold", "anomaly"),
        "encoded": RequestPoint("query.q", base64.b64encode(b"<script>alert(1)</script>").decode(), "query"),
    }
    assert [label for label, point in deferred.items() if inspector.suspect_variants(point) is None] == []
    assert inspector.suspect_variants(RequestPoint("query.q", "Hello, world. See you at 10:30!", "query")) is None
    # Only the decoded variant that holds the attack goes on to the detectors.
    encoded = deferred["encoded"]
    assert inspector.suspect_variants(encoded) == ["<script>alert(1)</script>"]


def test_the_same_hits_with_and_without_the_inspector() -> None:
    compiled = DetectionEngine(default_detectors())  # the default cache: repeated verdicts too
    assert compiled._inspector is not None, "the _inspect extension is not built (pip install -e .)"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(point_inspector, "PointInspector", None)
        python = DetectionEngine(default_detectors())
    requests = _corpus_requests() + generated_requests(300)
    attacked = 0
    for request in requests:
        hits = compiled.analyze(request)
        assert hits == python.analyze(request), request.target
        attacked += bool(hits)
    assert attacked > 600


def test_the_engine_works_without_the_extension(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(point_inspector, "PointInspector", None)
    engine = DetectionEngine(default_detectors())
    assert engine._inspector is None
    assert [hit.attack_type for hit in engine.analyze(http_request(target="/?id=1%27%20or%20%271%27=%271"))] == ["sqli"]


def test_no_inspector_for_detectors_it_does_not_know() -> None:
    class Subclassed(XssDetector):
        pass

    assert point_inspector.build_point_inspector([SqlInjectionDetector(), Subclassed()]) is None
    assert point_inspector.build_point_inspector([SignatureDetector(), SignatureDetector()]) is None
    assert point_inspector.build_point_inspector([SqlInjectionDetector(), XssDetector()]) is not None


def test_no_inspector_when_a_detector_pre_check_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The C checks repeat these; a change to one of them turns the inspector off, not unsound."""
    assert point_inspector.build_point_inspector(default_detectors()) is not None
    monkeypatch.setattr(detectors, "_NOT_FOR_TOKENIZERS", frozenset({"name"}))  # now SQLi judges json_key
    assert point_inspector.build_point_inspector(default_detectors()) is None


def test_the_engine_early_returns_are_the_ones_repeated_in_c() -> None:
    """_inspect.c's inert test and `_ALWAYS_INSPECTED` kinds (it has no runtime check of these)."""
    assert engine_module._INERT.pattern == "[A-Za-z0-9_.-]{0,12}"
    assert frozenset({"header", "anomaly"}) == engine_module._ALWAYS_INSPECTED


def test_signatures_without_hyperscan(python_engine: DetectionEngine) -> None:
    """With the database gone the inspector asks the detector's regexes: still sound."""
    detectors = default_detectors()
    signature = next(each for each in detectors if isinstance(each, SignatureDetector))
    signature._database = None
    engine = DetectionEngine(detectors, cache_size=0)
    inspector = engine._inspector
    assert inspector is not None
    points = _own_points() + _points(generated_requests(200))
    assert not _unsound(engine, python_engine, points)
    assert inspector.suspect_variants(RequestPoint("query.q", "x; cat /etc/passwd", "query")) is not None


_TOKENS = st.binary(min_size=4, max_size=30).map(lambda data: base64.b64encode(data).decode())
# What the redirect, Log4Shell and decoder checks key on.
_PIECES = (
    "http",
    "https:",
    "s://",
    "//",
    "\\",
    "@",
    " ",
    "\u00a0",
    "javascript:",
    "${",
    "jndi:",
    "%2",
    "%u00",
    "&#x3c;",
    "IFS",
    "${IFS}",
    "$@",
    "\\u{",
    "\\x3",
    "\\u00",
    "/*",
    "--",
)
_VALUES = st.lists(
    st.one_of(st.text(alphabet=_ALPHABET, max_size=12), _TOKENS, st.sampled_from(BENIGN), st.sampled_from(_PIECES)),
    max_size=8,
).map("".join)


@settings(max_examples=800, deadline=None)
@given(
    value=st.one_of(_VALUES, st.text(max_size=40), _VALUES.map(lambda text: text * 50)),
    kind=st.sampled_from((*_KINDS, "anomaly")),
    name=st.sampled_from(_NAMES),
)
def test_the_same_findings_with_and_without_it_on_any_text(
    compiled_engine: DetectionEngine, python_engine: DetectionEngine, value: str, kind: str, name: str
) -> None:
    point = RequestPoint(name, value, kind)
    assert not _unsound(compiled_engine, python_engine, [point])
    _check_variants(compiled_engine, [value])


@settings(max_examples=1500, deadline=None)
@given(st.text(alphabet=st.sampled_from("\\ux{}0aF9fG$IFS@'\"b \u0661\ud800#-/*"), max_size=30))
def test_the_escape_and_shell_decoders_in_c_decode_as_python(compiled_engine: DetectionEngine, value: str) -> None:
    """The JS-escape and shell-noise decoders are C code, not calls of the Python ones."""
    _check_variants(compiled_engine, [value, value.lower(), "x" + value])


@pytest.mark.parametrize(
    "value",
    [
        "\\u{41}\\u{10FFFF}\\u{110000}\\u{1F600}\\u{}\\u{1234567}\\u{0041",
        "\\x4 \\x41 \\X41 \\u0041 \\u004 \\ud83d\\ude00 \\\\u0041",
        "a'b a\"b 'a b' \\a \\A don't",
        "$IFS$9 ${IFS}x ${IFS $IF $@ $1 IFS a'b",
        "ls${IFS}-la a\\tb $IFS$\u0661",
        "a--b 'x' \\u0027",
    ],
)
def test_edge_cases_of_the_decoders_in_c(compiled_engine: DetectionEngine, value: str) -> None:
    _check_variants(compiled_engine, [value, value.upper(), value + " Zz", "q" + value + "Q"])
    inspector = compiled_engine._inspector
    assert inspector is not None
    assert len(inspector.decoded_variants(value)) > 1


@pytest.mark.parametrize(
    "value",
    [
        "$\x00{jndi:foo}",  # a lookup once the NUL is dropped: "$" and "{" are neighbours then
        "$\x00\x00{jNdI:x}",
        "\x00$\x00{\x00jndi:dns:x}\x00",
        "<SCRIPT>alert(1)</SCRIPT>",
        "1' UNION SELECT\x00 PASSWORD FROM USERS --",
        "HTTPS://EVIL.EXAMPLE@\x00shop.example.com",
        "\x00",
        "\x00\x00\x00",
        "ABC\x00DEF",
        # One-byte (Latin-1) text: lower-cased by a table made from str.lower, NUL dropped.
        "\xc9<SCRIPT>alert(1)</SCRIPT>",
        "1' UNION SELECT PASSWORD FROM USERS -- \xc0\xe9",
        "\xc9$\x00{JNDI:foo}",
        "\xc0\x00\xff\xb5\xdf\xd7\xde",
    ],
)
def test_variants_normalized_in_c_as_python(
    compiled_engine: DetectionEngine, python_engine: DetectionEngine, value: str
) -> None:
    """A variant's lower case without NUL, and its facts, made in C for ASCII and one-byte text."""
    points = [RequestPoint(name, value, kind) for kind in _KINDS for name in _NAMES]
    assert not _unsound(compiled_engine, python_engine, points)
    inspector = compiled_engine._inspector
    assert inspector is not None
    for point in points:
        if python_engine._inspect_point(point):
            assert inspector.suspect_variants(point) is not None, point


def test_the_rule_ids_of_one_scan_are_not_those_of_the_next() -> None:
    """The match handler fills one list per inspector: emptied after each scan, and before a
    scan when the previous one raised with ids in it."""
    scanned: list[bytes] = []

    def scan(data: bytes, handler: object) -> None:
        scanned.append(data)
        if b"attack" in data or len(scanned) == 1:
            handler(0, 0, len(data), 0, None)  # type: ignore[operator]
        if len(scanned) == 1:
            raise RuntimeError("the scan failed after a match")

    assert point_inspector.PointInspector is not None
    inspector = point_inspector.PointInspector(
        decoders=point_inspector._KNOWN_DECODERS,
        normalize=decoders.normalize_for_matching,
        libinjection_path=libinjection.__file__,
        scan=scan,
        matching_rules=None,
        rule_kinds=((None, frozenset()),),  # rule 0 applies to every kind
        max_depth=decoders.MAX_DECODE_DEPTH,
        max_variants=decoders.MAX_VARIANTS,
    )
    clean = RequestPoint("query.q", "hello world", "query")
    with pytest.raises(RuntimeError, match="failed after a match"):
        inspector.suspect_variants(clean)
    assert inspector.suspect_variants(clean) is None
    assert inspector.suspect_variants(RequestPoint("query.q", "an attack", "query")) == ["an attack"]
    assert inspector.suspect_variants(clean) is None
    assert scanned == [b"hello world", b"hello world", b"an attack", b"hello world"]


def test_kinds_taking_turns_each_keep_their_own_facts(
    compiled_engine: DetectionEngine, python_engine: DetectionEngine
) -> None:
    """The inspector remembers what the last few kinds decide, by identity: more kinds than it
    keeps, each a new str object made and dropped, still get their own verdicts."""
    kinds = (*_KINDS, "anomaly", "header", "cookie", "path", "json_key", "name", "xml", "jwt")
    values = ["//evil.example/x", "<svg onload=alert(1)>", "1' or '1'='1", "${jndi:x}", "plain words", "a=b"]
    # Made one at a time and dropped once judged: a new kind str may take a dropped one's address.
    points = (
        RequestPoint(name, value, "".join(list(kind)))  # a new str each time, not the interned kind
        for _ in range(3)
        for value in values
        for kind in kinds
        for name in _NAMES[:2]
    )
    assert len(set(kinds)) > 8
    assert not _unsound(compiled_engine, python_engine, points)
