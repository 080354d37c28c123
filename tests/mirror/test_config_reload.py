"""`mirror-server` with a config file: trusted proxies from it, applications, and SIGHUP reload."""

from __future__ import annotations

import select
import signal
import subprocess
from pathlib import Path

from tests.mirror.command import mirror_server, send, wait_for_hits

CONFIG = """\
applications:
  - id: {app}
    hosts: [shop.example.com]
trusted_proxies: [{trusted}]
"""
ATTACK = "/products?id=1%27%20OR%201%3D1--"


def test_sighup_swaps_the_applications_and_names_what_needs_a_restart(tmp_path: Path, sqlite_url: str) -> None:
    config = tmp_path / "oob.yaml"
    config.write_text(CONFIG.format(app="shop-v1", trusted="127.0.0.1/32"))
    headers = {"Host": "shop.example.com", "X-Forwarded-For": "198.18.0.7"}
    with mirror_server(sqlite_url, "--config", str(config)) as server:
        assert send(server.port, "GET", ATTACK, headers=headers) == 204
        first = wait_for_hits(sqlite_url, 1)
        assert [(hit.application, hit.src_ip) for hit in first] == [("shop-v1", "198.18.0.7")]  # trusted: from the file

        config.write_text(CONFIG.format(app="shop-v2", trusted="192.0.2.0/24"))
        server.process.send_signal(signal.SIGHUP)
        assert send(server.port, "GET", ATTACK + "&n=2", headers=headers) == 204
        second = wait_for_hits(sqlite_url, 2)
        # The receiver keeps the trusted proxies it started with: the client is still the forwarded one.
        assert [(hit.application, hit.src_ip) for hit in second] == [
            ("shop-v1", "198.18.0.7"),
            ("shop-v2", "198.18.0.7"),
        ]

        config.write_text("applications: {}\n")
        server.process.send_signal(signal.SIGHUP)
        assert send(server.port, "GET", ATTACK + "&n=3", headers=headers) == 204
        third = wait_for_hits(sqlite_url, 3)
        assert third[-1].application == "shop-v2"  # the invalid file changed nothing
        status, output = server.stop()
    assert status == 0, output
    assert f"config reloaded from {config}\n" in output
    assert f"{config}: trusted_proxies changed: applied only after a restart\n" in output
    assert f"config not reloaded, the running config stays: {config}:1: applications must be a list\n" in output


def stderr_line(process: subprocess.Popen[str], timeout: float) -> str:
    assert process.stderr is not None
    readable, _, _ = select.select([process.stderr], [], [], timeout)
    assert readable, f"nothing on stderr within {timeout} s"
    return process.stderr.readline()


def test_sighup_is_applied_at_once_not_when_the_next_request_comes(tmp_path: Path, sqlite_url: str) -> None:
    config = tmp_path / "oob.yaml"
    config.write_text(CONFIG.format(app="shop-v1", trusted="127.0.0.1/32"))
    with mirror_server(sqlite_url, "--config", str(config)) as server:
        config.write_text(CONFIG.format(app="shop-v2", trusted="127.0.0.1/32"))
        server.process.send_signal(signal.SIGHUP)
        assert stderr_line(server.process, timeout=5) == f"config reloaded from {config}\n"  # no request yet
        assert send(server.port, "GET", ATTACK, headers={"Host": "shop.example.com"}) == 204
        assert [hit.application for hit in wait_for_hits(sqlite_url, 1)] == ["shop-v2"]
        status, output = server.stop()
    assert status == 0, output
