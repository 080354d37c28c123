"""The UDP mirror source on loopback: datagrams in, raw IP packets with their outer addresses out."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from capture import PacketDecoder
from capture.live import RECEIVE_BUFFER_BYTES, InterfaceSource, MirrorListenAddress, UdpMirrorSource
from tests.builders import ethernet_frame, ipv4_packet, tcp_header, vxlan_header
from tests.system import require_root

INNER = ethernet_frame(ipv4_packet(tcp_header() + b"GET / HTTP/1.1\r\n\r\n"))


def test_datagrams_keep_their_outer_addresses_even_on_a_wildcard_socket() -> None:
    source = UdpMirrorSource.open(MirrorListenAddress(host="0.0.0.0", port=0))
    port = source.address.port
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sender.bind(("127.0.0.2", 0))
            sender.sendto(vxlan_header(7) + INNER, ("127.0.0.3", port))
            sender.sendto(vxlan_header(8) + INNER + b"\x00" * 9000, ("127.0.0.3", port))
        # Told to stop at once: what the kernel already queued is still read.
        packets = [packet for packet in source.packets(lambda: True) if packet is not None]
    finally:
        source.close()
    decoder = PacketDecoder(vxlan_ports=[port])
    segments = [decoder.decode(packet) for packet in packets]
    assert [s.tunnel if s else None for s in segments] == [
        (("vxlan", "127.0.0.2>127.0.0.3", 7),),
        (("vxlan", "127.0.0.2>127.0.0.3", 8),),
    ]
    assert len(packets[1].data) == 20 + 8 + 8 + len(INNER) + 9000  # a jumbo datagram, whole


def test_packets_carry_the_kernel_receive_time_not_the_read_time() -> None:
    source = UdpMirrorSource.open(MirrorListenAddress(host="127.0.0.1", port=0))
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sent = time.time()
            sender.sendto(vxlan_header(7) + INNER, ("127.0.0.1", source.address.port))
        time.sleep(0.5)  # read late
        (packet,) = [packet for packet in source.packets(lambda: True) if packet is not None]
    finally:
        source.close()
    assert sent - 0.05 <= packet.ts < sent + 0.25


def test_vni_filter_and_runts_are_counted() -> None:
    source = UdpMirrorSource.open(MirrorListenAddress(host="127.0.0.1", port=0), vnis=frozenset({7}))
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for datagram in (vxlan_header(7) + INNER, vxlan_header(9) + INNER, b"\x08\x00"):
                sender.sendto(datagram, ("127.0.0.1", source.address.port))
        packets = [packet for packet in source.packets(lambda: True) if packet is not None]
    finally:
        source.close()
    assert len(packets) == 1
    assert source.stats == {"datagrams": 1, "vni_filtered_out": 1, "datagram_too_short": 1}


def test_the_receive_buffer_is_as_big_as_allowed() -> None:
    source = UdpMirrorSource.open(MirrorListenAddress(host="127.0.0.1", port=0))
    try:
        granted = source.receive_buffer_bytes
    finally:
        source.close()
    if os.geteuid() == 0:  # SO_RCVBUFFORCE: past net.core.rmem_max
        assert granted >= RECEIVE_BUFFER_BYTES
    else:
        allowed = int(Path("/proc/sys/net/core/rmem_max").read_text())
        assert granted >= min(RECEIVE_BUFFER_BYTES, allowed)


def test_frames_the_kernel_dropped_for_a_full_buffer_are_counted() -> None:
    """A capture too slow for its interface: the kernel drops, and we say how many."""
    require_root()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    source = InterfaceSource.open("lo", bpf=f"udp dst port {port}", receive_buffer_bytes=4096)  # a few frames
    try:
        sent = 500
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for _ in range(sent):
                sender.sendto(b"x" * 1000, ("127.0.0.1", port))
        packets = [packet for packet in source.packets(lambda: True) if packet is not None]
    finally:
        source.close()
    drops = source.stats["kernel_drops"]
    assert 0 < len(packets) < sent
    # Loopback shows the socket each frame twice (leaving, arriving); only arrivals are kept.
    assert sent <= len(packets) + drops <= 2 * sent
    assert source.read_kernel_drops() == drops  # closed: the total stays
