"""Point extraction gives exactly the points it gave before it was made cheap (issue 8).

`tests/detection/points_oracle.py` is a frozen copy of the implementation before the rewrite.
Every point, name, value, kind and order, must be the same on the shared corpus, on generated
benign traffic, on the held-out placements, and on whatever JSON, cookies, JWTs and requests
hypothesis builds.
"""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.detection_corpus import CORPUS, load_corpus
from benchmarks.detection_speed import generated_requests
from oob_analyzer.detection import points as current
from oob_analyzer.detection.body_points import json_points, jwt_claims
from oob_analyzer.detection.points import extract_points
from oob_analyzer.detection.request_point import RequestPoint
from reassembly.events import HttpRequest
from tests.builders import http_request
from tests.detection import points_oracle as oracle
from tests.detection.heldout import ATTACKS, BENIGN


def _points_by_part(request: HttpRequest) -> list[RequestPoint]:
    """The points the way the engine takes them: path, query, body and anomalies, each header."""
    path, _, query = request.target.partition("?")
    found = list(current.path_points(path))
    found += current.query_points(query)
    found += current.body_and_anomaly_points(request)
    for name, value in request.headers:
        found += current.header_points(name, value)
    return found


def _oracle_by_part(request: HttpRequest) -> list[RequestPoint]:
    path, _, query = request.target.partition("?")
    found = list(oracle.path_points(path))
    found += oracle.query_points(query)
    found += oracle.body_and_anomaly_points(request)
    for name, value in request.headers:
        found += oracle.header_points(name, value)
    return found


def _assert_same_points(request: HttpRequest) -> None:
    assert extract_points(request) == oracle.extract_points(request), request
    assert extract_points(request, headers=False) == oracle.extract_points(request, headers=False), request
    assert _points_by_part(request) == _oracle_by_part(request), request


@pytest.mark.skipif(not CORPUS.exists(), reason="the shared corpus is not next to the project")
def test_same_points_on_every_corpus_request() -> None:
    requests = [labelled.as_request() for labelled in load_corpus()]
    assert len(requests) == 820
    for request in requests:
        _assert_same_points(request)


def test_same_points_on_generated_benign_traffic() -> None:
    requests = generated_requests()
    # The traffic the rewrite is for: cookies, bearer JWTs, JSON and form bodies are all in it.
    every_point = [point for request in requests for point in extract_points(request)]
    assert {"jwt", "cookie", "json", "json_key", "body.form"} <= {point.kind for point in every_point}
    for request in requests:
        _assert_same_points(request)


def test_same_points_on_the_held_out_placements() -> None:
    texts = [payload for _, payload in ATTACKS] + list(BENIGN)
    for text in texts:
        encoded = quote(text, safe="")
        _assert_same_points(http_request(f"/a/{encoded}/b?q={encoded}&x"))
        _assert_same_points(
            http_request(
                "/",
                method="POST",
                body=json.dumps({"order": {"id": 7, "notes": [text], text: None}}).encode(),
                headers=(("Content-Type", "application/json"), ("Cookie", f"a={encoded}; {text}")),
            )
        )


# Hypothesis: JSON documents, cookie headers and JWTs built to reach every branch.

_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
_JSON = st.recursive(
    _SCALARS,
    lambda children: st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=8), children, max_size=6),
    max_leaves=60,
)
_TOKEN_TEXT = st.text(alphabet="eyJAaz09_-.=%+ ;\"'<>", max_size=30)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@st.composite
def _jwts(draw: st.DrawFn) -> str:
    """A JWT-shaped token: a real header, claims that are JSON (or not), any signature."""
    claims = draw(
        st.one_of(
            _JSON.map(lambda document: json.dumps(document).encode()),
            st.binary(max_size=30),
            st.just(b'{"sub": "x", "n": [1, {"k": "v"}]}'),
        )
    )
    payload = _b64url(claims)
    if not payload.startswith("eyJ"):
        payload = draw(st.sampled_from(["eyJ", "eyJ9" + payload, payload]))
    signature = draw(st.text(alphabet="AZaz09_-", max_size=12))
    return f"eyJhbGciOiJIUzI1NiJ9.{payload}.{signature}"


def _cookie_header(pairs: list[tuple[str, str]], separator: str) -> str:
    return separator.join(f"{name}={value}" if value else name for name, value in pairs)


@settings(max_examples=300, deadline=None)
@given(_JSON, st.sampled_from(["body.json", "cookie.s.jwt"]), st.sampled_from(["json", "jwt"]))
def test_json_points_match_on_any_document(document: Any, prefix: str, kind: str) -> None:
    assert list(json_points(prefix, document, kind=kind)) == list(oracle.json_points(prefix, document, kind=kind))


def test_json_points_match_past_the_node_limit() -> None:
    wide = {f"k{index}": [index, str(index), {"deep": [None, True, 1.5]}] for index in range(1500)}
    deep: Any = "bottom"
    for level in range(3000):
        deep = {f"l{level}": deep} if level % 2 else [deep, level]
    for document in (wide, deep, list(range(5000)), {"big": "x" * 20000}):
        assert list(json_points("body.json", document)) == list(oracle.json_points("body.json", document))


@settings(max_examples=300, deadline=None)
@given(st.lists(_jwts() | _TOKEN_TEXT, min_size=1, max_size=3), st.sampled_from(["Authorization", "X-Token"]))
def test_jwt_header_points_match(parts: list[str], header: str) -> None:
    value = "Bearer " + " ".join(parts)
    assert list(current.header_points(header, value)) == list(oracle.header_points(header, value))
    for token in parts:
        assert jwt_claims(token) == oracle.jwt_claims(token)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.text(alphabet="abc_ %=eyJ", max_size=6), _jwts() | _TOKEN_TEXT | st.text(max_size=10)),
        max_size=6,
    ),
    st.sampled_from(["; ", ";", " ; ", ";;"]),
)
def test_cookie_points_match(pairs: list[tuple[str, str]], separator: str) -> None:
    value = _cookie_header(pairs, separator)
    for name in ("Cookie", "cookie", "COOKIE"):
        assert list(current.header_points(name, value)) == list(oracle.header_points(name, value))


@settings(max_examples=300, deadline=None)
@given(
    target=st.text(alphabet="/?&=%2Fab.;[]$+ ", max_size=30).map(lambda text: "/" + text),
    headers=st.lists(
        st.tuples(
            st.sampled_from(["Cookie", "Content-Type", "Content-Encoding", "X-A", "Content-Length"]), _TOKEN_TEXT
        ),
        max_size=4,
    ),
    content_type=st.sampled_from(
        ["", "application/json", "application/x-www-form-urlencoded", "text/xml", "application/graphql", "text/plain"]
    ),
    body=st.one_of(
        _JSON.map(lambda document: json.dumps(document).encode()),
        st.text(alphabet="a=&%20{}[]<>\"'-\r\n", max_size=60).map(str.encode),
        st.binary(max_size=60),
    ),
)
def test_request_points_match(target: str, headers: list[tuple[str, str]], content_type: str, body: bytes) -> None:
    fields = tuple(headers) + ((("Content-Type", content_type),) if content_type else ())
    _assert_same_points(http_request(target, method="POST", body=body, headers=fields))
