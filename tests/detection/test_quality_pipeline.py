"""The quality benchmark's path, end to end on a slice of the corpus: requests written as TCP
conversations in a pcap, `oob-analyzer replay` into SQLite, hits read back and mapped to the
requests. What the pipeline flags must be what the engine flags in process, and the slice
must score as the benchmark claims for the whole corpus.
"""

from __future__ import annotations

from itertools import islice
from pathlib import Path

import pytest

from benchmarks.detection_corpus import CORPUS, load_corpus
from benchmarks.detection_quality import client_of, replay_and_collect, write_capture
from oob_analyzer.detection import DetectionEngine, default_detectors


@pytest.mark.skipif(not CORPUS.exists(), reason="the shared corpus is not next to the project")
def test_corpus_slice_through_replay_is_scored_like_in_process(tmp_path: Path) -> None:
    requests = [request for index, request in enumerate(islice(load_corpus(), 820)) if index % 8 == 0]
    capture = tmp_path / "slice.pcap"
    write_capture(requests, capture)
    flagged_by_pipeline = replay_and_collect(capture, tmp_path / "hits.db")
    engine = DetectionEngine(default_detectors())
    flagged_in_process = {client_of(i) for i, request in enumerate(requests) if engine.analyze(request.as_request())}
    assert flagged_by_pipeline == flagged_in_process
    attacks = [client_of(i) in flagged_by_pipeline for i, r in enumerate(requests) if r.malicious]
    benign = [client_of(i) not in flagged_by_pipeline for i, r in enumerate(requests) if not r.malicious]
    assert sum(attacks) / len(attacks) >= 0.98
    assert sum(benign) / len(benign) >= 0.98
