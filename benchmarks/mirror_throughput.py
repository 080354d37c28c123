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
   `mirror` line removed: p99 latency difference. Target: <= 1 ms. Measured twice:
   a. at a fixed rate (`--rate`, open loop: latency counted from when each request was due,
      so a stall is not hidden by the client waiting), the figure the target is about;
   b. with wrk at full speed (closed loop), where the machine's two cores are shared by
      wrk, nginx, the app and the receiver: there the p99 measures CPU contention too.

Figures on a shared 2-core machine are noisy: run it twice and read both.
"""

from __future__ import annotations

import argparse
import asyncio
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

from tests.mirror.nginx import free_port, nginx_main_config, running_nginx, started_nginx, wait_for_port  # noqa: E402

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

NGINX_204 = "    server {{ listen 127.0.0.1:{port}; location / {{ return 204; }} }}"


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


PACED_REQUESTS = [
    b"GET /products?id=42&sort=price HTTP/1.1\r\nHost: shop.example.com\r\n\r\n",
    b"GET /products?id=1%27%20OR%20%271%27%3D%271 HTTP/1.1\r\nHost: shop.example.com\r\n"
    b"X-Forwarded-For: 203.0.113.7\r\n\r\n",
    b"POST /cart HTTP/1.1\r\nHost: shop.example.com\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    b"Content-Length: 30\r\n\r\nitem=1234&qty=2&note=gift+wrap",
    b"GET /account/orders?limit=20&offset=40 HTTP/1.1\r\nHost: shop.example.com\r\n\r\n",
]


async def _paced_connection(port: int, start: float, interval: float, end: float, latencies: list[float]) -> None:
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sent = 0
    while (due := start + sent * interval) < end:
        if (delay := due - loop.time()) > 0:
            await asyncio.sleep(delay)
        writer.write(PACED_REQUESTS[sent % len(PACED_REQUESTS)])
        head = await reader.readuntil(b"\r\n\r\n")
        length = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
        if length:
            await reader.readexactly(int(length.group(1)))
        latencies.append(loop.time() - due)
        sent += 1
    writer.close()


def paced_p99_ms(port: int, rate: int, seconds: int, connections: int = 8) -> tuple[float, float, int]:
    """(p50, p99) in ms and the number of requests, at `rate` requests/s over keep-alive connections."""

    async def run() -> list[float]:
        loop = asyncio.get_running_loop()
        latencies: list[float] = []
        start, interval = loop.time() + 0.1, connections / rate
        end = start + seconds
        await asyncio.gather(
            *(_paced_connection(port, start + k * interval / connections, interval, end, latencies)
              for k in range(connections))
        )  # fmt: skip
        return latencies

    previous = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {LOAD_CORE})
    try:
        latencies = sorted(asyncio.run(run()))
    finally:
        os.sched_setaffinity(0, previous)
    return latencies[len(latencies) // 2] * 1000, latencies[int(len(latencies) * 0.99)] * 1000, len(latencies)


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
    port = free_port()
    command = ["taskset", "-c", str(SERVER_CORE), nginx]
    with started_nginx(command, prefix, nginx_main_config(prefix, NGINX_204.format(port=port))):
        wait_for_port(port)
        yield port


def summary_numbers(line: str) -> dict[str, int]:
    return {name: int(count) for count, name in re.findall(r"(\d+) ([a-z]+)", line)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--nginx-connections", type=int, default=16)
    parser.add_argument("--rate", type=int, default=1000, help="requests/s for the open-loop latency run")
    args = parser.parse_args()
    nginx = shutil.which("nginx", path="/usr/sbin:/usr/bin:/sbin")
    if nginx is None or shutil.which("wrk") is None or shutil.which("taskset") is None:
        sys.exit("needs nginx, wrk and taskset (apt-get install nginx-light wrk util-linux)")
    with tempfile.TemporaryDirectory(prefix="oob7-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        script = tmp / "requests.lua"
        script.write_text(WRK_SCRIPT)

        cores = f"receiver on core {SERVER_CORE}, wrk on core {LOAD_CORE}"
        print(f"1. {cores}, {args.connections} connections, {args.seconds}s")
        with mirror_server(tmp / "throughput.db") as (port, output):
            ours = run_wrk(port, args.seconds, args.connections, script)
        # The receiver's own line (answered, dropped, analyzed, hits), before the run's summary line.
        summary = summary_numbers(next(line for line in reversed(output) if "requests answered" in line))
        analyzed_per_second = summary["analyzed"] / args.seconds
        with nginx_204(nginx, tmp / "nginx-204") as port:
            peer = run_wrk(port, args.seconds, args.connections, script)
        print(f"   oob-analyzer mirror-server: {ours.requests_per_second:,.0f} answered/s, "
              f"~{analyzed_per_second:,.0f} analyzed/s, {summary['dropped']} dropped, {summary['hits']} hits, "
              f"p99 {ours.p99_ms:.2f} ms {ours.errors}")  # fmt: skip
        print(f"   peer nginx 'return 204':    {peer.requests_per_second:,.0f} answered/s, p99 {peer.p99_ms:.2f} ms")
        print(f"   ratio ours/nginx: {ours.requests_per_second / peer.requests_per_second:.2f}")
        print(f"   summary: {output[-1]}")

        print(f"2a. nginx (documented config), mirror off vs on, {args.rate} requests/s for {args.seconds}s, open loop")
        paced = {}
        for mirrored in (False, True, False, True):  # interleaved, so drifting background load hits both
            with (
                receiver_if(mirrored, tmp) as mirror_port,
                running_nginx(nginx, tmp / f"nginx-paced-{len(paced)}", mirror_port=mirror_port) as port,
            ):
                paced.setdefault(mirrored, []).append(paced_p99_ms(port, args.rate, args.seconds))
        for mirrored, runs in paced.items():
            shown = ", ".join(f"p50 {p50:.2f} ms p99 {p99:.2f} ms ({count} requests)" for p50, p99, count in runs)
            print(f"   mirror {'on ' if mirrored else 'off'}: {shown}")
        best_off = min(p99 for _, p99, _ in paced[False])
        best_on = min(p99 for _, p99, _ in paced[True])
        print(f"   p99 added by mirroring (best of each): {best_on - best_off:+.2f} ms (target <= 1 ms)")

        print(f"2b. the same, wrk at full speed, {args.nginx_connections} connections")
        with running_nginx(nginx, tmp / "nginx-off", mirror_port=None) as port:
            off = run_wrk(port, args.seconds, args.nginx_connections, script)
        with (
            mirror_server(tmp / "latency.db") as (mirror_port, output),
            running_nginx(nginx, tmp / "nginx-on", mirror_port=mirror_port) as port,
        ):
            on = run_wrk(port, args.seconds, args.nginx_connections, script)
        for name, result in (("off", off), ("on ", on)):
            print(f"   mirror {name}: {result.requests_per_second:,.0f} req/s, p50 {result.p50_ms:.2f} ms, "
                  f"p99 {result.p99_ms:.2f} ms {result.errors}")  # fmt: skip
        print(f"   p99 added by mirroring: {on.p99_ms - off.p99_ms:+.2f} ms")
        print(f"   receiver summary: {output[-1]}")


@contextmanager
def receiver_if(mirrored: bool, tmp: Path) -> Iterator[int | None]:
    """A running receiver's port when `mirrored`, else None (nginx without the mirror line)."""
    if not mirrored:
        yield None
        return
    with mirror_server(tmp / f"paced-{os.urandom(4).hex()}.db") as (port, _):
        yield port


if __name__ == "__main__":
    main()
