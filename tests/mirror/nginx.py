"""A real nginx on loopback, configured from the NGINX block of docs/mirroring.md.

The test and the benchmark run the documented configuration itself: only the addresses are
replaced, and each replacement must find its text, so the docs cannot drift from what is
tested. nginx runs in the foreground with its own prefix in a temporary directory.
"""

from __future__ import annotations

import re
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.paths import PROJECT

DOCS = PROJECT / "docs" / "mirroring.md"

# nginx in the foreground with its own files in the temporary directory; `{http}` is the
# http block's own content.
_MAIN = """\
daemon off;
master_process on;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    keepalive_requests 1000000;  # the benchmark's long keep-alive runs
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    client_body_buffer_size 1m;
{http}
}}
"""

# Around the documented block: the application it proxies to, answering 200.
_APP = """\
    upstream app {{ server 127.0.0.1:{app_port}; keepalive 16; }}
    server {{ listen 127.0.0.1:{app_port}; location / {{ return 200 "ok\\n"; }} }}
"""


def nginx_main_config(prefix: Path, http: str) -> str:
    return _MAIN.format(prefix=prefix, http=http)


def documented_nginx_block() -> str:
    match = re.search(r"```nginx\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.DOTALL)
    assert match is not None, f"no nginx block in {DOCS}"
    return match.group(1)


def _replace(text: str, old: str, new: str) -> str:
    assert old in text, f"docs/mirroring.md's nginx block no longer contains {old!r}"
    return text.replace(old, new)


def nginx_config(prefix: Path, *, port: int, app_port: int, mirror_port: int | None) -> str:
    """The documented block on loopback ports; `mirror_port=None` gives the same server without mirroring."""
    block = documented_nginx_block()
    block = _replace(block, "server 10.0.0.9:8445;", f"server 127.0.0.1:{mirror_port or 9};")
    block = _replace(block, "listen 80;", f"listen 127.0.0.1:{port};")
    block = _replace(block, "set_real_ip_from 10.0.0.0/8;", "set_real_ip_from 127.0.0.1;")
    if mirror_port is None:
        block = _replace(block, "mirror /_oob_analyzer_mirror;", "")
    return nginx_main_config(prefix, _APP.format(app_port=app_port) + block)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


@contextmanager
def running_nginx(nginx: str, prefix: Path, *, mirror_port: int | None) -> Iterator[int]:
    """nginx serving the documented config; yields the port to send requests to."""
    port, app_port = free_port(), free_port()
    with started_nginx([nginx], prefix, nginx_config(prefix, port=port, app_port=app_port, mirror_port=mirror_port)):
        wait_for_port(port)
        yield port


@contextmanager
def started_nginx(command: list[str], prefix: Path, config: str) -> Iterator[None]:
    """nginx (`command`: its path, after a wrapper such as taskset if wanted) running `config`."""
    prefix.mkdir(parents=True, exist_ok=True)
    config_path = prefix / "nginx.conf"
    config_path.write_text(config)
    process = subprocess.Popen(
        [*command, "-p", str(prefix), "-c", str(config_path), "-e", str(prefix / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        yield
    except OSError:
        if process.poll() is not None:  # it exited: say why
            _, stderr = process.communicate()
            raise RuntimeError(f"nginx did not start: {stderr.decode(errors='replace')}") from None
        raise
    finally:
        process.terminate()
        process.communicate(timeout=10)
