"""Capture files: the I/O edge that turns pcap and pcapng files into `RawPacket`s.

Classic pcap is read here (its record header carries the wire length, which tells a
snaplen-cut frame, and a cut record must be reported, not silently shortened); dpkt reads
pcapng. A damaged file raises a `CaptureError` that names the file and the place, after
every packet before the damage has been yielded.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import dpkt

from capture.errors import CaptureError, CaptureFormatError, CaptureTruncatedError
from capture.packets import RawPacket

__all__ = ["read_capture", "read_captures"]

# draft-ietf-opsawg-pcap section 4: magic -> (byte order, fractional-second divisor)
_PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e6),
    b"\xa1\xb2\xc3\xd4": (">", 1e6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e9),
    b"\xa1\xb2\x3c\x4d": (">", 1e9),
}
# section 4: magic, major, minor, reserved1, reserved2, snaplen, linktype (+ FCS bits)
_PCAP_FILE_HEADER = "IHHIIII"
# section 5: seconds, fraction, captured length, original (wire) length
_PCAP_RECORD_HEADER = "IIII"
_MAX_RECORD_BYTES = 1 << 28  # larger than any link's frame: a record claiming more is corrupt
_PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"  # section header block type


def read_captures(paths: list[Path]) -> Iterator[RawPacket]:
    """Yield the packets of each file in turn."""
    for path in paths:
        yield from read_capture(path)


def read_capture(path: Path) -> Iterator[RawPacket]:
    """Yield the packets of one pcap or pcapng file, in file order."""
    try:
        stream = path.open("rb")
    except OSError as exc:
        raise CaptureError(f"{path}: cannot open: {exc.strerror}") from exc
    with stream:
        yield from _read_stream(stream, str(path))


def _read_stream(stream: BinaryIO, name: str) -> Iterator[RawPacket]:
    magic = stream.read(4)
    if magic in _PCAP_MAGICS:
        yield from _read_pcap(stream, name, magic)
    elif magic == _PCAPNG_MAGIC:
        stream.seek(0)
        yield from _read_pcapng(stream, name)
    else:
        raise CaptureFormatError(f"{name}: not a pcap or pcapng file (starts with {magic!r})")


def _read_pcap(stream: BinaryIO, name: str, magic: bytes) -> Iterator[RawPacket]:
    byte_order, divisor = _PCAP_MAGICS[magic]
    file_header = struct.Struct(byte_order + _PCAP_FILE_HEADER)
    record_header = struct.Struct(byte_order + _PCAP_RECORD_HEADER)
    rest = stream.read(file_header.size - 4)
    if len(rest) < file_header.size - 4:
        raise CaptureTruncatedError(f"{name}: capture ends inside its file header")
    linktype = file_header.unpack(magic + rest)[6] & 0x0FFFFFFF
    count = 0
    while header := stream.read(record_header.size):
        if len(header) < record_header.size:
            raise CaptureTruncatedError(f"{name}: capture ends inside a record after packet {count}")
        seconds, fraction, captured, wire_length = record_header.unpack(header)
        if captured > _MAX_RECORD_BYTES:
            raise CaptureFormatError(f"{name}: record {count + 1} claims {captured} bytes: the file is corrupt")
        data = stream.read(captured)
        count += 1
        ts = seconds + fraction / divisor
        # A record cut short still goes on, marked by its wire length, before the error.
        yield RawPacket(ts=ts, data=data, linktype=linktype, wire_length=max(wire_length, captured), origin=name)
        if len(data) < captured:
            raise CaptureTruncatedError(f"{name}: capture ends inside packet {count}")


def _read_pcapng(stream: BinaryIO, name: str) -> Iterator[RawPacket]:
    try:
        reader = dpkt.pcapng.Reader(stream)
    except (ValueError, dpkt.UnpackError, struct.error) as exc:
        raise CaptureFormatError(f"{name}: unreadable pcapng header: {exc}") from exc
    linktype = reader.datalink()
    count = 0
    try:
        for ts, data in reader:
            count += 1
            yield RawPacket(ts=float(ts), data=data, linktype=linktype, wire_length=len(data), origin=name)
    except (dpkt.NeedData, dpkt.UnpackError, struct.error) as exc:
        raise CaptureTruncatedError(f"{name}: capture ends inside a block after packet {count}") from exc
