"""A capture file fed straight from its records (`RequestStream.feed_file`) against packet by packet.

The compiled record path reads, decodes and tracks a plain classic pcap in C without
building a packet object; it must give exactly what `iter_packets` and `RequestStream.feed`
give: the same events in the same order, the same packet and byte counts, the same decoder
and tracker counters, the same capture loss, and the same error after the same packets when
the file is cut or damaged. Fed: every shared and sample capture (tunnels, fragments and
other frames the compiled decoder hands back to Python among them), generated captures with
loss, retransmission and reordering, and those cut short or corrupted at random places.
"""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest

from benchmarks.reassembly_generate import Impairments, packets, write_pcap
from oob_analyzer.pipeline import RequestStream, RunSummary, extract_events, iter_packets
from reassembly import ReassemblyEvent
from tests.paths import SAMPLES, SHARED

CAPTURES = sorted(
    p
    for root in (SHARED / "pcaps", SAMPLES)
    if root.exists()
    for p in root.rglob("*")
    if p.suffix in {".pcap", ".pcapng"}
)
Outcome = tuple[list[str], tuple[int, int, list[str]], dict[str, int], object]


def packet_by_packet(path: Path) -> Outcome:
    summary, stream = RunSummary(), RequestStream()
    events: list[ReassemblyEvent] = []
    for packet in iter_packets([path], summary):
        events += stream.feed(packet)
    events += stream.finish()
    return outcome(events, summary, stream)


def from_records(path: Path) -> Outcome | None:
    summary, stream = RunSummary(), RequestStream()
    runs = stream.feed_file(path, summary)
    if runs is None:
        return None
    events = [event for run in runs for event in run.events]
    events += stream.finish()
    return outcome(events, summary, stream)


def outcome(events: list[ReassemblyEvent], summary: RunSummary, stream: RequestStream) -> Outcome:
    counts = (summary.packets, summary.bytes, summary.errors)
    return [repr(e) for e in events], counts, dict(stream.drops()), stream.tracker.capture_loss


def assert_same(path: Path) -> Outcome:
    direct = from_records(path)
    assert direct is not None, "a plain classic pcap takes the record path"
    reference = packet_by_packet(path)
    assert direct[0] == reference[0]
    assert direct[1:] == reference[1:]
    return reference


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: str(p.relative_to(p.parents[1])))
def test_every_capture(path: Path) -> None:
    with path.open("rb") as stream:
        plain_pcap = stream.read(4) in (
            b"\xd4\xc3\xb2\xa1",
            b"\xa1\xb2\xc3\xd4",
            b"\x4d\x3c\xb2\xa1",
            b"\xa1\xb2\x3c\x4d",
        )
    if not plain_pcap:
        assert from_records(path) is None  # pcapng: packet by packet
        return
    assert_same(path)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("feed") / "generated.pcap"
    write_pcap(path, packets(300, 4, Impairments(0.02, 0.05, 0.05), 7, path.with_suffix(".jsonl")))
    return path


def test_a_generated_capture(generated: Path) -> None:
    events, (count, _, errors), _, _ = assert_same(generated)
    assert count > 5000 and not errors and sum("HttpResponse(" in e for e in events) > 1000


def record_offsets(data: bytes) -> list[int]:
    offsets, at = [], 24
    while at + 16 <= len(data):
        offsets.append(at)
        at += 16 + struct.unpack_from("<I", data, at + 8)[0]
    return offsets


@pytest.mark.parametrize("seed", range(12))
def test_a_capture_cut_or_damaged(generated: Path, tmp_path: Path, seed: int) -> None:
    """Cut anywhere, or a record's length made absurd or shifted: the same packets, then the same error."""
    rng = random.Random(seed)
    data = bytearray(generated.read_bytes())
    if seed % 3 == 0:
        data = data[: rng.randrange(24, len(data))]
    else:
        at = rng.choice(record_offsets(bytes(data)))
        length = struct.unpack_from("<I", data, at + 8)[0]
        struct.pack_into("<I", data, at + 8, 0xFFFFFFF0 if seed % 3 == 1 else length + rng.randrange(1, 40))
    path = tmp_path / "damaged.pcap"
    path.write_bytes(bytes(data))
    _, (_, _, errors), _, _ = assert_same(path)
    assert errors or seed % 3 == 2  # a shifted record may still read to the end as records


def test_extract_takes_the_record_path_for_one_plain_pcap(generated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    taken: list[Path] = []
    original = RequestStream.feed_file

    def spy(self: RequestStream, path: Path, summary: RunSummary) -> object:
        taken.append(path)
        return original(self, path, summary)

    monkeypatch.setattr(RequestStream, "feed_file", spy)
    summary = RunSummary()
    events = list(extract_events([generated], summary))
    assert taken == [generated]
    assert [repr(e) for e in events] == packet_by_packet(generated)[0]
    assert summary.requests == sum(e.startswith("HttpRequest(") for e in packet_by_packet(generated)[0])
