from __future__ import annotations

import contextlib
import gzip
import io
import os
import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from capture import (
    CaptureError,
    CaptureFormatError,
    CaptureTruncatedError,
    LinkType,
    PacketDecoder,
    expand_capture_paths,
    read_capture,
    read_captures,
)
from capture import files as capture_files
from capture.files import read_stream
from capture.pcapng import read_pcapng
from tests.builders import (
    ethernet_frame,
    ipv4_packet,
    pcap_file,
    pcapng_interface,
    pcapng_packet,
    pcapng_section,
    tcp_header,
)
from tests.paths import SAMPLES


def test_pcap_and_pcapng_samples_hold_the_same_frames() -> None:
    pcap = list(read_capture(SAMPLES / "mirror-http.pcap"))
    pcapng = list(read_capture(SAMPLES / "mirror-http.pcapng"))
    assert len(pcap) == 55
    assert [p.data for p in pcap] == [p.data for p in pcapng]
    # scapy writes pcapng times truncated to the microsecond, pcap times rounded
    assert all(abs(a.ts - b.ts) < 2e-6 for a, b in zip(pcap, pcapng, strict=True))
    assert {p.linktype for p in pcap} == {LinkType.ETHERNET}


FIRST_RECORD = 24 + 16 + 54  # file header, record header, a 54-byte SYN frame


def test_a_capture_cut_inside_a_record_header_yields_what_came_before(tmp_path: Path) -> None:
    damaged = tmp_path / "cut.pcap"
    damaged.write_bytes((SAMPLES / "mirror-http.pcap").read_bytes()[: FIRST_RECORD + 8])
    packets = []
    with pytest.raises(CaptureTruncatedError, match="cut.pcap: capture ends inside a record after packet 1"):
        for packet in read_capture(damaged):
            packets.append(packet)
    assert len(packets) == 1


def test_a_capture_cut_inside_a_frame_passes_the_frame_on_marked_short(tmp_path: Path) -> None:
    damaged = tmp_path / "cut.pcap"
    damaged.write_bytes((SAMPLES / "mirror-http.pcap").read_bytes()[: FIRST_RECORD + 16 + 30])
    packets = []
    with pytest.raises(CaptureTruncatedError, match="cut.pcap: capture ends inside packet 2"):
        for packet in read_capture(damaged):
            packets.append(packet)
    assert [(len(p.data), p.wire_length) for p in packets] == [(54, 54), (30, 54)]


def test_nanosecond_big_endian_pcap(tmp_path: Path) -> None:
    capture = tmp_path / "nano.pcap"
    frame = b"\x00" * 20
    capture.write_bytes(
        struct.pack(">IHHIIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, LinkType.RAW)
        + struct.pack(">IIII", 1700000000, 123456789, len(frame), 1500)
        + frame
    )
    (packet,) = read_capture(capture)
    assert packet.ts == pytest.approx(1700000000.123456789, abs=1e-7)
    assert (packet.linktype, packet.wire_length, packet.data) == (LinkType.RAW, 1500, frame)


def test_a_file_that_is_no_capture_says_so(tmp_path: Path) -> None:
    garbage = tmp_path / "notes.txt"
    garbage.write_bytes(b"GET / HTTP/1.1\r\n")
    with pytest.raises(CaptureFormatError, match=r"notes.txt: not a pcap or pcapng file \(starts with b'GET '\)"):
        list(read_capture(garbage))


def test_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="cannot open: No such file or directory"):
        list(read_capture(tmp_path / "absent.pcap"))


def frame(marker: int, payload: bytes = b"") -> bytes:
    return ethernet_frame(ipv4_packet(tcp_header(seq=marker) + payload))


def test_pcapng_with_interfaces_of_different_link_types_and_resolutions() -> None:
    for order in ("<", ">"):
        data = (
            pcapng_section(order=order)
            + pcapng_interface(LinkType.ETHERNET, order=order)
            + pcapng_interface(LinkType.RAW, tsresol=9, order=order)
            + pcapng_packet(0, 1_700_000_000_500_000, frame(1), order=order)
            + pcapng_packet(1, 1_700_000_000_250_000_000, ipv4_packet(tcp_header(seq=2)), order=order)
            + pcapng_packet(0, 1_700_000_001_000_000, frame(3, b"abcdef")[:56], wire_length=60, order=order)
        )
        packets = list(read_pcapng(io.BytesIO(data[4:]), "multi.pcapng", data[:4]))
        assert [(p.linktype, p.ts, p.wire_length) for p in packets] == [
            (LinkType.ETHERNET, 1700000000.5, len(frame(1))),
            (LinkType.RAW, 1700000000.25, 40),
            (LinkType.ETHERNET, 1700000001.0, 60),  # cut by the snap length: 56 bytes kept
        ]
        decoder = PacketDecoder()
        assert [segment.seq for p in packets if (segment := decoder.decode(p))] == [1, 2, 3]


def test_a_second_section_starts_its_interfaces_afresh(tmp_path: Path) -> None:
    capture = tmp_path / "two-sections.pcapng"
    capture.write_bytes(
        pcapng_section()
        + pcapng_interface(LinkType.RAW)
        + pcapng_packet(0, 1, ipv4_packet(b""))
        + pcapng_section(order=">")
        + pcapng_interface(LinkType.ETHERNET, order=">")
        + pcapng_packet(0, 2, frame(1), order=">")
    )
    assert [p.linktype for p in read_capture(capture)] == [LinkType.RAW, LinkType.ETHERNET]


def test_pcapng_packet_naming_an_undescribed_interface_is_reported(tmp_path: Path) -> None:
    capture = tmp_path / "bad.pcapng"
    capture.write_bytes(pcapng_section() + pcapng_interface(LinkType.RAW) + pcapng_packet(3, 1, b"x"))
    with pytest.raises(CaptureFormatError, match="packet 1 names interface 3, never described"):
        list(read_capture(capture))


def test_pcapng_cut_inside_a_block_keeps_what_came_before(tmp_path: Path) -> None:
    capture = tmp_path / "cut.pcapng"
    whole = pcapng_section() + pcapng_interface(LinkType.ETHERNET) + pcapng_packet(0, 1, frame(1))
    capture.write_bytes(whole + pcapng_packet(0, 2, frame(2))[:30])
    packets = []
    with pytest.raises(CaptureTruncatedError, match="cut.pcapng: capture ends inside a block after packet 1"):
        packets.extend(read_capture(capture))
    assert len(packets) == 1


def test_gzip_compressed_pcap_and_pcapng(tmp_path: Path) -> None:
    for sample in ("mirror-http.pcap", "mirror-http.pcapng"):
        compressed = tmp_path / f"{sample}.gz"
        compressed.write_bytes(gzip.compress((SAMPLES / sample).read_bytes()))
        assert [p.data for p in read_capture(compressed)] == [p.data for p in read_capture(SAMPLES / sample)]


def test_a_cut_gzip_capture_is_reported_after_its_packets(tmp_path: Path) -> None:
    compressed = gzip.compress((SAMPLES / "mirror-http.pcap").read_bytes())
    cut = tmp_path / "cut.pcap.gz"
    cut.write_bytes(compressed[: len(compressed) // 2])
    packets = []
    with pytest.raises(CaptureError, match=r"cut.pcap.gz"):
        packets.extend(read_capture(cut))
    assert 0 < len(packets) < 55


def test_files_merge_in_timestamp_order_and_errors_are_reported_not_raised(tmp_path: Path) -> None:
    (tmp_path / "a.pcap").write_bytes(pcap_file([(1.0, frame(1)), (4.0, frame(4)), (5.0, frame(5))]))
    (tmp_path / "b.pcap").write_bytes(pcap_file([(2.0, frame(2)), (3.0, frame(3)), (6.0, frame(6))]))
    (tmp_path / "c.pcap").write_bytes(b"not a capture")
    errors: list[CaptureError] = []
    paths = [tmp_path / "b.pcap", tmp_path / "a.pcap", tmp_path / "c.pcap"]
    packets = list(read_captures(paths, on_error=errors.append))
    assert [p.ts for p in packets] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert [str(e) for e in errors] == [f"{tmp_path / 'c.pcap'}: not a pcap or pcapng file (starts with b'not ')"]


def test_a_directory_holds_its_captures_by_content_not_name(tmp_path: Path) -> None:
    (tmp_path / "rotated").mkdir()
    (tmp_path / "rotated" / "trace.pcap0").write_bytes(pcap_file([(2.0, frame(2))]))
    (tmp_path / "rotated" / "trace.1").write_bytes(gzip.compress(pcap_file([(1.0, frame(1))])))
    (tmp_path / "README.md").write_text("captures of the incident")
    assert expand_capture_paths([tmp_path]) == [tmp_path / "rotated" / "trace.1", tmp_path / "rotated" / "trace.pcap0"]
    assert [p.ts for p in read_captures([tmp_path], on_error=pytest.fail)] == [1.0, 2.0]


def test_sequential_files_are_opened_one_at_a_time(tmp_path: Path) -> None:
    for hour in range(6):
        (tmp_path / f"{hour}.pcap").write_bytes(pcap_file([(hour * 10.0 + i, frame(i)) for i in range(3)]))

    def open_captures() -> int:
        descriptors = Path("/proc/self/fd")
        links = [os.readlink(fd) for fd in descriptors.iterdir() if fd.exists()]  # the listing's own fd is gone
        return sum(link.startswith(str(tmp_path)) for link in links)

    most_open = 0
    for _packet in read_captures([tmp_path], on_error=pytest.fail):
        most_open = max(most_open, open_captures())
    assert most_open == 1


VALID_CAPTURES = [
    pcap_file([(1.0, frame(1)), (2.0, frame(2))]),
    pcapng_section() + pcapng_interface(LinkType.ETHERNET, tsresol=9) + pcapng_packet(0, 5, frame(1)),
    gzip.compress(pcap_file([(1.0, frame(1))])),
]


@given(
    st.sampled_from(VALID_CAPTURES),
    st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=6),
    st.integers(0, 400),
)
def test_damaged_captures_raise_only_capture_errors(capture: bytes, changes: list[tuple[int, int]], cut: int) -> None:
    damaged = bytearray(capture)
    for position, value in changes:
        damaged[position % len(damaged)] = value
    stream = io.BytesIO(bytes(damaged[: max(cut, 4)]))
    with contextlib.suppress(CaptureError):
        for packet in read_stream(stream, "fuzz"):
            assert len(packet.data) <= packet.wire_length


def test_a_directory_without_captures_is_reported(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("nothing here")
    errors: list[CaptureError] = []
    assert list(read_captures([tmp_path], on_error=errors.append)) == []
    assert [str(e) for e in errors] == [f"{tmp_path}: no capture files in this directory"]


# ---- whole records a chunk at a time (files._read_whole_records) ----------------------


def records_of(data: bytes, chunk: int, monkeypatch: pytest.MonkeyPatch) -> tuple[list[bytes], int]:
    """The frames `_read_whole_records` hands out from a buffered file holding `data`, read
    `chunk` bytes at a time, and how many times it parsed."""
    monkeypatch.setattr(capture_files, "_CHUNK_BYTES", chunk)
    stream = io.BufferedReader(io.BytesIO(data), buffer_size=1024)  # type: ignore[arg-type]
    stream.read(24)  # the file header, as _read_pcap_items reads it
    calls = 0

    def parse(buffer: bytes, start: int) -> tuple[list[bytes], int, int, int]:
        nonlocal calls
        calls += 1
        frames = []
        while len(buffer) - start >= 16:
            captured = struct.unpack_from("<I", buffer, start + 8)[0]
            if len(buffer) - start - 16 < captured:
                return frames, start, 16 + captured, len(frames)
            frames.append(buffer[start + 16 : start + 16 + captured])
            start += 16 + captured
        return frames, start, 16, len(frames)

    frames = list(capture_files._read_whole_records(stream, parse))
    return frames, calls


@pytest.mark.parametrize("chunk", [100, 1000, 5000])
def test_records_cut_by_chunks_are_whole_and_in_order(chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    sizes = [54, 1514, 60, 3000, 200, 16, 900] * 5  # some longer than a chunk
    sent = [bytes([n % 251]) * size for n, size in enumerate(sizes)]
    frames, _calls = records_of(pcap_file([(float(n), f) for n, f in enumerate(sent)]), chunk, monkeypatch)
    assert frames == sent


def test_chunks_stay_whole_after_a_record_they_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    """Completing a cut record must not leave the stream's own buffer to hand out the next
    chunks a little at a time: about two parses per chunk, not one per buffer's worth."""
    sent = [bytes([n % 251]) * 700 for n in range(300)]  # 214 KB
    frames, calls = records_of(pcap_file([(float(n), f) for n, f in enumerate(sent)]), 16384, monkeypatch)
    assert frames == sent
    assert calls <= 2 * (len(sent) * 716 // 16384 + 2)
