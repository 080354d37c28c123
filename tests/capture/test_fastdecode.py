"""The compiled hot path (capture/_fastdecode.c) against the pure-Python decoder and reader.

The compiled path must never disagree: on every frame it either builds exactly the segment
Python builds or hands the frame back, so the segments and every counter come out the same.
Fed: every shared and sample capture, the benchmark's generated captures, frames of every
shape it handles, and hypothesis-mutated frames (cut short, bytes overwritten, lengths
bent, random bytes). The pcap and pcapng readers are held to the Python one the same way, including
on damaged files and streams that hand out a few bytes at a time.
"""

from __future__ import annotations

import contextlib
import io
import socket
import struct
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.capture_decode import write_capture
from capture import CaptureError, PacketDecoder, RawPacket, TcpSegment, read_capture
from capture import files as capture_files
from capture import pcapng as capture_pcapng
from capture.packets import LinkType
from tests.builders import (
    ethernet_frame,
    geneve_header,
    ipv4_fragments,
    ipv4_packet,
    ipv6_packet,
    outer_ipv4_udp,
    pcap_file,
    pcapng_block,
    pcapng_interface,
    pcapng_packet,
    pcapng_section,
    raw_packet,
    tcp_header,
    udp_datagram,
    vxlan_header,
)
from tests.paths import SAMPLES, SHARED

CAPTURES = sorted(
    p
    for root in (SHARED / "pcaps", SAMPLES)
    if root.exists()
    for p in root.rglob("*")
    if p.suffix in {".pcap", ".pcapng"}
)
REQUEST = b"GET /products?id=42 HTTP/1.1\r\nHost: shop.example.com\r\n\r\n"
Outcome = tuple[list[TcpSegment | None], Counter[str], Counter[str]]


def decode_both(packets: Iterable[RawPacket], **options: object) -> tuple[Outcome, Outcome, int]:
    """Both decoders' segments and counters, and how many frames the compiled path took itself."""
    compiled = PacketDecoder(**options)  # type: ignore[arg-type]
    python = PacketDecoder(compiled=False, **options)  # type: ignore[arg-type]
    # `pip install` builds the extension: without it this fails rather than skips.
    assert compiled.compiled and not python.compiled
    direct = PacketDecoder(**options)  # type: ignore[arg-type]
    assert direct._compiled is not None
    ours: list[TcpSegment | None] = []
    theirs: list[TcpSegment | None] = []
    taken = 0
    for packet in packets:
        ours.append(compiled.decode(packet))
        theirs.append(python.decode(packet))
        taken += direct._compiled.decode(packet) is not None
    return (ours, compiled.stats, compiled.anomalies), (theirs, python.stats, python.anomalies), taken


def assert_same(packets: list[RawPacket], **options: object) -> int:
    ours, theirs, taken = decode_both(packets, **options)
    assert ours[0] == theirs[0]
    assert ours[1] == theirs[1]  # stats
    assert ours[2] == theirs[2]  # anomalies
    return taken


def packets_until_damage(path: Path) -> list[RawPacket]:
    packets: list[RawPacket] = []
    # A damaged capture: what came before the damage is what both decoders see.
    with contextlib.suppress(CaptureError):
        packets.extend(read_capture(path))
    return packets


# ---- frame decoding ----------------------------------------------------------------


@pytest.mark.skipif(not CAPTURES, reason="no captures next to the project")
def test_every_capture_decodes_the_same_through_both_paths() -> None:
    taken = total = 0
    for path in CAPTURES:
        packets = packets_until_damage(path)
        try:
            taken += assert_same(packets)
        except AssertionError as exc:
            raise AssertionError(f"{path}: {exc}") from exc
        total += len(packets)
    assert total > 1000
    assert taken > total // 4  # the compiled path did take a good share itself


@pytest.mark.parametrize("wrap", [False, True], ids=["plain", "vxlan"])
def test_the_benchmark_captures_decode_the_same_and_all_compiled(tmp_path: Path, wrap: bool) -> None:
    path = tmp_path / "bench.pcap"
    count = write_capture(path, 300_000, wrap)
    packets = list(read_capture(path))
    assert len(packets) == count
    assert assert_same(packets) == count


def shapes() -> dict[str, bytes]:
    """A frame of every shape the compiled path takes whole, and of some it hands back."""
    tcp = tcp_header(seq=7, ack=9, flags=0x18) + REQUEST
    inner4 = ethernet_frame(ipv4_packet(tcp))
    inner6 = ethernet_frame(ipv6_packet(tcp), ethertype=0x86DD)
    options = ipv4_packet(tcp)
    options = bytes([0x46]) + options[1:2] + struct.pack("!H", len(options) + 4) + options[4:20] + b"\x01" * 4 + tcp
    hop_by_hop = bytes([6, 0]) + b"\x00" * 6
    auth = bytes([6, 1]) + b"\x00" * 10  # RFC 4302: (1 + 2) words of 4 bytes
    return {
        "ipv4": inner4,
        "ipv6": inner6,
        "vlan": ethernet_frame(ipv4_packet(tcp), vlans=(10,)),
        "qinq": ethernet_frame(ipv4_packet(tcp), vlans=(10, 20)),
        "ipv4_options": ethernet_frame(options),
        "ipv6_extensions": ethernet_frame(ipv6_packet(hop_by_hop + tcp, next_header=0), ethertype=0x86DD),
        "ipv6_authentication": ethernet_frame(ipv6_packet(auth + tcp, next_header=51), ethertype=0x86DD),
        "padded": ethernet_frame(ipv4_packet(tcp_header())) + b"\x00" * 6,
        "vxlan": outer_ipv4_udp(vxlan_header(42) + inner4),
        "vxlan_ipv6_inner": outer_ipv4_udp(vxlan_header(42) + inner6),
        "vxlan_over_ipv6": ethernet_frame(
            ipv6_packet(udp_datagram(vxlan_header(5) + inner4), next_header=17), ethertype=0x86DD
        ),
        "vxlan_padded": outer_ipv4_udp(vxlan_header(42) + inner4) + b"\x00" * 4,
        "vxlan_in_vxlan": outer_ipv4_udp(vxlan_header(1) + outer_ipv4_udp(vxlan_header(2) + inner4)),
        "geneve": outer_ipv4_udp(geneve_header(77) + inner4, dport=6081),
        "geneve_ip": outer_ipv4_udp(geneve_header(77, protocol=0x0800) + ipv4_packet(tcp), dport=6081),
        "geneve_ipv6": outer_ipv4_udp(geneve_header(77, protocol=0x86DD) + ipv6_packet(tcp), dport=6081),
        "geneve_options": outer_ipv4_udp(geneve_header(3, options=b"\x01\x02\x03\x04" * 3) + inner4, dport=6081),
        "geneve_in_vxlan": outer_ipv4_udp(vxlan_header(1) + outer_ipv4_udp(geneve_header(2) + inner4, dport=6081)),
        # handed back: Python names what they are
        "vxlan_flag_not_set": outer_ipv4_udp(vxlan_header(42, flags=0) + inner4),
        "fragment": ethernet_frame(ipv4_fragments(ipv4_packet(tcp), size=24)[0]),
        "udp_elsewhere": outer_ipv4_udp(b"x" * 20, dport=53),
        "arp": ethernet_frame(b"\x00" * 28, ethertype=0x0806),
        "mpls": ethernet_frame(b"\x00\x00\x01\xff" + ipv4_packet(tcp), ethertype=0x8847),
    }


TAKEN = {
    "ipv4",
    "ipv6",
    "vlan",
    "qinq",
    "ipv4_options",
    "ipv6_extensions",
    "ipv6_authentication",
    "padded",
    "vxlan",
    "vxlan_ipv6_inner",
    "vxlan_over_ipv6",
    "vxlan_padded",
    "vxlan_in_vxlan",
    "geneve",
    "geneve_ip",
    "geneve_ipv6",
    "geneve_options",
    "geneve_in_vxlan",
}


@pytest.mark.parametrize(("name", "frame"), list(shapes().items()), ids=list(shapes()))
def test_each_shape_is_taken_or_handed_back_and_decodes_the_same(name: str, frame: bytes) -> None:
    packets = [raw_packet(frame), raw_packet(frame, ts=2.0), raw_packet(frame, wire_length=len(frame) + 100)]
    taken = assert_same(packets)
    assert taken == (len(packets) if name in TAKEN else 0)


def test_the_ports_are_the_ones_configured_even_after_a_change() -> None:
    frame = outer_ipv4_udp(vxlan_header(9) + ethernet_frame(ipv4_packet(tcp_header())), dport=8472)
    assert assert_same([raw_packet(frame)]) == 0  # not a VXLAN port by default
    assert assert_same([raw_packet(frame)], vxlan_ports=[4789, 8472]) == 1
    assert assert_same([raw_packet(frame)], vxlan_ports=[4789.0, 8472.0]) == 1  # what `in` says, floats too
    decoder = PacketDecoder()
    assert decoder.decode(raw_packet(frame)) is None
    decoder.vxlan_ports = frozenset({8472})
    segment = decoder.decode(raw_packet(frame))
    assert segment is not None and segment.tunnel == (("vxlan", "198.18.0.5>198.18.0.99", 9),)


def test_too_deep_tunnels_are_refused_by_python_and_counted_the_same() -> None:
    frame = ethernet_frame(ipv4_packet(tcp_header()))
    for vni in range(4):
        frame = outer_ipv4_udp(vxlan_header(vni) + frame)
    packets = [raw_packet(frame)] * 3
    assert assert_same(packets, max_tunnel_depth=3) == 0
    assert assert_same(packets, max_tunnel_depth=4) == 3


class MarkedBytes(bytes):
    """Bytes of a subclass: the compiled path takes only plain bytes."""


def test_other_link_types_and_odd_packets_are_handed_back() -> None:
    ip = ipv4_packet(tcp_header() + REQUEST)
    packets = [
        raw_packet(ip, linktype=LinkType.RAW),
        RawPacket(ts=1.0, data=MarkedBytes(ethernet_frame(ip)), linktype=1, wire_length=80),
        RawPacket(ts=1.0, data=ethernet_frame(ip), linktype=1, wire_length=2**70),
    ]
    ours, theirs, taken = decode_both(packets)
    assert ours == theirs
    assert taken == 1  # only the huge wire length is decoded here: a cut frame, as Python says
    assert ours[0][2] is not None and ours[0][2].truncated


FRAMES = list(shapes().values())


@settings(max_examples=500, deadline=None)
@given(src=st.binary(min_size=4, max_size=4), dst=st.binary(min_size=4, max_size=4))
def test_ipv4_addresses_are_written_as_python_writes_them(src: bytes, dst: bytes) -> None:
    """The compiled decoder writes IPv4 addresses itself: every byte value, digit counts."""
    tcp = tcp_header(seq=7, ack=9, flags=0x18) + REQUEST
    texts = socket.inet_ntop(socket.AF_INET, src), socket.inet_ntop(socket.AF_INET, dst)
    packet = raw_packet(ethernet_frame(ipv4_packet(tcp, src=texts[0], dst=texts[1])))
    assert assert_same([packet]) == 1
    segment = PacketDecoder().decode(packet)
    assert segment is not None
    assert (segment.src, segment.dst) == texts


def test_ipv4_addresses_of_each_width() -> None:
    packets = [
        raw_packet(ethernet_frame(ipv4_packet(tcp_header() + REQUEST, src=src, dst="255.0.9.10")))
        for src in ["0.0.0.0", "9.10.99.100", "255.255.255.255", "1.20.200.7", "100.10.1.0"]
    ]
    assert assert_same(packets) == len(packets)
    assert [PacketDecoder().decode(p).src for p in packets] == [  # type: ignore[union-attr]
        "0.0.0.0",
        "9.10.99.100",
        "255.255.255.255",
        "1.20.200.7",
        "100.10.1.0",
    ]


def test_both_directions_of_a_connection_share_their_address_texts() -> None:
    """The tracker compares a connection's addresses per packet: the same objects make that
    an identity check, so the compiled decoder hands the reply direction the same texts."""
    decoder = PacketDecoder()
    there = decoder.decode(raw_packet(ethernet_frame(ipv4_packet(tcp_header(), src="10.1.2.3", dst="192.0.2.80"))))
    back = decoder.decode(raw_packet(ethernet_frame(ipv4_packet(tcp_header(), src="192.0.2.80", dst="10.1.2.3"))))
    assert there is not None and back is not None
    assert back.src is there.dst and back.dst is there.src


@st.composite
def mutated_frames(draw: st.DrawFn) -> RawPacket:
    """A frame of a known shape, then cut, overwritten, lengthened or replaced by noise."""
    frame = bytearray(draw(st.sampled_from(FRAMES)))
    how = draw(st.sampled_from(["cut", "overwrite", "both", "noise", "lengths", "as_is"]))
    if how in ("overwrite", "both"):
        for _ in range(draw(st.integers(1, 6))):
            frame[draw(st.integers(0, len(frame) - 1))] = draw(st.integers(0, 255))
    if how == "lengths":  # IP total length, UDP length, header lengths: where decoders go wrong
        for position in draw(st.lists(st.sampled_from([14, 16, 17, 18, 19, 38, 39, 46, 50, 59, 66, 67]), max_size=3)):
            if position < len(frame):
                frame[position] = draw(st.sampled_from([0, 1, 0x45, 0x4F, 0x50, 0xF0, 0xFF]))
    if how in ("cut", "both"):
        frame = frame[: draw(st.integers(0, len(frame)))]
    if how == "noise":
        frame = bytearray(draw(st.binary(max_size=200)))
    wire = len(frame) + draw(st.sampled_from([0, 0, 1, 1500]))
    return raw_packet(bytes(frame), wire_length=wire, ts=draw(st.floats(0, 2e9)))


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    packets=st.lists(mutated_frames(), min_size=1, max_size=8),
    vxlan_ports=st.sets(st.sampled_from([4789, 6081, 53, 8472]), max_size=2),
    geneve_ports=st.sets(st.sampled_from([6081, 4789, 0]), max_size=2),
)
def test_mutated_frames_decode_the_same_through_both_paths(
    packets: list[RawPacket], vxlan_ports: set[int], geneve_ports: set[int]
) -> None:
    assert_same(packets, vxlan_ports=vxlan_ports, geneve_ports=geneve_ports)


@settings(max_examples=3000, deadline=None)
@given(data=st.binary(max_size=300), wire=st.integers(0, 2**40))
def test_random_bytes_never_crash_or_disagree(data: bytes, wire: int) -> None:
    assert_same([raw_packet(data, wire_length=wire)])


# ---- pcap records -------------------------------------------------------------------


class Trickle(io.RawIOBase):
    """A stream that hands out a few bytes per read, as a slow pipe does."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data, self._position, self._step = data, 0, step

    def readable(self) -> bool:
        return True

    def read1(self, size: int = -1, /) -> bytes:
        return self.read(min(size, self._step) if size >= 0 else self._step)

    def read(self, size: int = -1, /) -> bytes:
        end = len(self._data) if size < 0 else self._position + size
        chunk = self._data[self._position : end]
        self._position += len(chunk)
        return chunk


def read_pcap_bytes(data: bytes, *, compiled: bool, step: int | None = None) -> tuple[list[RawPacket], str | None]:
    """The packets the reader yields from `data`, then its error (type and message) if any."""
    stream: io.RawIOBase | io.BytesIO = io.BytesIO(data) if step is None else Trickle(data, step)
    magic = stream.read(4)
    packets: list[RawPacket] = []
    try:
        packets.extend(capture_files._read_pcap(stream, "test.pcap", magic, compiled=compiled))
    except CaptureError as exc:
        return packets, f"{type(exc).__name__}: {exc}"
    return packets, None


def assert_same_records(data: bytes, *, step: int | None = None) -> list[RawPacket]:
    ours = read_pcap_bytes(data, compiled=True, step=step)
    theirs = read_pcap_bytes(data, compiled=False)
    assert ours == theirs
    return ours[0]


PCAPS = [p for p in CAPTURES if p.suffix == ".pcap" and p.read_bytes()[:4] in capture_files._PCAP_MAGICS]


@pytest.mark.skipif(not PCAPS, reason="no captures next to the project")
def test_every_pcap_reads_the_same_through_both_readers() -> None:
    records = sum(len(assert_same_records(path.read_bytes())) for path in PCAPS)
    assert records > 1000


def test_cut_anywhere_the_readers_agree_on_the_packets_and_the_error() -> None:
    data = (SAMPLES / "mirror-http.pcap").read_bytes()[:3000]
    for end in range(4, len(data) + 1):  # from the magic on
        assert_same_records(data[:end])


@pytest.mark.parametrize("step", [1, 7, 100, 5000])
def test_a_stream_that_trickles_reads_the_same(step: int) -> None:
    data = (SAMPLES / "mirror-http-vxlan.pcap").read_bytes()
    assert len(assert_same_records(data, step=step)) > 50


def test_a_record_claiming_too_many_bytes_is_reported_after_the_packets_before_it() -> None:
    good = pcap_file([(1.0, b"a" * 60), (2.0, b"b" * 70)])
    bad = good + struct.pack("<IIII", 3, 0, 1 << 29, 1 << 29) + b"c" * 100
    packets = assert_same_records(bad)
    assert [p.data for p in packets] == [b"a" * 60, b"b" * 70]
    assert read_pcap_bytes(bad, compiled=True)[1] == (
        f"CaptureFormatError: test.pcap: record 3 claims {1 << 29} bytes: the file is corrupt"
    )


def test_a_record_longer_than_a_chunk_reads_the_same() -> None:
    big = bytes(range(256)) * 9000  # over 2 MB: more than one read of the compiled reader
    data = pcap_file([(1.0, b"x" * 64), (2.5, big), (3.0, b"y" * 64)])
    packets = assert_same_records(data, step=4096)
    assert [len(p.data) for p in packets] == [64, len(big), 64]


@pytest.mark.parametrize(
    ("magic", "order"), [(0xA1B2C3D4, "<"), (0xA1B2C3D4, ">"), (0xA1B23C4D, "<"), (0xA1B23C4D, ">")]
)
def test_both_byte_orders_and_both_resolutions_read_the_same(magic: int, order: str) -> None:
    header = struct.pack(order + "IHHIIII", magic, 2, 4, 0, 0, 65535, 1)
    records = b"".join(
        struct.pack(order + "IIII", 1_700_000_000 + i, 999_999_999 - i * 77_777, 60 + i, 60 + i * 2) + bytes(60 + i)
        for i in range(50)
    )
    packets = assert_same_records(header + records)
    assert len(packets) == 50 and packets[3].wire_length == 66


@settings(max_examples=1500, deadline=None)
@given(
    tail=st.binary(max_size=400),
    cut=st.integers(0, 10_000),
    order=st.sampled_from(["<", ">"]),
    step=st.sampled_from([None, 1, 3, 64]),
)
def test_random_records_read_the_same(tail: bytes, cut: int, order: str, step: int | None) -> None:
    header = struct.pack(order + "IHHIIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    good = b"".join(struct.pack(order + "IIII", i, i, 40, 1500) + bytes([i]) * 40 for i in range(5))
    data = (header + good + tail)[: 24 + cut]
    assert_same_records(data, step=step)


# ---- pcapng enhanced packet blocks ----------------------------------------------------


def read_pcapng_bytes(data: bytes, *, compiled: bool, step: int | None = None) -> tuple[list[RawPacket], str | None]:
    stream: io.RawIOBase | io.BytesIO = io.BytesIO(data) if step is None else Trickle(data, step)
    first = stream.read(4)
    packets: list[RawPacket] = []
    try:
        packets.extend(capture_pcapng.read_pcapng(stream, "test.pcapng", first, compiled=compiled))
    except CaptureError as exc:
        return packets, f"{type(exc).__name__}: {exc}"
    return packets, None


def assert_same_blocks(data: bytes, *, step: int | None = None) -> list[RawPacket]:
    ours = read_pcapng_bytes(data, compiled=True, step=step)
    theirs = read_pcapng_bytes(data, compiled=False)
    assert ours == theirs
    return ours[0]


def mixed_pcapng(order: str = "<") -> bytes:
    """Two interfaces of different resolutions, every kind of packet block, a second section."""
    blocks = [
        pcapng_section(order=order),
        pcapng_interface(1, order=order),
        pcapng_interface(101, tsresol=9, order=order),
        *(pcapng_packet(i % 2, 1_700_000_000_123_456_789 + i, bytes([i]) * (40 + i), order=order) for i in range(20)),
        pcapng_packet(0, 1_700_000_000_000_001, b"cut" * 30, wire_length=1500, order=order),
        pcapng_block(3, struct.pack(order + "I", 60) + b"s" * 60, order=order),  # simple packet block
        pcapng_block(5, b"\x00" * 12, order=order),  # interface statistics: skipped
        *(pcapng_packet(1, 2**53 + 2 * i + 1, b"x" * 64, order=order) for i in range(5)),
        pcapng_section(order=order),
        pcapng_interface(1, tsresol=0x80 | 20, order=order),  # 2^-20 seconds
        *(pcapng_packet(0, (1 << 40) + i, b"y" * 50, order=order) for i in range(5)),
    ]
    return b"".join(blocks)


PCAPNGS = [p for p in CAPTURES if p.read_bytes()[:4] == capture_pcapng.PCAPNG_MAGIC]


@pytest.mark.skipif(not PCAPNGS, reason="no captures next to the project")
def test_every_pcapng_reads_the_same_through_both_readers() -> None:
    assert sum(len(assert_same_blocks(path.read_bytes())) for path in PCAPNGS) > 50


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("step", [None, 1, 13, 4096])
def test_mixed_blocks_and_sections_read_the_same(order: str, step: int | None) -> None:
    packets = assert_same_blocks(mixed_pcapng(order), step=step)
    assert len(packets) == 32
    assert {p.linktype for p in packets} == {1, 101}
    assert packets[20].wire_length == 1500


def test_a_pcapng_cut_anywhere_reads_the_same() -> None:
    data = mixed_pcapng()
    for end in range(4, len(data) + 1, 3):
        assert_same_blocks(data[:end])


def test_unsound_packet_blocks_are_left_to_the_python_reader() -> None:
    head = pcapng_section() + pcapng_interface(1) + pcapng_packet(0, 5, b"a" * 40)
    bad = [
        pcapng_packet(3, 5, b"b" * 40),  # an interface never described
        pcapng_block(6, b"\x00" * 8),  # too short for its fields
        struct.pack("<II", 6, 30) + b"\x00" * 22,  # a length that is not a multiple of 4
        struct.pack("<II", 6, 1 << 29) + b"\x00" * 40,  # a length beyond any block
        pcapng_packet(0, 5, b"c" * 40)[:-4] + b"",  # a block cut short, at the end of the file
        struct.pack("<IIIIIII", 6, 40, 0, 0, 5, 500, 500) + b"d" * 12 + struct.pack("<I", 40),  # claims 500 bytes
    ]
    for block in bad:
        packets = assert_same_blocks(head + block + pcapng_packet(0, 6, b"e" * 40))
        assert packets[0].data == b"a" * 40


@settings(max_examples=1500, deadline=None)
@given(
    tail=st.binary(max_size=300),
    cut=st.integers(0, 4000),
    order=st.sampled_from(["<", ">"]),
    step=st.sampled_from([None, 1, 5, 64]),
    flips=st.lists(st.tuples(st.integers(0, 4000), st.integers(0, 255)), max_size=4),
)
def test_random_blocks_read_the_same(
    tail: bytes, cut: int, order: str, step: int | None, flips: list[tuple[int, int]]
) -> None:
    data = bytearray(mixed_pcapng(order) + tail)
    for position, value in flips:
        if 4 <= position < len(data):
            data[position] = value
    assert_same_blocks(bytes(data[:cut]), step=step)
