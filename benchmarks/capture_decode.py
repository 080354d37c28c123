"""Benchmark: capture decoding packets/s against tshark reading the same file, same run.

Generates two captures of the given size: plain (Ethernet / IPv4 / TCP, a mix of HTTP
requests, responses and bare ACKs) and the same frames VXLAN-wrapped as AWS VPC Traffic
Mirroring sends them. For each it times:

- read: `read_capture` alone (the file edge),
- read+decode: `read_capture` then `PacketDecoder.decode` on every packet,
- decode alone: the difference,
- decode alone, pure Python: the same with `PacketDecoder(compiled=False)`, the decoder the
  compiled path (capture/_fastdecode.c) hands odd frames back to,
- tshark: `tshark -r FILE` (its default one-line summary per packet, to /dev/null),

and prints packets/s with the ratio decode/tshark (target: at least 15x) and the ratio of
the compiled path to the pure-Python one. Rates are per
second of CPU time (ours: this process; tshark: its child's user+system time), so that a
machine shared with other work does not skew one side of the ratio; wall-clock seconds
are printed beside them.

    .venv/bin/python benchmarks/capture_decode.py            # 300 MB per capture
    .venv/bin/python benchmarks/capture_decode.py --size-mb 50
"""

from __future__ import annotations

import argparse
import resource
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from capture import PacketDecoder, read_capture

REQUEST = b"GET /products?id=42&sort=price HTTP/1.1\r\nHost: shop.example.com\r\nUser-Agent: bench\r\n\r\n"
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 900\r\n\r\n" + b"x" * 900
MIX = [REQUEST, b"", RESPONSE, b""]  # request, ACK, response, ACK: about 300 bytes a frame


def ipv4(payload: bytes, src: str, dst: str, proto: int) -> bytes:
    return (
        struct.pack(
            "!BBHHHBBH4s4s",
            0x45,
            0,
            20 + len(payload),
            0,
            0x4000,
            64,
            proto,
            0,
            socket.inet_aton(src),
            socket.inet_aton(dst),
        )
        + payload
    )


def frame(index: int, payload: bytes) -> bytes:
    client_port = 1024 + index % 60000
    from_client = payload is REQUEST or (payload == b"" and index % 4 == 3)
    sport, dport = (client_port, 80) if from_client else (80, client_port)
    src, dst = ("10.0.0.1", "10.0.0.2") if from_client else ("10.0.0.2", "10.0.0.1")
    tcp = struct.pack("!HHIIBBHHH", sport, dport, index * 1000, 1, 5 << 4, 0x18, 65535, 0, 0)
    return b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + ipv4(tcp + payload, src, dst, 6)


def vxlan(inner: bytes, index: int) -> bytes:
    udp = struct.pack("!HHHH", 49152 + index % 16384, 4789, 8 + 8 + len(inner), 0)
    header = struct.pack("!B3xI", 0x08, 7 << 8)
    return b"\x02" * 6 + b"\x06" * 6 + b"\x08\x00" + ipv4(udp + header + inner, "198.18.0.5", "198.18.0.99", 17)


def write_capture(path: Path, size: int, wrap: bool) -> int:
    # A few hundred distinct frames, repeated: generation stays fast, decoding does the same work.
    frames = [frame(i, MIX[i % 4]) for i in range(400)]
    if wrap:
        frames = [vxlan(f, i) for i, f in enumerate(frames)]
    records = [struct.pack("<IIII", 1_700_000_000 + i, i, len(f), len(f)) + f for i, f in enumerate(frames)]
    count, written = 0, 24
    with path.open("wb") as out:
        out.write(struct.pack("<IHHIIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        while written < size:
            out.write(b"".join(records))
            written += sum(map(len, records))
            count += len(records)
    return count


def timed(function: object) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of running `function`, child processes included."""
    assert callable(function)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu, wall = time.process_time(), time.perf_counter()
    function()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    child_cpu = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
    return time.process_time() - cpu + child_cpu, time.perf_counter() - wall


def read_only(path: Path) -> None:
    for _packet in read_capture(path):
        pass


def read_and_decode(path: Path, *, compiled: bool = True) -> None:
    decode = PacketDecoder(compiled=compiled).decode
    for packet in read_capture(path):
        decode(packet)


def tshark(path: Path) -> None:
    subprocess.run(["tshark", "-n", "-r", str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)


def report(name: str, path: Path, packets: int) -> None:
    decoder = PacketDecoder()
    segments = sum(decoder.decode(p) is not None for p in read_capture(path))
    assert segments == packets, f"{name}: {segments} of {packets} frames decoded: {decoder.stats}"
    read_cpu, read_wall = min(timed(lambda: read_only(path)) for _ in range(2))
    both_cpu, both_wall = min(timed(lambda: read_and_decode(path)) for _ in range(2))
    decode_cpu, decode_wall = max(both_cpu - read_cpu, 1e-9), max(both_wall - read_wall, 1e-9)
    python_cpu, python_wall = min(timed(lambda: read_and_decode(path, compiled=False)) for _ in range(2))
    python_cpu, python_wall = max(python_cpu - read_cpu, 1e-9), max(python_wall - read_wall, 1e-9)
    tshark_cpu, tshark_wall = timed(lambda: tshark(path))
    print(f"{name}: {packets} packets, {path.stat().st_size / 1e6:.0f} MB")
    print(f"  {'':<14} {'CPU s':>8} {'packets/CPU s':>14} {'wall s':>8}")
    for label, cpu, wall in [
        ("read", read_cpu, read_wall),
        ("read+decode", both_cpu, both_wall),
        ("decode alone", decode_cpu, decode_wall),
        ("  pure Python", python_cpu, python_wall),
        ("tshark -r", tshark_cpu, tshark_wall),
    ]:
        print(f"  {label:<14} {cpu:8.2f} {packets / cpu:14,.0f} {wall:8.2f}", flush=True)
    print(f"  decode alone / tshark: {tshark_cpu / decode_cpu:.1f}x   (target 15x)")
    print(f"  read+decode  / tshark: {tshark_cpu / both_cpu:.1f}x")
    print(f"  decode alone / pure Python: {python_cpu / decode_cpu:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=300, help="size of each generated capture (default 300)")
    parser.add_argument("--dir", type=Path, help="where to write the captures (default: a temporary directory)")
    args = parser.parse_args()
    if shutil.which("tshark") is None:
        sys.exit("tshark is not installed: scripts/install-test-deps installs it")
    with tempfile.TemporaryDirectory(dir=args.dir) as directory:
        for name, wrap in (("plain", False), ("vxlan", True)):
            path = Path(directory) / f"{name}.pcap"
            packets = write_capture(path, args.size_mb * 1_000_000, wrap)
            report(name, path, packets)
            path.unlink()


if __name__ == "__main__":
    main()
