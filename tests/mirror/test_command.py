"""The real command, sent to directly as Envoy or Istio would, and stopped with SIGINT."""

from __future__ import annotations

import signal

from tests.mirror.command import mirror_server, send, wait_for_hits


def test_envoy_shadow_request_through_the_command_then_sigint(sqlite_url: str) -> None:
    with mirror_server(sqlite_url, "--trusted", "127.0.0.0/8") as mirror:
        headers = {
            "Host": "api.example.com-shadow:8443",
            "X-Forwarded-For": "198.51.100.1, 203.0.113.7",
            "X-Request-Id": "6f1c2c9e-7c55-4d0e-a4f4-2a7d8c1e9b10",
            "X-Envoy-Expected-Rq-Timeout-Ms": "15000",
        }
        assert send(mirror.port, "GET", "/v1/users?id=1%27%20OR%20%271%27%3D%271", headers=headers) == 204
        [hit] = wait_for_hits(sqlite_url, 1)
        exit_code, output = mirror.stop(signal.SIGINT)
    assert exit_code == 0, output
    assert (
        "1 requests answered, 0 incomplete, 0 dropped (queue full), 0 connections refused, 1 analyzed, 1 hits" in output
    )
    assert (hit.src_ip, hit.src_port, hit.host, hit.type, hit.point) == (
        "203.0.113.7",
        0,
        "api.example.com:8443",
        "sqli",
        "query.id",
    )
