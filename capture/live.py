"""Live sources: mirror datagrams on a UDP socket, and frames off a network interface.

The capture stage's socket edge. `UdpMirrorSource` receives VXLAN or GENEVE datagrams on
an ordinary UDP socket (no capture privilege needed) and hands each on as the IP/UDP
packet it arrived in, so the decoder unwraps it like a captured one, outer addresses and
all. `InterfaceSource` reads every frame of an interface through an AF_PACKET socket,
promiscuous, with an optional BPF filter. Both run until `stop()` says so, waking at least
every `poll_interval` seconds to ask, and yield None when they waited in vain, so that the
pipeline can record pending hits while the mirror is quiet.
"""

from __future__ import annotations

import ctypes
import socket
import struct
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from capture.errors import CaptureError
from capture.packets import LinkType, RawPacket

__all__ = ["InterfaceSource", "MirrorListenAddress", "UdpMirrorSource"]

# The largest UDP payload (65535 less the IPv4 and UDP headers) fits; a 1526-byte buffer,
# as some mirror receivers use, would silently cut a 9001-byte jumbo frame.
_MAX_DATAGRAM = 65535
RECEIVE_BUFFER_BYTES = 32 << 20  # bursts of jumbo frames queue here while we work
_SNAPLEN = 65535
_ETH_P_ALL = 0x0003
_SOL_PACKET, _PACKET_ADD_MEMBERSHIP, _PACKET_MR_PROMISC = 263, 1, 1
# linux/if_packet.h: struct tpacket_stats {tp_packets, tp_drops}, both reset by each read.
_PACKET_STATISTICS = 6
_TPACKET_STATS = struct.Struct("@II")
_PACKET_OUTGOING = 4
_SO_ATTACH_FILTER = 26
_SO_RCVBUFFORCE = 33  # as root, past net.core.rmem_max
# The address a datagram was sent to, when listening on a wildcard address: linux/in.h
# IP_PKTINFO (struct in_pktinfo: ifindex, spec_dst, addr) and RFC 3542 IPV6_PKTINFO.
_IP_PKTINFO, _IPV6_PKTINFO = 8, 50
_DLT_RAW = 12  # libpcap's DLT for raw IP, which its filter compiler takes
# The kernel's receive time of each packet, as a struct timespec in the ancillary data.
_SO_TIMESTAMPNS = 35
_TIMESPEC = struct.Struct("@qq")
_TIMESTAMP_SPACE = socket.CMSG_SPACE(_TIMESPEC.size)
# linux/if_arp.h hardware types -> what the frame starts with
_ARPHRD_LINKTYPE = {
    1: LinkType.ETHERNET,  # ARPHRD_ETHER
    772: LinkType.ETHERNET,  # ARPHRD_LOOPBACK: a zeroed Ethernet header
    65534: LinkType.RAW,  # ARPHRD_NONE: tun devices, WireGuard
    768: LinkType.RAW,  # ARPHRD_TUNNEL
    769: LinkType.RAW,  # ARPHRD_TUNNEL6
    776: LinkType.RAW,  # ARPHRD_SIT
    778: LinkType.RAW,  # ARPHRD_IPGRE
}
_ARPHRD_LOOPBACK = 772
# The IPv4 or IPv6 header and the UDP header put back around a received datagram (RFC 791,
# RFC 8200, RFC 768).
_IPV4_UDP = struct.Struct("!BBHHHBBH4s4sHHHH")
_IPV6_UDP = struct.Struct("!IHBB16s16sHHHH")

StopCheck = Callable[[], bool]
_MAX_DRAINED = 100_000  # a busy interface is never empty: stop draining after this many


@dataclass(frozen=True, slots=True)
class MirrorListenAddress:
    host: str
    port: int


class UdpMirrorSource:
    """VXLAN or GENEVE datagrams from a UDP socket, as raw IP packets for the decoder.

    `vnis`, when given, keeps only those VNIs (read from the tunnel header before any
    decoding); `stats` counts datagrams kept, filtered out and too short to carry one.
    """

    def __init__(self, sock: socket.socket, *, vnis: frozenset[int] = frozenset(), poll_interval: float = 0.2):
        self._sock = sock
        self._vnis = vnis
        self._poll_interval = poll_interval
        self.stats: Counter[str] = Counter()

    @classmethod
    def open(
        cls, address: MirrorListenAddress, *, vnis: frozenset[int] = frozenset(), reuse_port: bool = False
    ) -> UdpMirrorSource:
        """Bind a UDP socket to `address`. With `reuse_port` (SO_REUSEPORT) other sockets of the
        same user may bind the same address too, and Linux hands each datagram to one of them
        by a hash of its source and destination address and port: one outer flow, one socket."""
        family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            _enlarge_receive_buffer(sock)
            sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
            if family == socket.AF_INET:
                sock.setsockopt(socket.IPPROTO_IP, _IP_PKTINFO, 1)
            else:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
            sock.bind((address.host, address.port))
        except OSError as exc:
            sock.close()
            raise CaptureError(f"cannot listen on {address.host}:{address.port}: {exc.strerror}") from exc
        return cls(sock, vnis=vnis)

    @property
    def address(self) -> MirrorListenAddress:
        host, port = self._sock.getsockname()[:2]
        return MirrorListenAddress(host=host, port=port)

    @property
    def receive_buffer_bytes(self) -> int:
        """What the kernel granted (Linux reports twice the bytes asked, for its overhead)."""
        return self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)

    def close(self) -> None:
        self._sock.close()

    def packets(self, stop: StopCheck) -> Iterator[RawPacket | None]:
        buffer = bytearray(_MAX_DATAGRAM)
        family = self._sock.family
        local_host, local_port = self._sock.getsockname()[:2]
        bound = socket.inet_pton(family, local_host)
        ancillary_size = socket.CMSG_SPACE(20) + socket.CMSG_SPACE(_TIMESPEC.size)
        for _ in _until_stopped_then_drained(self._sock, stop, self._poll_interval):
            try:
                length, ancillary, _flags, peer = self._sock.recvmsg_into([buffer], ancillary_size)
            except (TimeoutError, InterruptedError):  # ask `stop` again; tell the caller time passed
                yield None
                continue
            except BlockingIOError:  # stopped, and nothing more was queued
                return
            datagram = bytes(buffer[:length])
            if length < 8:
                self.stats["datagram_too_short"] += 1
                continue
            if self._vnis and int.from_bytes(datagram[4:7], "big") not in self._vnis:
                self.stats["vni_filtered_out"] += 1
                continue
            self.stats["datagrams"] += 1
            source = socket.inet_pton(self._sock.family, peer[0])
            local = _destination_address(ancillary, family) or bound
            frame = _wrap_in_ip_udp(datagram, source, peer[1], local, local_port)
            ts = _kernel_time(ancillary)
            yield RawPacket(ts=ts, data=frame, linktype=LinkType.RAW, wire_length=len(frame))


def _wrap_in_ip_udp(datagram: bytes, source: bytes, sport: int, destination: bytes, dport: int) -> bytes:
    """The datagram as it was on the wire: the tunnel context records the outer addresses."""
    udp_length = 8 + len(datagram)
    if len(source) == 4:
        # version/IHL, TOS, total length, id, flags/offset, TTL, protocol UDP, checksum, addresses
        header = _IPV4_UDP.pack(
            0x45, 0, 20 + udp_length, 0, 0, 64, 17, 0, source, destination, sport, dport, udp_length, 0
        )
    else:
        header = _IPV6_UDP.pack(6 << 28, udp_length, 17, 64, source, destination, sport, dport, udp_length, 0)
    return header + datagram


def _until_stopped_then_drained(sock: socket.socket, stop: StopCheck, poll_interval: float) -> Iterator[None]:
    """One turn per receive: blocking until `stop()`, then non-blocking through what the
    kernel had already queued (at most `_MAX_DRAINED` more), so nothing received is lost."""
    sock.settimeout(poll_interval)
    while not stop():
        yield None
    sock.setblocking(False)
    for _ in range(_MAX_DRAINED):
        yield None


def _kernel_time(ancillary: list[tuple[int, int, bytes]]) -> float:
    """When the kernel received the packet (SO_TIMESTAMPNS), else now."""
    for level, kind, data in ancillary:
        if (level, kind) == (socket.SOL_SOCKET, _SO_TIMESTAMPNS) and len(data) >= _TIMESPEC.size:
            seconds, nanoseconds = _TIMESPEC.unpack_from(data)
            return float(seconds + nanoseconds / 1e9)
    return time.time()


def _destination_address(ancillary: list[tuple[int, int, bytes]], family: int) -> bytes | None:
    for level, kind, data in ancillary:
        if family == socket.AF_INET and (level, kind) == (socket.IPPROTO_IP, _IP_PKTINFO) and len(data) >= 12:
            return data[8:12]
        if family == socket.AF_INET6 and (level, kind) == (socket.IPPROTO_IPV6, _IPV6_PKTINFO) and len(data) >= 16:
            return data[:16]
    return None


def _enlarge_receive_buffer(sock: socket.socket, size: int = RECEIVE_BUFFER_BYTES) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, size)
    except OSError:  # not root: as much as net.core.rmem_max allows
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)


class InterfaceSource:
    """Every frame of a network interface: AF_PACKET, promiscuous, snap length 65535.

    Frames are read whole up to the snap length; a longer one (a GRO-merged burst) is
    passed on cut, with its wire length. On the loopback interface each frame is seen
    once, not once leaving and once arriving. `stats["kernel_drops"]` counts the frames
    the kernel dropped because the receive buffer was full (PACKET_STATISTICS): frames
    we never saw because we were too slow.
    """

    def __init__(self, sock: socket.socket, interface: str, *, poll_interval: float = 0.2) -> None:
        self._sock = sock
        self.interface = interface
        self._poll_interval = poll_interval
        self.stats: Counter[str] = Counter()

    @classmethod
    def open(
        cls, interface: str, *, bpf: str | None = None, receive_buffer_bytes: int = RECEIVE_BUFFER_BYTES
    ) -> InterfaceSource:
        try:
            index = socket.if_nametoindex(interface)
        except OSError as exc:
            raise CaptureError(f"no network interface {interface!r}") from exc
        try:
            # Protocol 0 receives nothing until bind, so the filter is on before the first frame.
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        except PermissionError as exc:
            raise CaptureError(f"capturing on {interface} needs root or CAP_NET_RAW") from exc
        try:
            if bpf:
                _attach_filter(sock, bpf, _interface_linktype(interface))
            _enlarge_receive_buffer(sock, receive_buffer_bytes)
            sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
            sock.bind((interface, _ETH_P_ALL))
            membership = struct.pack("iHH8s", index, _PACKET_MR_PROMISC, 0, b"")
            sock.setsockopt(_SOL_PACKET, _PACKET_ADD_MEMBERSHIP, membership)
        except OSError as exc:
            sock.close()
            raise CaptureError(f"cannot capture on {interface}: {exc.strerror or exc}") from exc
        return cls(sock, interface)

    def close(self) -> None:
        self._sock.close()

    def read_kernel_drops(self) -> int:
        """Add the kernel's drops since the last read to `stats`; returns the total so far.
        The kernel resets its counters on each read: `packets` reads them at every quiet
        poll and at the end."""
        try:
            raw = self._sock.getsockopt(_SOL_PACKET, _PACKET_STATISTICS, _TPACKET_STATS.size)
        except OSError:  # closed, or not an AF_PACKET socket
            return self.stats["kernel_drops"]
        _packets, drops = _TPACKET_STATS.unpack(raw)
        if drops:
            self.stats["kernel_drops"] += drops
        return self.stats["kernel_drops"]

    def packets(self, stop: StopCheck) -> Iterator[RawPacket | None]:
        try:
            yield from self._frames(stop)
        finally:
            self.read_kernel_drops()

    def _frames(self, stop: StopCheck) -> Iterator[RawPacket | None]:
        buffer = bytearray(_SNAPLEN)
        for _ in _until_stopped_then_drained(self._sock, stop, self._poll_interval):
            try:
                wire_length, ancillary, _flags, address = self._sock.recvmsg_into(
                    [buffer], _TIMESTAMP_SPACE, socket.MSG_TRUNC
                )
            except (TimeoutError, InterruptedError):
                self.read_kernel_drops()
                yield None
                continue
            except BlockingIOError:
                return
            _name, _protocol, packet_type, hardware_type = address[:4]
            if hardware_type == _ARPHRD_LOOPBACK and packet_type == _PACKET_OUTGOING:
                continue
            linktype = _ARPHRD_LINKTYPE.get(hardware_type)
            if linktype is None:
                self.stats[f"unsupported_arphrd_{hardware_type}"] += 1
                continue
            self.stats["frames"] += 1
            data = bytes(buffer[: min(wire_length, _SNAPLEN)])
            yield RawPacket(
                ts=_kernel_time(ancillary),
                data=data,
                linktype=linktype,
                wire_length=wire_length,
                origin=self.interface,
            )


def _interface_linktype(interface: str) -> int:
    try:
        hardware_type = int(Path(f"/sys/class/net/{interface}/type").read_text())
    except (OSError, ValueError):
        return LinkType.ETHERNET
    return _ARPHRD_LINKTYPE.get(hardware_type, LinkType.ETHERNET)


def _attach_filter(sock: socket.socket, expression: str, linktype: int) -> None:
    """Compile `expression` with libpcap (through scapy) and attach it to the socket."""
    try:
        from scapy.arch.common import compile_filter  # noqa: PLC0415 - scapy is slow to import
        from scapy.error import Scapy_Exception  # noqa: PLC0415
    except ImportError as exc:
        raise CaptureError(f"--bpf needs scapy and libpcap: {exc}") from exc
    try:
        program = compile_filter(expression, linktype=_DLT_RAW if linktype == LinkType.RAW else linktype)
    except (Scapy_Exception, ImportError) as exc:
        raise CaptureError(f"cannot compile BPF filter {expression!r}: {exc}") from exc
    # struct sock_fprog: instruction count, then a pointer to the instructions
    fprog = struct.pack("HL", program.bf_len, ctypes.addressof(program.bf_insns.contents))
    sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, fprog)
