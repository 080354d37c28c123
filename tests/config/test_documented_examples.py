"""The config files the documentation shows are valid, and say what the documentation says."""

from __future__ import annotations

import json
import re
from pathlib import Path

from click.testing import CliRunner

from oob_analyzer.cli import main
from oob_analyzer.config import SECTIONS, RouteMode, load_config
from reassembly import ReassemblyLimits
from tests.paths import PROJECT, SAMPLES

DOC = PROJECT / "docs" / "configuration.md"


def documented_example(tmp_path: Path) -> Path:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## A complete example", 1)[1]
    blocks = re.findall(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert len(blocks) == 1
    path = tmp_path / "example.yaml"
    path.write_text(blocks[0])
    return path


def test_the_complete_example_loads_and_uses_every_section(tmp_path: Path) -> None:
    path = documented_example(tmp_path)
    config = load_config(path)
    top_keys = re.findall(r"^([a-z_]+):", path.read_text(), re.MULTILINE)
    assert top_keys == list(SECTIONS)  # every section, in the documented order
    resolve = config.applications.resolve
    assert resolve("www.shop.example.com", "/static/app.css").mode is RouteMode.OFF
    assert resolve("shop.example.com", "/static/upload/x.png").mode is RouteMode.MONITORING
    assert resolve("shop.example.com", "/cart/logo.PNG").mode is RouteMode.OFF
    assert resolve("shop.example.com", "/healthz").mode is RouteMode.OFF
    assert resolve("blog.example.com", "/").application == "blog"
    assert resolve("api.example.com", "/").application == "everything-else"
    assert config.reassembly == ReassemblyLimits()  # the example shows the defaults
    assert config.workers == "auto"


def test_the_sample_config_loads_and_applies_to_the_sample_capture(tmp_path: Path) -> None:
    config = SAMPLES / "oob-analyzer.yaml"
    load_config(config)
    db_url = f"sqlite:///{tmp_path / 'hits.db'}"
    result = CliRunner().invoke(
        main, ["replay", str(SAMPLES / "mirror-http.pcap"), "--config", str(config), "--db", db_url]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == "55 packets, 9 requests, 4 hits\n"  # the attacker's POST /login is not judged
    listed = CliRunner().invoke(main, ["hits", "list", "--format", "json", "--db", db_url])
    assert {hit["application"] for hit in json.loads(listed.output)} == {"shop"}
