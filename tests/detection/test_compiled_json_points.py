"""The compiled `add_json_points` against its Python reference: the same points for every document."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.detection_corpus import CORPUS, load_corpus
from benchmarks.detection_speed import generated_requests
from oob_analyzer.detection import body_points
from oob_analyzer.detection.body_points import jwt_claims, python_add_json_points
from oob_analyzer.detection.points import _JWT
from oob_analyzer.detection.request_point import MAX_POINT_CHARS, RequestPoint
from reassembly.events import HttpRequest
from tests.paths import PROJECT

compiled = pytest.importorskip("oob_analyzer.detection._json_points").add_json_points


def compiled_points(prefix: str, document: Any, kind: str = "json") -> list[RequestPoint]:
    points: list[RequestPoint] = []
    compiled(RequestPoint, points, prefix, document, kind)
    return points


def reference_points(prefix: str, document: Any, kind: str = "json") -> list[RequestPoint]:
    points: list[RequestPoint] = []
    python_add_json_points(points, prefix, document, kind)
    return points


def assert_same_points(prefix: str, document: Any, kind: str = "json") -> None:
    found = compiled_points(prefix, document, kind)
    assert found == reference_points(prefix, document, kind)
    assert all(type(point) is RequestPoint for point in found)


def documents_of(requests: list[HttpRequest]) -> list[Any]:
    """The JSON bodies and the JWT claims in the headers of `requests`."""
    documents = []
    for request in requests:
        with contextlib.suppress(ValueError):  # not every body is JSON
            documents.append(json.loads(request.body))
        for _, value in request.headers:
            documents += [claims for token in _JWT.findall(value) if (claims := jwt_claims(token)) is not None]
    return documents


def test_the_body_points_use_the_compiled_walk() -> None:
    assert body_points.add_json_points.func is compiled  # type: ignore[attr-defined]
    assert body_points.add_json_points.args == (RequestPoint,)  # type: ignore[attr-defined]


@pytest.mark.skipif(not CORPUS.exists(), reason="the shared corpus is not next to the project")
def test_same_points_on_the_corpus() -> None:
    documents = documents_of([labelled.as_request() for labelled in load_corpus()])
    assert len(documents) > 50
    for document in documents:
        assert_same_points("body.json", document)


def test_same_points_on_generated_traffic() -> None:
    documents = documents_of(generated_requests())
    assert len(documents) > 1000
    for document in documents:
        assert_same_points("header.authorization.jwt", document, "jwt")


_TEXT = st.text(
    alphabet=st.characters(codec="utf-8") | st.sampled_from(["\ud800", "é", "\U0001f600", "."]), max_size=12
)
_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | _TEXT
_JSON = st.recursive(
    _SCALARS,
    lambda children: st.lists(children, max_size=8) | st.dictionaries(_TEXT, children, max_size=8),
    max_leaves=80,
)


@settings(max_examples=500, deadline=None)
@given(_JSON, _TEXT, st.sampled_from(["json", "jwt"]))
def test_same_points_on_any_document(document: Any, prefix: str, kind: str) -> None:
    assert_same_points(prefix, document, kind)


def test_long_texts_deep_and_wide_documents() -> None:
    long_text = "A" * (MAX_POINT_CHARS + 1) + "é" + "B" * 5000 + "\U0001f600"
    deep: Any = "bottom"
    for level in range(5000):  # deeper than json.loads would nest, and past the node limit
        deep = {f"l{level}": deep} if level % 2 else [deep, level]
    documents = [
        {long_text: long_text, "k": [long_text[: MAX_POINT_CHARS - 1]]},
        long_text,
        deep,
        list(range(10_000)),
        {f"k{index}": {"v": index, "w": [None, True, 1.5, "x"]} for index in range(3000)},
        [],
        {},
        None,
        True,
        0,
        -1.5e300,
        float("nan"),
    ]
    for document in documents:
        assert_same_points("body.json", document)
    assert len(compiled_points("body.json", list(range(10_000)))) == 1999  # the list, then 1999 items


class Loud:
    def __str__(self) -> str:
        return "loud"


class Broken:
    def __str__(self) -> str:
        raise ValueError("no text")


class Shouting(str):
    def __str__(self) -> str:
        return self.upper()


def test_values_json_does_not_make_are_named_as_the_reference_names_them() -> None:
    documents = [
        {1: "one", 2.5: [Loud()], None: (1, 2), Shouting("key"): Shouting("value")},
        [Loud(), (), frozenset(), 10**30, True, Shouting("x" * (MAX_POINT_CHARS + 5))],
    ]
    for document in documents:
        assert_same_points("p", document)


def test_an_error_in_a_value_propagates_after_the_same_points() -> None:
    document = {"a": "first", "b": Broken(), "c": "never"}
    reference: list[RequestPoint] = []
    with pytest.raises(ValueError, match="no text"):
        python_add_json_points(reference, "p", document, "json")
    found: list[RequestPoint] = []
    with pytest.raises(ValueError, match="no text"):
        compiled(RequestPoint, found, "p", document, "json")
    assert found == reference


def test_wrong_arguments_raise_type_errors() -> None:
    for arguments in (
        (RequestPoint, [], "p", {}),
        (dict, [], "p", {}, "json"),
        ("RequestPoint", [], "p", {}, "json"),
        (RequestPoint, (), "p", {}, "json"),
        (RequestPoint, [], b"p", {}, "json"),
    ):
        with pytest.raises(TypeError):
            compiled(*arguments)


def test_no_reference_is_leaked_or_lost() -> None:
    leaf = "".join(["le", "af"])  # not interned: its count is this test's alone
    key = "".join(["ke", "y"])
    document = {key: [leaf, {key: leaf}], "n": 12345678901234567890}
    before = (sys.getrefcount(document), sys.getrefcount(leaf), sys.getrefcount(key))
    for _ in range(1000):
        compiled_points("body.json", document)
    with pytest.raises(ValueError, match="no text"):
        compiled(RequestPoint, [], "p", [leaf, Broken(), key, {key: leaf}], "json")
    assert (sys.getrefcount(document), sys.getrefcount(leaf), sys.getrefcount(key)) == before
    points = compiled_points("body.json", document)
    assert points[0] == RequestPoint("body.json.n", "n", "json_key")
    assert ("body.json.key.0", leaf, "json") in points


def test_without_the_extension_the_reference_walks() -> None:
    """A source tree without `pip install`: the import fails and the Python reference is used."""
    script = (
        "import sys; sys.modules['oob_analyzer.detection._json_points'] = None\n"
        "from oob_analyzer.detection import body_points\n"
        "assert body_points.add_json_points is body_points.python_add_json_points\n"
        "print(body_points.json_points('body.json', {'a': [1, 'x']}))\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=PROJECT)
    assert run.stdout.strip() == str(compiled_points("body.json", {"a": [1, "x"]}))
