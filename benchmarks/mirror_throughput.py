"""Mirror receiver speed: sustained requests/s on one core, and what mirroring costs nginx.

    .venv/bin/python benchmarks/mirror_throughput.py [--seconds 10] [--connections 32]

Needs wrk (Debian package `wrk`) and nginx. Three measurements, each against a peer run
in the same invocation on the same machine:

1. `oob-analyzer mirror-server` (the real command, detection on, SQLite store), pinned to
   one core, loaded by wrk pinned to the other with a mix of clean requests and attacks
   (1 in 8). Reported: answered/s (wrk), analyzed/s and drops (the server's summary). Peer:
   nginx answering `return 204` with one worker on the same core: the ratio says how far
   we are from a C server that does nothing at all. Target: >= 5,000/s with no drops.
2. nginx with the documented mirror block (docs/mirroring.md, as the test runs it) in
   front of a `return 200` app, mirror on (to the receiver) vs the same config with the
   `mirror` line removed, same wrk load: p99 latency difference. Target: <= 1 ms.

Figures on a shared 2-core machine are noisy: run it twice and read both.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

from tests.mirror.nginx import free_port, running_nginx, wait_for_port  # noqa: E402

COMMAND = str(Path(sys.executable).parent / "oob-analyzer")
SERVER_CORE, LOAD_CORE = 1, 0

# wrk rotates through these; 1 in 8 is an attack, the rest look like API traffic.
WRK_SCRIPT = r"""
local requests = {
  wrk.format("GET", "/products?id=42&sort=price", {["Host"] = "shop.example.com"}),
  wrk.format("GET", "/products?id=1%27%20OR%20%271%27%3D%271", {["Host"] = "shop.example.com"}),
  wrk.format("GET", "/search?q=blue+shoes&page=2", {["Host"] = "shop.example.com"}),
  wrk.format("POST", "/cart", {["Host"] = "shop.example.com", ["Content-Type"] = "application/x-www-form-urlencoded"},
             "item=1234&qty=2&note=gift+wrap"),
  wrk.format("GET", "/static/app.js?v=20261121", {["Host"] = "shop.example.com"}),
  wrk.format("GET", "/account/orders?limit=20&offset=40", {["Host"] = "shop.example.com"}),
  wrk.format("GET", "/", {["Host"] = "shop.example.com", ["X-Forwarded-For"] = "203.0.113.7"}),
  wrk.format("GET", "/api/v1/items?filter=color:red&fields=id,name", {["Host"] = "shop.example.com"}),
}
local i = 0
request = function()
  i = i % #requests + 1
  return requests[i]
end
"""

NGINX_204 = """\
daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server {{ listen 127.0.0.1:{port}; location / {{ return 204; }} }}
}}
"""


@dataclass
class WrkResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: str


def run_wrk(port: int, seconds: int, connections: int, script: Path) -> WrkResult:
    output = subprocess.run(
        ["taskset", "-c", str(LOAD_CORE), "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency",
         "-s", str(script), f"http://127.0.0.1:{port}/"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    assert rate is not None, output
    errors = re.search(r"Socket errors:.*|Non-2xx or 3xx responses:.*", output)
    return WrkResult(
        requests_per_second=float(rate.group(1)),
        p50_ms=_latency(output, "50%"),
        p99_ms=_latency(output, "99%"),
        errors=errors.group(0) if errors else "",
    )


def _latency(output: str, percentile: str) -> float:
    match = re.search(rf"^\s+{re.escape(percentile)}\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
    assert match is not None, output
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


@contextmanager
def mirror_server(db: Path) -> Iterator[tuple[int, list[str]]]:
    """The real command pinned to one core; yields its port and, after exit, its output lines."""
    process = subprocess.Popen(
        ["taskset", "-c", str(SERVER_CORE), COMMAND, "mirror-server", "--listen", "127.0.0.1:0",
         "--db", f"sqlite:///{db}", "--trusted", "127.0.0.1/32"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert process.stdout is not None
    first = process.stdout.readline()
    if not first.startswith("listening on"):
        process.kill()
        raise RuntimeError(f"mirror-server did not start: {first}{process.stdout.read()}")
    lines: list[str] = []
    try:
        yield int(first.rsplit(":", 1)[1]), lines
    finally:
        process.send_signal(signal.SIGTERM)
        rest, _ = process.communicate(timeout=120)
        lines.extend(rest.splitlines())


@contextmanager
def nginx_204(nginx: str, prefix: Path) -> Iterator[int]:
    prefix.mkdir(parents=True)
    port = free_port()
    (prefix / "nginx.conf").write_text(NGINX_204.format(prefix=prefix, port=port))
    process = subprocess.Popen(
        ["taskset", "-c", str(SERVER_CORE), nginx, "-p", str(prefix), "-c", str(prefix / "nginx.conf"),
         "-e", str(prefix / "error.log")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_port(port)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def summary_numbers(line: str) -> dict[str, int]:
    return {name: int(count) for count, name in re.findall(r"(\d+) ([a-z]+)", line)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--nginx-connections", type=int, default=16)
    args = parser.parse_args()
    nginx = shutil.which("nginx", path="/usr/sbin:/usr/bin:/sbin")
    if nginx is None or shutil.which("wrk") is None or shutil.which("taskset") is None:
        sys.exit("needs nginx, wrk and taskset (apt-get install nginx-light wrk util-linux)")
    with tempfile.TemporaryDirectory(prefix="oob7-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        script = tmp / "requests.lua"
        script.write_text(WRK_SCRIPT)

        print(f"1. receiver on core {SERVER_CORE}, wrk on core {LOAD_CORE}, {args.connections} connections, {args.seconds}s")
        with mirror_server(tmp / "throughput.db") as (port, output):
            ours = run_wrk(port, args.seconds, args.connections, script)
        summary = summary_numbers(output[-1])
        analyzed_per_second = summary["analyzed"] / args.seconds
        with nginx_204(nginx, tmp / "nginx-204") as port:
            peer = run_wrk(port, args.seconds, args.connections, script)
        print(f"   oob-analyzer mirror-server: {ours.requests_per_second:,.0f} answered/s, "
              f"~{analyzed_per_second:,.0f} analyzed/s, {summary['dropped']} dropped, {summary['hits']} hits, "
              f"p99 {ours.p99_ms:.2f} ms {ours.errors}")  # fmt: skip
        print(f"   peer nginx 'return 204':    {peer.requests_per_second:,.0f} answered/s, p99 {peer.p99_ms:.2f} ms")
        print(f"   ratio ours/nginx: {ours.requests_per_second / peer.requests_per_second:.2f}")
        print(f"   summary: {output[-1]}")

        print(f"2. nginx (documented config) p99, mirror off vs on, {args.nginx_connections} connections")
        with running_nginx(nginx, tmp / "nginx-off", mirror_port=None) as port:
            off = run_wrk(port, args.seconds, args.nginx_connections, script)
        with mirror_server(tmp / "latency.db") as (mirror_port, output):
            with running_nginx(nginx, tmp / "nginx-on", mirror_port=mirror_port) as port:
                on = run_wrk(port, args.seconds, args.nginx_connections, script)
        for name, result in (("off", off), ("on ", on)):
            print(f"   mirror {name}: {result.requests_per_second:,.0f} req/s, p50 {result.p50_ms:.2f} ms, "
                  f"p99 {result.p99_ms:.2f} ms {result.errors}")  # fmt: skip
        print(f"   p99 added by mirroring: {on.p99_ms - off.p99_ms:+.2f} ms (target <= 1 ms)")
        print(f"   receiver summary: {output[-1]}")


if __name__ == "__main__":
    main()
