"""Capture files: the I/O edge that turns pcap and pcapng files into `RawPacket`s.

Sources: a pcap (micro- or nanosecond, either byte order) or pcapng file, gzip-compressed
or not, `-` for standard input, a directory (every capture in it, recursively), and several
of these merged in timestamp order. Classic pcap is read here (its record header carries
the wire length, which tells a snaplen-cut frame, and a cut record must be reported, not
silently shortened); pcapng in `capture.pcapng`. Whole records are parsed a chunk at a
time by the compiled `capture._fastdecode` when it is built; the record that ends the
stream or is damaged is read here. A damaged file raises a `CaptureError` that names the
file and the place, after every packet before the damage has been yielded.
"""

from __future__ import annotations

import gzip
import heapq
import struct
import sys
import zlib
from collections.abc import Callable, Generator, Iterable, Iterator
from pathlib import Path
from typing import IO, TypeVar

from capture.errors import CaptureError, CaptureFormatError, CaptureTruncatedError
from capture.packets import RawPacket
from capture.pcapng import PCAPNG_MAGIC, ByteStream, read_pcapng

try:
    from capture import _fastdecode
except ImportError:  # a checkout run without `pip install`: records are read in Python
    _fastdecode = None  # type: ignore[assignment]

__all__ = [
    "STDIN",
    "capture_size",
    "expand_capture_paths",
    "read_capture",
    "read_captures",
    "read_pcap_with",
    "read_stream",
]

STDIN = Path("-")
# draft-ietf-opsawg-pcap section 4: magic -> (byte order, fractional-second divisor)
_PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e6),
    b"\xa1\xb2\xc3\xd4": (">", 1e6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e9),
    b"\xa1\xb2\x3c\x4d": (">", 1e9),
}
_GZIP_MAGIC = b"\x1f\x8b"  # RFC 1952 section 2.3.1
_CAPTURE_MAGICS = (*_PCAP_MAGICS, PCAPNG_MAGIC, _GZIP_MAGIC)
# section 4: magic, major, minor, reserved1, reserved2, snaplen, linktype (+ FCS bits)
_PCAP_FILE_HEADER = "IHHIIII"
# section 5: seconds, fraction, captured length, original (wire) length
_PCAP_RECORD_HEADER = "IIII"
_MAX_RECORD_BYTES = 1 << 28  # larger than any link's frame: a record claiming more is corrupt
_CHUNK_BYTES = 1 << 20  # what the compiled record reader asks the stream for at a time

ErrorHandler = Callable[[CaptureError], None]
T = TypeVar("T")
# (buffer, start) -> (what the whole records from start made, the next record's offset,
# the bytes it needs from there or -1 when it claims too many, how many records were whole):
# `PcapRecordReader.parse` and the record count.
RecordParse = Callable[[bytes, int], tuple[list[T], int, int, int]]
ParseWith = Callable[["_fastdecode.PcapRecordReader"], RecordParse[T]]


def expand_capture_paths(paths: Iterable[Path]) -> list[Path]:
    """Each path as given; a directory becomes the captures in it, recursively, by name.

    A file in a directory counts as a capture when it starts like one (pcap, pcapng or
    gzip), whatever its name: rotated captures are often named `trace.pcap0`, `trace.1`.
    Raises `CaptureError` when a directory cannot be listed.
    """
    expanded: list[Path] = []
    for path in paths:
        if path != STDIN and path.is_dir():
            try:
                expanded += [
                    found
                    for found in sorted(path.rglob("*"))
                    if found.is_file() and not found.name.startswith(".") and _starts_like_a_capture(found)
                ]
            except OSError as exc:
                raise CaptureError(f"{path}: cannot list the directory: {exc.strerror or exc}") from exc
        else:
            expanded.append(path)
    return expanded


def capture_size(paths: Iterable[Path]) -> int | None:
    """Bytes of capture data the sources hold, for a progress estimate; None when unknown
    (standard input, a FIFO or device, a gzip-compressed file, a source that cannot be read)."""
    total = 0
    try:
        for path in expand_capture_paths(paths):
            if path == STDIN or not path.is_file():  # a FIFO must not lose bytes to this peek
                return None
            with path.open("rb") as stream:
                if stream.read(2) == _GZIP_MAGIC:
                    return None
            total += path.stat().st_size
    except (CaptureError, OSError):
        return None
    return total


def read_captures(paths: Iterable[Path], *, on_error: ErrorHandler) -> Iterator[RawPacket]:
    """The packets of every source merged in timestamp order (each file's own order kept).

    A source that cannot be read is handed to `on_error` and the others go on. Files are
    opened only when the merge reaches their first packet, so a directory of rotated
    captures keeps one or two open at a time.
    """
    sources: list[Path] = []
    for path in paths:
        try:
            found = expand_capture_paths([path])
        except CaptureError as exc:
            on_error(exc)
            continue
        if not found:  # only a directory expands to nothing
            on_error(CaptureError(f"{path}: no capture files in this directory"))
        sources += found
    if len(sources) == 1:
        yield from _guarded(read_capture(sources[0]), on_error)
        return
    # (first ts, position on the command line, path, its open iterator when it must be kept)
    waiting: list[tuple[float, int, Path, Iterator[RawPacket] | None]] = []
    for position, path in enumerate(sources):
        packets = _guarded(read_capture(path), on_error)
        first = next(packets, None)
        if first is None:
            continue
        if path == STDIN:  # cannot be read twice: keep it open
            waiting.append((first.ts, position, path, _prepend(first, packets)))
        else:
            packets.close()
            waiting.append((first.ts, position, path, None))
    waiting.sort(key=lambda entry: (entry[0], entry[1]))
    yield from _merge(waiting, on_error)


def _merge(
    waiting: list[tuple[float, int, Path, Iterator[RawPacket] | None]], on_error: ErrorHandler
) -> Iterator[RawPacket]:
    heap: list[tuple[float, int, RawPacket, Iterator[RawPacket]]] = []
    next_waiting = 0
    while heap or next_waiting < len(waiting):
        # Open the next file once the merge has reached its first packet.
        while next_waiting < len(waiting) and (not heap or waiting[next_waiting][0] <= heap[0][0]):
            _ts, position, path, kept = waiting[next_waiting]
            next_waiting += 1
            packets = kept if kept is not None else _guarded(read_capture(path), on_error)
            first = next(packets, None)
            if first is not None:
                heapq.heappush(heap, (first.ts, position, first, packets))
        if not heap:
            continue
        _ts, position, packet, packets = heap[0]
        yield packet
        following = next(packets, None)
        if following is None:
            heapq.heappop(heap)
        else:
            heapq.heapreplace(heap, (following.ts, position, following, packets))


def _prepend(first: RawPacket, rest: Iterator[RawPacket]) -> Iterator[RawPacket]:
    yield first
    yield from rest


def _guarded(packets: Iterator[RawPacket], on_error: ErrorHandler) -> Generator[RawPacket, None, None]:
    try:
        yield from packets
    except CaptureError as exc:
        on_error(exc)


def read_capture(path: Path) -> Iterator[RawPacket]:
    """Yield the packets of one pcap or pcapng file (gzipped or not, `-` for stdin), in file order."""
    name = "<stdin>" if path == STDIN else str(path)
    if path == STDIN:
        yield from read_stream(sys.stdin.buffer, name)
        return
    try:
        stream = path.open("rb")
    except OSError as exc:
        raise CaptureError(f"{path}: cannot open: {exc.strerror}") from exc
    with stream:
        yield from read_stream(stream, name)


def read_stream(stream: ByteStream, name: str) -> Iterator[RawPacket]:
    """The packets of an open capture stream, compressed or not; `name` goes in errors."""
    magic = stream.read(4)
    if magic[:2] == _GZIP_MAGIC:
        with gzip.GzipFile(fileobj=_Prefixed(magic, stream), mode="rb") as unzipped:
            try:
                yield from _read_uncompressed(unzipped, unzipped.read(4), f"{name} (gzip)")
            except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
                raise CaptureTruncatedError(f"{name}: compressed data is cut or corrupt: {exc}") from exc
    else:
        yield from _read_uncompressed(stream, magic, name)


def _read_uncompressed(stream: ByteStream, magic: bytes, name: str) -> Iterator[RawPacket]:
    if magic in _PCAP_MAGICS:
        yield from _read_pcap(stream, name, magic)
    elif magic == PCAPNG_MAGIC:
        yield from read_pcapng(stream, name, magic)
    else:
        raise CaptureFormatError(f"{name}: not a pcap or pcapng file (starts with {magic!r})")


class _Prefixed:
    """A stream whose first bytes were already read: hands them back first (stdin cannot seek)."""

    def __init__(self, prefix: bytes, stream: ByteStream) -> None:
        self._prefix = prefix
        self._stream = stream

    def read(self, size: int = -1, /) -> bytes:
        if not self._prefix:
            return self._stream.read(size)
        if size < 0:
            data, self._prefix = self._prefix + self._stream.read(), b""
            return data
        data, self._prefix = self._prefix[:size], self._prefix[size:]
        return data

    def seek(self, offset: int, /) -> int:
        raise OSError("a capture stream is read once, front to back")


def read_pcap_with(path: Path, parse_with: ParseWith[T]) -> Iterator[T | RawPacket] | None:
    """One uncompressed classic pcap file's whole records through `parse_with(reader)`, a
    consumer's own compiled walk of a `PcapRecordReader`'s buffers (reassembly's tracker
    decodes and tracks them in C, building no packet); then, as RawPackets, the records this
    module reads itself (a cut or damaged tail, before its CaptureError).

    None when it cannot: the compiled reader is not built, or the file is not a plain
    classic pcap, or cannot be opened; `read_captures` reads it then (and names any error).
    """
    if _fastdecode is None or path == STDIN:
        return None
    try:
        stream = path.open("rb")
    except OSError:
        return None
    magic = stream.read(4)
    if magic not in _PCAP_MAGICS:
        stream.close()
        return None
    items = _read_pcap_items(stream, str(path), magic, parse_with)
    return _closing(stream, items)


def _closing(stream: IO[bytes], items: Iterator[T]) -> Iterator[T]:
    try:
        yield from items
    finally:
        stream.close()


def _read_pcap(stream: ByteStream, name: str, magic: bytes, *, compiled: bool = True) -> Iterator[RawPacket]:
    return _read_pcap_items(stream, name, magic, _packets if compiled else None)


def _packets(records: _fastdecode.PcapRecordReader) -> RecordParse[RawPacket]:
    def parse(buffer: bytes, start: int) -> tuple[list[RawPacket], int, int, int]:
        packets, start, needed = records.parse(buffer, start)
        return packets, start, needed, len(packets)

    return parse


def _read_pcap_items(
    stream: ByteStream, name: str, magic: bytes, parse_with: ParseWith[T] | None
) -> Iterator[T | RawPacket]:
    """The whole records through `parse_with(reader)` when given (and compiled), then the
    rest record by record as RawPackets."""
    byte_order, divisor = _PCAP_MAGICS[magic]
    file_header = struct.Struct(byte_order + _PCAP_FILE_HEADER)
    rest = stream.read(file_header.size - 4)
    if len(rest) < file_header.size - 4:
        raise CaptureTruncatedError(f"{name}: capture ends inside its file header")
    linktype = file_header.unpack(magic + rest)[6] & 0x0FFFFFFF
    count = 0
    if parse_with is not None and _fastdecode is not None:
        records = _fastdecode.PcapRecordReader(
            raw_packet_type=RawPacket,
            big_endian=byte_order == ">",
            divisor=divisor,
            linktype=linktype,
            origin=name,
            max_record=_MAX_RECORD_BYTES,
        )
        leftover, count = yield from _read_whole_records(stream, parse_with(records))
        # The end of the stream, or a record claiming too many bytes: the record-by-record
        # reader below says what is wrong, after the packets before it.
        stream = _Prefixed(leftover, stream)
    yield from _read_pcap_records(
        stream,
        name,
        record_header=struct.Struct(byte_order + _PCAP_RECORD_HEADER),
        divisor=divisor,
        linktype=linktype,
        count=count,
    )


def _read_whole_records(stream: ByteStream, parse: RecordParse[T]) -> Generator[T, None, tuple[bytes, int]]:
    """What `parse` makes of the whole records (packets), a chunk at a time; returns the bytes
    after them and how many records they were.

    Reads with `read1` where the stream has it, so a pipe's packets come as they arrive.
    Stops at the end of the stream or at a record claiming more than `_MAX_RECORD_BYTES`.
    """
    read_some: Callable[[int], bytes] = getattr(stream, "read1", stream.read)
    buffer, start, count = b"", 0, 0
    while True:
        packets, start, needed, records = parse(buffer, start)
        count += records
        yield from packets
        left = len(buffer) - start
        if needed < 0:
            return buffer[start:], count
        if left:
            # The record a chunk cut is completed on its own, with just the bytes it lacks:
            # joining it to the next chunk would copy the whole chunk for every chunk read.
            # `read1` too, or a buffered stream would fill its own buffer and hand the next
            # chunk out a few KiB at a time; a record longer than a chunk is read whole at once.
            lacking = needed - left
            more = read_some(lacking) if lacking <= _CHUNK_BYTES else stream.read(lacking)
            if not more:
                return buffer[start:], count
            buffer, start = buffer[start:] + more, 0
            continue
        chunk = read_some(_CHUNK_BYTES)
        if not chunk:
            return b"", count
        buffer, start = chunk, 0


def _read_pcap_records(
    stream: ByteStream, name: str, *, record_header: struct.Struct, divisor: float, linktype: int, count: int
) -> Iterator[RawPacket]:
    read = stream.read
    unpack = record_header.unpack
    header_size = record_header.size
    while header := read(header_size):
        if len(header) < header_size:
            raise CaptureTruncatedError(f"{name}: capture ends inside a record after packet {count}")
        seconds, fraction, captured, wire_length = unpack(header)
        if captured > _MAX_RECORD_BYTES:
            raise CaptureFormatError(f"{name}: record {count + 1} claims {captured} bytes: the file is corrupt")
        data = read(captured)
        count += 1
        # A record cut short still goes on, marked by its wire length, before the error.
        yield RawPacket(
            ts=seconds + fraction / divisor,
            data=data,
            linktype=linktype,
            wire_length=max(wire_length, captured),
            origin=name,
        )
        if len(data) < captured:
            raise CaptureTruncatedError(f"{name}: capture ends inside packet {count}")


def _starts_like_a_capture(path: Path) -> bool:
    try:
        with path.open("rb") as stream:
            head = stream.read(4)
    except OSError:
        return True  # let the reader report why it cannot be opened
    return head[:2] == _GZIP_MAGIC or head in _CAPTURE_MAGICS
