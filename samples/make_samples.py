"""Write the bundled sample captures (run from anywhere: `python samples/make_samples.py`).

Mirrored shop traffic with both directions of every connection, full TCP handshakes and
teardowns: a client browsing normally, and an attacker probing with SQL injection and XSS
in the query string and in urlencoded POST forms (one form split across two segments).

- mirror-http.pcap      Ethernet / IPv4 / TCP, as a SPAN port or tcpdump on the host sees it
- mirror-http.pcapng    the same frames as pcapng
- mirror-http-vxlan.pcap the same frames wrapped as AWS VPC Traffic Mirroring sends them:
                         outer IPv4 / UDP 4789 / VXLAN (VNI 7) / inner Ethernet

Addresses are from the documentation ranges (RFC 5737) and the benchmarking range
(RFC 2544); the output is byte-for-byte reproducible.
"""

from __future__ import annotations

from pathlib import Path

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet, Raw
from scapy.utils import PcapNgWriter, wrpcap

HERE = Path(__file__).resolve().parent
START = 1793613600.0  # 2026-11-02 10:00:00 UTC
SERVER = "198.51.100.20"
BROWSER = "203.0.113.10"
ATTACKER = "192.0.2.66"
CLIENT_MAC = "02:00:00:00:00:01"
SERVER_MAC = "02:00:00:00:00:02"


def http_request(method: str, target: str, *, body: str = "", content_type: str = "") -> bytes:
    headers = [f"{method} {target} HTTP/1.1", "Host: shop.example.com", "User-Agent: Mozilla/5.0"]
    if body:
        headers += [f"Content-Type: {content_type}", f"Content-Length: {len(body.encode())}"]
    return ("\r\n".join(headers) + "\r\n\r\n" + body).encode()


def http_response(status: str, body: str) -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: text/html\r\nContent-Length: {len(body)}\r\n\r\n"
    return (head + body).encode()


class Conversation:
    """One TCP connection, both directions, with timestamps and sequence numbers kept."""

    def __init__(self, frames: list[Packet], clock: list[int], client: str, client_port: int) -> None:
        self.frames = frames
        self.clock = clock
        self.client, self.client_port = client, client_port
        self.client_seq, self.server_seq = 1000 + client_port, 50000 + client_port

    def _emit(self, from_client: bool, flags: str, payload: bytes = b"") -> None:
        self.clock[0] += 1  # milliseconds since START, counted in integers so times stay exact
        if from_client:
            ether = Ether(src=CLIENT_MAC, dst=SERVER_MAC)
            ip = IP(src=self.client, dst=SERVER, id=0)
            tcp = TCP(sport=self.client_port, dport=80, flags=flags, seq=self.client_seq, ack=self.server_seq)
        else:
            ether = Ether(src=SERVER_MAC, dst=CLIENT_MAC)
            ip = IP(src=SERVER, dst=self.client, id=0)
            tcp = TCP(sport=80, dport=self.client_port, flags=flags, seq=self.server_seq, ack=self.client_seq)
        if flags == "S":
            tcp.ack = 0
        frame = ether / ip / tcp / Raw(payload) if payload else ether / ip / tcp
        frame.time = START + self.clock[0] / 1000
        self.frames.append(frame)
        advance = len(payload) + (1 if "S" in flags or "F" in flags else 0)
        if from_client:
            self.client_seq += advance
        else:
            self.server_seq += advance

    def open(self) -> None:
        self._emit(True, "S")
        self._emit(False, "SA")
        self._emit(True, "A")

    def exchange(self, request: bytes, response: bytes, *, split_at: int | None = None) -> None:
        parts = [request] if split_at is None else [request[:split_at], request[split_at:]]
        for part in parts:
            self._emit(True, "PA", part)
        self._emit(False, "A")
        self._emit(False, "PA", response)
        self._emit(True, "A")

    def close(self) -> None:
        self._emit(True, "FA")
        self._emit(False, "FA")
        self._emit(True, "A")


def build_frames() -> list[Packet]:
    frames: list[Packet] = []
    clock = [0]
    ok = http_response("200 OK", "<html>ok</html>")
    form = "application/x-www-form-urlencoded"

    browsing = Conversation(frames, clock, BROWSER, 51000)
    browsing.open()
    browsing.exchange(http_request("GET", "/"), ok)
    browsing.exchange(http_request("GET", "/products?category=shoes&sort=price_asc"), ok)
    browsing.exchange(http_request("GET", "/search?q=o%27reilly+cookbook"), ok)
    browsing.exchange(
        http_request("POST", "/login", body="username=alice&password=correct+horse", content_type=form),
        http_response("302 Found", ""),
    )
    browsing.close()

    clock[0] += 5000
    probing = Conversation(frames, clock, ATTACKER, 40001)
    probing.open()
    probing.exchange(http_request("GET", "/products?id=1%27%20OR%20%271%27%3D%271"), ok)
    probing.exchange(http_request("GET", "/products?id=1+UNION+SELECT+username,password+FROM+users--"), ok)
    probing.exchange(http_request("GET", "/search?q=%3Cscript%3Ealert(document.cookie)%3C/script%3E"), ok)
    probing.close()

    clock[0] += 5000
    forms = Conversation(frames, clock, ATTACKER, 40002)
    forms.open()
    comment = http_request(
        "POST",
        "/comments",
        body="author=eve&comment=%3Cimg+src%3Dx+onerror%3Dalert%281%29%3E",
        content_type=form,
    )
    forms.exchange(comment, ok, split_at=len(comment) - 20)  # the payload straddles two segments
    forms.exchange(
        http_request("POST", "/login", body="username=admin%27--&password=x", content_type=form),
        http_response("302 Found", ""),
    )
    forms.close()
    return frames


def wrap_in_vxlan(frames: list[Packet]) -> list[Packet]:
    """AWS VPC Traffic Mirroring: each frame inside VXLAN from the mirror source's ENI."""
    wrapped = []
    for frame in frames:
        outer = (
            Ether(src="02:00:00:00:01:01", dst="02:00:00:00:01:02")
            / IP(src="198.18.0.5", dst="198.18.0.99", id=0)
            / UDP(sport=49152 + (hash_flow(frame) % 16384), dport=4789)
            / VXLAN(flags=0x08, vni=7)
            / frame
        )
        outer.time = frame.time
        wrapped.append(outer)
    return wrapped


def hash_flow(frame: Packet) -> int:
    """A stable stand-in for the flow hash AWS uses to pick the outer source port."""
    ip, tcp = frame[IP], frame[TCP]
    ends = sorted([(ip.src, tcp.sport), (ip.dst, tcp.dport)])
    return sum(ord(ch) for ch in repr(ends))


def main() -> None:
    frames = build_frames()
    wrpcap(str(HERE / "mirror-http.pcap"), frames)
    with PcapNgWriter(str(HERE / "mirror-http.pcapng")) as writer:
        for frame in frames:
            writer.write(frame)
    wrpcap(str(HERE / "mirror-http-vxlan.pcap"), wrap_in_vxlan(frames))


if __name__ == "__main__":
    main()
