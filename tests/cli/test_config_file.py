"""The config file through the real commands: applications, trusted proxies, limits, sources, precedence."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from oob_analyzer.cli import main
from tests.builders import pcap_file, tcp_connection_frames
from tests.paths import SAMPLES

SAMPLE = SAMPLES / "mirror-http.pcap"  # 9 requests to shop.example.com, 5 hits without config

APPLICATIONS = """\
applications:
  - id: shop
    hosts: [shop.example.com]
    routes:
      - location: /login             # a plain prefix
        mode: off
      - location: "~ ^/sea?rch"      # a regex
        mode: off
"""


def write(tmp_path: Path, text: str, name: str = "oob.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def listed(db_url: str) -> list[tuple[str, str, str, str]]:
    result = CliRunner().invoke(main, ["hits", "list", "--format", "json", "--db", db_url], catch_exceptions=False)
    return sorted(
        (hit["type"], hit["target"].split("?")[0], hit["application"], hit["src_ip"])
        for hit in json.loads(result.output)
    )


def replay(*args: str) -> tuple[str, str]:
    result = CliRunner().invoke(main, ["replay", *args])
    assert result.exit_code == 0, result.output + result.stderr
    return result.stdout, result.stderr


def test_replay_records_the_application_and_skips_routes_that_are_off(tmp_path: Path, sqlite_url: str) -> None:
    config = write(tmp_path, APPLICATIONS)
    stdout, stderr = replay(str(SAMPLE), "--db", sqlite_url, "--config", str(config), "--stats")
    assert stdout == "55 packets, 9 requests, 3 hits\n"
    assert listed(sqlite_url) == [
        ("sqli", "/products", "shop", "192.0.2.66"),
        ("sqli", "/products", "shop", "192.0.2.66"),
        ("xss", "/comments", "shop", "192.0.2.66"),
    ]
    # /login (the browser's and the attacker's) and /search (both): counted, not judged.
    assert f"  {'requests_not_monitored':<40} {4:>10}\n" in stderr


def test_replay_without_the_application_hosts_allowed_counts_them(tmp_path: Path, sqlite_url: str) -> None:
    config = write(tmp_path, "allowed_hosts: [blog.example.com]\n")
    stdout, stderr = replay(str(SAMPLE), "--db", sqlite_url, "--config", str(config), "--stats")
    assert stdout == "55 packets, 9 requests, 0 hits\n"
    assert f"  {'requests_host_not_allowed':<40} {9:>10}\n" in stderr


PROXIED = (
    b"GET /products?id=1%27%20OR%201%3D1-- HTTP/1.1\r\nHost: shop.example.com\r\n"
    b"X-Forwarded-For: 198.18.0.7, 10.0.0.9\r\n\r\n"
)


@pytest.mark.parametrize(
    ("config_text", "client"),
    [
        ("trusted_proxies: [10.0.0.0/8]\n", "198.18.0.7"),  # the peer and the right hop are trusted
        ("trusted_proxies: [10.0.0.5/32]\n", "10.0.0.9"),  # only the peer: its word is the last hop
        ("trusted_proxies: [192.0.2.0/24]\n", "10.0.0.5"),  # not the peer: the header is not believed
    ],
)
def test_trusted_proxies_name_the_client_in_a_packet_capture(
    tmp_path: Path, sqlite_url: str, config_text: str, client: str
) -> None:
    frames = tcp_connection_frames(PROXIED, client="10.0.0.5", server="10.0.1.80", sport=43000)
    capture = tmp_path / "proxied.pcap"
    capture.write_bytes(pcap_file([(1.0 + i / 100, frame) for i, frame in enumerate(frames)]))
    replay(str(capture), "--db", sqlite_url, "--config", str(write(tmp_path, config_text)))
    assert listed(sqlite_url) == [("sqli", "/products", "", client)]


def test_reassembly_limits_apply(tmp_path: Path, sqlite_url: str) -> None:
    # Only the first 8 body bytes are kept: the attacks in the two POST forms are not seen.
    config = write(tmp_path, "reassembly:\n  body_inspection_bytes: 8\n")
    stdout, _ = replay(str(SAMPLE), "--db", sqlite_url, "--config", str(config))
    assert stdout == "55 packets, 9 requests, 3 hits\n"
    assert [target for _, target, _, _ in listed(sqlite_url)] == ["/products", "/products", "/search"]


def test_command_line_beats_environment_beats_config_file_beats_default(tmp_path: Path) -> None:
    from_file, from_option, from_env = (f"sqlite:///{tmp_path / name}.db" for name in ("file", "option", "env"))
    config = write(tmp_path, f"storage:\n  url: {from_file}\n  journal: journal.jsonl\n")
    replay(str(SAMPLE), "--config", str(config))
    assert len(listed(from_file)) == 5
    replay(str(SAMPLE), "--config", str(config), "--db", from_option)
    assert len(listed(from_option)) == 5
    result = CliRunner().invoke(
        main, ["replay", str(SAMPLE), "--config", str(config)], env={"OOB_ANALYZER_DB": from_env}
    )
    assert result.exit_code == 0, result.output
    assert len(listed(from_env)) == 5
    assert len(listed(from_file)) == 5  # not written a second time


def test_sources_come_from_the_config_file_when_the_command_line_names_none(tmp_path: Path, sqlite_url: str) -> None:
    (tmp_path / "captures").mkdir()
    (tmp_path / "captures" / "shop.pcap").write_bytes(SAMPLE.read_bytes())
    config = write(tmp_path, "sources:\n  files: [captures]\n")  # relative to the file
    stdout, _ = replay("--db", sqlite_url, "--config", str(config))
    assert stdout == "55 packets, 9 requests, 5 hits\n"
    extract = CliRunner().invoke(main, ["extract", "--config", str(config)])
    assert extract.exit_code == 0, extract.output
    assert len(extract.output.splitlines()) == 9
    for command in ("replay", "extract"):
        nothing = CliRunner().invoke(main, [command])
        assert nothing.exit_code == 2
        assert "give at least one SOURCE (or sources.files in the --config file)" in nothing.output


@pytest.mark.parametrize(
    "command",
    [
        ["replay", str(SAMPLE)],
        ["extract", str(SAMPLE)],
        ["detect", "-"],
        ["listen", "--vxlan", "127.0.0.1:0"],
        ["capture", "--interface", "lo"],
        ["mirror-server", "--listen", "127.0.0.1:0"],
    ],
)
def test_a_bad_file_is_refused_by_every_command_before_it_starts(
    tmp_path: Path, sqlite_url: str, command: list[str]
) -> None:
    config = write(tmp_path, "applications:\n  - id: shop\n    routes:\n      - {location: /a, mode: of}\n")
    db = ["--db", sqlite_url] if command[0] not in ("extract", "detect") else []
    result = CliRunner().invoke(main, [*command, *db, "--config", str(config)], input=b"GET / HTTP/1.1\r\n\r\n")
    assert result.exit_code == 2, result.output
    assert result.output == (
        f"Error: {config}:4: application 'shop': route mode must be one of monitoring, off, not 'of'\n"
    )
    assert not (tmp_path / "hits.db").exists()  # not even the database was opened


def test_the_config_file_may_come_from_the_environment(tmp_path: Path, sqlite_url: str) -> None:
    config = write(tmp_path, "detection:\n  disabled: [sqli]\n")
    result = CliRunner().invoke(
        main, ["replay", str(SAMPLE), "--db", sqlite_url], env={"OOB_ANALYZER_CONFIG": str(config)}
    )
    assert result.exit_code == 0, result.output
    assert [hit_type for hit_type, *_ in listed(sqlite_url)] == ["xss", "xss"]


@pytest.mark.parametrize("command", ["replay", "mirror-server"])
def test_the_config_files_metrics_address_is_served_where_no_metrics_option_is_given(
    command: str, tmp_path: Path, sqlite_url: str
) -> None:
    config = write(tmp_path, 'metrics: "127.0.0.1:0"\nworkers: 1\n')
    if command == "replay":
        args = ["replay", str(SAMPLES / "mirror-http.pcap"), "--config", str(config), "--db", sqlite_url]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        assert "metrics on http://127.0.0.1:" in result.stderr
    else:  # a real process: it serves until stopped
        process = subprocess.Popen(
            [sys.executable, "-c", "from oob_analyzer.cli import main; main()", "mirror-server",
             "--listen", "127.0.0.1:0", "--config", str(config), "--db", sqlite_url],
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert process.stderr is not None
            assert process.stderr.readline().startswith("metrics on http://127.0.0.1:")
        finally:
            process.terminate()
            process.communicate(timeout=30)
