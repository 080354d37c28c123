from __future__ import annotations

import base64
import gzip
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from oob_analyzer.detection import extract_points
from oob_analyzer.detection.request_point import MAX_POINT_CHARS
from tests.builders import http_request

HOST = ("Host", "api.example.com")


def points(target: str = "/", *, body: bytes = b"", headers: tuple[tuple[str, str], ...] = ()) -> list[tuple[str, str]]:
    request = http_request(target, method="POST" if body else "GET", body=body, headers=(HOST, *headers))
    return [(p.name, p.value) for p in extract_points(request) if p.name != "header.host"]


def test_path_and_each_segment() -> None:
    assert points("/api/v1/users%2F..%2Fadmin") == [
        ("path", "/api/v1/users/../admin"),
        ("path.0", "api"),
        ("path.1", "v1"),
        ("path.2", "users/../admin"),
    ]


def test_query_brackets_repeats_and_odd_names() -> None:
    assert points("/?a[]=1&a[]=2&u[name]=x&p[$ne]=1") == [
        ("path", "/"),
        ("query.a[]", "1"),
        ("query.a[]", "2"),
        ("query.u[name]", "x"),
        ("query.p[$ne]", "1"),
        ("query.p[$ne]", "p[$ne]"),
        ("query", "a[]=1&a[]=2&u[name]=x&p[$ne]=1"),
    ]


def test_json_keys_and_values_are_named_by_their_path() -> None:
    body = json.dumps({"user": {"name": "bob", "tags": ["a", 2]}, "ok": True}).encode()
    found = points("/", body=body, headers=(("Content-Type", "application/json"),))
    assert ("body.json.user.name", "bob") in found
    assert ("body.json.user.tags.0", "a") in found
    assert ("body.json.user.tags.1", "2") in found
    assert ("body.json.user", "user") in found  # the key itself is a point


def test_multipart_names_filenames_and_contents() -> None:
    body = (
        b'--Bnd\r\nContent-Disposition: form-data; name="avatar"; filename="../../x.php"\r\n'
        b"Content-Type: image/png\r\n\r\n<?php echo 1; ?>\r\n--Bnd\r\n"
        b'Content-Disposition: form-data; name="bio"\r\n\r\nhello\r\n--Bnd--\r\n'
    )
    found = points("/", body=body, headers=(("Content-Type", "multipart/form-data; boundary=Bnd"),))
    assert ("body.multipart.avatar.filename", "../../x.php") in found
    assert ("body.multipart.avatar", "<?php echo 1; ?>") in found
    assert ("body.multipart.bio", "hello") in found


def test_xml_text_attributes_and_whole_document() -> None:
    body = b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY e SYSTEM "file:///x">]><a id="7"><b>hi</b><![CDATA[raw]]></a>'
    found = points("/", body=body, headers=(("Content-Type", "text/xml"),))
    assert ("body.xml", body.decode()) in found
    assert ("body.xml.a@id", "7") in found
    assert ("body.xml.text", "hi") in found
    assert ("body.xml.cdata", "raw") in found


def test_graphql_query_and_variables() -> None:
    body = json.dumps({"query": "query Q($id: ID!) { user(id: $id) { name } }", "variables": {"id": "1"}}).encode()
    found = points("/graphql", body=body, headers=(("Content-Type", "application/json"),))
    assert ("body.graphql.query", "query Q($id: ID!) { user(id: $id) { name } }") in found
    assert ("body.json.variables.id", "1") in found


def test_cookies_headers_and_jwt_claims() -> None:
    claims = base64.urlsafe_b64encode(json.dumps({"sub": "alice", "role": "admin"}).encode()).rstrip(b"=").decode()
    token = f"eyJhbGciOiJIUzI1NiJ9.{claims}.c2ln"
    found = points("/", headers=(("Cookie", "sid=abc; pref=dark%20mode"), ("Authorization", f"Bearer {token}")))
    assert ("cookie.sid", "abc") in found
    assert ("cookie.pref", "dark mode") in found
    assert ("header.authorization", f"Bearer {token}") in found
    assert ("header.authorization.jwt.role", "admin") in found


def test_gzip_body_and_unparsable_body_are_still_inspected() -> None:
    zipped = gzip.compress(b"name=x%27--")
    found = points(
        "/",
        body=zipped,
        headers=(("Content-Type", "application/x-www-form-urlencoded"), ("Content-Encoding", "gzip")),
    )
    assert ("body.form.name", "x'--") in found
    assert ("body", "{not json") in points("/", body=b"{not json", headers=(("Content-Type", "application/json"),))


def test_huge_values_keep_head_and_tail() -> None:
    value = "A" * 100_000 + ";id"
    [(_, inspected)] = [p for p in points("/", body=f"x={value}".encode(), headers=()) if p[0] == "body.form.x"]
    assert len(inspected) <= MAX_POINT_CHARS + 1
    assert inspected.endswith(";id")


def test_anomalies_are_a_point() -> None:
    request = http_request("/")
    request = type(request)(
        **{**{f: getattr(request, f) for f in request.__dataclass_fields__}, "anomalies": ("obs_fold",)}
    )
    assert [(p.kind, p.value) for p in extract_points(request)][-1] == ("anomaly", "obs_fold")


@settings(max_examples=200, deadline=None)
@given(
    st.binary(max_size=400), st.sampled_from(["application/json", "text/xml", "multipart/form-data; boundary=b", ""])
)
def test_any_body_gives_points_without_raising(body: bytes, content_type: str) -> None:
    headers = (("Content-Type", content_type),) if content_type else ()
    found = points("/", body=body, headers=headers)
    assert found[0] == ("path", "/")
