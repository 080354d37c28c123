"""`replay --sample-identical N` through the real command line: N rows stored, all counted."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from oob_analyzer.cli import main
from tests.cli.test_replay_interrupted import pcap_bytes


def test_sampling_stores_the_first_n_identical_hits_and_counts_them_all(tmp_path: Path) -> None:
    capture = tmp_path / "scanner.pcap"
    capture.write_bytes(pcap_bytes(12))  # one source sending one payload to one target 12 times
    db = f"sqlite:///{tmp_path / 'hits.db'}"
    runner = CliRunner()
    result = runner.invoke(main, ["replay", str(capture), "--db", db, "--sample-identical", "3"])
    assert result.exit_code == 0, result.output
    assert result.output == "12 packets, 12 requests, 12 hits\n"
    hits = json.loads(runner.invoke(main, ["hits", "list", "--format", "json", "--db", db]).output)
    (attack,) = json.loads(runner.invoke(main, ["attacks", "list", "--format", "json", "--db", db]).output)
    assert len(hits) == 3
    assert (attack["hits"], attack["sampled_out"]) == (12, 9)
    shown = runner.invoke(main, ["attacks", "show", str(attack["id"]), "--db", db]).output
    assert "hits        12 (9 counted, not stored: sampling)" in shown
