"""`replay` in one process through the record path against replay packet by packet.

`replay --workers 1` reads a plain classic pcap through `RequestStream.feed_file` (records
read, decoded and tracked in C, hits judged a run of records at a time); it must record what
replay packet by packet records: the same hits with the same response statuses, the same
anomalies, counters and run report. Fed: every shared and sample plain pcap, and a generated
capture of benign traffic and corpus attacks (several runs of records long).
"""

from __future__ import annotations

import importlib
import json
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from benchmarks.full_pipeline import generate
from oob_analyzer.cli import main
from oob_analyzer.config import SensorEngine, build_engine, load_config
from oob_analyzer.pipeline import (
    EventRun,
    RequestStream,
    RunSummary,
    analyze_event_runs,
    analyze_packets,
    file_event_runs,
    iter_packets,
)
from reassembly import HttpRequest
from storage import CaptureRun
from tests.paths import SAMPLES, SHARED
from tests.workers.runs import ListSink

_PCAP_MAGICS = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")


def _is_plain_pcap(path: Path) -> bool:
    with path.open("rb") as stream:
        return stream.read(4) in _PCAP_MAGICS


PLAIN_PCAPS = sorted(
    p for root in (SHARED / "pcaps", SAMPLES) if root.exists() for p in root.rglob("*.pcap") if _is_plain_pcap(p)
)


@pytest.fixture(scope="module")
def engine() -> SensorEngine:
    # The sample's config: applications, a route not monitored, a host list, so that the
    # engine's own counters (requests not judged) move too.
    return build_engine(load_config(SAMPLES / "oob-analyzer.yaml"))


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The full-pipeline benchmark's traffic, slowed down 20,000 times (packets 1 s apart):
    many responses come later than a hit waits for them (5 s), many in time."""
    where = tmp_path_factory.mktemp("record-path")
    pcap = where / "generated.pcap"
    generate(pcap, where / "truth.jsonl", connections=1500, attack_share=0.2, seed=5)
    pcap.write_bytes(slowed_down(pcap.read_bytes(), 20_000))
    return pcap


def slowed_down(capture: bytes, factor: int) -> bytes:
    """A little-endian microsecond pcap (as `write_pcap` writes) with its clock slowed down."""
    out, at = bytearray(capture), 24
    first = None
    while at + 16 <= len(out):
        seconds, micros, captured = struct.unpack_from("<III", out, at)
        ts = seconds * 1_000_000 + micros
        first = ts if first is None else first
        slowed = first + (ts - first) * factor
        struct.pack_into("<II", out, at, slowed // 1_000_000, slowed % 1_000_000)
        at += 16 + captured
    return bytes(out)


def replayed(path: Path, engine: SensorEngine, *, record_path: bool) -> tuple[ListSink, RunSummary, dict[str, int]]:
    summary, stream, sink = RunSummary(), RequestStream(), ListSink()
    before = engine.counters.copy()
    if record_path:
        runs = file_event_runs(stream, [path], summary)
        assert runs is not None, "a plain classic pcap takes the record path"
        analyze_event_runs(runs, engine=engine, sink=sink, summary=summary, stream=stream)
    else:
        analyze_packets(iter_packets([path], summary), engine=engine, sink=sink, summary=summary, stream=stream)
    return sink, summary, dict(engine.counters - before)


def assert_same_replay(path: Path, engine: SensorEngine) -> RunSummary:
    direct_sink, direct, direct_counters = replayed(path, engine, record_path=True)
    sink, reference, counters = replayed(path, engine, record_path=False)
    assert sorted(map(repr, direct_sink.hits)) == sorted(map(repr, sink.hits))
    assert direct_sink.sightings == sink.sightings
    assert direct == reference
    assert direct.line() == reference.line()
    assert direct_counters == counters
    return reference


@pytest.mark.parametrize("path", PLAIN_PCAPS, ids=lambda p: str(p.relative_to(p.parents[1])))
def test_every_plain_capture(path: Path, engine: SensorEngine) -> None:
    assert_same_replay(path, engine)


def test_a_generated_capture_of_several_runs(generated: Path, engine: SensorEngine) -> None:
    assert generated.stat().st_size > 3 << 20  # several 1 MiB runs of records
    direct_sink, _, _ = replayed(generated, engine, record_path=True)
    summary = assert_same_replay(generated, engine)
    assert summary.hits > 500 and summary.responses > 4000
    statuses = [hit.response_status for hit in direct_sink.hits]
    assert statuses.count(None) > 50 and len(statuses) - statuses.count(None) > 50  # late and in time


def test_an_interrupted_run_still_records_every_hit_it_judged(generated: Path, engine: SensorEngine) -> None:
    """Ctrl-C between two runs of records: the hits judged so far, those still waiting for their
    response among them, reach the sink; the interrupt goes on up."""
    summary, stream, sink = RunSummary(), RequestStream(), ListSink()
    runs = file_event_runs(stream, [generated], summary)
    assert runs is not None
    judged: list[EventRun] = []

    def interrupted(runs: Iterator[EventRun]) -> Iterator[EventRun]:
        for run in runs:
            if len(judged) == 4:  # the first runs are short: the reader starts small
                raise KeyboardInterrupt
            judged.append(run)
            yield run

    with pytest.raises(KeyboardInterrupt):
        analyze_event_runs(interrupted(runs), engine=engine, sink=sink, summary=summary, stream=stream)
    requests = [e for run in judged for e in run.events if isinstance(e, HttpRequest)]
    expected = sum(len(engine.analyze(request)) for request in requests)
    assert expected > 0
    assert (len(sink.hits), summary.hits, summary.requests) == (expected, expected, len(requests))
    assert summary.drops  # the run's counters were taken too
    # Counted as the runs were read (what the progress bar and /metrics show), not at the end.
    assert 0 < summary.packets < sum(1 for _ in iter_packets([generated], RunSummary()))


def cli_replay(path: Path, db: Path, monkeypatch: pytest.MonkeyPatch, *, record_path: bool) -> tuple[str, str]:
    taken: list[Path] = []

    def spied(stream: RequestStream, sources: Sequence[Path], summary: RunSummary) -> Iterator[EventRun] | None:
        taken.extend(sources)
        return file_event_runs(stream, sources, summary) if record_path else None

    # The module, not the `replay` command that oob_analyzer.cli exports under the same name.
    monkeypatch.setattr(importlib.import_module("oob_analyzer.cli.replay"), "file_event_runs", spied)
    url = f"sqlite:///{db}"
    args = [
        "replay",
        str(path),
        "--db",
        url,
        "--workers",
        "1",
        "--stats",
        "--config",
        str(SAMPLES / "oob-analyzer.yaml"),
    ]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert taken == [path]
    listed = CliRunner().invoke(main, ["hits", "list", "--db", url, "--format", "json", "--limit", "100000"])
    assert listed.exit_code == 0, listed.output
    return result.output, listed.output


def stored_run(db: Path) -> tuple[object, ...]:
    engine = create_engine(f"sqlite:///{db}")
    with Session(engine) as session:
        (run,) = session.scalars(select(CaptureRun)).all()
        report = (run.status, run.packets, run.requests, run.hits, run.anomalies, run.drops, run.errors)
    engine.dispose()
    return report


@pytest.mark.parametrize("capture", ["sample", "generated"])
def test_the_replay_command_records_the_same(
    capture: str, generated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = SAMPLES / "mirror-http.pcap" if capture == "sample" else generated
    output, hits = cli_replay(path, tmp_path / "records.db", monkeypatch, record_path=True)
    reference_output, reference_hits = cli_replay(path, tmp_path / "packets.db", monkeypatch, record_path=False)
    assert output == reference_output
    without_ids = [{k: v for k, v in hit.items() if k != "id"} for hit in json.loads(hits)]
    reference = [{k: v for k, v in hit.items() if k != "id"} for hit in json.loads(reference_hits)]
    assert sorted(map(json.dumps, without_ids)) == sorted(map(json.dumps, reference))
    assert len(reference) >= 4 and any(hit["response_status"] is not None for hit in reference)
    assert stored_run(tmp_path / "records.db") == stored_run(tmp_path / "packets.db")
