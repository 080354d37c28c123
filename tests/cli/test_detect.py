from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from oob_analyzer.cli import main
from oob_analyzer.cli.detect import parse_raw_request

ATTACK = (
    b"POST /api/users?id=1%27%20OR%20%271%27%3D%271 HTTP/1.1\r\nHost: api.example.com\r\n"
    b"Content-Type: application/json\r\nContent-Length: 36\r\n\r\n"
    b'{"bio": "<script>alert(1)</script>"}'
)


def test_detect_prints_each_hit_as_json() -> None:
    result = CliRunner().invoke(main, ["detect", "-", "--format", "json"], input=ATTACK)
    assert result.exit_code == 0, result.output
    hits = {(hit["type"], hit["point"], hit["payload"]) for hit in json.loads(result.output)}
    assert hits == {("sqli", "query.id", "1' OR '1'='1"), ("xss", "body.json.bio", "<script>alert(1)</script>")}


def test_detect_reads_a_file_and_prints_a_table(tmp_path: Path) -> None:
    request = tmp_path / "req.http"
    request.write_bytes(b"GET /download?file=..%2F..%2Fetc%2Fpasswd HTTP/1.1\nHost: x\n\n")
    result = CliRunner().invoke(main, ["detect", str(request)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].split() == ["TYPE", "POINT", "RULE", "PAYLOAD"]
    assert "path_traversal" in result.output and "query.file" in result.output


def test_detect_says_when_nothing_was_found() -> None:
    result = CliRunner().invoke(main, ["detect"], input=b"GET /products?page=2 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (result.exit_code, result.output.strip()) == (0, "no attack found")


def test_detect_applies_the_config_and_refuses_a_bad_one(tmp_path: Path) -> None:
    config = tmp_path / "oob.yaml"
    config.write_text("detection:\n  disabled: [sqli, xss]\n")
    result = CliRunner().invoke(main, ["detect", "--config", str(config), "--format", "json"], input=ATTACK)
    assert json.loads(result.output) == []
    config.write_text("detection:\n  disable: [sqli]\n")
    result = CliRunner().invoke(main, ["detect", "--config", str(config)], input=ATTACK)
    assert result.exit_code == 2  # a usage error, like a bad option
    assert "oob.yaml:2: unknown key 'disable'" in result.output


def test_detect_refuses_input_that_is_not_a_request() -> None:
    result = CliRunner().invoke(main, ["detect"], input=b"\x00\x01 not http")
    assert result.exit_code == 1
    assert "no HTTP request found" in result.output


def test_a_pasted_body_without_content_length_is_taken_whole() -> None:
    request = parse_raw_request(
        b"POST /f HTTP/1.1\nHost: x\nContent-Type: application/x-www-form-urlencoded\n\na=1&b=2"
    )
    assert (request.body, request.header("content-length")) == (b"a=1&b=2", "7")
