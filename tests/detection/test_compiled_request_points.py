"""The compiled header, path and urlencoded points and percent_decode against their Python references."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.detection_corpus import CORPUS, load_corpus
from benchmarks.detection_speed import generated_requests
from oob_analyzer.detection import points, request_point
from oob_analyzer.detection.body_points import _SCAN_JSON, add_json_points
from oob_analyzer.detection.decoders import percent_decode
from oob_analyzer.detection.points import python_header_points, python_path_points
from oob_analyzer.detection.request_point import MAX_POINT_CHARS, RequestPoint, python_urlencoded_points
from reassembly.events import HttpRequest
from tests.detection.heldout import ATTACKS, BENIGN
from tests.paths import PROJECT

compiled = pytest.importorskip("oob_analyzer.detection._request_points")


def compiled_points(raw_name: str, value: str) -> list[RequestPoint]:
    return compiled.header_points(RequestPoint, _SCAN_JSON, add_json_points, raw_name, value)


def assert_same_points(raw_name: str, value: str) -> None:
    found = compiled_points(raw_name, value)
    assert found == python_header_points(raw_name, value)
    assert all(type(point) is RequestPoint for point in found)


def assert_same_path_points(path: str) -> None:
    found = compiled.path_points(RequestPoint, path)
    assert found == python_path_points(path)
    assert all(type(point) is RequestPoint for point in found)


def assert_same_urlencoded_points(text: str, prefix: str = "query") -> None:
    found = compiled.urlencoded_points(RequestPoint, prefix, text)
    assert found == python_urlencoded_points(prefix, text)
    assert all(type(point) is RequestPoint for point in found)


def assert_same_decoding(text: str) -> None:
    for plus_is_space in (True, False):
        assert compiled.percent_decode(text, plus_is_space) == percent_decode(text, plus_is_space=plus_is_space)


def header_fields_of(requests: list[HttpRequest]) -> list[tuple[str, str]]:
    return [field for request in requests for field in request.headers]


def test_the_engine_uses_the_compiled_builder() -> None:
    assert points.header_points.func is compiled.header_points  # type: ignore[attr-defined]
    assert points.header_points.args == (RequestPoint, _SCAN_JSON, add_json_points)  # type: ignore[attr-defined]
    assert points.path_points.func is compiled.path_points  # type: ignore[attr-defined]
    assert points.path_points.args == (RequestPoint,)  # type: ignore[attr-defined]
    assert request_point.urlencoded_points.func is compiled.urlencoded_points  # type: ignore[attr-defined]
    assert request_point.urlencoded_points.args == (RequestPoint,)  # type: ignore[attr-defined]


@pytest.mark.skipif(not CORPUS.exists(), reason="the shared corpus is not next to the project")
def test_same_points_on_the_corpus() -> None:
    requests = [labelled.as_request() for labelled in load_corpus()]
    fields = header_fields_of(requests)
    assert len(fields) > 1000
    for name, value in fields:
        assert_same_points(name, value)
    for request in requests:  # its attacks' percent-encodings, in cookies too (it has none of its own)
        assert_same_decoding(request.target)
        assert_same_path_points(request.target.partition("?")[0])
        assert_same_urlencoded_points(request.target.partition("?")[2])
        assert_same_urlencoded_points(request.body.decode("latin-1"), "body.form")
        query = request.target.partition("?")[2]
        assert_same_points("Cookie", query.replace("&", "; "))


def test_same_points_on_generated_traffic() -> None:
    requests = generated_requests()
    fields = header_fields_of(requests)
    assert sum("eyJ" in value for _, value in fields) > 100  # bearer tokens and JWT cookies
    for name, value in fields:
        assert_same_points(name, value)
    for request in requests:
        assert_same_path_points(request.target.partition("?")[0])
        assert_same_urlencoded_points(request.target.partition("?")[2])


_PIECES = st.sampled_from(
    [
        *(
            "%",
            "%4",
            "%41",
            "%2541",
            "%25252541",
            "%c3%a9",
            "%C3",
            "%e2%82%ac",
            "%ed%a0%80",
            "%ff",
            "%u0041",
            "+",
            "%2B",
        ),
        *(";", "=", " ", "\t", "\x0b", "\x1c", "\x85", "\xa0", "\u3000", "é", "\xc3\xa9", "\ud800", "\U0001f600"),
        *("eyJ", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig", "eyJ.eyJ.", "_ga=GA1.2.3", "a", "Z"),
    ]
)
_TEXT = st.lists(_PIECES | st.text(max_size=4), max_size=16).map("".join)
_NAMES = st.sampled_from(["Cookie", "COOKIE", "cookie", "Content-Length", "Authorization", "X-İd", "K"]) | st.text(
    max_size=6
)


@settings(max_examples=1000, deadline=None)
@given(_NAMES, _TEXT)
def test_same_points_on_any_field(raw_name: str, value: str) -> None:
    assert_same_points(raw_name, value)


@settings(max_examples=1000, deadline=None)
@given(_TEXT)
def test_same_decoding_of_any_text(text: str) -> None:
    assert_same_decoding(text)


_PATHS = st.lists(_PIECES | st.sampled_from(["/", "//", "%2F", "%2f", ".."]) | st.text(max_size=3), max_size=16)


@settings(max_examples=1000, deadline=None)
@given(_PATHS.map("".join))
def test_same_points_of_any_path(path: str) -> None:
    assert_same_path_points(path)


_QUERIES = st.lists(
    _PIECES
    | st.sampled_from(["&", "&&", "=", "[", "]", "a[]", "b[k]", "[$ne]", "x" * 64, "y" * 65])
    | st.text(max_size=3),
    max_size=16,
)


@settings(max_examples=1000, deadline=None)
@given(_QUERIES.map("".join))
def test_same_points_of_any_urlencoded_text(text: str) -> None:
    assert_same_urlencoded_points(text)


def test_plain_and_odd_names() -> None:
    names = ["a", "a.b-c_1", "a[]", "a[b][c]", "a[b]c", "a[b", "[b]", "a[$ne]", "é", "a" * 64, "a" * 65]
    names += [f"a[{'b' * 64}]", f"a[{'b' * 65}]", "a[b]]", ""]
    for name in names:
        for text in (f"{name}=1", name, f"{name}=1&&", f"%41{name}=%2541"):
            assert_same_urlencoded_points(text)


def test_paths_of_one_segment_and_none() -> None:
    for path in ("", "/", "//", "a", "/a", "//a", "/a/", "a/", "a//b", "/%41", "%2F%2F"):
        assert_same_path_points(path)


def test_long_values_over_the_bound() -> None:
    long_value = "%41" * MAX_POINT_CHARS + "é" + "B" * 5000 + "\U0001f600"
    for value in (long_value, "x" * MAX_POINT_CHARS, "x" * (MAX_POINT_CHARS + 1)):
        assert_same_points("Cookie", f"a={value}; b=1")
        assert_same_points("Referer", value)
        assert_same_path_points(f"/{value}/{value}")
        assert_same_path_points(value)
        assert_same_urlencoded_points(f"a={value}&{value}=b&{value}")
    assert compiled_points("Cookie", "s=" + "x" * (MAX_POINT_CHARS + 1))[0].value.count("\n") == 1


def test_an_error_in_the_claims_walk_propagates() -> None:
    def broken(found: list[RequestPoint], prefix: str, document: Any, kind: str) -> None:
        raise ValueError(f"no claims in {prefix}")

    with pytest.raises(ValueError, match="no claims in cookie.t.jwt"):
        compiled.header_points(RequestPoint, _SCAN_JSON, broken, "Cookie", "a=1; t=" + _token(b'{"a":1}'))


def test_what_the_scanner_raises() -> None:
    """jwt_claims's `except`: StopIteration, ValueError and RecursionError are no claims; anything else is raised."""
    value = "Bearer " + _token(b'{"a":1}')

    def raising(error: BaseException) -> Any:
        def scan(text: str, start: int) -> tuple[Any, int]:
            raise error

        return scan

    for error in (StopIteration(), ValueError("bad"), json.JSONDecodeError("bad", "x", 0), RecursionError()):
        found = compiled.header_points(RequestPoint, raising(error), add_json_points, "X", value)
        assert found == [RequestPoint("header.x", value, "header")]
    with pytest.raises(KeyError):
        compiled.header_points(RequestPoint, raising(KeyError("x")), add_json_points, "X", value)
    with pytest.raises(TypeError, match="document, end"):
        compiled.header_points(RequestPoint, lambda text, start: None, add_json_points, "X", value)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _token(claims: bytes, signature: str = "c2ln") -> str:
    return f"eyJhbGciOiJIUzI1NiJ9.{_b64url(claims)}.{signature}"


def assert_same_jwt_points(text: str) -> None:
    """`text` in a bearer header, a header of its own and a cookie, against the Python reference."""
    assert_same_points("Authorization", "Bearer " + text)
    assert_same_points("X-Token", text)
    assert_same_points("Cookie", f"a=1; t={text}; b=2")


def test_same_claims_of_the_held_out_texts() -> None:
    """Every held-out attack and benign text as a claim, a key, a whole payload and a signature."""
    for text in [text for _, text in ATTACKS] + list(BENIGN):
        for claims in ({"sub": text}, {text: 1}, {"n": [text, {"k": text}]}):
            assert_same_jwt_points(_token(json.dumps(claims).encode()))
            assert_same_jwt_points(_token(json.dumps(claims, ensure_ascii=False).encode("utf-8", "surrogatepass")))
        assert_same_jwt_points(_token(b'{"' + text.encode("utf-8", "surrogatepass")))
        assert_same_jwt_points(_token(b'{"a":1}', text))


def test_same_claims_at_the_edges() -> None:
    edges = [
        b'{"a":1}',
        b'{"a":1}  \t\r\n',  # blanks after the value: claims
        b'{"a":1} x',  # data after the value: none
        b'{"a":1}\x0b',  # not a JSON blank
        b'{"a":"\xed\xa0\x80"}',  # a surrogate, passed by "surrogatepass"
        b'{"a":"\xff"}',  # not UTF-8
        b'{"a":',
        b'{"',
        b'{"a":NaN, "b":-Infinity, "c":1e400, "d":12345678901234567890}',
        b'{"a":1, "a":2}',
        b'{"a":' + b"[" * 5000 + b"]" * 5000 + b"}",  # too deep for the scanner: none
        b'{"a":' + b"[" * 50 + b"]" * 50 + b"}",
    ]
    for claims in edges:
        payload = _b64url(claims)
        for cut in range(4):  # every length modulo 4, 1 among them
            token = f"eyJhbGciOiJIUzI1NiJ9.{payload[: len(payload) - cut]}.sig"
            assert_same_jwt_points(token)
            assert_same_jwt_points(f"{token} {token}")
            assert_same_jwt_points(f"x{token}.{token}")
    claims = _b64url(b'{"a":1}')
    for text in ("eyJ.eyJ.", "eyJab.eyJab.", "eyJeyJab.eyJab", "eyJab.eyJab.eyJab.eyJab.", "eyJab.eyJa.x"):
        assert_same_jwt_points(text)
    for header in ("eyJ", "eyJa", "eyJab", "eyJa-", "xeyJab", "eyJab="):  # `eyJ` and 2+ characters, then '.'
        assert_same_jwt_points(f"{header}.{claims}.x")
        assert_same_jwt_points(f"{header}.{claims}.{header}.{claims}")


_CLAIMS = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=20,
)
_DOCUMENTS = st.dictionaries(st.text(max_size=6), _CLAIMS, max_size=4)


@st.composite
def _payloads(draw: st.DrawFn) -> str:
    """A JWT payload segment: JSON claims (any text, escaped or not), or `{"` and any bytes, cut anywhere."""
    claims = draw(
        st.one_of(
            _DOCUMENTS.map(lambda document: json.dumps(document, ensure_ascii=False).encode("utf-8", "surrogatepass")),
            _DOCUMENTS.map(lambda document: json.dumps(document).encode()),
            st.binary(max_size=30).map(lambda tail: b'{"' + tail),
        )
    )
    payload = _b64url(claims)
    return payload[: draw(st.integers(min_value=0, max_value=len(payload)))]


_JWT_PIECES = st.sampled_from(["eyJ", ".", "eyJhbGciOiJIUzI1NiJ9.", "-", "_", "=", " ", ";", "é", "x"])


@settings(max_examples=1000, deadline=None)
@given(st.lists(_JWT_PIECES | _payloads() | st.text(alphabet="AZaz09_-.", max_size=8), max_size=8).map("".join))
def test_same_claims_of_any_token_like_text(text: str) -> None:
    assert_same_jwt_points(text)


def test_wrong_arguments_raise_type_errors() -> None:
    for arguments in (
        (RequestPoint, _SCAN_JSON, add_json_points, "Cookie"),
        (dict, _SCAN_JSON, add_json_points, "Cookie", "a=1"),
        (RequestPoint, "not callable", add_json_points, "Cookie", "a=1"),
        (RequestPoint, _SCAN_JSON, "not callable", "Cookie", "a=1"),
        (RequestPoint, _SCAN_JSON, add_json_points, b"Cookie", "a=1"),
        (RequestPoint, _SCAN_JSON, add_json_points, "Cookie", b"a=1"),
    ):
        with pytest.raises(TypeError):
            compiled.header_points(*arguments)
    with pytest.raises(TypeError):
        compiled.percent_decode(b"%41", True)
    for path_arguments in ((RequestPoint,), (dict, "/a"), (RequestPoint, b"/a")):
        with pytest.raises(TypeError):
            compiled.path_points(*path_arguments)
    for query_arguments in (
        (RequestPoint, "query"),
        (dict, "query", "a"),
        (RequestPoint, b"q", "a"),
        (RequestPoint, "q", b"a"),
    ):
        with pytest.raises(TypeError):
            compiled.urlencoded_points(*query_arguments)


def test_no_reference_is_leaked_or_lost() -> None:
    value = "".join(["a=%41+; t=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig; ", "b"])  # not interned
    name = "".join(["Coo", "kie"])
    before = (sys.getrefcount(value), sys.getrefcount(name))
    for _ in range(1000):
        compiled_points(name, value)
        compiled_points("X", value)
        compiled.percent_decode(value, True)
        compiled.path_points(RequestPoint, value)
        compiled.urlencoded_points(RequestPoint, name, value)
    assert (sys.getrefcount(value), sys.getrefcount(name)) == before


def test_without_the_extension_the_reference_builds() -> None:
    """A source tree without `pip install`: the import fails and the Python reference is used."""
    script = (
        "import sys; sys.modules['oob_analyzer.detection._request_points'] = None\n"
        "from oob_analyzer.detection import points\n"
        "assert points.header_points is points.python_header_points\n"
        "assert points.path_points is points.python_path_points\n"
        "from oob_analyzer.detection import request_point\n"
        "assert request_point.urlencoded_points is request_point.python_urlencoded_points\n"
        "print(points.header_points('Cookie', 'a=%41; b'))\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=PROJECT)
    assert run.stdout.strip() == str(compiled_points("Cookie", "a=%41; b"))


def test_cookie_pairs_without_a_name_or_a_value() -> None:
    for value in ("=x", "=", " = ", ";", "a", "a=", "=x; y", "x=1;=2; =;;", " ;\t=v ;", "=" + _token(b'{"a":1}')):
        assert_same_points("Cookie", value)
