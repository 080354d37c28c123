"""Write a large synthetic HTTP capture with loss, retransmission and reordering, plus its ground truth.

    python benchmarks/reassembly_generate.py OUT.pcap OUT.truth.jsonl \
        --connections 20000 --requests 5 --loss 0.01 --retransmit 0.02 --reorder 0.02 --seed 1

Each connection: handshake, keep-alive requests (GET with a query, POST with a form body,
some chunked) each answered by a response (Content-Length or chunked body), then FINs.
Connections overlap in time. Impairments hit data segments only (handshakes and FINs
always arrive): a lost segment is never written; a retransmitted one is written again
later; a reordered one is delayed behind the next few packets. The ground truth has one
line per request: its connection, index, method, target, body length, whether any of its
bytes were lost, and the same for its response.
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import socket
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

MSS = 1460
SERVER = "192.0.2.80"
PACKET_SPACING = 0.00005
_ETHERNET = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00"
SYN, ACK, PSH, FIN = 0x02, 0x10, 0x08, 0x01
_FILLER = b"<p>lorem ipsum dolor sit amet</p>\n" * 200

# (rng, index in the connection) -> (request bytes, method, target, body length)
RequestMaker = Callable[[random.Random, int], tuple[bytes, str, str, int]] | None
# rng -> (response bytes, status)
ResponseMaker = Callable[[random.Random], tuple[bytes, int]] | None


@dataclass(frozen=True, slots=True)
class Impairments:
    loss: float
    retransmit: float
    reorder: float


def frame(*, src: str, dst: str, sport: int, dport: int, seq: int, ack: int, flags: int, payload: bytes) -> bytes:
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq % 2**32, ack % 2**32, 5 << 4, flags, 65535, 0, 0)
    ip = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(tcp) + len(payload),
        0,
        0x4000,
        64,
        6,
        0,
        socket.inet_aton(src),
        socket.inet_aton(dst),
    )
    return _ETHERNET + ip + tcp + payload


def make_request(rng: random.Random, index: int) -> tuple[bytes, str, str, int]:
    kind = rng.random()
    if kind < 0.6:
        target = f"/products/{rng.randrange(10**6)}?q={rng.randrange(10**9)}&page={index}"
        head = f"GET {target} HTTP/1.1\r\nHost: shop.example.com\r\nUser-Agent: bench/1.0\r\nAccept: */*\r\n\r\n"
        return head.encode(), "GET", target, 0
    body = b"user=alice&data=" + _FILLER[: rng.randrange(0, 4000)]
    target = f"/api/submit/{rng.randrange(10**6)}"
    if kind < 0.8:
        head = (
            f"POST {target} HTTP/1.1\r\nHost: shop.example.com\r\n"
            f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body, "POST", target, len(body)
    head = f"PUT {target} HTTP/1.1\r\nHost: shop.example.com\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunks = b"".join(
        b"%x\r\n%s\r\n" % (len(part), part) for part in (body[i : i + 1000] for i in range(0, len(body), 1000))
    )
    return head.encode() + chunks + b"0\r\n\r\n", "PUT", target, len(body)


def make_response(rng: random.Random) -> tuple[bytes, int]:
    status = rng.choice([200, 200, 200, 201, 302, 404])
    body = _FILLER[: rng.randrange(0, 6000)]
    head = f"HTTP/1.1 {status} X\r\nServer: bench\r\nContent-Type: text/html\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body, status


class Connection:
    """One connection's packets as (ts, frame) in time order, and its ground truth."""

    def __init__(
        self,
        number: int,
        start: float,
        requests: int,
        impairments: Impairments,
        rng: random.Random,
        *,
        request_maker: RequestMaker = None,
        response_maker: ResponseMaker = None,
    ) -> None:
        """`request_maker(rng, index)` and `response_maker(rng)` default to this module's
        `make_request` and `make_response`; the full-pipeline benchmark passes its own."""
        request_maker = request_maker or make_request
        response_maker = response_maker or make_response
        self.client = f"10.{(number >> 16) & 255}.{(number >> 8) & 255}.{number & 255 or 1}"
        self.sport = 1024 + number % 60000
        self.rng = rng
        self.impairments = impairments
        self.ts = start
        self.truth: list[dict[str, object]] = []
        self.packets: list[tuple[float, bytes]] = []
        cseq, sseq = rng.randrange(2**32), rng.randrange(2**32)
        self._control(True, cseq, 0, SYN)
        self._control(False, sseq, cseq + 1, SYN | ACK)
        cseq, sseq = cseq + 1, sseq + 1
        self._control(True, cseq, sseq, ACK)
        for index in range(requests):
            request, method, target, body_length = request_maker(rng, index)
            request_lost = self._send(True, cseq, sseq, request)
            cseq += len(request)
            response, status = response_maker(rng)
            response_lost = self._send(False, sseq, cseq, response)
            sseq += len(response)
            self.truth.append(
                {
                    "client": self.client,
                    "sport": self.sport,
                    "index": index,
                    "method": method,
                    "target": target,
                    "body_length": body_length,
                    "request_lost_bytes": request_lost,
                    "status": status,
                    "response_lost_bytes": response_lost,
                }
            )
        self._control(True, cseq, sseq, FIN | ACK)
        self._control(False, sseq, cseq + 1, FIN | ACK)
        self.packets.sort(key=lambda packet: packet[0])

    def _emit(self, from_client: bool, seq: int, ack: int, *, flags: int, payload: bytes, ts: float) -> None:
        src, dst, sport, dport = (
            (self.client, SERVER, self.sport, 80) if from_client else (SERVER, self.client, 80, self.sport)
        )
        packet = frame(src=src, dst=dst, sport=sport, dport=dport, seq=seq, ack=ack, flags=flags, payload=payload)
        self.packets.append((ts, packet))

    def _control(self, from_client: bool, seq: int, ack: int, flags: int) -> None:
        self.ts += PACKET_SPACING
        self._emit(from_client, seq, ack, flags=flags, payload=b"", ts=self.ts)

    def _send(self, from_client: bool, seq: int, ack: int, data: bytes) -> int:
        """Send `data` in MSS segments with impairments; returns how many of its bytes were lost."""
        lost = 0
        impairments = self.impairments
        for offset in range(0, len(data), MSS):
            payload = data[offset : offset + MSS]
            self.ts += PACKET_SPACING
            if self.rng.random() < impairments.loss:
                lost += len(payload)
                continue
            ts = self.ts
            if self.rng.random() < impairments.reorder:
                ts += PACKET_SPACING * self.rng.randrange(2, 6)
            self._emit(from_client, seq + offset, ack, flags=ACK | PSH, payload=payload, ts=ts)
            if self.rng.random() < impairments.retransmit:
                self._emit(
                    from_client, seq + offset, ack, flags=ACK | PSH, payload=payload, ts=ts + PACKET_SPACING * 10
                )
        return lost


def packets(
    connections: int, requests: int, impairments: Impairments, seed: int, truth_out: Path
) -> Iterator[tuple[float, bytes]]:
    rng = random.Random(seed)
    with truth_out.open("w") as truth:

        def generated() -> Iterator[Connection]:
            for number in range(connections):
                connection = Connection(number, start_of(number), requests, impairments, rng)
                for record in connection.truth:
                    truth.write(json.dumps(record) + "\n")
                yield connection

        yield from merged(generated())


def start_of(number: int) -> float:
    """When connection `number` starts: connections overlap in time."""
    return 1_700_000_000 + number * 0.0004


def merged(connections: Iterable[Connection]) -> Iterator[tuple[float, bytes]]:
    """The connections' packets in time order, merging a window of 64 connections at a time."""
    streams = []
    for connection in connections:
        streams.append(connection.packets)
        if len(streams) == 64:
            yield from heapq.merge(*streams, key=lambda packet: packet[0])
            streams = []
    yield from heapq.merge(*streams, key=lambda packet: packet[0])


def write_pcap(path: Path, frames: Iterator[tuple[float, bytes]]) -> int:
    count = 0
    with path.open("wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for ts, data in frames:
            seconds = int(ts)
            out.write(struct.pack("<IIII", seconds, int((ts - seconds) * 1e6), len(data), len(data)))
            out.write(data)
            count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pcap", type=Path)
    parser.add_argument("truth", type=Path)
    parser.add_argument("--connections", type=int, default=20000)
    parser.add_argument("--requests", type=int, default=5, help="requests per connection")
    parser.add_argument("--loss", type=float, default=0.01)
    parser.add_argument("--retransmit", type=float, default=0.02)
    parser.add_argument("--reorder", type=float, default=0.02)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    impairments = Impairments(args.loss, args.retransmit, args.reorder)
    count = write_pcap(args.pcap, packets(args.connections, args.requests, impairments, args.seed, args.truth))
    print(f"{args.pcap}: {count} packets, {args.connections * args.requests} requests")


if __name__ == "__main__":
    main()
