"""The main job through the real command line: replay the bundled samples into SQLite."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from oob_analyzer.cli import main
from tests.paths import SAMPLES

EXPECTED_HITS = [
    # (type, src_ip, src_port, dst_ip, dst_port, host, method, target, point, payload, rule)
    ("sqli", "192.0.2.66", 40001, "198.51.100.20", 80, "shop.example.com", "GET",
     "/products?id=1%27%20OR%20%271%27%3D%271", "query.id", "1' OR '1'='1", "libinjection-sqli"),
    ("sqli", "192.0.2.66", 40001, "198.51.100.20", 80, "shop.example.com", "GET",
     "/products?id=1+UNION+SELECT+username,password+FROM+users--", "query.id",
     "1 UNION SELECT username,password FROM users--", "libinjection-sqli"),
    ("xss", "192.0.2.66", 40001, "198.51.100.20", 80, "shop.example.com", "GET",
     "/search?q=%3Cscript%3Ealert(document.cookie)%3C/script%3E", "query.q",
     "<script>alert(document.cookie)</script>", "libinjection-xss"),
    ("xss", "192.0.2.66", 40002, "198.51.100.20", 80, "shop.example.com", "POST",
     "/comments", "body.form.comment", "<img src=x onerror=alert(1)>", "libinjection-xss"),
    ("sqli", "192.0.2.66", 40002, "198.51.100.20", 80, "shop.example.com", "POST",
     "/login", "body.form.username", "admin'--", "libinjection-sqli"),
]  # fmt: skip
FIELDS = ("type", "src_ip", "src_port", "dst_ip", "dst_port", "host", "method", "target", "point", "payload", "rule")


def invoke(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("sample", ["mirror-http.pcap", "mirror-http.pcapng"])
def test_replay_records_exactly_the_attacks_in_the_sample(sample: str, sqlite_url: str) -> None:
    output = invoke("replay", str(SAMPLES / sample), "--db", sqlite_url)
    assert output == "55 packets, 9 requests, 5 hits\n"
    hits = json.loads(invoke("hits", "list", "--format", "json", "--db", sqlite_url))
    assert [tuple(hit[f] for f in FIELDS) for hit in reversed(hits)] == EXPECTED_HITS
    assert [hit["time"][:19] for hit in reversed(hits)] == ["2026-11-02T10:00:05"] * 3 + ["2026-11-02T10:00:10"] * 2


def test_attacks_group_the_hits(sqlite_url: str) -> None:
    invoke("replay", str(SAMPLES / "mirror-http.pcap"), "--db", sqlite_url)
    invoke("replay", str(SAMPLES / "mirror-http.pcap"), "--db", sqlite_url)  # the same traffic again
    attacks = json.loads(invoke("attacks", "list", "--format", "json", "--db", sqlite_url))
    assert sorted((a["type"], a["point"], a["hits"]) for a in attacks) == [
        ("sqli", "body.form.username", 2),
        ("sqli", "query.id", 2),
        ("sqli", "query.id", 2),
        ("xss", "body.form.comment", 2),
        ("xss", "query.q", 2),
    ]
    assert {a["first_seen"][:19] for a in attacks} <= {"2026-11-02T10:00:05", "2026-11-02T10:00:10"}


def test_tables_fit_an_80_column_terminal(sqlite_url: str) -> None:
    invoke("replay", str(SAMPLES / "mirror-http.pcap"), "--db", sqlite_url)
    for command in ("hits", "attacks"):
        lines = invoke(command, "list", "--db", sqlite_url).splitlines()
        assert len(lines) == 6
        assert max(len(line) for line in lines) <= 80
    assert "--limit" in invoke("hits", "list", "--help")


def test_limit(sqlite_url: str) -> None:
    invoke("replay", str(SAMPLES / "mirror-http.pcap"), "--db", sqlite_url)
    assert len(json.loads(invoke("attacks", "list", "--format", "json", "--limit", "2", "--db", sqlite_url))) == 2


def test_database_comes_from_the_environment_then_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    result = runner.invoke(main, ["replay", str(SAMPLES / "mirror-http.pcap")])
    assert result.exit_code == 0 and (tmp_path / "oob-analyzer.db").exists()
    env_db = tmp_path / "from-env.db"
    result = runner.invoke(
        main, ["replay", str(SAMPLES / "mirror-http.pcap")], env={"OOB_ANALYZER_DB": f"sqlite:///{env_db}"}
    )
    assert result.exit_code == 0 and env_db.exists()


def test_extract_prints_the_dissector_view() -> None:
    lines = invoke("extract", str(SAMPLES / "mirror-http.pcap"), "--format", "jsonl").splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 9
    assert records[3] == {
        "ts": 1793613600.016,
        "src": "203.0.113.10",
        "sport": 51000,
        "dst": "198.51.100.20",
        "dport": 80,
        "method": "POST",
        "host": "shop.example.com",
        "target": "/login",
        "version": "HTTP/1.1",
        "headers": [
            ["Host", "shop.example.com"],
            ["User-Agent", "Mozilla/5.0"],
            ["Content-Type", "application/x-www-form-urlencoded"],
            ["Content-Length", "37"],
        ],
        "body_length": 37,
        "complete": True,
        "anomalies": [],
        "response": {
            "status": 302,
            "reason": "Found",
            "headers": [["Content-Type", "text/html"], ["Content-Length", "0"]],
            "body_length": 0,
            "body_start": "",
            "complete": True,
            "anomalies": [],
        },
    }


def test_a_damaged_capture_is_reported_and_what_was_read_is_kept(tmp_path: Path, sqlite_url: str) -> None:
    data = (SAMPLES / "mirror-http.pcap").read_bytes()
    damaged = tmp_path / "damaged.pcap"
    damaged.write_bytes(data[: len(data) - 30])  # the last frame, a final ACK, is cut
    result = CliRunner().invoke(main, ["replay", str(damaged), str(SAMPLES / "nothing.pcap"), "--db", sqlite_url])
    assert result.exit_code == 3
    assert "damaged.pcap: capture ends inside packet 55" in result.output
    assert "nothing.pcap: cannot open: No such file or directory" in result.output
    assert "55 packets, 9 requests, 5 hits" in result.output


def test_an_unreachable_database_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["hits", "list", "--db", "sqlite:////nonexistent-dir/x.db"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: cannot open database sqlite:////nonexistent-dir/x.db")
