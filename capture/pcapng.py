"""A small pcapng reader that keeps each packet's own interface and link type.

Part of the capture stage's file edge (`capture.files`). dpkt's pcapng reader takes the
first interface's link type for every packet; a capture taken on `any` interface or
merged by `mergecap` holds Ethernet, Linux cooked and raw IP packets side by side, so we
read the blocks ourselves (draft-ietf-opsawg-pcapng, section numbers below). Runs of
enhanced packet blocks are read by the compiled `capture._fastdecode` when it is built;
every other block, and every block that is not sound, is read here.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Protocol

from capture.errors import CaptureFormatError, CaptureTruncatedError
from capture.packets import RawPacket

try:
    from capture import _fastdecode
except ImportError:  # a checkout run without `pip install`: blocks are read in Python
    _fastdecode = None  # type: ignore[assignment]

__all__ = ["PCAPNG_MAGIC", "ByteStream", "read_pcapng"]

PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"  # section 4.1: Section Header Block type
_BYTE_ORDER_MAGIC = 0x1A2B3C4D
_SECTION_HEADER, _INTERFACE_DESCRIPTION = 0x0A0D0D0A, 0x00000001
_OBSOLETE_PACKET, _SIMPLE_PACKET, _ENHANCED_PACKET = 0x00000002, 0x00000003, 0x00000006
_OPTION_END, _IF_TSRESOL, _IF_TSOFFSET = 0, 9, 14  # section 4.2 options
_MAX_BLOCK_BYTES = 1 << 28  # a block claiming more is corrupt
_CHUNK_BYTES = 1 << 20  # what the read-ahead asks the stream for at a time


class ByteStream(Protocol):
    """What the readers need of a file, a pipe or a decompressor: bytes, front to back."""

    def read(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True, slots=True)
class _Interface:
    linktype: int
    snaplen: int
    ticks_per_second: int
    offset_seconds: int


def read_pcapng(stream: ByteStream, name: str, first: bytes, *, compiled: bool = True) -> Iterator[RawPacket]:
    """Yield the packets of a pcapng stream whose first 4 bytes, `first`, were already read."""
    order = "<"
    interfaces: list[_Interface] = []
    count = 0
    ahead = _ReadAhead(stream) if compiled and _fastdecode is not None else None
    source: ByteStream = stream if ahead is None else ahead
    block_type_bytes = first
    while block_type_bytes:
        if len(block_type_bytes) < 4:
            raise CaptureTruncatedError(f"{name}: capture ends inside a block header after packet {count}")
        length_bytes = source.read(4)
        if block_type_bytes == PCAPNG_MAGIC:
            # The section's byte order comes after its length: read it first.
            magic = source.read(4)
            order = _byte_order(magic, name)
            length_bytes += magic
        block_type, body = _read_block(source, name, order, block_type_bytes + length_bytes, count)
        if block_type == _SECTION_HEADER:
            interfaces = []  # section 4.1: interface ids are per section
        elif block_type == _INTERFACE_DESCRIPTION:
            interfaces.append(_parse_interface(body, order, name))
        elif block_type in (_ENHANCED_PACKET, _OBSOLETE_PACKET, _SIMPLE_PACKET):
            count += 1
            yield _parse_packet(block_type, body, order, interfaces, name=name, count=count)
        if ahead is not None and interfaces:
            count = yield from _read_enhanced_packets(ahead, order, interfaces, name, count)
        block_type_bytes = source.read(4)


class _ReadAhead:
    """A stream read a chunk ahead, so that runs of packet blocks are parsed in C, in place.

    Reads with `read1` where the stream has it, so a pipe's packets come as they arrive.
    """

    def __init__(self, stream: ByteStream) -> None:
        self._stream = stream
        self._read_some: Callable[[int], bytes] = getattr(stream, "read1", stream.read)
        self.buffer = b""
        self.start = 0

    def read(self, size: int = -1, /) -> bytes:
        have = len(self.buffer) - self.start
        if 0 <= size <= have:
            self.start += size
            return self.buffer[self.start - size : self.start]
        rest = self._stream.read() if size < 0 else self._stream.read(size - have)
        data, self.buffer, self.start = self.buffer[self.start :] + rest, b"", 0
        return data

    def fill(self, size: int) -> bool:
        """Read until `size` bytes are buffered, or at least some more; False at the end of the stream."""
        have = len(self.buffer) - self.start
        # A block longer than a chunk is read whole at once: no copying it chunk by chunk.
        chunk = self._read_some(_CHUNK_BYTES) if size - have <= _CHUNK_BYTES else self._stream.read(size - have)
        if not chunk:
            return False
        self.buffer, self.start = (self.buffer[self.start :] + chunk if have else chunk), 0
        return True


def _read_enhanced_packets(
    ahead: _ReadAhead, order: str, interfaces: list[_Interface], name: str, count: int
) -> Generator[RawPacket, None, int]:
    """The packets of the enhanced packet blocks next in the stream; returns the count so far."""
    described = [(i.linktype, i.ticks_per_second, i.offset_seconds) for i in interfaces]
    while True:
        packets, ahead.start, needed = _fastdecode.parse_enhanced_packets(
            ahead.buffer, ahead.start, order == ">", described, RawPacket, name, _MAX_BLOCK_BYTES
        )
        count += len(packets)
        yield from packets
        if not needed or not ahead.fill(needed):
            return count


def _byte_order(magic: bytes, name: str) -> str:
    if len(magic) < 4:
        raise CaptureTruncatedError(f"{name}: capture ends inside a section header")
    for order in ("<", ">"):
        if struct.unpack(order + "I", magic)[0] == _BYTE_ORDER_MAGIC:
            return order
    raise CaptureFormatError(f"{name}: pcapng section header without its byte-order magic ({magic!r})")


def _read_block(stream: ByteStream, name: str, order: str, head: bytes, count: int) -> tuple[int, bytes]:
    """The block's type and body; `head` holds its first 8 or more bytes, already read."""
    if len(head) < 8:
        raise CaptureTruncatedError(f"{name}: capture ends inside a block header after packet {count}")
    block_type, total_length = struct.unpack_from(order + "II", head)
    if total_length < 12 or total_length % 4 or total_length > _MAX_BLOCK_BYTES:
        raise CaptureFormatError(f"{name}: block after packet {count} claims {total_length} bytes: the file is corrupt")
    rest = stream.read(total_length - len(head))
    if len(rest) < total_length - len(head):
        raise CaptureTruncatedError(f"{name}: capture ends inside a block after packet {count}")
    return block_type, (head[8:] + rest)[:-4]


def _parse_interface(body: bytes, order: str, name: str) -> _Interface:
    if len(body) < 8:
        raise CaptureFormatError(f"{name}: interface description block of {len(body)} bytes")
    linktype, _reserved, snaplen = struct.unpack_from(order + "HHI", body)
    ticks, offset = 10**6, 0
    cursor = 8
    while cursor + 4 <= len(body):
        code, length = struct.unpack_from(order + "HH", body, cursor)
        value = body[cursor + 4 : cursor + 4 + length]
        if code == _OPTION_END:
            break
        if code == _IF_TSRESOL and length == 1:
            # section 4.2: high bit clear means 10^-n seconds, set means 2^-n
            ticks = 2 ** (value[0] & 0x7F) if value[0] & 0x80 else 10 ** value[0]
        elif code == _IF_TSOFFSET and length == 8:
            offset = struct.unpack(order + "q", value)[0]
        cursor += 4 + ((length + 3) & ~3)
    return _Interface(linktype=linktype, snaplen=snaplen, ticks_per_second=ticks, offset_seconds=offset)


def _parse_packet(
    block_type: int, body: bytes, order: str, interfaces: list[_Interface], *, name: str, count: int
) -> RawPacket:
    if block_type == _SIMPLE_PACKET:  # section 4.4: interface 0, no time, cut to its snaplen
        if len(body) < 4 or not interfaces:
            raise CaptureFormatError(f"{name}: packet {count}: simple packet block without an interface")
        interface = interfaces[0]
        wire_length = struct.unpack_from(order + "I", body)[0]
        captured = min(wire_length, len(body) - 4, interface.snaplen or wire_length)
        data = body[4 : 4 + captured]
        return RawPacket(ts=0.0, data=data, linktype=interface.linktype, wire_length=wire_length, origin=name)
    if block_type == _ENHANCED_PACKET:  # section 4.3
        if len(body) < 20:
            raise CaptureFormatError(f"{name}: packet {count}: enhanced packet block of {len(body)} bytes")
        interface_id, ts_high, ts_low, captured, wire_length = struct.unpack_from(order + "IIIII", body)
        start = 20
    else:  # the obsolete Packet Block (appendix A): interface id and drop count are 16-bit
        if len(body) < 20:
            raise CaptureFormatError(f"{name}: packet {count}: packet block of {len(body)} bytes")
        interface_id, _drops, ts_high, ts_low, captured, wire_length = struct.unpack_from(order + "HHIIII", body)
        start = 20
    if interface_id >= len(interfaces):
        raise CaptureFormatError(f"{name}: packet {count} names interface {interface_id}, never described")
    interface = interfaces[interface_id]
    data = body[start : start + captured]
    ticks = (ts_high << 32) | ts_low
    ts = interface.offset_seconds + ticks / interface.ticks_per_second
    return RawPacket(
        ts=ts, data=data, linktype=interface.linktype, wire_length=max(wire_length, len(data)), origin=name
    )
