from __future__ import annotations

import struct
from pathlib import Path

import pytest

from capture import CaptureError, CaptureFormatError, CaptureTruncatedError, LinkType, read_capture
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
