"""The real client, server and host of a mirrored request: sans-I/O, fed values."""

from __future__ import annotations

import ipaddress
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from capture.mirror_origin import MIRROR_TUNNEL_KIND, OriginResolver, parse_ip, strip_shadow_suffix
from reassembly.events import FlowKey, HttpRequest
from tests.builders import http_request

PROXY = "10.1.2.3"
LISTENER = FlowKey(client=PROXY, client_port=51000, server="10.9.9.9", server_port=8445)
TRUSTING_PROXIES = OriginResolver([ipaddress.ip_network("10.0.0.0/8")])


def mirrored(*headers: tuple[str, str], peer: str = PROXY) -> HttpRequest:
    return replace(
        http_request("/search?q=1", headers=(("Host", "shop.example.com"), *headers)),
        flow=replace(LISTENER, client=peer),
    )


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("api.example.com-shadow:8443", ("api.example.com:8443", True)),
        ("api.example.com-shadow", ("api.example.com", True)),
        ("API.example.com-SHADOW:80", ("API.example.com:80", True)),
        ("api.example.com:8443", ("api.example.com:8443", False)),
        ("shadow.example.com", ("shadow.example.com", False)),
        ("my-shadow-api.example.com", ("my-shadow-api.example.com", False)),
        ("-shadow", ("-shadow", False)),
        ("", ("", False)),
    ],
)
def test_shadow_suffix_is_removed_only_at_the_end_of_the_name(host: str, expected: tuple[str, bool]) -> None:
    assert strip_shadow_suffix(host) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("203.0.113.7", "203.0.113.7"),
        (" 203.0.113.7 ", "203.0.113.7"),
        ("203.0.113.7:4711", "203.0.113.7"),
        ("2001:db8::7", "2001:db8::7"),
        ("[2001:db8::7]:4711", "2001:db8::7"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("fe80::1%eth0", "fe80::1"),
        ("unknown", None),
        ("", None),
        ("999.1.1.1", None),
    ],
)
def test_parse_ip_reads_the_forms_proxies_write(text: str, expected: str | None) -> None:
    parsed = parse_ip(text)
    assert (None if parsed is None else str(parsed)) == expected


def test_trusted_peer_forwarded_for_is_walked_from_the_right_skipping_trusted_hops() -> None:
    request = mirrored(("X-Forwarded-For", "198.51.100.1, 203.0.113.7, 10.0.0.5"))
    origin = TRUSTING_PROXIES.origin(request)
    # 10.0.0.5 is a trusted proxy; 203.0.113.7 is the first hop we cannot vouch for. The
    # leftmost entry is whatever the client wrote, and is not believed.
    assert (origin.client, origin.client_port) == ("203.0.113.7", 0)
    assert origin.anomalies == ()


def test_several_forwarded_for_lines_are_one_list() -> None:
    request = mirrored(("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-For", "10.0.0.5"))
    assert TRUSTING_PROXIES.origin(request).client == "203.0.113.7"


def test_only_trusted_hops_gives_the_leftmost() -> None:
    assert TRUSTING_PROXIES.origin(mirrored(("X-Forwarded-For", "10.0.0.7, 10.0.0.5"))).client == "10.0.0.7"


def test_an_unreadable_hop_stops_the_walk_and_is_named() -> None:
    origin = TRUSTING_PROXIES.origin(mirrored(("X-Forwarded-For", "203.0.113.7, garbage, 10.0.0.5")))
    assert origin.client == "10.0.0.5"
    assert origin.anomalies == ("mirror_forwarded_for_invalid",)


def test_real_ip_is_used_when_there_is_no_forwarded_for() -> None:
    assert TRUSTING_PROXIES.origin(mirrored(("X-Real-IP", "203.0.113.9"))).client == "203.0.113.9"
    invalid = TRUSTING_PROXIES.origin(mirrored(("X-Real-IP", "nope")))
    assert (invalid.client, invalid.anomalies) == (PROXY, ("mirror_real_ip_invalid",))


def test_untrusted_peer_headers_are_ignored_and_named() -> None:
    request = mirrored(
        ("X-Forwarded-For", "203.0.113.7"),
        ("X-Real-IP", "203.0.113.7"),
        ("X-Server-Addr", "192.0.2.80"),
        ("X-Server-Port", "443"),
        peer="192.0.2.66",
    )
    origin = TRUSTING_PROXIES.origin(request)
    assert (origin.client, origin.client_port) == ("192.0.2.66", 51000)
    assert (origin.server, origin.server_port) == ("10.9.9.9", 8445)
    assert origin.anomalies == ("mirror_forwarding_from_untrusted_peer",)


def test_nothing_is_trusted_by_default() -> None:
    origin = OriginResolver().origin(mirrored(("X-Forwarded-For", "203.0.113.7")))
    assert origin.client == PROXY


def test_server_address_port_and_request_id_from_a_trusted_proxy() -> None:
    request = mirrored(("X-Server-Addr", "192.0.2.80"), ("X-Server-Port", "443"), ("X-Request-ID", "f00d"))
    origin = TRUSTING_PROXIES.origin(request)
    assert (origin.server, origin.server_port, origin.request_id) == ("192.0.2.80", 443, "f00d")


@pytest.mark.parametrize(
    ("addr", "port", "anomalies"),
    [
        ("not-an-ip", "443", ("mirror_server_addr_invalid",)),
        ("192.0.2.80", "99999", ("mirror_server_port_invalid",)),
        ("192.0.2.80", "0", ("mirror_server_port_invalid",)),
        ("192.0.2.80", "http", ("mirror_server_port_invalid",)),
        ("192.0.2.80", "\u00b2", ("mirror_server_port_invalid",)),  # a digit to str.isdigit, not to int()
    ],
)
def test_bad_server_headers_fall_back_to_the_listener_and_are_named(
    addr: str, port: str, anomalies: tuple[str, ...]
) -> None:
    origin = TRUSTING_PROXIES.origin(mirrored(("X-Server-Addr", addr), ("X-Server-Port", port)))
    assert origin.anomalies == anomalies
    assert origin.server in {"192.0.2.80", "10.9.9.9"} and origin.server_port in {443, 8445}


def test_resolve_rewrites_flow_host_and_keeps_the_mirror_hop_as_tunnel() -> None:
    request = replace(
        mirrored(("X-Forwarded-For", "203.0.113.7"), ("X-Server-Addr", "192.0.2.80"), ("X-Server-Port", "443")),
        headers=(
            ("Host", "api.example.com-shadow:8443"),
            ("X-Forwarded-For", "203.0.113.7"),
            ("X-Server-Addr", "192.0.2.80"),
            ("X-Server-Port", "443"),
        ),
    )
    resolved = TRUSTING_PROXIES.resolve(request)
    assert resolved.flow == FlowKey(
        client="203.0.113.7",
        client_port=0,
        server="192.0.2.80",
        server_port=443,
        tunnel=((MIRROR_TUNNEL_KIND, "10.1.2.3>10.9.9.9", 0),),
    )
    assert resolved.host == "api.example.com:8443"
    assert resolved.headers[1:] == request.headers[1:]
    assert resolved.anomalies == ("mirror_shadow_host",)
    assert (resolved.method, resolved.target, resolved.body) == (request.method, request.target, request.body)


header_text = st.text(st.characters(min_codepoint=0, max_codepoint=255), max_size=60)


@given(forwarded=header_text, real_ip=header_text, server=header_text, port=header_text, host=header_text)
def test_resolve_never_raises_and_the_client_is_an_address(
    forwarded: str, real_ip: str, server: str, port: str, host: str
) -> None:
    request = replace(
        mirrored(("X-Forwarded-For", forwarded), ("X-Real-IP", real_ip), ("X-Server-Addr", server)),
        headers=(("Host", host), ("X-Forwarded-For", forwarded), ("X-Server-Addr", server), ("X-Server-Port", port)),
    )
    resolved = TRUSTING_PROXIES.resolve(request)
    assert parse_ip(resolved.flow.client) is not None
    assert parse_ip(resolved.flow.server) is not None
    assert 0 < resolved.flow.server_port < 65536


def test_client_port_is_known_only_when_the_peer_is_the_client() -> None:
    bare = TRUSTING_PROXIES.origin(mirrored())
    assert (bare.client, bare.client_port) == (PROXY, 51000)
    # The proxy says the client is itself: the address is right, but the port we see is the proxy's.
    itself = TRUSTING_PROXIES.origin(mirrored(("X-Forwarded-For", PROXY)))
    assert (itself.client, itself.client_port) == (PROXY, 0)
