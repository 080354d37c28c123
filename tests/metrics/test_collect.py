"""Collecting from real pipeline objects: a replay of the sample capture, a real writer."""

from __future__ import annotations

import time
from pathlib import Path

from oob_analyzer.detection import DetectionEngine, default_detectors
from oob_analyzer.metrics import PipelineMetrics
from oob_analyzer.pipeline import RequestStream, RunSummary, analyze_packets, iter_packets
from storage import AttackStore, BatchedWriter, Journal
from tests.paths import SAMPLES
from tests.storage.hits import hit


def test_a_replay_of_the_sample_is_read_back_from_the_live_objects(tmp_path: Path) -> None:
    store = AttackStore.open(f"sqlite:///{tmp_path / 'c.db'}")
    writer = BatchedWriter(store, journal=Journal(tmp_path / "journal"))
    summary, stream = RunSummary(), RequestStream()
    metrics = PipelineMetrics(summary=summary, stream=stream, writer=writer)
    assert metrics.collect().get("packets") == 0
    packets = iter_packets([SAMPLES / "mirror-http.pcap"], summary)
    analyze_packets(packets, engine=DetectionEngine(default_detectors()), sink=writer, summary=summary, stream=stream)
    writer.close()
    store.close()
    sample = metrics.collect()
    assert (sample.get("packets"), sample.get("requests"), sample.total("hits")) == (55, 9, 5)
    assert sample.get("bytes") == sum(
        len(packet.data) for packet in iter_packets([SAMPLES / "mirror-http.pcap"], RunSummary())
    )
    assert sample.get("responses") == summary.responses > 0
    assert {key[1][0][1]: value for key, value in sample if key[0] == "hits"} == dict(summary.hits_by_type)
    # The tracker's and the decoder's counters, under their families.
    assert sample.get("flows_opened") == stream.tracker.stats["connections"]
    assert sample.total("flows_ended") == stream.tracker.stats["connections"]
    assert sample.get("flows_active") == 0
    drops = {key[1][0][1]: value for key, value in sample if key[0] == "decode_drops"}
    assert drops == dict(stream.decoder.stats)
    assert sample.get("writer_items", outcome="written") == writer.stats.written > 0
    assert sample.get("queue_depth", queue="writer") == 0


def test_the_writer_backlog_ages_until_written(tmp_path: Path) -> None:
    store = AttackStore.open(f"sqlite:///{tmp_path / 'w.db'}")
    writer = BatchedWriter(store, journal=Journal(tmp_path / "journal"), flush_interval=60)
    try:
        assert writer.backlog() == (0, 0.0)
        writer.record([hit(src_port=1), hit(src_port=2)])
        time.sleep(0.05)
        waiting, age = writer.backlog()
        assert waiting == 2 and age >= 0.05
        sample = PipelineMetrics(writer=writer).collect()
        assert sample.get("queue_depth", queue="writer") == 2
        assert sample.get("writer_lag_seconds") >= 0.05
        writer.flush()
        assert writer.backlog() == (0, 0.0)
    finally:
        writer.close()
        store.close()
