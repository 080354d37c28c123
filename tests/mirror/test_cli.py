"""`oob-analyzer mirror-server` options: checked before anything listens."""

from __future__ import annotations

import socket

import pytest
from click.testing import CliRunner

from oob_analyzer.cli import main
from oob_analyzer.cli.exit_codes import ExitCode
from oob_analyzer.cli.mirror import LISTEN_ADDRESS


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--listen", "8445"], "is not ADDR:PORT"),
        (["--listen", "127.0.0.1:99999"], "is not ADDR:PORT"),
        (["--listen", "127.0.0.1:\u00b2"], "is not ADDR:PORT"),
        (["--listen", "localhost:8445"], "is not an IP address"),
        (["--trusted", "10.0.0.0/33"], "'10.0.0.0/33' is not an IP address or CIDR block"),
        (["--allow", "nope"], "'nope' is not an IP address or CIDR block"),
        (["--queue-size", "0"], "--queue-size"),
    ],
)
def test_bad_options_are_usage_errors(args: list[str], message: str, sqlite_url: str) -> None:
    result = CliRunner().invoke(main, ["mirror-server", "--db", sqlite_url, *args])
    assert result.exit_code == ExitCode.USAGE
    assert message in result.output


def test_an_address_in_use_is_a_clear_error(sqlite_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(main, ["mirror-server", "--listen", f"127.0.0.1:{port}", "--db", sqlite_url])
    assert result.exit_code == ExitCode.ERROR
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in result.output


def test_listen_accepts_ipv6_and_bare_port() -> None:
    assert LISTEN_ADDRESS.convert("[::1]:8445", None, None) == ("::1", 8445)
    assert LISTEN_ADDRESS.convert(":8445", None, None) == ("0.0.0.0", 8445)
    assert LISTEN_ADDRESS.convert("0.0.0.0:0", None, None) == ("0.0.0.0", 0)
