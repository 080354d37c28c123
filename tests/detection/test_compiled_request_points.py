"""The compiled header, path and urlencoded points and percent_decode against their Python references."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.detection_corpus import CORPUS, load_corpus
from benchmarks.detection_speed import generated_requests
from oob_analyzer.detection import points, request_point
from oob_analyzer.detection.decoders import percent_decode
from oob_analyzer.detection.points import _add_jwt_points, python_header_points, python_path_points
from oob_analyzer.detection.request_point import MAX_POINT_CHARS, RequestPoint, python_urlencoded_points
from reassembly.events import HttpRequest
from tests.paths import PROJECT

compiled = pytest.importorskip("oob_analyzer.detection._request_points")


def compiled_points(raw_name: str, value: str) -> list[RequestPoint]:
    return compiled.header_points(RequestPoint, _add_jwt_points, raw_name, value)


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
    assert points.header_points.args == (RequestPoint, _add_jwt_points)  # type: ignore[attr-defined]
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


def test_an_error_in_the_jwt_callback_propagates() -> None:
    def broken(found: list[RequestPoint], prefix: str, text: str) -> None:
        raise ValueError(f"no claims in {prefix}")

    with pytest.raises(ValueError, match="no claims in cookie.t"):
        compiled.header_points(RequestPoint, broken, "Cookie", "a=1; t=eyJx")


def test_wrong_arguments_raise_type_errors() -> None:
    for arguments in (
        (RequestPoint, _add_jwt_points, "Cookie"),
        (dict, _add_jwt_points, "Cookie", "a=1"),
        (RequestPoint, "not callable", "Cookie", "a=1"),
        (RequestPoint, _add_jwt_points, b"Cookie", "a=1"),
        (RequestPoint, _add_jwt_points, "Cookie", b"a=1"),
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
