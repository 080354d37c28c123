"""The config file's `detection:` section applies wherever traffic is analyzed, not only in `detect`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from oob_analyzer.cli import main
from tests.paths import SAMPLES


def hit_types(db_url: str) -> list[str]:
    result = CliRunner().invoke(main, ["hits", "list", "--format", "json", "--db", db_url], catch_exceptions=False)
    return sorted(hit["type"] for hit in json.loads(result.output))


@pytest.mark.parametrize("workers", ["1", "2"])  # in process, and in every worker process
def test_replay_applies_the_detection_policy(tmp_path: Path, sqlite_url: str, workers: str) -> None:
    config = tmp_path / "oob.yaml"
    config.write_text("detection:\n  disabled: [sqli]\n")
    runner = CliRunner()
    sample = str(SAMPLES / "mirror-http.pcap")
    result = runner.invoke(main, ["replay", sample, "--db", sqlite_url, "--config", str(config), "--workers", workers])
    assert result.exit_code == 0, result.output
    assert hit_types(sqlite_url) == ["xss", "xss"]


def test_without_a_policy_replay_records_every_type(sqlite_url: str) -> None:
    result = CliRunner().invoke(main, ["replay", str(SAMPLES / "mirror-http.pcap"), "--db", sqlite_url])
    assert result.exit_code == 0, result.output
    assert hit_types(sqlite_url) == ["sqli", "sqli", "sqli", "xss", "xss"]


def test_a_bad_policy_is_refused_before_anything_is_read(tmp_path: Path, sqlite_url: str) -> None:
    config = tmp_path / "oob.yaml"
    config.write_text("detection:\n  disabled: [sqli]\n  alow: []\n")
    for command in (
        ["replay", str(SAMPLES / "mirror-http.pcap")],
        ["replay", str(SAMPLES / "mirror-http.pcap"), "--workers", "2"],
        ["listen", "--vxlan", "127.0.0.1:0"],
    ):
        result = CliRunner().invoke(main, [*command, "--db", sqlite_url, "--config", str(config)])
        assert result.exit_code == 2, result.output
        assert (
            result.output
            == f"Error: {config}:3: unknown key 'alow' in detection (expected one of: allow, disabled, scopes)\n"
        )
