"""Types of the compiled hot path (capture/_fastdecode.c)."""

from collections.abc import Callable, Iterable

from capture.packets import RawPacket, TcpSegment, TunnelContext

class FrameDecoder:
    def __init__(
        self,
        *,
        raw_packet_type: type[RawPacket],
        segment_type: type[TcpSegment],
        vxlan_ports: Iterable[int],
        geneve_ports: Iterable[int],
        address: Callable[[bytes], str],  # an IPv6 address's text (IPv4 ones are written in C)
        enter: Callable[[TunnelContext, str, bytes, bytes, int], TunnelContext | str],
    ) -> None: ...
    def decode(self, packet: RawPacket, /) -> TcpSegment | None: ...
    def set_ports(self, vxlan_ports: Iterable[int], geneve_ports: Iterable[int], /) -> None: ...
    def clear_caches(self) -> None: ...

class PcapRecordReader:
    def __init__(
        self,
        *,
        raw_packet_type: type[RawPacket],
        big_endian: bool,
        divisor: float,
        linktype: int,
        origin: str,
        max_record: int,
    ) -> None: ...
    def parse(self, buffer: bytes, start: int, /) -> tuple[list[RawPacket], int, int]: ...

def parse_enhanced_packets(
    buffer: bytes,
    start: int,
    big_endian: bool,
    interfaces: list[tuple[int, int, int]],
    raw_packet_type: type[RawPacket],
    origin: str,
    max_block: int,
    /,
) -> tuple[list[RawPacket], int, int]: ...
def route_packet(frame_decoder: FrameDecoder, packet: RawPacket, buffers: list[bytearray], /) -> int: ...
def route_records(
    reader: PcapRecordReader,
    buffer: bytes,
    start: int,
    frame_decoder: FrameDecoder,
    buffers: list[bytearray],
    counts: list[int],
    batch_limit: int,
    /,
) -> tuple[int, int, int, int, int | RawPacket | None]: ...
def unpack_frames(buffer: bytes | bytearray, raw_packet_type: type[RawPacket], origin: str, /) -> list[RawPacket]: ...
