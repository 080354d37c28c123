"""End to end with a real nginx: attacks sent to nginx are mirrored to `oob-analyzer
mirror-server` (the real command, in its own process) and recorded with the client nginx
resolved through real_ip and the host the client asked for."""

from __future__ import annotations

from pathlib import Path

from tests.mirror.command import mirror_server, send, wait_for_hits
from tests.mirror.nginx import running_nginx
from tests.system import require_command


def test_attacks_through_nginx_are_recorded_with_the_client_nginx_resolved(tmp_path: Path, sqlite_url: str) -> None:
    nginx = require_command("nginx")
    with (
        mirror_server(sqlite_url, "--trusted", "127.0.0.1/32") as mirror,
        running_nginx(nginx, tmp_path / "nginx", mirror_port=mirror.port) as nginx_port,
    ):
        host = {"Host": "shop.example.com"}
        # A load balancer in front of nginx (127.0.0.1, in set_real_ip_from) says who the client is.
        assert send(nginx_port, "GET", "/products?id=1%27%20OR%20%271%27%3D%271",
                    headers={**host, "X-Forwarded-For": "203.0.113.7"}) == 200  # fmt: skip
        assert send(nginx_port, "POST", "/comments", body=b"comment=<img src=x onerror=alert(1)>",
                    headers={**host, "X-Forwarded-For": "198.51.100.23",
                             "Content-Type": "application/x-www-form-urlencoded"}) == 200  # fmt: skip
        assert send(nginx_port, "GET", "/products?id=42", headers={**host, "X-Forwarded-For": "203.0.113.7"}) == 200
        # No load balancer: nginx's client is the connecting address.
        assert send(nginx_port, "GET", "/search?q=%3Cscript%3Ealert(1)%3C/script%3E",
                    headers={"Host": "www.example.org:8080"}) == 200  # fmt: skip
        hits = wait_for_hits(sqlite_url, 3)
        exit_code, output = mirror.stop()
    assert exit_code == 0, output
    assert (
        "4 requests answered, 0 incomplete, 0 dropped (queue full), 0 connections refused, 4 analyzed, 3 hits" in output
    )
    assert sorted((h.type, h.src_ip, h.src_port, h.dst_ip, h.dst_port, h.host, h.method, h.point) for h in hits) == [
        ("sqli", "203.0.113.7", 0, "127.0.0.1", nginx_port, "shop.example.com", "GET", "query.id"),
        ("xss", "127.0.0.1", 0, "127.0.0.1", nginx_port, "www.example.org:8080", "GET", "query.q"),
        ("xss", "198.51.100.23", 0, "127.0.0.1", nginx_port, "shop.example.com", "POST", "body.form.comment"),
    ]


def test_nginx_not_trusted_its_forwarded_for_is_ignored(tmp_path: Path, sqlite_url: str) -> None:
    nginx = require_command("nginx")
    with (
        mirror_server(sqlite_url, "--trusted", "10.0.0.0/8") as mirror,
        running_nginx(nginx, tmp_path / "nginx", mirror_port=mirror.port) as nginx_port,
    ):
        headers = {"Host": "shop.example.com", "X-Forwarded-For": "203.0.113.7"}
        assert send(nginx_port, "GET", "/products?id=1%27%20OR%20%271%27%3D%271", headers=headers) == 200
        [hit] = wait_for_hits(sqlite_url, 1)
        exit_code, _ = mirror.stop()
    assert exit_code == 0
    # The peer (nginx) is not trusted: the hit's source is nginx itself, the port it connected from.
    assert (hit.src_ip, hit.dst_port, hit.host) == ("127.0.0.1", mirror.port, "shop.example.com")
    assert hit.src_port > 0
