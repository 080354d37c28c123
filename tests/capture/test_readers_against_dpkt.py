"""Our capture readers against dpkt's, an independent implementation, on the shared captures.

Our readers exist because dpkt's could not do what a mirror analyzer needs (a pcap record's
wire length, a cut record reported rather than shortened, pcapng interfaces with different
link types); on every capture dpkt reads whole, the frames and times must be the same.
"""

from __future__ import annotations

from pathlib import Path

import dpkt
import pytest

from capture import read_capture
from tests.paths import SHARED

CAPTURES = sorted(p for p in (SHARED / "pcaps").rglob("*") if p.suffix in {".pcap", ".pcapng"})
# dpkt applies the first interface's time resolution to every packet; this file's second
# interface counts microseconds where the first counts nanoseconds.
MULTI_INTERFACE = SHARED / "pcaps" / "zeek" / "pcapng-multi-interface.pcapng"


def dpkt_frames(path: Path) -> list[tuple[float, bytes]] | None:
    """dpkt's view of the file, or None where dpkt cannot read it (our reader must do better there)."""
    with path.open("rb") as stream:
        try:
            reader = dpkt.pcapng.Reader(stream) if path.suffix == ".pcapng" else dpkt.pcap.Reader(stream)
            return [(float(ts), bytes(data)) for ts, data in reader]
        except (ValueError, dpkt.UnpackError):
            return None


@pytest.mark.skipif(not CAPTURES, reason="the shared captures are not next to the project")
def test_our_readers_agree_with_dpkt_on_every_capture_dpkt_reads() -> None:
    compared = 0
    for path in CAPTURES:
        theirs = dpkt_frames(path)
        if theirs is None:
            continue
        ours = list(read_capture(path))
        assert [p.data for p in ours] == [data for _, data in theirs], path
        if path != MULTI_INTERFACE:
            assert all(abs(p.ts - ts) < 1e-6 for p, (ts, _) in zip(ours, theirs, strict=True)), path
        compared += 1
    assert compared >= 60  # all but the few that dpkt cannot read


@pytest.mark.skipif(not MULTI_INTERFACE.exists(), reason="the shared captures are not next to the project")
def test_each_pcapng_interface_keeps_its_own_time_resolution() -> None:
    third = list(read_capture(MULTI_INTERFACE))[2]  # the first packet of interface 1
    assert third.ts == pytest.approx(1767663437.111897, abs=1e-6)  # tshark's frame.time_epoch
